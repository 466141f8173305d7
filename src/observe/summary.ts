/**
 * `--stats-interval S`: one info line every S seconds for people who watch the console during long
 * transfers: peers (with a session), live flows, and the outer UDP rate each way.
 */
import type { Clock, Timer } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";

export interface SummarySample {
  peers: number;
  /** Peers with a live WireGuard session (GUE: the peers whose endpoint is known). */
  peersUp: number;
  liveTcp: number;
  liveUdp: number;
  /** Cumulative outer bytes received from / sent to the peers. */
  bytesIn: number;
  bytesOut: number;
}

/** 1234567 -> "1.23 MB/s" (decimal units, like iperf and curl). */
export function formatRate(bytesPerSecond: number): string {
  const units = ["B/s", "kB/s", "MB/s", "GB/s"];
  let v = bytesPerSecond;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${Math.round(v)} ${units[i]}` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

export function summaryLine(s: SummarySample, inPerS: number, outPerS: number): string {
  return (
    `stats: ${s.peers} peer${s.peers === 1 ? "" : "s"} (${s.peersUp} up), ` +
    `flows ${s.liveTcp} TCP ${s.liveUdp} UDP, ` +
    `from peers ${formatRate(inPerS)}, to peers ${formatRate(outPerS)}`
  );
}

export class StatsSummary {
  private readonly timer: Timer;
  private last: SummarySample;
  private lastAt: number;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly sample: () => SummarySample,
  ) {
    this.last = sample();
    this.lastAt = clock.now();
    this.timer = clock.timer(() => this.tick());
    this.timer.set(intervalMs);
  }

  private tick(): void {
    const now = this.clock.now();
    const s = this.sample();
    const seconds = Math.max(1e-3, (now - this.lastAt) / 1000);
    // Never negative, should a counter ever restart (a replaced UDP socket inherits its predecessor's).
    const inPerS = Math.max(0, s.bytesIn - this.last.bytesIn) / seconds;
    const outPerS = Math.max(0, s.bytesOut - this.last.bytesOut) / seconds;
    this.log.info(summaryLine(s, inPerS, outPerS));
    this.last = s;
    this.lastAt = now;
    this.timer.set(this.intervalMs);
  }

  close(): void {
    this.timer.clear();
  }
}
