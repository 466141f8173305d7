import { describe, expect, test } from "bun:test";
import { TCP_ACK, TCP_RST, TCP_SYN } from "../../src/wire/tcp.ts";
import { bytes, type Captured, establish, harness, PEER_ISS } from "./tcp-harness.ts";
import { transfer } from "./tcp-transfer.ts";

/** Payload per segment: MSS 1420 minus the 12 bytes of timestamps. */
const SEG = 1408;

/** Drop the first transmission of A's data segments number `which` (0 = first data segment). */
function dropFirstTx(which: number[]) {
  let iss = -1;
  const seen = new Set<number>();
  return (s: Captured) => {
    if (s.flags & TCP_SYN) iss = s.seq;
    if (s.payload.length === 0 || iss < 0) return false;
    const idx = Math.round(((s.seq - iss - 1) >>> 0) / SEG);
    if (seen.has(idx)) return false;
    seen.add(idx);
    return which.includes(idx);
  };
}

function oneWay(drop: number[], segments: number, sack: boolean) {
  const r = transfer({
    sizeAtoB: segments * SEG,
    sizeBtoA: 0,
    seed: 5,
    sack,
    aToB: { delayMs: 10, drop: dropFirstTx(drop) },
    bToA: { delayMs: 10 },
  });
  expect(r.intact).toBe(true);
  expect([r.a.closed, r.b.closed]).toEqual([["closed"], ["closed"]]);
  return { r, s: r.layerA.stats };
}

describe("TCP loss recovery between two layers (scripted loss)", () => {
  for (const sack of [true, false]) {
    const mode = sack ? "SACK" : "NewReno";
    test(`${mode}: loss of the first segment is repaired by fast retransmit, no RTO`, () => {
      const { s } = oneWay([0], 40, sack);
      expect([s.fastRecoveries, s.rtoExpirations, s.retransmits]).toEqual([1, 0, 1]);
    });

    test(`${mode}: loss of several segments of one window: one recovery, no RTO`, () => {
      const { r, s } = oneWay([30, 32, 34, 35], 120, sack);
      expect(s.fastRecoveries).toBe(1);
      expect(s.rtoExpirations).toBe(0);
      // SACK resends exactly the holes; NewReno also finds them one partial ACK at a time.
      expect(s.retransmits).toBe(4);
      console.log(`${mode}: 4 losses in one window, done at ${r.doneAt} ms`);
    });

    test(`${mode}: loss of the last segment (it carries the FIN): ${sack ? "the tail loss probe resends it" : "needs the RTO"}`, () => {
      const { s } = oneWay([39], 40, sack);
      // With SACK, RACK-TLP (RFC 8985 §7) probes after 2 SRTT; without it only the RTO is left.
      expect(s.rtoExpirations).toBe(sack ? 0 : 1);
      expect(s.tlpProbes).toBe(sack ? 1 : 0);
      expect(s.retransmits).toBe(1);
      if (!sack) expect(s.fastRecoveries).toBe(0);
    });

    test(`${mode}: reordering depth <= 2 causes no spurious fast retransmit`, () => {
      let n = 0;
      const r = transfer({
        sizeAtoB: 300 * SEG,
        sizeBtoA: 0,
        seed: 9,
        sack,
        aToB: { delayMs: 10, hold: (c) => (c.payload.length > 0 && ++n % 7 === 0 ? 1 + (n % 2) : 0) },
        bToA: { delayMs: 10 },
      });
      expect(r.intact).toBe(true);
      expect(r.aToB.reordered).toBeGreaterThan(30);
      const s = r.layerA.stats;
      if (!sack) expect([s.fastRecoveries, s.retransmits]).toEqual([0, 0]);
      else {
        // RACK (RFC 8985) judges by time: a segment held mid-flight arrives within min_RTT/4 and is
        // not resent; one held at a flight's tail waits for the next flight (up to 20 ms on this
        // 20 ms path) and is resent unless D-SACKs widen the window (the peer here sends none).
        expect(s.rtoExpirations).toBe(0);
        expect(s.retransmits).toBeLessThanOrEqual(10);
      }
    });
  }

  test("SACK: the hole and a later loss in the same window are both resent before any RTO", () => {
    // Two adjacent losses and a third later in the same window: all holes are resent by SACK.
    const { s } = oneWay([10, 11, 25], 60, true);
    expect([s.fastRecoveries, s.rtoExpirations, s.retransmits]).toEqual([1, 0, 3]);
  });

  test("SACK: duplicated ACKs do not count as duplicate ACKs (no spurious recovery)", () => {
    const r = transfer({
      sizeAtoB: 300 * SEG,
      sizeBtoA: 0,
      seed: 3,
      // A bottleneck spaces the data out, so B acknowledges segment by segment (not once per burst).
      aToB: { delayMs: 10, rateBytesPerMs: 1000, queueBytes: 1 << 30 },
      bToA: { delayMs: 10, duplicate: 0.3 },
    });
    expect(r.intact).toBe(true);
    expect(r.bToA.duplicated).toBeGreaterThan(20);
    expect([r.layerA.stats.fastRecoveries, r.layerA.stats.retransmits]).toEqual([0, 0]);
  });
});

describe("TCP SACK sender against a scripted peer", () => {
  test("one ACK with enough SACKed above SND.UNA triggers retransmission (IsLost), then NextSeg", () => {
    const h = harness();
    const { conn, iss } = establish(h, { mss: 1460, windowScale: 7, sackPermitted: true });
    const mss = 1420;
    conn.write(bytes(10 * mss));
    expect(h.out.take().length).toBe(10);
    const seg = (i: number) => (iss + 1 + i * mss) >>> 0;
    // Segment 0 lost; 1-3 arrived: a single ACK carrying the SACK block (3 segments above the hole).
    h.peer({ seq: PEER_ISS + 1, ack: seg(0), flags: TCP_ACK, sack: [[seg(1), seg(4)]] });
    let out = h.out.take();
    expect(out.map((c) => [c.seq, c.payload.length])).toEqual([[seg(0), mss]]);
    expect(h.layer.stats.fastRecoveries).toBe(1);
    // Segment 4 lost too; 5-7 SACKed: the next lost hole goes out as the pipe drains.
    h.peer({
      seq: PEER_ISS + 1,
      ack: seg(0),
      flags: TCP_ACK,
      sack: [
        [seg(5), seg(8)],
        [seg(1), seg(4)],
      ],
    });
    out = h.out.take();
    expect(out.map((c) => c.seq)).toContain(seg(4));
    expect(out.map((c) => c.seq)).not.toContain(seg(1));
    // Everything up to segment 8 arrives: recovery ends, no RTO ever fired.
    h.peer({ seq: PEER_ISS + 1, ack: seg(10), flags: TCP_ACK });
    expect(h.layer.stats.rtoExpirations).toBe(0);
    expect((conn as unknown as { debug: { inRecovery: boolean } }).debug.inRecovery).toBe(false);
  });

  test("RTO with SACK: exponential backoff, and go-back-N skips SACKed data", () => {
    const h = harness();
    const { conn, iss } = establish(h, { mss: 1460, windowScale: 7, sackPermitted: true });
    const mss = 1420;
    conn.write(bytes(4 * mss));
    expect(h.out.take().length).toBe(4);
    const seg = (i: number) => (iss + 1 + i * mss) >>> 0;
    // Silence (a SACK of 1-2 would make RACK resend 0 at once: with an RTT of 0 no reordering
    // window is left).
    const start = h.clock.now();
    const times: number[] = [];
    const seqs: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.clock.runUntil(h.clock.nextDeadline());
      for (const c of h.out.take()) {
        times.push(h.clock.now() - start);
        seqs.push(c.seq);
      }
    }
    // First the tail loss probe (RFC 8985 §7): after PTO = max(2 SRTT, 10 ms) the last segment
    // again. Then the RTO: SRTT 0 + 200 ms, doubled per expiry, resending from SND.UNA.
    expect(times).toEqual([10, 210, 610, 1410]);
    expect(seqs).toEqual([seg(3), seg(0), seg(0), seg(0)]);
    expect(h.layer.stats.tlpProbes).toBe(1);
    expect(h.layer.stats.rtoExpirations).toBe(3);
    // The peer now ACKs segment 0: cwnd has room for 2 segments; the resend skips SACKed 1-2.
    h.peer({ seq: PEER_ISS + 1, ack: seg(1), flags: TCP_ACK, sack: [[seg(1), seg(3)]] });
    const after = h.out.take().map((c) => c.seq);
    expect(after).not.toContain(seg(1));
  });
});

describe("TCP layer robustness", () => {
  test("FIN-WAIT-2 times out after 60 s without the peer's FIN (RST, onClosed timeout)", () => {
    const h = harness();
    const { conn, iss, rec } = establish(h);
    conn.shutdown();
    const fin = h.out.one();
    h.peer({ seq: PEER_ISS + 1, ack: fin.seq + 1, flags: TCP_ACK });
    expect(conn.state).toBe("FIN-WAIT-2");
    h.clock.advance(30_000);
    // Data from the peer re-arms the timer (a half-closed transfer still moving).
    h.peer({ seq: PEER_ISS + 1, ack: iss + 2, flags: TCP_ACK, payload: bytes(10) });
    conn.consume(10);
    h.out.take();
    h.clock.advance(59_000);
    expect(conn.state).toBe("FIN-WAIT-2");
    h.clock.advance(1_000);
    expect(rec.closed).toEqual(["timeout"]);
    expect(h.out.one().flags & TCP_RST).toBeTruthy();
    expect(h.layer.stats.finWait2Timeouts).toBe(1);
    expect(h.layer.liveConnections).toBe(0);
  });

  test("maxConnections: excess SYNs get a RST and are counted", () => {
    const h = harness({ maxConnections: 2 });
    for (let i = 0; i < 3; i++) h.peer({ seq: 5000, flags: TCP_SYN, srcPort: 41000 + i });
    expect(h.layer.liveConnections).toBe(2);
    expect(h.connects.length).toBe(2);
    const rst = h.out.one();
    expect(rst.flags).toBe(TCP_RST | TCP_ACK);
    expect(rst.dstPort).toBe(41002);
    expect(h.layer.stats.connectionsRejected).toBe(1);
  });

  test("buffered-bytes counters: send, receive, out-of-order; released on close", () => {
    const h = harness();
    const { conn } = establish(h);
    const st = h.layer.stats;
    conn.write(bytes(5000));
    expect(st.sendBufferedBytes).toBe(5000);
    const D = PEER_ISS + 1;
    const una = (conn as unknown as { debug: { sndUna: number } }).debug.sndUna;
    h.peer({ seq: D + 100, ack: una, flags: TCP_ACK, payload: bytes(100) });
    expect(st.outOfOrderBytes).toBe(100);
    h.peer({ seq: D, ack: una, flags: TCP_ACK, payload: bytes(50) });
    expect([st.receiveBufferedBytes, st.outOfOrderBytes]).toEqual([50, 100]);
    h.peer({ seq: D + 50, ack: una, flags: TCP_ACK, payload: bytes(50) });
    expect([st.receiveBufferedBytes, st.outOfOrderBytes]).toEqual([200, 0]);
    expect([...h.layer.flows()].map((f) => [f.sendBuffered, f.receiveBuffered])).toEqual([[5000, 200]]);
    conn.consume(120);
    expect(st.receiveBufferedBytes).toBe(80);
    conn.abort();
    expect([st.sendBufferedBytes, st.receiveBufferedBytes, st.outOfOrderBytes]).toEqual([0, 0, 0]);
  });
});
