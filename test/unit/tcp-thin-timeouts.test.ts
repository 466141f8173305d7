import { describe, expect, test } from "bun:test";
import { MAX_RETRANSMITS, THIN_LINEAR_TIMEOUTS } from "../../src/netstack/tcp/constants.ts";
import { TCP_ACK, TCP_RST, TCP_SYN } from "../../src/wire/tcp.ts";
import { bytes, type Harness, harness, PEER_ISS, record } from "./tcp-harness.ts";

const D = PEER_ISS + 1;

/** Passive handshake from the peer's port `port` with a 100 ms RTT: RTO 300 ms. No SACK, so no TLP. */
function establishFrom(h: Harness, port: number) {
  h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 65535, mss: 1460, srcPort: port });
  const { conn } = h.connects[h.connects.length - 1]!;
  const rec = record(conn);
  conn.accept();
  const iss = h.out.one().seq;
  h.clock.advance(100);
  h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, window: 65535, srcPort: port });
  return { conn, iss, rec };
}

/**
 * Flow A (port 40000) has one small segment in flight that the path keeps losing. Flow B (port
 * 40001, same peer) gets its data acknowledged at the times in `bAcks` (ms after A's first send).
 * Returns when A's segment went out again (ms after its first send), and whether A was given up.
 */
function lostThinFlow(bAcks: number[], until: number) {
  const h = harness();
  const a = establishFrom(h, 40000);
  const b = establishFrom(h, 40001);
  const t0 = h.clock.now();
  a.conn.write(bytes(100));
  h.out.take();
  const resent: number[] = [];
  let rst = -1;
  let bAcked = 0;
  for (const at of [...bAcks, until]) {
    // B sends 10 bytes now and then; the peer acknowledges them at `at`.
    b.conn.write(bytes(10));
    while (h.clock.nextDeadline() >= 0 && h.clock.nextDeadline() <= t0 + at) {
      h.clock.runUntil(h.clock.nextDeadline());
      for (const s of h.out.take()) {
        if (s.dstPort !== 40000) continue;
        if (s.flags & TCP_RST) rst = h.clock.now() - t0;
        else if (s.payload.length === 100) resent.push(h.clock.now() - t0);
      }
    }
    h.clock.runUntil(t0 + at);
    if (at === until) break;
    bAcked += 10;
    h.peer({ seq: D, ack: b.iss + 1 + bAcked, flags: TCP_ACK, srcPort: 40001 });
    h.out.take();
  }
  return { resent, rst, closed: a.rec.closed };
}

describe("linear retransmission timeouts for a thin flow of a live peer", () => {
  test("the RTO does not double while the peer acknowledges its other flows", () => {
    // B progresses during A's first two waits only: A's next expiries keep 300 ms, then double.
    const { resent } = lostThinFlow([150, 450], 3000);
    expect(resent).toEqual([300, 600, 900, 1500, 2700]);
  });

  test("a silent peer gets the RFC 6298 backoff as before", () => {
    const { resent } = lostThinFlow([], 5000);
    expect(resent).toEqual([300, 900, 2100, 4500]);
  });

  test(`at most ${THIN_LINEAR_TIMEOUTS} linear expiries in a row, and they do not count toward giving up`, () => {
    // B progresses every 100 ms for 30 s: A still backs off after THIN_LINEAR_TIMEOUTS tries.
    const acks = Array.from({ length: 300 }, (_, i) => 50 + 100 * i);
    const { resent, rst, closed } = lostThinFlow(acks, 400_000);
    const linear = Array.from({ length: THIN_LINEAR_TIMEOUTS }, (_, i) => 300 * (i + 1));
    const last = linear[linear.length - 1]!;
    expect(resent.slice(0, THIN_LINEAR_TIMEOUTS + 2)).toEqual([...linear, last + 300, last + 900]);
    // The 7th expiry doubles the RTO; then the usual MAX_RETRANSMITS backed-off ones and the RST.
    expect(resent.length).toBe(THIN_LINEAR_TIMEOUTS + MAX_RETRANSMITS);
    expect(rst).toBeGreaterThan(resent[resent.length - 1]!);
    expect(closed).toEqual(["timeout"]);
  });

  test("a flow with a full window in flight backs off at once (it is not thin)", () => {
    const h = harness();
    const a = establishFrom(h, 40000);
    const b = establishFrom(h, 40001);
    const t0 = h.clock.now();
    a.conn.write(bytes(5 * 1420));
    expect(h.out.take().length).toBe(5);
    b.conn.write(bytes(10));
    h.out.take();
    h.clock.runUntil(t0 + 150);
    h.peer({ seq: D, ack: b.iss + 11, flags: TCP_ACK, srcPort: 40001 });
    h.clock.runUntil(t0 + 300);
    expect(h.out.take().map((s) => [s.dstPort, s.seq])).toEqual([[40000, a.iss + 1]]);
    expect((a.conn as unknown as { debug: { rto: number } }).debug.rto).toBe(600);
  });
});
