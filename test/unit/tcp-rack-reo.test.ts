import { describe, expect, test } from "bun:test";
import { RackLog, REO_WND_PERSIST } from "../../src/netstack/tcp/rack.ts";
import { SackScoreboard } from "../../src/netstack/tcp/sack.ts";
import { bytes, sackConnection } from "./tcp-harness.ts";

describe("RACK reordering window (RFC 8985 §6.2 step 4)", () => {
  test("min_RTT/4 by default, 0 in recovery or past DupThresh until reordering is seen, at most SRTT", () => {
    const log = new RackLog();
    const sb = new SackScoreboard();
    for (let i = 0; i < 4; i++) log.onSend(1000 * i, 1000 * (i + 1), i, false);
    // Segment 2 delivered first (at 22: RTT 20), then 0, 1 and 3 cumulatively.
    sb.add(2000, 3000, 0, 4000);
    log.onAck(0, sb, true, 22, 20);
    expect(log.minRtt).toBe(20);
    expect(log.reoWnd(false, 1, 3, 30, 20)).toBe(5);
    expect(log.reoWnd(true, 1, 3, 30, 20)).toBe(0);
    expect(log.reoWnd(false, 3, 3, 30, 20)).toBe(0);
    expect(log.reoWnd(false, 1, 3, 4, 20)).toBe(4);
    expect(log.reord).toBe(false);
    // 0 and 1 arrive after 2 (originals, below RACK.fack): the path reorders.
    log.onAck(2000, sb, false, 25, 20);
    expect(log.reord).toBe(true);
    expect(log.reoWnd(true, 3, 3, 30, 20)).toBe(5);
    // A retransmission delivered below RACK.fack is no evidence of reordering.
    const log2 = new RackLog();
    for (let i = 0; i < 3; i++) log2.onSend(1000 * i, 1000 * (i + 1), i, false);
    const sb2 = new SackScoreboard();
    sb2.add(1000, 3000, 0, 3000);
    log2.onAck(0, sb2, true, 22, 20);
    log2.onSend(0, 1000, 23, true);
    log2.onAck(3000, sb2, false, 43, 20);
    expect(log2.reord).toBe(false);
  });

  test("D-SACK rounds widen it by min_RTT/4; 16 recoveries without one narrow it again", () => {
    const log = new RackLog();
    log.onDsack(1000, 5000);
    expect(log.reoWndMult).toBe(2);
    // Same round (SND.UNA has not reached 5000): no further widening.
    log.onDsack(3000, 6000);
    expect(log.reoWndMult).toBe(2);
    log.onDsack(5000, 9000);
    expect(log.reoWndMult).toBe(3);
    expect(log.reoWnd(false, 0, 3, 100, 20)).toBe(15);
    for (let i = 0; i < REO_WND_PERSIST - 1; i++) log.onRecoveryEnd();
    expect(log.reoWndMult).toBe(3);
    log.onRecoveryEnd();
    expect(log.reoWndMult).toBe(1);
  });

  test("a D-SACK from the peer for a spurious retransmission delays the next reordering timer", () => {
    const { h, conn, seg, ack, mss, debug } = sackConnection();
    conn.write(bytes(10 * mss));
    expect(h.out.take().length).toBe(10);
    h.clock.advance(20);
    // 2 is missing, 3 SACKed: 2 left with 3, so it is not lost until RACK.rtt + min_RTT/4 (5 ms).
    ack(2, [[seg(3), seg(4)]]);
    expect(h.out.take().length).toBe(0);
    expect(h.clock.nextDeadline() - h.clock.now()).toBeCloseTo(5, 6);
    h.clock.advance(5);
    expect(h.out.take().map((c) => c.seq)).toContain(seg(2));
    expect(h.layer.stats.reorderTimeouts).toBe(1);
    // The original 2 was only late: the ACK covers it, then a D-SACK reports the resent copy.
    ack(4);
    ack(4, [[seg(2), seg(3)]]);
    ack(10);
    expect(debug().inRecovery).toBe(false);
    h.out.take();
    // The next flight (10-11, as cwnd allows): 10 missing, 11 SACKed. Now the window is 2 x min_RTT/4.
    conn.write(bytes(10 * mss));
    expect(h.out.take().map((c) => c.seq)).toEqual([seg(10), seg(11)]);
    h.clock.advance(20);
    ack(10, [[seg(11), seg(12)]]);
    const resent = () => h.out.take().filter((c) => c.seq === seg(10)).length;
    expect(resent()).toBe(0);
    expect(h.clock.nextDeadline() - h.clock.now()).toBeCloseTo(10, 6);
    h.clock.advance(9.5);
    expect(resent()).toBe(0);
    h.clock.advance(0.5);
    expect(resent()).toBe(1);
    expect(h.layer.stats.reorderTimeouts).toBe(2);
  });
});

describe("tail loss probe outcome (RFC 8985 §7.4)", () => {
  /** ...whose 4-segment flight goes unanswered until the probe. */
  function probed(cc: "cubic" | "bbr") {
    const c = sackConnection(cc);
    const { h, conn, seg, mss } = c;
    conn.write(bytes(4 * mss));
    expect(h.out.take().length).toBe(4);
    // PTO = 2 SRTT: the last segment again.
    h.clock.advance(40);
    expect(h.out.take().map((c) => c.seq)).toEqual([seg(3)]);
    expect(h.layer.stats.tlpProbes).toBe(1);
    return c;
  }

  test("a PTO later than the RTO is cut to it: the probe goes at the RTO's time, the RTO after it", () => {
    const { h, conn, seg, debug } = sackConnection("cubic");
    expect(debug().rto).toBe(220);
    const cwnd = debug().cwnd;
    // One segment in flight: PTO = 2 SRTT + 200 ms (a delayed ACK) = 240 ms > RTO.
    conn.write(bytes(100));
    h.out.take();
    const t0 = h.clock.now();
    h.clock.runUntil(h.clock.nextDeadline());
    expect(h.clock.now() - t0).toBe(220);
    expect(h.out.take().map((c) => c.seq)).toEqual([seg(0)]);
    expect([h.layer.stats.tlpProbes, h.layer.stats.rtoExpirations]).toEqual([1, 0]);
    expect(debug().cwnd).toBe(cwnd);
    h.clock.runUntil(h.clock.nextDeadline());
    expect(h.clock.now() - t0).toBe(440);
    expect([h.layer.stats.tlpProbes, h.layer.stats.rtoExpirations]).toEqual([1, 1]);
  });

  test("an ACK beyond the probe with no D-SACK of it: the probe repaired a loss, cwnd is reduced", () => {
    const { h, conn, ack, mss, debug } = probed("cubic");
    h.clock.advance(10);
    // Everything up to the probe's end: the original of 3 or the probe; nothing tells which yet.
    ack(4);
    const cwnd = debug().cwnd;
    expect(h.layer.stats.tlpRepairs).toBe(0);
    conn.write(bytes(mss));
    h.out.take();
    h.clock.advance(20);
    // Beyond it, and no D-SACK came for the probe: the original was lost (CUBIC: cwnd x 0.7).
    ack(5);
    expect(h.layer.stats.tlpRepairs).toBe(1);
    expect(debug().cwnd).toBeLessThan(cwnd * 0.75);
  });

  test("a D-SACK of the probe: nothing was lost, cwnd stays", () => {
    const { h, conn, seg, ack, mss, debug } = probed("cubic");
    h.clock.advance(10);
    ack(4);
    ack(4, [[seg(3), seg(4)]]);
    const cwnd = debug().cwnd;
    conn.write(bytes(mss));
    h.out.take();
    h.clock.advance(20);
    ack(5);
    expect(h.layer.stats.tlpRepairs).toBe(0);
    expect(debug().cwnd).toBeGreaterThanOrEqual(cwnd);
  });
});
