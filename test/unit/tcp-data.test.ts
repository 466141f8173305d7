import { describe, expect, test } from "bun:test";
import { TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN } from "../../src/wire/tcp.ts";
import { bytes, establish, harness, PEER_ISS } from "./tcp-harness.ts";

const D = PEER_ISS + 1; // first data sequence number of the peer
const NO_WS = { mss: 1460 };

describe("TCP data transfer", () => {
  test("data both ways with exact sequence and acknowledgment numbers", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss, rec } = establish(h, NO_WS);
    const data = bytes(100);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK | TCP_PSH, payload: data });
    const a = h.out.one();
    expect([a.flags, a.seq, a.ack, a.window]).toEqual([TCP_ACK, iss + 1, D + 100, 8092]);
    expect(rec.readable).toBe(1);
    expect(conn.receiveBuffered).toBe(100);
    expect([...conn.peek()]).toEqual([...data]);
    conn.consume(100);
    expect(conn.peek().length).toBe(0);
    expect(h.out.sent.length).toBe(0); // 100 bytes freed: below the SWS threshold, no update
    const out = bytes(300, 2);
    expect(conn.write(out)).toBe(300);
    const s = h.out.one();
    expect([s.flags, s.seq, s.ack, s.window]).toEqual([TCP_ACK | TCP_PSH, iss + 1, D + 100, 8092]);
    expect([...s.payload]).toEqual([...out]);
    expect(conn.sendBuffered).toBe(300);
    h.peer({ seq: D + 100, ack: iss + 301, flags: TCP_ACK });
    expect(conn.sendBuffered).toBe(0);
    expect(h.out.sent.length).toBe(0);
  });

  test("out-of-order segments are kept and reassembled; SACK blocks reported; ACK jumps", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss, rec } = establish(h, { mss: 1460, sackPermitted: true });
    const data = bytes(300, 5);
    h.peer({ seq: D + 100, ack: iss + 1, flags: TCP_ACK, payload: data.subarray(100, 200) });
    let a = h.out.one();
    expect([a.ack, a.window, a.options.sackCount]).toEqual([D, 8192, 1]);
    expect([...a.options.sackBlocks.subarray(0, 2)]).toEqual([D + 100, D + 200]);
    h.peer({ seq: D + 200, ack: iss + 1, flags: TCP_ACK, payload: data.subarray(200, 300) });
    a = h.out.one();
    expect([a.ack, a.options.sackCount]).toEqual([D, 1]);
    expect([...a.options.sackBlocks.subarray(0, 2)]).toEqual([D + 100, D + 300]);
    expect(rec.readable).toBe(0);
    expect(conn.peek().length).toBe(0);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, payload: data.subarray(0, 100) });
    a = h.out.one();
    expect([a.ack, a.window, a.options.sackCount]).toEqual([D + 300, 7892, 0]);
    expect(rec.readable).toBe(1);
    expect([...conn.peek()]).toEqual([...data]);
  });

  test("two holes: SACK lists the newest island first", () => {
    const h = harness({ bufferSize: 8192 });
    const { iss } = establish(h, { mss: 1460, sackPermitted: true });
    const p = bytes(10);
    h.peer({ seq: D + 100, ack: iss + 1, flags: TCP_ACK, payload: p });
    h.peer({ seq: D + 300, ack: iss + 1, flags: TCP_ACK, payload: p });
    h.peer({ seq: D + 110, ack: iss + 1, flags: TCP_ACK, payload: p });
    const acks = h.out.take();
    expect(acks.length).toBe(3);
    const last = acks[2]!;
    expect(last.options.sackCount).toBe(2);
    expect([...last.options.sackBlocks.subarray(0, 4)]).toEqual([D + 100, D + 120, D + 300, D + 310]);
  });

  test("duplicate and overlapping data is trimmed; retransmitted old data is re-ACKed", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = establish(h, NO_WS);
    const data = bytes(200, 9);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, payload: data.subarray(0, 100) });
    h.out.take();
    h.peer({ seq: D + 50, ack: iss + 1, flags: TCP_ACK, payload: data.subarray(50, 200) });
    expect(h.out.one().ack).toBe(D + 200);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, payload: data.subarray(0, 100) });
    const dup = h.out.one();
    expect([dup.seq, dup.ack]).toEqual([iss + 1, D + 200]);
    expect([...conn.peek()]).toEqual([...data]);
  });

  test("window scaling: our shift fits the buffer, the peer's shift applies to its windows", () => {
    const h = harness({ bufferSize: 1 << 20 });
    const { conn, iss, synAck } = establish(h, { mss: 1460, windowScale: 7, window: 100 });
    expect([synAck.window, synAck.options.windowScale]).toEqual([65535, 5]);
    const d = (conn as unknown as { debug: Record<string, number> }).debug;
    expect(d.sndWnd).toBe(12800);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, window: 100, payload: bytes(1000) });
    const a = h.out.one();
    expect(a.window).toBe(Math.floor(((1 << 20) - 1000) / 32));
    // The peer's scaled window limits what we send: 100 << 7 = 12800 bytes, in full segments only
    // (the 20-byte remainder waits: sender SWS avoidance, RFC 9293 §3.8.6.2.1).
    expect(conn.write(bytes(20000))).toBe(20000);
    const segs = h.out.take();
    expect(segs.map((s) => s.payload.length)).toEqual([1420, 1420, 1420, 1420, 1420, 1420, 1420, 1420, 1420]);
    h.peer({ seq: D + 1000, ack: iss + 1 + 1420, flags: TCP_ACK, window: 100 });
    expect(h.out.take().map((s) => [s.seq - iss, s.payload.length])).toEqual([[12781, 1420]]);
  });

  test("the advertised window shrinks as data sits unconsumed and reopens with a window update", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = establish(h, NO_WS);
    const windows: number[] = [];
    for (let i = 0; i < 3; i++) {
      h.peer({ seq: D + 2000 * i, ack: iss + 1, flags: TCP_ACK, payload: bytes(2000, i) });
      windows.push(h.out.one().window);
    }
    expect(windows).toEqual([6192, 4192, 2192]);
    conn.consume(1000);
    h.clock.endTurn();
    expect(h.out.sent.length).toBe(0); // 1000 < min(MSS, buffer/2): no update (SWS, RFC 9293 §3.8.6.2.2)
    conn.consume(1000);
    // The peer still sees 2192 bytes of window: the update waits for the end of the turn.
    expect(h.out.sent.length).toBe(0);
    h.clock.endTurn();
    const upd = h.out.one();
    expect([upd.flags, upd.seq, upd.ack, upd.window]).toEqual([TCP_ACK, iss + 1, D + 6000, 4192]);
    conn.consume(3000);
    conn.consume(1000);
    h.clock.endTurn();
    expect(h.out.one().window).toBe(8192);
  });

  test("zero receive window: probes are answered with window 0 and the window reopens", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = establish(h, NO_WS);
    for (let i = 0; i < 4; i++) h.peer({ seq: D + 2048 * i, ack: iss + 1, flags: TCP_ACK, payload: bytes(2048, i) });
    expect(h.out.take().map((s) => s.window)).toEqual([6144, 4096, 2048, 0]);
    // A window probe: one byte at RCV.NXT. Not accepted (buffer full), but acknowledged.
    h.peer({ seq: D + 8192, ack: iss + 1, flags: TCP_ACK, payload: new Uint8Array([1]) });
    const a = h.out.one();
    expect([a.ack, a.window]).toEqual([D + 8192, 0]);
    expect(conn.receiveBuffered).toBe(8192);
    conn.consume(1000);
    expect(h.out.sent.length).toBe(0);
    conn.consume(500);
    expect(h.out.one().window).toBe(1500);
    h.peer({ seq: D + 8192, ack: iss + 1, flags: TCP_ACK, payload: new Uint8Array([1, 2]) });
    expect(h.out.one()).toMatchObject({ ack: D + 8194, window: 1498 });
  });

  test("peer's zero window: we probe with one byte, backing off, and resume when it opens", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = establish(h, { mss: 1460, window: 1000 });
    expect(conn.write(bytes(3000))).toBe(3000);
    const first = h.out.one();
    expect([first.seq, first.payload.length]).toEqual([iss + 1, 1000]);
    h.peer({ seq: D, ack: iss + 1001, flags: TCP_ACK, window: 0 });
    expect(h.out.sent.length).toBe(0);
    // RTO is 200 ms (RTT samples of 0 ms, floor 200): probes at +200, then +400, +800.
    const probes: [number, number, number][] = [];
    for (let t = 0; t < 1400; t++) {
      h.clock.advance(1);
      for (const s of h.out.take()) {
        probes.push([h.clock.now(), s.seq - iss, s.payload.length]);
        h.peer({ seq: D, ack: iss + 1001, flags: TCP_ACK, window: 0 });
      }
    }
    expect(probes).toEqual([
      [200, 1001, 1],
      [600, 1001, 1],
      [1400, 1001, 1],
    ]);
    expect(h.out.sent.length).toBe(0);
    expect(conn.state).toBe("ESTABLISHED");
    h.peer({ seq: D, ack: iss + 1001, flags: TCP_ACK, window: 4000 });
    const segs = h.out.take();
    expect(segs.map((s) => [s.seq - iss, s.payload.length])).toEqual([
      [1002, 1420],
      [2422, 579],
    ]);
  });

  test("write() is bounded by the buffer; onWritable fires when an ACK frees space", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss, rec } = establish(h, NO_WS);
    expect(conn.write(bytes(10000))).toBe(8192);
    expect(conn.write(bytes(10))).toBe(0);
    expect(conn.sendBuffered).toBe(8192);
    const segs = h.out.take();
    expect(segs.map((s) => s.payload.length)).toEqual([1420, 1420, 1420, 1420, 1420, 1092]);
    expect(segs.map((s) => s.seq - iss)).toEqual([1, 1421, 2841, 4261, 5681, 7101]);
    expect(segs.map((s) => (s.flags & TCP_PSH) !== 0)).toEqual([false, false, false, false, false, true]);
    expect(rec.writable).toBe(0);
    h.peer({ seq: D, ack: iss + 1421, flags: TCP_ACK });
    expect(rec.writable).toBe(1);
    expect(conn.sendBuffered).toBe(8192 - 1420);
    expect(conn.write(bytes(5000))).toBe(1420);
    h.peer({ seq: D, ack: iss + 2841, flags: TCP_ACK });
    expect(rec.writable).toBe(2);
  });

  test("RST: exact sequence resets, in-window gets a challenge ACK, out-of-window is ignored (RFC 5961)", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss, rec } = establish(h, NO_WS);
    h.peer({ seq: D + 100, flags: TCP_RST });
    const ch = h.out.one();
    expect([ch.flags, ch.seq, ch.ack]).toEqual([TCP_ACK, iss + 1, D]);
    h.peer({ seq: D + 100000, flags: TCP_RST });
    expect(h.out.sent.length).toBe(0);
    expect(conn.state).toBe("ESTABLISHED");
    // A SYN on an established connection: challenge ACK too (RFC 5961 §4).
    h.peer({ seq: D + 5, flags: TCP_SYN });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 1, ack: D });
    expect(conn.state).toBe("ESTABLISHED");
    h.peer({ seq: D, flags: TCP_RST });
    expect(rec.closed).toEqual(["reset"]);
    expect(conn.state).toBe("CLOSED");
    expect(h.layer.liveConnections).toBe(0);
    expect(h.layer.stats.drops["tcp-rst-challenged"]).toBe(1);
    expect(h.layer.stats.drops["tcp-rst-out-of-window"]).toBe(1);
  });

  test("an ACK for data never sent is answered with an ACK and dropped; abort sends RST", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss, rec } = establish(h, NO_WS);
    h.peer({ seq: D, ack: iss + 50, flags: TCP_ACK, payload: bytes(10) });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 1, ack: D });
    expect(conn.receiveBuffered).toBe(0);
    conn.write(bytes(10));
    h.out.take();
    conn.abort();
    const rst = h.out.one();
    expect([rst.flags, rst.seq, rst.ack]).toEqual([TCP_RST | TCP_ACK, iss + 11, D]);
    expect(rec.closed).toEqual(["aborted"]);
    expect(h.layer.liveConnections).toBe(0);
    expect(conn.write(bytes(1))).toBe(0);
  });
});
