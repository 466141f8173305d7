import { describe, expect, test } from "bun:test";
import { NewReno } from "../../src/netstack/tcp/congestion/newreno.ts";
import { KEEPALIVE_INTERVAL_MS } from "../../src/netstack/tcp/constants.ts";
import { RttEstimator } from "../../src/netstack/tcp/rtt.ts";
import { TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN } from "../../src/wire/tcp.ts";
import { bytes, type Harness, harness, PEER_ISS, record } from "./tcp-harness.ts";

const D = PEER_ISS + 1;

type Debug = { debug: { rto: number; cwnd: number; sendMss: number } };

/** Passive handshake with a 100 ms RTT on the SYN-ACK: SRTT 100, RTTVAR 50, RTO 300. */
function establishRtt100(h: Harness) {
  h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 65535, mss: 1460 });
  const { conn } = h.connects[0]!;
  const rec = record(conn);
  conn.accept();
  const iss = h.out.one().seq;
  h.clock.advance(100);
  h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, window: 65535 });
  return { conn, iss, rec, dbg: () => (conn as unknown as Debug).debug };
}

describe("TCP retransmission", () => {
  test("RTO from the first RTT sample, doubling per expiry up to 60 s, giving up after 10 retransmits", () => {
    const h = harness();
    const { conn, iss, rec, dbg } = establishRtt100(h);
    expect(dbg().rto).toBe(300);
    const start = h.clock.now();
    conn.write(bytes(100));
    expect(h.out.one()).toMatchObject({ seq: iss + 1, flags: TCP_ACK | TCP_PSH });
    const times: number[] = [];
    let rst: number[] = [];
    while (h.clock.nextDeadline() >= 0) {
      h.clock.runUntil(h.clock.nextDeadline());
      for (const s of h.out.take()) {
        if (s.flags & TCP_RST) rst = [h.clock.now() - start, s.seq];
        else {
          expect([s.seq, s.payload.length]).toEqual([iss + 1, 100]);
          times.push(h.clock.now() - start);
        }
      }
    }
    expect(times).toEqual([300, 900, 2100, 4500, 9300, 18900, 38100, 76500, 136500, 196500]);
    expect(rst).toEqual([256500, iss + 101]);
    expect(rec.closed).toEqual(["timeout"]);
    expect(h.layer.liveConnections).toBe(0);
    expect(h.layer.stats.retransmits).toBe(10);
  });

  test("a timeout collapses cwnd to one segment and resends from SND.UNA (go-back-N)", () => {
    const h = harness();
    const { conn, iss, dbg } = establishRtt100(h);
    conn.write(bytes(3 * 1420));
    expect(h.out.take().length).toBe(3);
    h.clock.advance(300);
    const r = h.out.one();
    expect([r.seq, r.payload.length]).toEqual([iss + 1, 1420]);
    expect(dbg().cwnd).toBe(1420);
    // A pure ACK now carries SEQ = the highest sequence sent, not the rolled-back SND.NXT: the peer
    // may hold all of it, and an older SEQ would fail its acceptability test (ACK ping-pong).
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, payload: bytes(5) });
    expect(h.out.one()).toMatchObject({ flags: TCP_ACK, seq: iss + 1 + 3 * 1420, ack: D + 5 });
    // The peer had the rest: the cumulative ACK jumps past what we resent.
    h.peer({ seq: D + 5, ack: iss + 1 + 3 * 1420, flags: TCP_ACK });
    expect(h.out.sent.length).toBe(0);
    expect(conn.sendBuffered).toBe(0);
    // No retransmission pending: only the keepalive timer (minutes away) is armed.
    expect(h.clock.nextDeadline() - h.clock.now()).toBeGreaterThan(KEEPALIVE_INTERVAL_MS);
  });

  test("Karn: no RTT sample from a retransmitted segment; backoff cleared by the next new ACK", () => {
    const h = harness();
    const { conn, iss, dbg } = establishRtt100(h);
    conn.write(bytes(10));
    h.out.take();
    h.clock.advance(300);
    expect(h.out.one().seq).toBe(iss + 1);
    expect(dbg().rto).toBe(600);
    h.clock.advance(50);
    h.peer({ seq: D, ack: iss + 11, flags: TCP_ACK });
    // Neither 350 ms nor 50 ms was sampled: the RTO is the un-backed-off 300.
    expect(dbg().rto).toBe(300);
    conn.write(bytes(10));
    h.out.take();
    h.clock.advance(40);
    h.peer({ seq: D, ack: iss + 21, flags: TCP_ACK });
    // SRTT = 7/8*100 + 1/8*40 = 92.5, RTTVAR = 3/4*50 + 1/4*60 = 52.5, RTO = ceil(92.5 + 210) = 303.
    expect(dbg().rto).toBe(303);
  });

  test("timestamps give RTT samples from TSecr", () => {
    const h = harness();
    h.peer({ seq: PEER_ISS, flags: TCP_SYN, mss: 1460, ts: [1, 0] });
    const { conn } = h.connects[0]!;
    conn.accept();
    const sa = h.out.one();
    h.clock.advance(400);
    h.peer({ seq: D, ack: sa.seq + 1, flags: TCP_ACK, ts: [2, sa.options.tsVal] });
    // SRTT 400, RTTVAR 200: RTO 1200.
    expect((conn as unknown as Debug).debug.rto).toBe(1200);
    conn.write(bytes(10));
    const s = h.out.one();
    expect(s.options.tsEcr).toBe(2);
    expect(s.options.tsVal).toBe((sa.options.tsVal + 400) >>> 0);
  });

  test("three duplicate ACKs: fast retransmit, fast recovery, NewReno partial ACK, exit", () => {
    const h = harness({ congestionControl: "newreno" });
    const { conn, iss, dbg } = establishRtt100(h);
    const mss = 1420;
    expect(conn.write(bytes(6 * mss))).toBe(6 * mss);
    expect(h.out.take().length).toBe(6);
    h.peer({ seq: D, ack: iss + 1 + mss, flags: TCP_ACK });
    expect(h.out.sent.length).toBe(0);
    for (let i = 0; i < 2; i++) h.peer({ seq: D, ack: iss + 1 + mss, flags: TCP_ACK });
    expect(h.out.sent.length).toBe(0);
    h.peer({ seq: D, ack: iss + 1 + mss, flags: TCP_ACK });
    const fr = h.out.one();
    expect([fr.seq, fr.payload.length]).toEqual([iss + 1 + mss, mss]);
    // ssthresh = max(FlightSize/2, 2*MSS) = 2.5 MSS; cwnd = ssthresh + 3 MSS.
    expect(dbg().cwnd).toBe(Math.floor((5 * mss) / 2) + 3 * mss);
    expect(h.layer.stats.retransmits).toBe(1);
    // A partial ACK (covers segment 2 only) retransmits segment 3 at once (RFC 6582 §3.2 step 5).
    h.peer({ seq: D, ack: iss + 1 + 2 * mss, flags: TCP_ACK });
    const pr = h.out.one();
    expect([pr.seq, pr.payload.length]).toEqual([iss + 1 + 2 * mss, mss]);
    // The full ACK ends recovery: cwnd = min(ssthresh, max(FlightSize, MSS) + MSS).
    h.peer({ seq: D, ack: iss + 1 + 6 * mss, flags: TCP_ACK });
    expect(dbg().cwnd).toBe(2 * mss);
    expect(h.layer.stats.retransmits).toBe(2);
    // No retransmission pending: only the keepalive timer (minutes away) is armed.
    expect(h.clock.nextDeadline() - h.clock.now()).toBeGreaterThan(KEEPALIVE_INTERVAL_MS);
  });

  test("RttEstimator and NewReno arithmetic", () => {
    const r = new RttEstimator();
    expect(r.rto).toBe(1000);
    r.onTimeout();
    expect(r.rto).toBe(2000);
    r.resetBackoff();
    r.sample(20);
    // RTO = SRTT + max(4 RTTVAR, 200 ms).
    expect([r.srtt, r.rttvar, r.rto]).toEqual([20, 10, 220]);
    r.sample(1000);
    expect([r.srtt, r.rttvar, r.rto]).toEqual([142.5, 252.5, 1153]);
    for (let i = 0; i < 20; i++) r.onTimeout();
    expect(r.rto).toBe(60000);
    const cc = new NewReno(1000);
    expect(cc.cwnd).toBe(10000);
    cc.onAck(10000);
    expect(cc.cwnd).toBe(18000); // ABC: at most 8 MSS per ACK
    cc.onTimeout(12000);
    expect([cc.cwnd, cc.ssthresh]).toEqual([1000, 6000]);
    for (let i = 0; i < 5; i++) cc.onAck(1000);
    expect(cc.cwnd).toBe(6000);
    cc.onAck(6000);
    expect(cc.cwnd).toBe(7000); // congestion avoidance: one MSS per cwnd acknowledged
  });

  test("RTO = SRTT + max(4 RTTVAR, 200 ms), doubled per expiry (RFC 6298 §5.5), reset by new data", () => {
    const r = new RttEstimator();
    for (let i = 0; i < 100; i++) r.sample(100);
    expect(r.srtt).toBeCloseTo(100, 6);
    // A steady 100 ms path: 300 ms, not max(200, 100 + ~0) = 200 ms (2 RTTs).
    expect(r.rto).toBe(300);
    r.onTimeout();
    expect(r.rto).toBe(600);
    r.onTimeout();
    expect(r.rto).toBe(1200);
    r.resetBackoff();
    expect(r.rto).toBe(300);
    // A jittery path: the variance term wins once 4 RTTVAR > 200 ms.
    const j = new RttEstimator();
    for (let i = 0; i < 200; i++) j.sample(i % 2 ? 20 : 420);
    expect(j.rttvar).toBeGreaterThan(150);
    expect(j.rto).toBe(Math.ceil(j.srtt + 4 * j.rttvar));
  });
});
