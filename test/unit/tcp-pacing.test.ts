import { describe, expect, test } from "bun:test";
import {
  PACING_BURST_MS,
  PACING_FACTOR,
  PACING_QUANTUM_MS,
  PACING_SLOW_START_FACTOR,
  Pacer,
} from "../../src/netstack/tcp/pacing.ts";
import { TCP_ACK, TCP_SYN } from "../../src/wire/tcp.ts";
import { bytes, harness, PEER_ISS } from "./tcp-harness.ts";
import { transfer } from "./tcp-transfer.ts";

const MSS = 1000;

describe("Pacer (token bucket on the injected clock)", () => {
  test("rate = 2 x cwnd / SRTT in slow start, 1.2 x after; bursts bounded by PACING_BURST_MS of rate", () => {
    const p = new Pacer();
    // cwnd 100 segments, SRTT 100 ms: 2000 B/ms in slow start. A full bucket holds 4 ms: 8000 bytes.
    expect(PACING_BURST_MS).toBe(4);
    expect(p.check(8 * MSS, 1000, 100 * MSS, true, 100, MSS)).toBe(0);
    expect(p.rate).toBe((PACING_SLOW_START_FACTOR * 100 * MSS) / 100);
    p.spend(8 * MSS);
    // Empty now: the next segment waits, but never less than one quantum.
    expect(p.check(MSS, 1000, 100 * MSS, true, 100, MSS)).toBe(PACING_QUANTUM_MS);
    // 1 ms later 2000 bytes are back: two segments, not three.
    expect(p.check(MSS, 1001, 100 * MSS, true, 100, MSS)).toBe(0);
    p.spend(MSS);
    expect(p.check(MSS, 1001, 100 * MSS, true, 100, MSS)).toBe(0);
    p.spend(MSS);
    expect(p.check(MSS, 1001, 100 * MSS, true, 100, MSS)).toBeGreaterThan(0);
    // Congestion avoidance: 1.2 x cwnd / SRTT; an idle second does not buy a bigger burst (4.8 KB).
    expect(p.check(MSS, 2001, 100 * MSS, false, 100, MSS)).toBe(0);
    expect(p.rate).toBe((PACING_FACTOR * 100 * MSS) / 100);
    p.spend(4 * MSS);
    expect(p.check(MSS, 2001, 100 * MSS, false, 100, MSS)).toBeGreaterThan(0);
    // A sub-millisecond path: 4 ms of rate would be 4,000 segments; the bucket holds 64.
    const fast = new Pacer();
    expect(fast.check(64 * MSS, 0, 1000 * MSS, false, 1, MSS)).toBe(0);
    fast.spend(64 * MSS);
    expect(fast.check(MSS, 0, 1000 * MSS, false, 1, MSS)).toBeGreaterThan(0);
    expect(fast.check(64 * MSS, 10, 1000 * MSS, false, 1, MSS)).toBe(0);
    expect(fast.check(65 * MSS, 10, 1000 * MSS, false, 1, MSS)).toBeGreaterThan(0);
    // No RTT sample yet: unpaced.
    const q = new Pacer();
    expect(q.check(1e9, 0, 10 * MSS, true, -1, MSS)).toBe(0);
  });

  test("a connection spreads its window over the RTT instead of one burst", () => {
    const h = harness({ pacing: true, bufferSize: 1 << 20 });
    // Handshake with a 100 ms RTT so SRTT is known: SYN, SYN-ACK, then the ACK 100 ms later.
    h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 65535, mss: 1460, windowScale: 7, sackPermitted: true });
    const { conn } = h.connects[0]!;
    conn.accept();
    const iss = h.out.one().seq;
    h.clock.advance(100);
    h.peer({ seq: PEER_ISS + 1, ack: iss + 1, flags: TCP_ACK, window: 65535 });
    conn.write(bytes(200_000));
    // IW = 10 segments; cwnd 14200 B over 100 ms in slow start = 284 B/ms: a burst of 4, then ~1 per 5 ms.
    expect(h.out.take().length).toBe(4);
    const times: number[] = [];
    for (let t = 0; t < 100; t++) {
      h.clock.advance(1);
      for (const _ of h.out.take()) times.push(t);
    }
    // The other 6 segments of the initial window leave spread over the RTT, at most 1 per ms.
    expect(times.length).toBe(6);
    expect(new Set(times).size).toBe(6);
    expect(times[5]! - times[0]!).toBeGreaterThan(20);
  });
});

describe("pacing between two layers", () => {
  test("100 ms RTT, 100 Mbit/s, batched ACKs: smaller clumps, and sooner done", () => {
    const run = (pacing: boolean) => {
      const perMs = new Map<number, number>();
      const r = transfer({
        sizeAtoB: 4 * 1024 * 1024,
        sizeBtoA: 0,
        seed: 21,
        pacing,
        bufferSize: 8 << 20,
        aToB: {
          delayMs: 50,
          rateBytesPerMs: 12_500,
          queueBytes: 64 << 20,
          // The receiver sees the data in 10 ms batches (GRO-like) and ACKs each batch once.
          batchMs: 10,
          drop: (seg, _i, now) => {
            if (seg.payload.length > 0) perMs.set(Math.floor(now), (perMs.get(Math.floor(now)) ?? 0) + 1);
            return false;
          },
        },
        bToA: { delayMs: 50 },
      });
      expect(r.intact).toBe(true);
      return { r, maxPerMs: Math.max(...perMs.values()) };
    };
    const unpaced = run(false);
    const paced = run(true);
    console.log(
      `4 MiB, 100 ms RTT, 100 Mbit/s: most data segments in one ms unpaced ${unpaced.maxPerMs}, paced ${paced.maxPerMs}; ` +
        `done at ${unpaced.r.doneAt.toFixed(0)} / ${paced.r.doneAt.toFixed(0)} ms`,
    );
    // Unpaced, each stretch ACK releases ~10 ms of data at once; paced, at most PACING_BURST_MS of
    // rate at a time.
    expect(unpaced.maxPerMs).toBeGreaterThan(60);
    expect(paced.maxPerMs).toBeLessThan(unpaced.maxPerMs / 2);
    expect(paced.r.doneAt).toBeLessThan(unpaced.r.doneAt);
  });
});
