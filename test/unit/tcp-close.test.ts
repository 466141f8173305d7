import { describe, expect, test } from "bun:test";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from "../../src/wire/tcp.ts";
import { bytes, establish, harness, PEER_ISS } from "./tcp-harness.ts";

const D = PEER_ISS + 1;
const NO_WS = { mss: 1460 };

/** The states of the layer's flows: a retired connection's TIME-WAIT lives on in the layer's table. */
const flowStates = (h: ReturnType<typeof harness>) => [...h.layer.flows()].map((f) => f.state);

describe("TCP close", () => {
  test("peer closes first: CLOSE-WAIT, readEof, we keep sending, then LAST-ACK -> CLOSED", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss, rec } = establish(h, NO_WS);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK | TCP_FIN, payload: bytes(5) });
    const a = h.out.one();
    expect([a.flags, a.seq, a.ack]).toEqual([TCP_ACK, iss + 1, D + 6]);
    expect(conn.state).toBe("CLOSE-WAIT");
    expect(rec.readable).toBe(1);
    expect(conn.readEof).toBe(false); // 5 bytes still unread
    conn.consume(5);
    expect(conn.readEof).toBe(true);
    expect(h.out.sent.length).toBe(0); // no window updates after the peer's FIN
    // Half-close: we keep sending.
    expect(conn.write(bytes(10))).toBe(10);
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK | TCP_PSH, seq: iss + 1, ack: D + 6 });
    conn.shutdown();
    expect(conn.state).toBe("LAST-ACK");
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK | TCP_FIN, seq: iss + 11, ack: D + 6 });
    expect(conn.write(bytes(1))).toBe(0);
    h.peer({ seq: D + 6, ack: iss + 11, flags: TCP_ACK });
    expect(conn.state).toBe("LAST-ACK");
    expect(rec.closed).toEqual([]);
    h.peer({ seq: D + 6, ack: iss + 12, flags: TCP_ACK });
    expect(conn.state).toBe("CLOSED");
    expect(rec.closed).toEqual(["closed"]);
    expect(h.layer.liveConnections).toBe(0);
    expect(h.out.sent.length).toBe(0);
  });

  test("write(data, fin): the FIN rides in the data segment; a partial write queues no FIN", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = establish(h, NO_WS);
    expect(conn.write(bytes(100), true)).toBe(100);
    expect(conn.state).toBe("FIN-WAIT-1");
    const seg = h.out.one();
    expect(seg).toMatchObject({ flags: TCP_ACK | TCP_PSH | TCP_FIN, seq: iss + 1, ack: D });
    expect(seg.payload.length).toBe(100);
    expect(conn.write(bytes(1))).toBe(0);
    const h2 = harness({ bufferSize: 8192 });
    const e2 = establish(h2, NO_WS);
    expect(e2.conn.write(bytes(10_000), true)).toBe(8192);
    expect(e2.conn.state).toBe("ESTABLISHED");
    for (const s of h2.out.take()) expect(s.flags & TCP_FIN).toBe(0);
  });

  test("we close first: FIN after queued data, FIN-WAIT-1/2, we keep receiving, TIME-WAIT expires after 10 s", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss, rec } = establish(h, NO_WS);
    conn.write(bytes(100));
    h.out.take();
    conn.shutdown();
    expect(conn.state).toBe("FIN-WAIT-1");
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK | TCP_FIN, seq: iss + 101, ack: D });
    h.peer({ seq: D, ack: iss + 102, flags: TCP_ACK });
    expect(conn.state).toBe("FIN-WAIT-2");
    expect(conn.sendBuffered).toBe(0);
    // Half-close the other way: the peer keeps sending, we keep receiving and acknowledging.
    h.peer({ seq: D, ack: iss + 102, flags: TCP_ACK, payload: bytes(50) });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 102, ack: D + 50, window: 8142 });
    expect(rec.readable).toBe(1);
    h.peer({ seq: D + 50, ack: iss + 102, flags: TCP_ACK | TCP_FIN });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 102, ack: D + 51 });
    expect(conn.state).toBe("TIME-WAIT");
    expect(rec.readable).toBe(2);
    // onClosed waits for the app to drain the receive buffer.
    expect(rec.closed).toEqual([]);
    expect(conn.readEof).toBe(false);
    conn.consume(50);
    expect(conn.readEof).toBe(true);
    expect(rec.closed).toEqual(["closed"]);
    expect(h.layer.liveConnections).toBe(1);
    // A retransmitted FIN in TIME-WAIT is acknowledged and restarts the 2*MSL timer.
    h.clock.advance(5000);
    h.peer({ seq: D + 50, ack: iss + 102, flags: TCP_ACK | TCP_FIN });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 102, ack: D + 51 });
    h.clock.advance(9999);
    expect(h.layer.liveConnections).toBe(1);
    h.clock.advance(1);
    expect(h.layer.liveConnections).toBe(0);
    expect(conn.state).toBe("CLOSED");
    expect(rec.closed).toEqual(["closed"]);
    expect(h.out.sent.length).toBe(0);
  });

  /** We close first, the peer's FIN completes it: TIME-WAIT with the peer at D + 1. */
  function timeWait(h: ReturnType<typeof harness>) {
    const { conn, iss } = establish(h, NO_WS);
    conn.shutdown();
    h.out.take();
    h.peer({ seq: D, ack: iss + 2, flags: TCP_ACK | TCP_FIN });
    h.out.take();
    // The app heard onClosed: the connection is released, its 4-tuple waits in the layer's table.
    expect(conn.state).toBe("CLOSED");
    expect(flowStates(h)).toEqual(["TIME-WAIT"]);
    expect(h.layer.stats.timeWaitFlows).toBe(1);
    return { conn, iss };
  }

  test("a new SYN past the old incarnation reopens a TIME-WAIT 4-tuple at once (no challenge ACK)", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn: old, iss: oldIss } = timeWait(h);
    h.peer({ seq: D + 100_000, flags: TCP_SYN, window: 65535, mss: 1460 });
    expect(old.state).toBe("CLOSED");
    expect(h.connects.length).toBe(2);
    expect(h.out.sent.length).toBe(0);
    expect(h.layer.stats.timeWaitReopens).toBe(1);
    const { conn } = h.connects[1]!;
    conn.accept();
    const synAck = h.out.one();
    expect(synAck.flags).toBe(TCP_SYN | TCP_ACK);
    expect(synAck.ack).toBe(D + 100_001);
    // The new ISS is above everything the old incarnation sent (RFC 1122 §4.2.2.13).
    expect(synAck.seq).toBe((oldIss + 2 + 65535 + 2) >>> 0);
    h.peer({ seq: D + 100_001, ack: synAck.seq + 1, flags: TCP_ACK, payload: bytes(3) });
    expect(conn.state).toBe("ESTABLISHED");
    expect(Array.from(conn.peek())).toEqual(Array.from(bytes(3)));
    expect(h.layer.liveConnections).toBe(1);
  });

  test("a SYN at or before the old incarnation's sequence numbers in TIME-WAIT gets the challenge ACK", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = timeWait(h);
    h.peer({ seq: D - 5, flags: TCP_SYN, window: 65535, mss: 1460 });
    expect(conn.state).toBe("CLOSED");
    expect(flowStates(h)).toEqual(["TIME-WAIT"]);
    expect(h.connects.length).toBe(1);
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
    expect(h.layer.stats.timeWaitReopens).toBe(0);
  });

  test("FIN piggybacks on the last data segment when shutdown() comes before sending", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = establish(h, { mss: 1460, window: 0 });
    conn.write(bytes(30));
    conn.shutdown();
    expect(h.out.sent.length).toBe(0); // zero window: nothing yet
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, window: 1000 });
    const s = h.out.one();
    expect([s.flags, s.seq, s.payload.length]).toEqual([TCP_ACK | TCP_PSH | TCP_FIN, iss + 1, 30]);
  });

  test("simultaneous close: FIN-WAIT-1 -> CLOSING -> TIME-WAIT", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss, rec } = establish(h, NO_WS);
    conn.shutdown();
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK | TCP_FIN, seq: iss + 1, ack: D });
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK | TCP_FIN });
    expect(conn.state).toBe("CLOSING");
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
    h.peer({ seq: D + 1, ack: iss + 2, flags: TCP_ACK });
    expect(conn.state).toBe("CLOSED");
    expect(flowStates(h)).toEqual(["TIME-WAIT"]);
    expect(rec.closed).toEqual(["closed"]);
    h.clock.advance(10_000);
    expect(h.layer.liveConnections).toBe(0);
  });

  test("FIN-WAIT-1 straight to TIME-WAIT when the peer's FIN acknowledges ours", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = establish(h, NO_WS);
    conn.shutdown();
    h.out.take();
    h.peer({ seq: D, ack: iss + 2, flags: TCP_ACK | TCP_FIN });
    expect(flowStates(h)).toEqual(["TIME-WAIT"]);
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
  });

  test("a FIN beyond a hole is processed once the hole fills", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = establish(h, NO_WS);
    h.peer({ seq: D + 10, ack: iss + 1, flags: TCP_ACK | TCP_FIN, payload: bytes(10, 2) });
    expect(h.out.one().ack).toBe(D);
    expect(conn.state).toBe("ESTABLISHED");
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, payload: bytes(10, 1) });
    expect(h.out.one().ack).toBe(D + 21);
    expect(conn.state).toBe("CLOSE-WAIT");
    expect(conn.receiveBuffered).toBe(20);
  });

  test("our FIN is retransmitted on timeout in LAST-ACK", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss } = establish(h, NO_WS);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK | TCP_FIN });
    h.out.take();
    conn.shutdown();
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK | TCP_FIN, seq: iss + 1 });
    h.clock.advance(200);
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK | TCP_FIN, seq: iss + 1, ack: D + 1 });
    h.peer({ seq: D + 1, ack: iss + 2, flags: TCP_ACK });
    expect(conn.state).toBe("CLOSED");
  });

  test("layer.close() aborts every connection with a RST", () => {
    const h = harness({ bufferSize: 8192 });
    const { conn, iss, rec } = establish(h, NO_WS);
    h.layer.close();
    expect(h.out.one()).toMatchObject({ flags: 0x14, seq: iss + 1, ack: D });
    expect(rec.closed).toEqual(["aborted"]);
    expect(conn.state).toBe("CLOSED");
    expect(h.layer.liveConnections).toBe(0);
    expect(h.clock.nextDeadline()).toBe(-1);
  });
});
