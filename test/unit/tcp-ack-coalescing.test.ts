import { describe, expect, test } from "bun:test";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../../src/wire/tcp.ts";
import {
  buildSegment,
  bytes,
  describe as describeSeg,
  establish,
  harness,
  PEER,
  PEER_ISS,
  REMOTE,
} from "./tcp-harness.ts";

const D = PEER_ISS + 1;
const SACK = { mss: 1460, sackPermitted: true };
const SEG = 1000;

/** Harness + established flow; `send(i)` delivers the peer's i-th 1000-byte segment without ending the turn. */
function flow(bufferSize = 65536) {
  const h = harness({ bufferSize });
  const e = establish(h, SACK);
  const send = (i: number, flags = TCP_ACK) =>
    h.layer.input(
      PEER,
      REMOTE,
      buildSegment(PEER, REMOTE, { seq: D + i * SEG, ack: e.iss + 1, flags, payload: bytes(SEG, i) }),
    );
  return { h, ...e, send };
}

describe("TCP receive path: one ACK and one readable event per flow per turn", () => {
  test("ten in-order segments in one turn: no ACK until the turn ends, then one ACK for all, one onReadable", () => {
    const { h, rec, send, conn } = flow();
    for (let i = 0; i < 10; i++) send(i);
    expect(h.out.sent.length).toBe(0);
    expect(rec.readable).toBe(0);
    h.clock.endTurn();
    const a = h.out.one();
    expect([a.flags, a.ack]).toEqual([TCP_ACK, D + 10 * SEG]);
    expect(rec.readable).toBe(1);
    expect(conn.receiveBuffered).toBe(10 * SEG);
    expect(h.layer.stats.segmentsOut).toBe(2); // SYN-ACK + this ACK
  });

  test("the app consuming in onReadable folds the window update into the turn's single ACK", () => {
    const { h, conn, send } = flow(8192);
    conn.onReadable = () => conn.consume(conn.peek().length);
    for (let i = 0; i < 6; i++) send(i);
    h.clock.endTurn();
    const a = h.out.one();
    expect([a.ack, a.window]).toEqual([D + 6 * SEG, 8192]);
  });

  test("an out-of-order segment is ACKed at once with its SACK block; filling the hole too", () => {
    const { h, send, rec } = flow();
    send(0);
    expect(h.out.sent.length).toBe(0);
    send(2);
    const dup = h.out.one();
    expect(dup.ack).toBe(D + SEG);
    expect(dup.options.sackCount).toBe(1);
    expect([dup.options.sackBlocks[0], dup.options.sackBlocks[1]]).toEqual([D + 2 * SEG, D + 3 * SEG]);
    send(1);
    const filled = h.out.one();
    expect([filled.ack, filled.options.sackCount]).toEqual([D + 3 * SEG, 0]);
    // Nothing is left owed for the end of the turn; the app hears once.
    h.clock.endTurn();
    expect(h.out.sent.length).toBe(0);
    expect(rec.readable).toBe(1);
  });

  test("the stream flowing on beyond a hole: the island's first segment is ACKed at once, the rest once per turn", () => {
    const { h, send } = flow();
    send(0);
    send(2); // segment 1 lost: a new island
    const dup = h.out.one();
    expect([dup.ack, dup.options.sackBlocks[0], dup.options.sackBlocks[1]]).toEqual([
      D + SEG,
      D + 2 * SEG,
      D + 3 * SEG,
    ]);
    for (let i = 3; i < 10; i++) send(i);
    expect(h.out.sent.length).toBe(0);
    h.clock.endTurn();
    const a = h.out.one();
    expect([a.ack, a.options.sackCount, a.options.sackBlocks[0], a.options.sackBlocks[1]]).toEqual([
      D + SEG,
      1,
      D + 2 * SEG,
      D + 10 * SEG,
    ]);
    // A second loss (segment 10) opens a second island: at once; so does joining the two islands.
    send(11);
    expect(h.out.one().options.sackBlocks.slice(0, 4)).toEqual(
      new Uint32Array([D + 11 * SEG, D + 12 * SEG, D + 2 * SEG, D + 10 * SEG]),
    );
    send(10);
    const joined = h.out.one();
    expect([joined.ack, joined.options.sackCount, joined.options.sackBlocks[1]]).toEqual([D + SEG, 1, D + 12 * SEG]);
    // The retransmission filling the hole: at once, everything acknowledged.
    send(1);
    expect([h.out.one().ack, h.out.sent.length]).toEqual([D + 12 * SEG, 0]);
    h.clock.endTurn();
    expect(h.out.sent.length).toBe(0);
  });

  test("without SACK every out-of-order segment is ACKed at once (the peer counts duplicate ACKs)", () => {
    const h = harness({ bufferSize: 65536 });
    const e = establish(h, { mss: 1460 });
    for (const i of [0, 2, 3, 4, 5]) {
      h.layer.input(
        PEER,
        REMOTE,
        buildSegment(PEER, REMOTE, { seq: D + i * SEG, ack: e.iss + 1, flags: TCP_ACK, payload: bytes(SEG, i) }),
      );
    }
    expect(h.out.take().map((s) => s.ack)).toEqual([D + SEG, D + SEG, D + SEG, D + SEG]);
  });

  test("a duplicate segment is ACKed at once", () => {
    const { h, send } = flow();
    send(0);
    h.clock.endTurn();
    h.out.take();
    send(0);
    expect(h.out.one().ack).toBe(D + SEG);
  });

  test("duplicates are reported once as a D-SACK block, the island holding one right after it (RFC 2883)", () => {
    const { h, send, iss } = flow();
    const blocks = (s: { options: { sackCount: number; sackBlocks: Uint32Array } }) => [
      ...s.options.sackBlocks.subarray(0, 2 * s.options.sackCount),
    ];
    send(0);
    h.clock.endTurn();
    h.out.take();
    // Below RCV.NXT, whole: the block lies under the cumulative ACK.
    send(0);
    const old = h.out.one();
    expect([old.ack, ...blocks(old)]).toEqual([D + SEG, D, D + SEG]);
    // Straddling RCV.NXT: only the old part is a duplicate; the rest is new in-order data.
    h.layer.input(
      PEER,
      REMOTE,
      buildSegment(PEER, REMOTE, { seq: D + SEG / 2, ack: iss + 1, flags: TCP_ACK, payload: bytes(SEG, 7) }),
    );
    const straddle = h.out.one();
    expect([straddle.ack, ...blocks(straddle)]).toEqual([D + (3 * SEG) / 2, D + SEG / 2, D + SEG]);
    // Inside an island: the duplicate, then that island, then the other one.
    h.layer.input(
      PEER,
      REMOTE,
      buildSegment(PEER, REMOTE, { seq: D + (3 * SEG) / 2, ack: iss + 1, flags: TCP_ACK, payload: bytes(SEG / 2, 8) }),
    );
    h.clock.endTurn();
    h.out.take();
    send(3);
    send(6);
    send(4);
    h.clock.endTurn();
    h.out.take();
    send(3);
    const inIsland = h.out.one();
    expect([inIsland.ack, ...blocks(inIsland)]).toEqual([
      D + 2 * SEG,
      D + 3 * SEG,
      D + 4 * SEG,
      D + 3 * SEG,
      D + 5 * SEG,
      D + 6 * SEG,
      D + 7 * SEG,
    ]);
    // Reported once: the next ACK has the islands only.
    send(8);
    const next = h.out.one();
    expect(blocks(next)).toEqual([D + 8 * SEG, D + 9 * SEG, D + 3 * SEG, D + 5 * SEG, D + 6 * SEG, D + 7 * SEG]);
    h.clock.endTurn();
    expect(h.out.sent.length).toBe(0);
  });

  test("FIN is ACKed at once, with the data before it", () => {
    const { h, send, conn } = flow();
    send(0);
    send(1, TCP_ACK | TCP_PSH | TCP_FIN);
    const a = h.out.one();
    expect(a.ack).toBe(D + 2 * SEG + 1);
    expect(conn.state).toBe("CLOSE-WAIT");
    h.clock.endTurn();
    expect(h.out.sent.length).toBe(0);
  });

  test("data we send in the same turn carries the ACK: no separate ACK segment", () => {
    const { h, send, conn, iss } = flow();
    conn.onReadable = () => {
      conn.consume(conn.peek().length);
      conn.write(bytes(100, 9));
    };
    send(0);
    send(1);
    h.clock.endTurn();
    const out = h.out.take();
    expect(out.map(describeSeg)).toEqual([`PSH|ACK seq=${iss + 1} ack=${D + 2 * SEG} win=65535 len=100`]);
  });

  test("a window re-opening from zero is sent at once, not at the end of the turn", () => {
    const { h, conn, iss } = flow(8192);
    for (let i = 0; i < 4; i++) h.peer({ seq: D + 2048 * i, ack: iss + 1, flags: TCP_ACK, payload: bytes(2048, i) });
    // The harness ended a turn per segment: the last ACK closed the window.
    expect(h.out.take().map((s) => s.window)).toEqual([6144, 4096, 2048, 0]);
    conn.consume(2048);
    const upd = h.out.one();
    expect([upd.ack, upd.window]).toEqual([D + 8192, 2048]);
  });
});

describe("TCP demux fast path (last flow first)", () => {
  test("interleaved flows each get their own segments; a reused 4-tuple reaches the new connection", () => {
    const h = harness();
    const open = (port: number) => {
      h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 65535, mss: 1460, srcPort: port });
      const { conn } = h.connects[h.connects.length - 1]!;
      conn.accept();
      const iss = h.out.one().seq;
      h.peer({ seq: PEER_ISS + 1, ack: iss + 1, flags: TCP_ACK, srcPort: port });
      return { conn, iss };
    };
    const a = open(40001);
    const b = open(40002);
    for (let i = 0; i < 6; i++) {
      const f = i % 2 === 0 ? a : b;
      h.peer({
        seq: D + 100 * (i >> 1),
        ack: f.iss + 1,
        flags: TCP_ACK,
        payload: bytes(100, i),
        srcPort: 40001 + (i % 2),
      });
    }
    expect([a.conn.receiveBuffered, b.conn.receiveBuffered]).toEqual([300, 300]);
    // a is reset by the peer and gone; a new connection on the same 4-tuple gets the next segments.
    h.peer({ seq: D + 300, flags: TCP_RST, srcPort: 40001 });
    expect(a.conn.state).toBe("CLOSED");
    h.out.take();
    const a2 = open(40001);
    expect(a2.conn).not.toBe(a.conn);
    h.peer({ seq: D, ack: a2.iss + 1, flags: TCP_ACK, payload: bytes(50), srcPort: 40001 });
    expect([a2.conn.receiveBuffered, a.conn.receiveBuffered]).toEqual([50, 300]);
  });
});
