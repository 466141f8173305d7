import { describe, expect, test } from "bun:test";
import { TCP_ACK } from "../../src/wire/tcp.ts";
import { buildSegment, bytes, establish, harness, PEER, PEER_ISS, REMOTE } from "./tcp-harness.ts";
import { transfer } from "./tcp-transfer.ts";

const MiB = 1024 * 1024;
/** A long fat pipe: 50 ms each way, 100 Mbit/s bottleneck with a deep queue (no loss). */
const LFN = { delayMs: 50, rateBytesPerMs: 12_500, queueBytes: 64 * MiB };

function lfn(extra: { autotuneMaxBufferSize?: number; autotuneBudgetBytes?: number }) {
  return transfer({
    sizeAtoB: 4 * MiB,
    sizeBtoA: 0,
    seed: 11,
    bufferSize: 65535,
    aToB: LFN,
    bToA: { delayMs: 50 },
    ...extra,
  });
}

describe("TCP buffer autotuning", () => {
  test("a long fat pipe needs no flag: 4 MiB over 100 ms RTT at least 4x faster than with fixed 64 KiB", () => {
    const fixed = lfn({});
    const tuned = lfn({ autotuneMaxBufferSize: 8 * MiB });
    expect(fixed.intact).toBe(true);
    expect(tuned.intact).toBe(true);
    // 64 KiB per 100 ms: ~6.4 s; at 100 Mbit/s the transfer itself takes ~0.35 s plus slow start.
    expect(fixed.doneAt).toBeGreaterThan(6_000);
    expect(tuned.doneAt).toBeLessThan(fixed.doneAt / 4);
    console.log(`4 MiB over a 100 ms, 100 Mbit/s path: fixed 64 KiB ${fixed.doneAt} ms, autotuned ${tuned.doneAt} ms`);
    // The budget is returned when the flows end.
    expect([tuned.layerA.stats.autotuneBytes, tuned.layerB.stats.autotuneBytes]).toEqual([0, 0]);
    expect(tuned.layerB.stats.autotuneDenied).toBe(0);
  });

  test("the global budget bounds growth: with none left, flows keep their initial size and count refusals", () => {
    const r = lfn({ autotuneMaxBufferSize: 8 * MiB, autotuneBudgetBytes: 0 });
    expect(r.intact).toBe(true);
    expect(r.doneAt).toBeGreaterThan(6_000);
    expect(r.layerB.stats.autotuneDenied).toBeGreaterThan(0);
    expect(r.layerA.stats.autotuneDenied).toBeGreaterThan(0);
  });

  test("the receive window grows past 64 KiB once the app reads a window's worth per RTT (scale chosen for the cap)", () => {
    const h = harness({ bufferSize: 65535, autotuneMaxBufferSize: 4 * MiB, autotuneBudgetBytes: 5 * MiB });
    const { conn, iss, synAck } = establish(h, { mss: 1460, windowScale: 7, sackPermitted: true });
    // 4 MiB needs shift 7 (65535 << 7 >= 4 MiB).
    expect(synAck.options.windowScale).toBe(7);
    conn.onReadable = () => conn.consume(conn.peek().length);
    let seq = PEER_ISS + 1;
    let lastWindow = 0;
    for (let round = 0; round < 6; round++) {
      // One RTT (10 ms) per round: the peer fills the advertised window, the app reads it all.
      const window = round === 0 ? 65535 : lastWindow;
      for (let sent = 0; sent + 1400 <= window; sent += 1400) {
        h.layer.input(
          PEER,
          REMOTE,
          buildSegment(PEER, REMOTE, { seq, ack: iss + 1, flags: TCP_ACK, payload: bytes(1400, sent) }),
        );
        seq += 1400;
      }
      h.clock.endTurn();
      const acks = h.out.take();
      lastWindow = acks[acks.length - 1]!.window << 7;
      h.clock.advance(10);
    }
    expect(lastWindow).toBeGreaterThan(1 * MiB);
    expect(lastWindow).toBeLessThanOrEqual(4 * MiB);
    expect(h.layer.stats.autotuneBytes).toBeGreaterThan(MiB);
    conn.abort();
    expect(h.layer.stats.autotuneBytes).toBe(0);
  });

  test("a fixed --tcp-buffer-size never grows (window scale for the fixed size)", () => {
    const h = harness({ bufferSize: 65535 });
    const { conn, iss, synAck } = establish(h, { mss: 1460, windowScale: 7, sackPermitted: true });
    expect(synAck.options.windowScale).toBe(0);
    conn.onReadable = () => conn.consume(conn.peek().length);
    let seq = PEER_ISS + 1;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 40; i++) {
        h.layer.input(
          PEER,
          REMOTE,
          buildSegment(PEER, REMOTE, { seq, ack: iss + 1, flags: TCP_ACK, payload: bytes(1400) }),
        );
        seq += 1400;
      }
      h.clock.endTurn();
      for (const a of h.out.take()) expect(a.window).toBeLessThanOrEqual(65535);
      h.clock.advance(10);
    }
    expect(h.layer.stats.autotuneBytes).toBe(0);
  });
});
