import { describe, expect, test } from "bun:test";
import { CUBIC_ALPHA, CUBIC_BETA, CUBIC_C, Cubic } from "../../src/netstack/tcp/congestion/cubic.ts";
import { NewReno } from "../../src/netstack/tcp/congestion/newreno.ts";
import type { CongestionControl } from "../../src/netstack/tcp/congestion/types.ts";

const MSS = 1000;

/** ACK-clocked congestion avoidance: one MSS acknowledged per cwnd/RTT, until `untilMs`. */
function ackClock(cc: CongestionControl, startMs: number, untilMs: number, rttMs: number): number {
  let t = startMs;
  while (t < untilMs) {
    cc.onAck(MSS, t, rttMs);
    t += rttMs / (cc.cwnd / MSS);
  }
  return t;
}

describe("congestion control arithmetic", () => {
  test("slow start: +min(acked, 8 MSS) per ACK from IW10, both algorithms", () => {
    for (const cc of [new NewReno(MSS), new Cubic(MSS)]) {
      expect(cc.cwnd).toBe(10 * MSS);
      for (let i = 0; i < 10; i++) cc.onAck(MSS, 0, 50);
      expect(cc.cwnd).toBe(20 * MSS);
      cc.onAck(5 * MSS, 0, 50);
      expect(cc.cwnd).toBe(25 * MSS);
      // A stretch ACK for 20 segments grows cwnd by 8.
      cc.onAck(20 * MSS, 0, 50);
      expect(cc.cwnd).toBe(33 * MSS);
    }
  });

  test("loss event: NewReno halves, CUBIC keeps 0.7 W_max; without SACK 3 MSS of inflation", () => {
    const nr = new NewReno(MSS);
    const cu = new Cubic(MSS);
    for (const cc of [nr, cu]) for (let i = 0; i < 10; i++) cc.onAck(MSS, 0, 50);
    nr.onEnterRecovery(20 * MSS, 0, true);
    cu.onEnterRecovery(20 * MSS, 0, true);
    expect([nr.cwnd, nr.ssthresh]).toEqual([10 * MSS, 10 * MSS]);
    expect([cu.cwnd, cu.ssthresh]).toEqual([14 * MSS, 14 * MSS]);
    expect(cu.wMax).toBe(20);
    // Fast convergence: a second loss below W_max lowers W_max to cwnd (1 + beta) / 2.
    cu.onExitRecovery(14 * MSS);
    cu.onEnterRecovery(14 * MSS, 0, true);
    expect(cu.wMax).toBeCloseTo((14 * (1 + CUBIC_BETA)) / 2, 10);
    expect(cu.cwnd).toBe(9800);
    // Without SACK: cwnd = ssthresh + 3 MSS, +1 MSS per further duplicate ACK.
    const cu2 = new Cubic(MSS);
    for (let i = 0; i < 10; i++) cu2.onAck(MSS, 0, 50);
    cu2.onEnterRecovery(20 * MSS, 0, false);
    expect(cu2.cwnd).toBe(17 * MSS);
    cu2.onDupAckInRecovery();
    expect(cu2.cwnd).toBe(18 * MSS);
    cu2.onExitRecovery(15 * MSS);
    expect(cu2.cwnd).toBe(14 * MSS);
    // Timeout: one segment, ssthresh = 0.7 cwnd; a repeated timeout keeps ssthresh.
    const cu3 = new Cubic(MSS);
    for (let i = 0; i < 10; i++) cu3.onAck(MSS, 0, 50);
    cu3.onTimeout(20 * MSS, 0);
    expect([cu3.cwnd, cu3.ssthresh]).toEqual([MSS, 14 * MSS]);
    cu3.onTimeout(MSS, 0);
    expect([cu3.cwnd, cu3.ssthresh]).toEqual([MSS, 14 * MSS]);
  });

  test("CUBIC: K = cbrt(W_max (1 - beta) / C); the window reaches W_max at t = K (100 ms RTT)", () => {
    const cc = new Cubic(MSS);
    while (cc.cwnd < 1000 * MSS) cc.onAck(2 * MSS, 0, 100);
    expect(cc.cwnd).toBe(1000 * MSS);
    cc.onEnterRecovery(1000 * MSS, 0, true);
    expect(cc.cwnd).toBe(700 * MSS);
    cc.onExitRecovery(700 * MSS);
    const start = 1000;
    cc.onAck(MSS, start, 100); // starts the epoch
    const K = Math.cbrt((1000 * (1 - CUBIC_BETA)) / CUBIC_C);
    expect(cc.k).toBeCloseTo(K, 3);
    expect(K).toBeCloseTo(9.0856, 3);
    expect(cc.wCubic(K)).toBe(1000);
    expect(cc.wCubic(0)).toBeCloseTo(700, 6);
    // Concave: at K/2 well on the way but below W_max (W_cubic(K/2) = 1000 - 0.4 (K/2)^3 = 962.5).
    ackClock(cc, start, start + (K / 2) * 1000, 100);
    const half = cc.cwnd / MSS;
    expect(half).toBeGreaterThan(955);
    expect(half).toBeLessThan(975);
    ackClock(cc, start + (K / 2) * 1000, start + K * 1000, 100);
    const atK = cc.cwnd / MSS;
    expect(Math.abs(atK - 1000)).toBeLessThan(2);
    // Convex beyond K: W_cubic(K + 3) = 1000 + 0.4 * 27 = 1010.8.
    ackClock(cc, start + K * 1000, start + (K + 3) * 1000, 100);
    expect(cc.cwnd / MSS).toBeGreaterThan(1010);
    expect(cc.cwnd / MSS).toBeLessThan(1014);
    console.log(`CUBIC W_max=1000 K=${K.toFixed(3)}s: cwnd at K/2 ${half.toFixed(1)}, at K ${atK.toFixed(1)}`);
  });

  test("CUBIC: Reno-friendly region at small windows and short RTTs (W_est wins)", () => {
    const cc = new Cubic(MSS);
    for (let i = 0; i < 10; i++) cc.onAck(MSS, 0, 10);
    cc.onEnterRecovery(20 * MSS, 0, true);
    cc.onExitRecovery(14 * MSS);
    ackClock(cc, 0, 1000, 10);
    // W_est: +alpha per RTT up to cwnd_prior = 20 (11.3 RTTs), then +1 per RTT for the other ~88.7.
    const expected = 20 + (100 - 6 / CUBIC_ALPHA);
    const w = cc.cwnd / MSS;
    expect(Math.abs(w - expected)).toBeLessThan(3);
    expect(w).toBeGreaterThan(cc.wCubic(1) + 50);
    // NewReno from the same loss grows one MSS per RTT from 10: about 110 after 100 RTTs.
    const nr = new NewReno(MSS);
    for (let i = 0; i < 10; i++) nr.onAck(MSS, 0, 10);
    nr.onEnterRecovery(20 * MSS, 0, true);
    nr.onExitRecovery(10 * MSS);
    ackClock(nr, 0, 1000, 10);
    console.log(`after 1 s at 10 ms RTT: CUBIC ${w.toFixed(1)} segments (W_est), NewReno ${nr.cwnd / MSS}`);
  });
});
