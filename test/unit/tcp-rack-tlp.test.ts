import { describe, expect, test } from "bun:test";
import { RackLog } from "../../src/netstack/tcp/rack.ts";
import { SackScoreboard } from "../../src/netstack/tcp/sack.ts";
import { TCP_SYN } from "../../src/wire/tcp.ts";
import type { Captured } from "./tcp-harness.ts";
import { transfer } from "./tcp-transfer.ts";

/** Payload per segment: MSS 1420 minus the 12 bytes of timestamps. */
const SEG = 1408;

/** Drop the first `times` transmissions of A's data segments numbered in `which`. */
function dropTx(which: number[], times: number) {
  let iss = -1;
  const seen = new Map<number, number>();
  return (s: Captured) => {
    if (s.flags & TCP_SYN) iss = s.seq;
    if (s.payload.length === 0 || iss < 0) return false;
    const idx = Math.round(((s.seq - iss - 1) >>> 0) / SEG);
    const n = (seen.get(idx) ?? 0) + 1;
    seen.set(idx, n);
    return which.includes(idx) && n <= times;
  };
}

function oneWay(drop: (s: Captured, index: number, now: number) => boolean, segments: number) {
  const r = transfer({
    sizeAtoB: segments * SEG,
    sizeBtoA: 0,
    seed: 5,
    aToB: { delayMs: 10, drop },
    bToA: { delayMs: 10 },
  });
  expect(r.intact).toBe(true);
  expect([r.a.closed, r.b.closed]).toEqual([["closed"], ["closed"]]);
  return { r, s: r.layerA.stats };
}

describe("RACK-TLP (RFC 8985)", () => {
  test("a lost tail (2 of the last 3 segments): the reordering timer finds it, no probe, no RTO", () => {
    // Segment 39's SACK arrives, and no later ACK: 37 and 38 left just before 39, so they are not
    // lost until RACK.rtt + reo_wnd after they left (RFC 8985 §6.3): the reordering timer.
    const sent = new Map<number, number>();
    const resent = new Map<number, number>();
    let iss = -1;
    const drop = dropTx([37, 38], 1);
    const { r, s } = oneWay((c, _i, now) => {
      if (c.flags & TCP_SYN) iss = c.seq;
      if (c.payload.length > 0 && iss >= 0) {
        const idx = Math.round(((c.seq - iss - 1) >>> 0) / SEG);
        (sent.has(idx) ? resent : sent).set(idx, now);
      }
      return drop(c);
    }, 40);
    expect(s.reorderTimeouts).toBe(1);
    expect(s.tlpProbes).toBe(0);
    expect(s.rtoExpirations).toBe(0);
    expect(s.fastRecoveries).toBe(1);
    // The two lost segments, and RFC 6675's rescue retransmission of the FIN (SACK blocks never
    // cover a FIN).
    expect(s.retransmits).toBe(3);
    // Resent at RACK.rtt (20 ms: 39 was SACKed 20 ms after it left) + reo_wnd (min_RTT/4 = 5 ms)
    // after each left, where the probe would wait 2 SRTT after the last ACK.
    for (const k of [37, 38]) expect(resent.get(k)! - sent.get(k)!).toBeCloseTo(25, 0);
    expect(r.doneAt).toBeLessThan(110);
  });

  test("a lost retransmission is sent again after about an RTT, not after the RTO", () => {
    const { r, s } = oneWay(dropTx([10], 2), 60);
    expect(s.rackLostRetransmits).toBe(1);
    expect(s.rtoExpirations).toBe(0);
    expect(s.retransmits).toBe(2);
    expect(r.doneAt).toBeLessThan(200);
  });

  test("without RACK's help the same losses cost an RTO (the baseline the two above beat)", () => {
    // Four transmissions of segment 10 lost: RACK resends after each RTT while SACKs keep coming,
    // but once the window drains only the RTO is left.
    const { s } = oneWay(dropTx([10], 4), 20);
    expect(s.rtoExpirations).toBeGreaterThanOrEqual(1);
  });

  test("RackLog: delivered-later segments make earlier ones lost once RTT + reo_wnd has passed", () => {
    const log = new RackLog();
    const sb = new SackScoreboard();
    for (let i = 0; i < 5; i++) log.onSend(1000 * i, 1000 * (i + 1), i, false);
    // Segment 3 SACKed at t = 20 (sent at 3: RACK.rtt 17); 0-2 are older.
    sb.add(3000, 4000, 0, 5000);
    log.onAck(0, sb, true, 20, 10);
    expect([log.xmitTs, log.endSeq, log.rtt]).toEqual([3, 4000, 17]);
    const lost: number[] = [];
    // reo_wnd 2: segment 0 (sent 0) is lost at 19, 1 at 20, 2 not until 21: 1 ms left.
    const next = log.detectLoss(20, 0, 2, (s) => lost.push(s) > 0);
    expect(lost).toEqual([0, 1000]);
    expect(next).toBe(1);
    // Reported once; segment 4 (sent after the delivered one) is never a candidate.
    lost.length = 0;
    expect(log.detectLoss(30, 0, 2, (s) => lost.push(s) > 0)).toBe(-1);
    expect(lost).toEqual([2000]);
    // A retransmission of segment 0 replaces the original, and it left after the delivered one.
    log.onSend(0, 1000, 31, true);
    sb.add(4000, 5000, 0, 5000);
    log.onAck(0, sb, true, 60, 10);
    lost.length = 0;
    log.detectLoss(60, 0, 2, (s) => lost.push(s) > 0);
    expect(lost).toEqual([]);
    // The cumulative ACK empties the log.
    log.onAck(5000, sb, false, 70, 10);
    expect(log.size).toBe(0);
  });
});

describe("RACK transmission log", () => {
  test("a retransmission replaces every earlier transmission it covers, not only one at its start", () => {
    const log = new RackLog();
    const sb = new SackScoreboard();
    // Two small segments (the app wrote little at a time), then a full one.
    log.onSend(0, 500, 0, false);
    log.onSend(500, 1000, 0, false);
    log.onSend(1000, 2000, 1, false);
    // The hole [0, 1000) resent as one segment at 30.
    log.onSend(0, 1000, 30, true);
    // [1000, 2000) SACKed at 31: everything sent before it is in question, but both small
    // originals were resent after it: nothing is lost yet.
    sb.add(1000, 2000, 0, 2000);
    log.onAck(0, sb, true, 31, 10);
    const lost: number[] = [];
    expect(log.detectLoss(100, 0, 0, (s) => lost.push(s) > 0)).toBe(-1);
    expect(lost).toEqual([]);
  });
});

describe("no needless retransmissions under random loss", () => {
  test("a hole resent in one recovery is not resent again when the next recovery begins", () => {
    // 1 % loss each way on a 10 ms path: recoveries follow each other closely, and a new one used
    // to resend holes whose retransmission was still on its way (the peer D-SACKed 17 of them here).
    const r = transfer({
      sizeAtoB: 8 << 20,
      sizeBtoA: 0,
      seed: 1,
      bufferSize: 4 << 20,
      congestionControl: "bbr",
      pacing: true,
      aToB: { loss: 0.01, delayMs: 5, rateBytesPerMs: 62500, queueBytes: 64 << 20 },
      bToA: { loss: 0.01, delayMs: 5 },
    });
    expect(r.intact).toBe(true);
    const s = r.layerA.stats;
    expect(r.aToB.dropped).toBeGreaterThan(40);
    expect(s.spuriousRetransmits).toBeLessThanOrEqual(3);
    expect(s.retransmits).toBeLessThanOrEqual(r.aToB.dropped + 3);
  });
});
