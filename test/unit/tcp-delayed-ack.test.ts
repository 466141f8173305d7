import { describe, expect, test } from "bun:test";
import { DEFAULT_DELAYED_ACK_MS } from "../../src/netstack/tcp/constants.ts";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from "../../src/wire/tcp.ts";
import { buildSegment, bytes, establish, harness, PEER, PEER_ISS, REMOTE } from "./tcp-harness.ts";

const D = PEER_ISS + 1;
const DELAY = DEFAULT_DELAYED_ACK_MS;
const OPTS = { mss: 1460, windowScale: 7, sackPermitted: true };

function flow(bufferSize = 65536) {
  const h = harness({ bufferSize, delayedAckMs: DELAY });
  return { h, ...establish(h, OPTS) };
}

describe("TCP delayed ACK: a short segment's ACK waits for the answer to carry it", () => {
  test("a request answered within the delay: the response carries the ACK, no ACK of its own", () => {
    const { h, conn, iss } = flow();
    const request = bytes(31);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK | TCP_PSH, payload: request });
    expect(h.out.sent.length).toBe(0);
    expect([...conn.peek()]).toEqual([...request]);
    conn.consume(31);
    h.clock.advance(DELAY / 2);
    expect(h.out.sent.length).toBe(0);
    expect(conn.write(bytes(342, 2))).toBe(342);
    const r = h.out.one();
    expect([r.flags, r.seq, r.ack, r.payload.length]).toEqual([TCP_ACK | TCP_PSH, iss + 1, D + 31, 342]);
    // The delay passes: nothing more is owed.
    h.clock.advance(DELAY);
    expect(h.out.sent.length).toBe(0);
    expect(h.layer.stats.segmentsOut).toBe(2); // SYN-ACK + the response
  });

  test("no answer: the ACK goes out alone exactly when the delay is over", () => {
    const { h, iss } = flow();
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK | TCP_PSH, payload: bytes(100) });
    h.clock.advance(DELAY - 0.5);
    expect(h.out.sent.length).toBe(0);
    h.clock.advance(0.5);
    const a = h.out.one();
    expect([a.flags, a.seq, a.ack]).toEqual([TCP_ACK, iss + 1, D + 100]);
    h.clock.advance(10 * DELAY);
    expect(h.out.sent.length).toBe(0);
  });

  test("a full segment is ACKed at the end of its turn; so is a second short one adding up to one", () => {
    const { h, iss } = flow();
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, payload: bytes(1420) });
    expect(h.out.one().ack).toBe(D + 1420);
    h.peer({ seq: D + 1420, ack: iss + 1, flags: TCP_ACK, payload: bytes(800) });
    expect(h.out.sent.length).toBe(0);
    h.peer({ seq: D + 2220, ack: iss + 1, flags: TCP_ACK, payload: bytes(800) });
    expect(h.out.one().ack).toBe(D + 3020);
    // The first short segment's deadline passes with nothing left owed.
    h.clock.advance(DELAY);
    expect(h.out.sent.length).toBe(0);
  });

  test("the peer's FIN behind a waiting ACK is acknowledged at once, data and FIN together", () => {
    const { h, iss } = flow();
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK | TCP_PSH, payload: bytes(50) });
    expect(h.out.sent.length).toBe(0);
    h.peer({ seq: D + 50, ack: iss + 1, flags: TCP_ACK | TCP_FIN });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, ack: D + 51 });
    h.clock.advance(DELAY);
    expect(h.out.sent.length).toBe(0);
  });

  test("a window update the peer should see is not delayed", () => {
    // 4 KiB buffer (no window scaling needed): the update threshold is one MSS (1420).
    const { h, conn, iss } = flow(4096);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, payload: bytes(2000) });
    expect(h.out.one()).toMatchObject({ ack: D + 2000, window: 2096 });
    // The app drains everything when the next short segment arrives: the window reopens by 2100.
    conn.onReadable = () => conn.consume(conn.peek().length);
    h.peer({ seq: D + 2000, ack: iss + 1, flags: TCP_ACK, payload: bytes(100) });
    expect(h.out.one()).toMatchObject({ ack: D + 2100, window: 4096 });
  });

  test("many flows share one timer: each ACK at its own deadline, in order", () => {
    const h = harness({ delayedAckMs: DELAY });
    const ports = [41000, 41001, 41002];
    const iss: number[] = [];
    for (const p of ports) {
      h.layer.input(PEER, REMOTE, buildSegment(PEER, REMOTE, { srcPort: p, seq: PEER_ISS, flags: TCP_SYN, ...OPTS }));
      h.clock.endTurn();
      h.connects[h.connects.length - 1]!.conn.accept();
      const synAck = h.out.one();
      iss.push(synAck.seq);
      h.layer.input(
        PEER,
        REMOTE,
        buildSegment(PEER, REMOTE, { srcPort: p, seq: D, ack: synAck.seq + 1, flags: TCP_ACK }),
      );
      h.clock.endTurn();
    }
    const armedBefore = h.clock.armed.size;
    ports.forEach((p, i) => {
      h.clock.advance(1);
      h.layer.input(
        PEER,
        REMOTE,
        buildSegment(PEER, REMOTE, {
          srcPort: p,
          seq: D,
          ack: (iss[i] as number) + 1,
          flags: TCP_ACK,
          payload: bytes(10),
        }),
      );
      h.clock.endTurn();
    });
    // One timer armed for all three waiting ACKs.
    expect(h.clock.armed.size).toBe(armedBefore + 1);
    const seen: [number, number][] = [];
    for (let t = 0; t < 2 * DELAY; t++) {
      h.clock.advance(1);
      for (const s of h.out.take()) seen.push([h.clock.now(), s.dstPort]);
    }
    // Inputs at t = 1, 2, 3: ACKs at 1 + DELAY, 2 + DELAY, 3 + DELAY.
    expect(seen).toEqual(ports.map((p, i) => [i + 1 + DELAY, p]));
    expect(h.clock.armed.size).toBe(armedBefore);
  });

  test("delayedAckMs 0: the short segment's ACK goes at the end of its turn", () => {
    const h = harness({ delayedAckMs: 0 });
    const { iss } = establish(h, OPTS);
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK | TCP_PSH, payload: bytes(31) });
    expect(h.out.one().ack).toBe(D + 31);
  });
});
