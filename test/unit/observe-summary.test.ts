import { expect, test } from "bun:test";
import { formatRate, StatsSummary, type SummarySample } from "../../src/observe/summary.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { createLogger } from "../../src/util/log.ts";

test("formatRate: decimal units", () => {
  expect([0, 999, 1000, 15_300, 1_234_567, 2.59e9].map(formatRate)).toEqual([
    "0 B/s",
    "999 B/s",
    "1.00 kB/s",
    "15.3 kB/s",
    "1.23 MB/s",
    "2.59 GB/s",
  ]);
});

test("--stats-interval: one info line per interval with peers, flows and the rate each way", () => {
  const clock = new VirtualClock();
  const lines: string[] = [];
  const log = createLogger("info", { write: (l) => lines.push(l.replace(/^\S+ /, "").trimEnd()), tty: false });
  const s: SummarySample = { peers: 1, peersUp: 0, liveTcp: 0, liveUdp: 0, bytesIn: 0, bytesOut: 0 };
  const summary = new StatsSummary(log, clock, 10_000, () => ({ ...s }));
  clock.advance(9_999);
  expect(lines).toEqual([]);
  s.peersUp = 1;
  s.liveTcp = 3;
  s.liveUdp = 2;
  s.bytesIn = 12_000_000;
  s.bytesOut = 150_000;
  clock.advance(1);
  clock.advance(10_000);
  expect(lines).toEqual([
    "INFO  stats: 1 peer (1 up), flows 3 TCP 2 UDP, from peers 1.20 MB/s, to peers 15.0 kB/s",
    "INFO  stats: 1 peer (1 up), flows 3 TCP 2 UDP, from peers 0 B/s, to peers 0 B/s",
  ]);
  // The socket was replaced: its counters restarted. The rate reads 0, not a negative figure.
  s.bytesIn = 1000;
  s.bytesOut = 0;
  clock.advance(10_000);
  expect(lines[2]).toBe("INFO  stats: 1 peer (1 up), flows 3 TCP 2 UDP, from peers 0 B/s, to peers 0 B/s");
  summary.close();
  clock.advance(100_000);
  expect(lines).toHaveLength(3);
});
