import { describe, expect, test } from "bun:test";
import {
  BBR_CWND_GAIN,
  BBR_HIGH_GAIN,
  BBR_MIN_CWND_SEGMENTS,
  Bbr,
  BbrMode,
  LOSS_HEADROOM,
} from "../../src/netstack/tcp/congestion/bbr.ts";
import { congestionControlForHost } from "../../src/netstack/tcp/congestion/host.ts";
import { type DeliverySample, emptyDeliverySample } from "../../src/netstack/tcp/congestion/types.ts";
import { RackLog } from "../../src/netstack/tcp/rack.ts";
import { SackScoreboard } from "../../src/netstack/tcp/sack.ts";
import { transfer } from "./tcp-transfer.ts";

const MSS = 1000;

function sample(over: Partial<DeliverySample>): DeliverySample {
  return { ...emptyDeliverySample(), ...over };
}

/**
 * A path of `rate` bytes per ms and `rtt` ms, driven one round per call: the round delivers what
 * the window allows, capped by the rate; ACKs arrive spread over the round.
 */
class Path {
  delivered = 0;
  retransmitted = 0;
  t = 0;
  constructor(
    readonly cc: Bbr,
    readonly rate: number,
    readonly rtt: number,
  ) {}

  /** What the window and the pacing rate put in flight (a queue of up to half a BDP beyond). */
  get window(): number {
    return Math.min(this.cc.cwnd, this.rate * this.rtt * Math.min(1.5, this.cc.pacingGain));
  }

  /** `clumps`: the ACKs arrive in this many bursts a round (ACK aggregation), else evenly spread. */
  round(opts: { lossShare?: number; window?: number; clumps?: number } = {}): void {
    const start = this.t;
    const window = opts.window ?? this.window;
    const perRound = Math.min(window, this.rate * this.rtt);
    const acks = Math.max(1, Math.round(perRound / MSS));
    for (let i = 1; i <= acks; i++) {
      const now = start + (opts.clumps ? Math.ceil((i * opts.clumps) / acks) / opts.clumps : i / acks) * this.rtt;
      this.delivered += perRound / acks;
      this.retransmitted += ((opts.lossShare ?? 0) * perRound) / acks;
      this.cc.onDelivery(
        sample({
          delivered: this.delivered,
          acked: perRound / acks,
          inflight: window,
          now,
          rtt: this.rtt,
          sentAt: now - this.rtt,
          retransmitted: this.retransmitted,
        }),
      );
    }
    this.t = start + this.rtt;
  }
}

describe("BBR (model-based congestion control)", () => {
  test("STARTUP grows the window until the bandwidth stops growing, drains, then cwnd = 2 BDP + aggregation", () => {
    const cc = new Bbr(MSS);
    // 100 bytes/ms (800 kbit/s) and 50 ms: a BDP of 5000 bytes... at 10 MB/s: 500 KB.
    const p = new Path(cc, 10_000, 50);
    expect(cc.mode).toBe(BbrMode.Startup);
    for (let i = 0; i < 4; i++) p.round();
    expect(cc.mode).toBe(BbrMode.Startup);
    expect(cc.pacingGain).toBeCloseTo(BBR_HIGH_GAIN, 6);
    for (let i = 0; i < 20 && !cc.fullBwReached; i++) p.round();
    expect(cc.fullBwReached).toBe(true);
    expect(cc.bw).toBeCloseTo(10_000, -2);
    expect(cc.minRtt).toBe(50);
    for (let i = 0; i < 5; i++) p.round();
    expect(cc.mode).toBe(BbrMode.ProbeBw);
    // 2 x BDP (1 MB) plus 3 segments of allowance; evenly spread ACKs add no aggregation.
    const bdp = 10_000 * 50;
    expect(cc.cwnd).toBeGreaterThanOrEqual(BBR_CWND_GAIN * bdp);
    expect(cc.cwnd).toBeLessThan(BBR_CWND_GAIN * bdp + 10 * MSS);
    // Pacing at the bandwidth times the cycle's gain.
    expect(cc.pacingRate / cc.bw).toBe(cc.pacingGain);
  });

  test("random loss does not shrink the window (CUBIC would cut it by 0.3 every time)", () => {
    const cc = new Bbr(MSS);
    const p = new Path(cc, 10_000, 50);
    for (let i = 0; i < 30; i++) p.round();
    const bdp = 10_000 * 50;
    expect(cc.cwnd).toBeGreaterThanOrEqual(BBR_CWND_GAIN * bdp);
    for (let i = 0; i < 10; i++) {
      // What was in flight when the loss showed stays in flight (packet conservation keeps it).
      const window = p.window;
      cc.onEnterRecovery(cc.cwnd, p.t, true);
      p.round({ lossShare: 0.01, window });
      cc.onExitRecovery(cc.cwnd);
      p.round({ lossShare: 0.01 });
    }
    expect(cc.cwnd).toBeGreaterThanOrEqual(BBR_CWND_GAIN * bdp);
    expect(cc.bw).toBeCloseTo(10_000, -2);
  });

  test("a round that resent over 2 % caps in flight (not under 2 BDP); the up phase raises the cap again", () => {
    const cc = new Bbr(MSS);
    const p = new Path(cc, 10_000, 50);
    // ACKs in 2 clumps a round: BBR v1 adds the aggregation (~half a BDP) to its 2 BDP window.
    for (let i = 0; i < 30; i++) p.round({ clumps: 2 });
    const bdp = 10_000 * 50;
    const v1 = cc.cwnd;
    expect(v1).toBeGreaterThan(BBR_CWND_GAIN * bdp + 0.3 * bdp);
    expect(cc.inflightHi).toBe(Number.POSITIVE_INFINITY);
    // A shallow buffer at the receiver holds 2.1 BDP: filling the window overflows it, 5 % resent.
    const holds = 2.1 * bdp;
    for (let i = 0; i < 3; i++) {
      cc.onEnterRecovery(cc.cwnd, p.t, true);
      p.round({ lossShare: 0.05, window: i === 0 ? cc.cwnd : holds, clumps: 2 });
      cc.onExitRecovery(cc.cwnd);
    }
    // max(in flight before the loss, 0.7 x the old cap, 2 BDP) = what the buffer held; cwnd follows.
    expect(cc.inflightHi).toBeCloseTo(holds, -3);
    p.round({ window: cc.cwnd, clumps: 2 });
    expect(cc.cwnd).toBeLessThanOrEqual(holds);
    expect(cc.bw).toBeCloseTo(10_000, -2);
    // Clean rounds that fill the window: each up phase raises the cap by 1, 2, 4... segments.
    for (let i = 0; i < 24; i++) p.round({ window: cc.cwnd, clumps: 2 });
    expect(cc.inflightHi).toBeGreaterThan(holds + 2 * MSS);
    // Outside the up phase cwnd keeps 15 % headroom under the cap.
    expect(cc.cwnd).toBeGreaterThanOrEqual(Math.floor(LOSS_HEADROOM * cc.inflightHi));
    expect(cc.cwnd).toBeLessThanOrEqual(cc.inflightHi);
  });

  test("1 % random loss on a deep path (20 segments a round) leaves the window uncapped", () => {
    const cc = new Bbr(MSS);
    // 10 MB/s and 200 ms: a BDP of 2 MB, so 1 % is 20 segments a round (above the 8-segment floor).
    const p = new Path(cc, 10_000, 200);
    for (let i = 0; i < 30; i++) p.round();
    const bdp = 10_000 * 200;
    for (let i = 0; i < 40; i++) p.round({ lossShare: 0.01 });
    expect(cc.inflightHi).toBe(Number.POSITIVE_INFINITY);
    expect(cc.cwnd).toBeGreaterThanOrEqual(BBR_CWND_GAIN * bdp);
    expect(cc.bw).toBeCloseTo(10_000, -2);
  });

  test("STARTUP ends on heavy loss (a shallow queue overflowed), not only on a bandwidth plateau", () => {
    const cc = new Bbr(MSS);
    const p = new Path(cc, 10_000, 50);
    for (let i = 0; i < 4; i++) p.round();
    expect(cc.fullBwReached).toBe(false);
    // A round that had to resend 10 % of what it delivered.
    p.round({ lossShare: 0.1 });
    p.round();
    expect(cc.fullBwReached).toBe(true);
    expect(cc.mode).not.toBe(BbrMode.Startup);
    // 1 % (random loss) does not end it.
    const cc2 = new Bbr(MSS);
    const p2 = new Path(cc2, 10_000, 50);
    for (let i = 0; i < 4; i++) p2.round({ lossShare: 0.01 });
    expect(cc2.fullBwReached).toBe(false);
  });

  test("PROBE_RTT: a min RTT 10 s old holds cwnd at 4 segments for 200 ms, then the window comes back", () => {
    const cc = new Bbr(MSS);
    const p = new Path(cc, 10_000, 50);
    for (let i = 0; i < 30; i++) p.round();
    const full = cc.cwnd;
    // 10 s of rounds whose RTT samples are all above the minimum.
    const rtt = p.rtt;
    let entered = false;
    for (let i = 0; i < 210; i++) {
      const now = p.t + rtt;
      p.delivered += 10_000 * rtt;
      cc.onDelivery(
        sample({
          delivered: p.delivered,
          acked: 10_000 * rtt,
          inflight: cc.mode === BbrMode.ProbeRtt ? 0 : full,
          now,
          rtt: 60,
          sentAt: now - rtt,
        }),
      );
      p.t = now;
      if (cc.mode === BbrMode.ProbeRtt) {
        entered = true;
        expect(cc.cwnd).toBe(BBR_MIN_CWND_SEGMENTS * MSS);
      } else if (entered) break;
    }
    expect(entered).toBe(true);
    expect(cc.mode).toBe(BbrMode.ProbeBw);
    expect(cc.cwnd).toBeGreaterThanOrEqual(full);
  });

  test("1 % random loss each way on a sub-millisecond path: BBR keeps ~the link rate, CUBIC does not", () => {
    const run = (congestionControl: "bbr" | "cubic") => {
      const r = transfer({
        sizeAtoB: 8_000_000,
        sizeBtoA: 0,
        seed: 3,
        congestionControl,
        aToB: { delayMs: 0.3, loss: 0.01, rateBytesPerMs: 60_000, queueBytes: 256 * 1024 },
        bToA: { delayMs: 0.3, loss: 0.01 },
        bufferSize: 65535,
        autotuneMaxBufferSize: 8 << 20,
      });
      expect(r.intact).toBe(true);
      expect(r.layerA.stats.rtoExpirations).toBe(0);
      return (8_000_000 * 8) / r.doneAt / 1000;
    };
    const bbr = run("bbr");
    const cubic = run("cubic");
    console.log(
      `1 % loss, 0.6 ms RTT, 480 Mbit/s link: bbr ${bbr.toFixed(0)} Mbit/s, cubic ${cubic.toFixed(0)} Mbit/s`,
    );
    expect(bbr).toBeGreaterThan(0.8 * 480);
    expect(bbr).toBeGreaterThan(1.4 * cubic);
  });
});

test("ACKs in 1 ms clumps (one event-loop turn) and bursts sent at one instant: the estimate holds the link rate", () => {
  // Every segment of a pacing burst has the same send time; a delivery that only moved RACK's end
  // sequence is still a rate sample (else only the first ACK of each clump counted and the
  // estimate sank to 1/15 of the link).
  const r = transfer({
    sizeAtoB: 16_000_000,
    sizeBtoA: 0,
    seed: 1,
    congestionControl: "bbr",
    aToB: { delayMs: 0.1, rateBytesPerMs: 60_000, queueBytes: 212_992 },
    bToA: { delayMs: 0.1, batchMs: 1 },
    bufferSize: 65535,
    autotuneMaxBufferSize: 8 << 20,
  });
  expect(r.intact).toBe(true);
  const mbps = (16_000_000 * 8) / r.doneAt / 1000;
  console.log(`1 ms ACK clumps, 0.2 ms RTT, 480 Mbit/s link: bbr ${mbps.toFixed(0)} Mbit/s`);
  expect(mbps).toBeGreaterThan(0.8 * 480);
});

test("a shallow drop-tail queue (128 KiB, as a peer's UDP socket) is not overrun every cycle", () => {
  // BBR v1 alone refilled it each 1.25 probe: ~3400 resends, an RTO and half the link rate.
  const r = transfer({
    sizeAtoB: 16_000_000,
    sizeBtoA: 0,
    seed: 1,
    congestionControl: "bbr",
    aToB: { delayMs: 0.1, rateBytesPerMs: 60_000, queueBytes: 128 * 1024 },
    bToA: { delayMs: 0.1, batchMs: 1 },
    bufferSize: 65535,
    autotuneMaxBufferSize: 16 << 20,
  });
  expect(r.intact).toBe(true);
  const mbps = (16_000_000 * 8) / r.doneAt / 1000;
  console.log(`128 KiB queue, 480 Mbit/s: bbr ${mbps.toFixed(0)} Mbit/s, ${r.layerA.stats.retransmits} resent`);
  expect(r.layerA.stats.rtoExpirations).toBe(0);
  expect(r.layerA.stats.retransmits).toBeLessThan(1000);
  expect(mbps).toBeGreaterThan(0.8 * 480);
});

describe("RACK lost queue", () => {
  test("a segment the full queue refused is reported again later, not left to the RTO", () => {
    const log = new RackLog();
    const sb = new SackScoreboard();
    for (let i = 0; i < 4; i++) log.onSend(1000 * i, 1000 * (i + 1), i, false);
    sb.add(3000, 4000, 0, 4000);
    log.onAck(0, sb, true, 20, 10);
    const refused: number[] = [];
    log.detectLoss(30, 0, 0, (s) => {
      refused.push(s);
      return false;
    });
    expect(refused).toEqual([0, 1000, 2000]);
    const lost: number[] = [];
    log.detectLoss(31, 0, 0, (s) => lost.push(s) > 0);
    expect(lost).toEqual([0, 1000, 2000]);
  });
});

describe("the default congestion control follows the host's", () => {
  test("bbr -> BBR, reno -> NewReno, cubic / unknown / unreadable -> CUBIC", () => {
    expect(congestionControlForHost("bbr\n")).toBe("bbr");
    expect(congestionControlForHost("reno\n")).toBe("newreno");
    expect(congestionControlForHost("cubic\n")).toBe("cubic");
    expect(congestionControlForHost("dctcp\n")).toBe("cubic");
    expect(congestionControlForHost(undefined)).toBe("cubic");
  });
});

describe("RTT samples for the model", () => {
  test("RACK marks the RTT of a delivered retransmission ambiguous (Karn), a first transmission's not", () => {
    const log = new RackLog();
    const sb = new SackScoreboard();
    log.onSend(0, 1000, 0, false);
    log.onSend(1000, 2000, 1, false);
    // Segment 0 resent at 40; its ACK at 40.02 may belong to the original: 20 µs is no RTT.
    log.onSend(0, 1000, 40, true);
    log.onAck(2000, sb, false, 40.02, 0);
    expect(log.xmitTs).toBe(40);
    expect(log.rtt).toBeCloseTo(0.02, 6);
    expect(log.rttAmbiguous).toBe(true);
    log.onSend(2000, 3000, 41, false);
    log.onAck(3000, sb, false, 51, 0);
    expect([log.rtt, log.rttAmbiguous]).toEqual([10, false]);
  });
});
