import { describe, expect, test } from "bun:test";
import { CSS_GROWTH_DIVISOR, CSS_ROUNDS, HyStart, N_RTT_SAMPLE } from "../../src/netstack/tcp/congestion/hystart.ts";
import { transfer } from "./tcp-transfer.ts";

/** One round: the ACK passes the round's end, then N_RTT_SAMPLE samples of `rtt`. */
function round(h: HyStart, n: number, rtt: number) {
  h.onAck(n * 1000, (n + 1) * 1000);
  for (let i = 0; i < N_RTT_SAMPLE; i++) h.onRttSample(rtt);
}

describe("HyStart++ (RFC 9406)", () => {
  test("steady RTT: slow start; RTT up by >= clamp(min/8, 4, 16) ms: CSS; CSS_ROUNDS rounds later: done", () => {
    const h = new HyStart();
    round(h, 0, 100);
    round(h, 1, 101);
    expect([h.inCss, h.growthDivisor]).toEqual([false, 1]);
    // 101 ms last round: threshold 12.6 ms. 112 is not enough; then 112 ms: 126 is.
    round(h, 2, 112);
    expect(h.inCss).toBe(false);
    round(h, 3, 126);
    expect([h.inCss, h.growthDivisor]).toEqual([true, CSS_GROWTH_DIVISOR]);
    for (let r = 0; r < CSS_ROUNDS - 1; r++) round(h, 4 + r, 126);
    expect(h.done).toBe(false);
    round(h, 4 + CSS_ROUNDS, 126);
    expect(h.done).toBe(true);
  });

  test("a false positive: a round whose minimum falls below the CSS baseline resumes slow start", () => {
    const h = new HyStart();
    round(h, 0, 20);
    round(h, 1, 30);
    expect(h.inCss).toBe(true);
    round(h, 2, 25);
    expect(h.inCss).toBe(false);
    expect(h.done).toBe(false);
  });

  test("too few samples in a round decide nothing; the thresholds are clamped to 4..16 ms", () => {
    const h = new HyStart();
    round(h, 0, 10);
    h.onAck(1000, 2000);
    for (let i = 0; i < N_RTT_SAMPLE - 1; i++) h.onRttSample(50);
    expect(h.inCss).toBe(false);
    // 10 ms / 8 < 4: the threshold is 4 ms.
    const g = new HyStart();
    round(g, 0, 10);
    round(g, 1, 13.9);
    expect(g.inCss).toBe(false);
    round(g, 2, 18);
    expect(g.inCss).toBe(true);
  });

  test("between two layers: a deep bottleneck queue ends slow start on delay, before any loss", () => {
    const r = transfer({
      sizeAtoB: 8 * 1024 * 1024,
      sizeBtoA: 0,
      seed: 31,
      bufferSize: 16 << 20,
      aToB: { delayMs: 20, rateBytesPerMs: 6_250, queueBytes: 64 << 20 },
      bToA: { delayMs: 20 },
    });
    expect(r.intact).toBe(true);
    const s = r.layerA.stats;
    expect([s.fastRecoveries, s.rtoExpirations, s.retransmits]).toEqual([0, 0, 0]);
    const d = (r.a.conn as unknown as { debug: { ssthresh: number; cwnd: number } }).debug;
    // Slow start ended (ssthresh set) without a loss, within a few BDPs (250 KB) after CSS; plain
    // slow start would go on until a loss or the 16 MiB buffer, with a queue to match.
    expect(d.ssthresh).toBeLessThan(10 * 250_000);
  });
});
