import { describe, expect, test } from "bun:test";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../../src/wire/tcp.ts";
import { bytes, type Harness, harness, PEER, PEER_ISS, PEER_PORT, REMOTE, REMOTE_PORT, record } from "./tcp-harness.ts";

const D = PEER_ISS + 1;

/**
 * A flow from the peer's `port` that we close first and the peer's FIN completes: TIME-WAIT with
 * the peer at D + 1 and us at iss + 2. With `ts`, timestamps are on (the peer's TSval `ts`).
 */
function toTimeWait(h: Harness, port = PEER_PORT, ts?: number) {
  const o = ts === undefined ? {} : { ts: [ts, 0] as [number, number] };
  h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 65535, mss: 1460, srcPort: port, ...o });
  const { conn } = h.connects[h.connects.length - 1]!;
  const rec = record(conn);
  conn.accept();
  const synAck = h.out.one();
  const iss = synAck.seq;
  const echo = (t: number) => (ts === undefined ? {} : { ts: [t, synAck.options.tsVal] as [number, number] });
  h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, window: 65535, srcPort: port, ...echo(ts ?? 0) });
  conn.shutdown();
  h.out.take();
  h.peer({ seq: D, ack: iss + 2, flags: TCP_ACK | TCP_FIN, window: 65535, srcPort: port, ...echo((ts ?? 0) + 1) });
  const lastAck = h.out.one();
  expect(lastAck).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
  expect(rec.closed).toEqual(["closed"]);
  expect(conn.state).toBe("CLOSED");
  return { conn, iss, lastAck };
}

const states = (h: Harness) => [...h.layer.flows()].map((f) => `${f.remotePort} ${f.state}`).sort();

describe("TCP TIME-WAIT table", () => {
  test("a retired connection leaves one table entry under one shared timer; all expire after 2*MSL", () => {
    const h = harness();
    for (const port of [40001, 40002, 40003]) {
      toTimeWait(h, port);
      h.clock.advance(100);
    }
    expect(states(h)).toEqual(["40001 TIME-WAIT", "40002 TIME-WAIT", "40003 TIME-WAIT"]);
    expect(h.layer.stats.timeWaitFlows).toBe(3);
    expect(h.layer.liveConnections).toBe(3);
    // The connections' own timers are gone: only the table's is armed.
    expect(h.clock.armed.size).toBe(1);
    h.clock.advance(9999 - 300); // t = 9999; the flows entered TIME-WAIT at 0, 100 and 200
    expect(h.layer.liveConnections).toBe(3);
    h.clock.advance(1);
    expect(states(h)).toEqual(["40002 TIME-WAIT", "40003 TIME-WAIT"]);
    h.clock.advance(200);
    expect(h.layer.liveConnections).toBe(0);
    expect(h.layer.stats.timeWaitFlows).toBe(0);
    expect(h.clock.armed.size).toBe(0);
    expect(h.out.sent.length).toBe(0);
    // The 4-tuple is unknown now: its segments get a RST.
    h.peer({ seq: D + 1, ack: 5, flags: TCP_ACK });
    expect(h.out.one()).toMatchObject({ flags: TCP_RST, seq: 5 });
  });

  test("a retransmitted FIN restarts only its own wait", () => {
    const h = harness();
    const a = toTimeWait(h, 40001);
    h.clock.advance(1000);
    toTimeWait(h, 40002);
    h.clock.advance(4000);
    h.peer({ seq: D, ack: a.iss + 2, flags: TCP_ACK | TCP_FIN, srcPort: 40001 });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: a.iss + 2, ack: D + 1 });
    expect(h.layer.stats.drops["tcp-out-of-window"]).toBe(1);
    h.clock.advance(5999); // t = 10999
    expect(states(h)).toEqual(["40001 TIME-WAIT", "40002 TIME-WAIT"]);
    h.clock.advance(1); // t = 11000: 40002's wait (from t = 1000) is over
    expect(states(h)).toEqual(["40001 TIME-WAIT"]);
    h.clock.advance(3999); // t = 14999
    expect(states(h)).toEqual(["40001 TIME-WAIT"]);
    h.clock.advance(1); // t = 15000: 40001's restarted wait is over
    expect(h.layer.liveConnections).toBe(0);
  });

  test("RST: an exact one ends the wait, another in the window is challenged, one outside is dropped", () => {
    const h = harness();
    const { iss } = toTimeWait(h);
    h.peer({ seq: D + 5, flags: TCP_RST });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
    expect(h.layer.stats.drops["tcp-rst-challenged"]).toBe(1);
    h.peer({ seq: D - 100, flags: TCP_RST });
    expect(h.out.sent.length).toBe(0);
    expect(h.layer.stats.drops["tcp-rst-out-of-window"]).toBe(1);
    expect(h.layer.liveConnections).toBe(1);
    h.peer({ seq: D + 1, flags: TCP_RST });
    expect(h.out.sent.length).toBe(0);
    expect(h.layer.liveConnections).toBe(0);
    expect(h.clock.armed.size).toBe(1); // the table's timer finds nothing when it fires
    h.clock.advance(10_000);
    expect(h.clock.armed.size).toBe(0);
  });

  test("old data is ACKed each time, old pure ACKs at most every 500 ms, an ACK of unsent data is answered", () => {
    const h = harness();
    const { iss } = toTimeWait(h);
    h.peer({ seq: D - 10, ack: iss + 2, flags: TCP_ACK, payload: bytes(5) });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
    h.peer({ seq: D - 10, ack: iss + 2, flags: TCP_ACK, payload: bytes(5) });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
    h.peer({ seq: D - 10, ack: iss + 2, flags: TCP_ACK });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
    h.peer({ seq: D - 10, ack: iss + 2, flags: TCP_ACK });
    expect(h.out.sent.length).toBe(0);
    h.clock.advance(500);
    h.peer({ seq: D - 10, ack: iss + 2, flags: TCP_ACK });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
    // In the window: an ACK of what we sent is quiet; one of bytes never sent is answered.
    h.peer({ seq: D + 1, ack: iss + 2, flags: TCP_ACK });
    expect(h.out.sent.length).toBe(0);
    h.peer({ seq: D + 1, ack: iss + 50, flags: TCP_ACK });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
    expect(h.layer.stats.drops["tcp-ack-unsent"]).toBe(1);
    // No ACK flag at all: dropped. A SYN at an old sequence number: challenged.
    h.peer({ seq: D + 1, flags: 0 });
    expect(h.out.sent.length).toBe(0);
    expect(h.layer.stats.drops["tcp-no-ack"]).toBe(1);
    h.peer({ seq: D + 1, flags: TCP_SYN, mss: 1460 });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 2, ack: D + 1 });
    expect(h.layer.stats.drops["tcp-syn-challenged"]).toBe(1);
    expect(h.connects.length).toBe(1);
  });

  test("timestamps: the ACK echoes the peer's latest TSval and ours keeps counting with the clock", () => {
    const h = harness();
    const { iss, lastAck } = toTimeWait(h, PEER_PORT, 1000);
    expect(lastAck.options.tsEcr).toBe(1001);
    h.clock.advance(2000);
    h.peer({ seq: D, ack: iss + 2, flags: TCP_ACK | TCP_FIN, ts: [1500, lastAck.options.tsVal] });
    const a = h.out.one();
    // Unacceptable (the FIN again): its TSval is not taken (RFC 7323 §4.3: only at the left edge).
    expect(a.options.tsEcr).toBe(1001);
    expect((a.options.tsVal - lastAck.options.tsVal) >>> 0).toBe(2000);
    h.peer({ seq: D + 1, ack: iss + 2, flags: TCP_ACK, ts: [1600, a.options.tsVal] });
    expect(h.out.sent.length).toBe(0);
    h.peer({ seq: D + 1, ack: iss + 50, flags: TCP_ACK, ts: [1601, a.options.tsVal] });
    expect(h.out.one().options.tsEcr).toBe(1601);
  });

  test("a full table: a SYN takes the oldest TIME-WAIT entry's place; with none to give, it is refused", () => {
    const h = harness({ maxConnections: 2 });
    toTimeWait(h, 40001);
    toTimeWait(h, 40002);
    h.peer({ seq: 9000, flags: TCP_SYN, window: 65535, mss: 1460, srcPort: 40003 });
    expect(h.connects.length).toBe(3);
    expect(h.layer.stats.timeWaitEvicted).toBe(1);
    expect(h.layer.stats.connectionsRejected).toBe(0);
    expect(states(h)).toEqual(["40002 TIME-WAIT", "40003 SYN-RECEIVED"]);
    h.peer({ seq: 9100, flags: TCP_SYN, window: 65535, mss: 1460, srcPort: 40004 });
    expect(h.layer.stats.timeWaitEvicted).toBe(2);
    expect(states(h)).toEqual(["40003 SYN-RECEIVED", "40004 SYN-RECEIVED"]);
    h.peer({ seq: 9200, flags: TCP_SYN, window: 65535, mss: 1460, srcPort: 40005 });
    expect(h.connects.length).toBe(4);
    expect(h.layer.stats.connectionsRejected).toBe(1);
    expect(h.out.one()).toMatchObject({ flags: TCP_RST | TCP_ACK, ack: 9201 });
  });

  test("an active open toward a 4-tuple in TIME-WAIT is refused", () => {
    const h = harness();
    toTimeWait(h);
    expect(() => h.layer.connect({ src: REMOTE, srcPort: REMOTE_PORT, dst: PEER, dstPort: PEER_PORT })).toThrow(
      "already exists",
    );
    expect(h.out.sent.length).toBe(0);
  });

  test("thousands of flows through TIME-WAIT: every entry expires and the table empties", () => {
    const h = harness();
    for (let i = 0; i < 3000; i++) {
      toTimeWait(h, 20000 + i);
      if (i % 100 === 99) h.clock.advance(100);
    }
    expect(h.layer.stats.timeWaitFlows).toBe(3000);
    h.clock.advance(10_000);
    expect(h.layer.liveConnections).toBe(0);
    expect(h.layer.stats.timeWaitFlows).toBe(0);
    expect(h.clock.armed.size).toBe(0);
  });
});
