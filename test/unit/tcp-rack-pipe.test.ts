import { describe, expect, test } from "bun:test";
import { bytes, sackConnection } from "./tcp-harness.ts";

describe("pipe leaves out what RACK found lost (Linux's packets_in_flight)", () => {
  const sent = (h: ReturnType<typeof sackConnection>["h"], seg: (i: number) => number, mss: number) =>
    h.out.take().map((c) => (c.seq - seg(0)) / mss);

  test("segments RACK marked lost by time, with too little SACKed above them for IsLost, leave the pipe", () => {
    const { h, conn, seg, ack, mss, debug } = sackConnection();
    conn.write(bytes(10 * mss));
    expect(h.out.take().length).toBe(10);
    h.clock.advance(20);
    // 0-4 missing, 5 SACKed: one range above them, so RFC 6675's IsLost says none is lost.
    ack(0, [[seg(5), seg(6)]]);
    expect(sent(h, seg, mss)).toEqual([]);
    // RACK.rtt + min_RTT/4 later the reordering timer marks 0-4 lost: recovery, cwnd 7 segments.
    // In flight: 6-9 (4) and the retransmission of 0; 1 and 2 fit. Counting 0-4 as in flight left
    // pipe at 10 and sent only 0.
    h.clock.advance(5);
    expect(sent(h, seg, mss)).toEqual([0, 1, 2]);
    expect(debug().inRecovery).toBe(true);
    expect(debug().cwnd).toBe(7 * mss);
    // 6 SACKed: pipe 6 (the three retransmissions once each, 7-9), so one more: 3. A resent segment
    // RACK had marked counts once (not as original plus retransmission).
    ack(0, [[seg(5), seg(7)]]);
    expect(sent(h, seg, mss)).toEqual([3]);
    // 0 delivered: pipe 6 again, room for 4; the queue is then empty and pipe full.
    h.clock.advance(20);
    ack(1, [[seg(5), seg(7)]]);
    expect(sent(h, seg, mss)).toEqual([4]);
  });

  test("a retransmission RACK finds lost in turn leaves the pipe until it goes again", () => {
    const { h, conn, seg, ack, mss } = sackConnection();
    conn.write(bytes(10 * mss));
    h.out.take();
    h.clock.advance(20);
    ack(0, [[seg(5), seg(6)]]);
    h.clock.advance(5);
    ack(0, [[seg(5), seg(7)]]);
    expect(sent(h, seg, mss)).toEqual([0, 1, 2, 3]);
    // The resent 1 arrives, the resent 0 (sent just before it) does not: RACK marks that copy lost
    // (queued below HighRxt), and 7-9 (sent before it). Pipe: the resent 2 and 3, so five go: 4
    // (queued since the timer), 7-9, and 0 again. Counting the lost copy of 0 as in flight left 0 out.
    h.clock.advance(20);
    ack(0, [
      [seg(1), seg(2)],
      [seg(5), seg(7)],
    ]);
    expect(h.layer.stats.rackLostRetransmits).toBe(1);
    expect(sent(h, seg, mss)).toEqual([4, 7, 8, 9, 0]);
  });

  test("a hole that IsLost already leaves out is not subtracted again for RACK's marks", () => {
    const { h, conn, seg, ack, mss, debug } = sackConnection();
    // 12 segments, 10 of them in the first flight (the initial window): new data is left to send.
    conn.write(bytes(12 * mss));
    expect(h.out.take().length).toBe(10);
    h.clock.advance(20);
    // 5, 7 and 9 SACKed: 0-4 are lost by IsLost (3 ranges above) and by RACK; 6 and 8 only by
    // RACK (2 and 1 ranges above). Pipe: the retransmission of 0 alone, so cwnd (7) has room for six:
    // the rest of 0-4, 6 and 8, and not yet 10 (a double subtraction would have sent it too).
    ack(0, [
      [seg(5), seg(6)],
      [seg(7), seg(8)],
      [seg(9), seg(10)],
    ]);
    expect(debug().cwnd).toBe(7 * mss);
    expect(sent(h, seg, mss)).toEqual([0, 1, 2, 3, 4, 6, 8]);
  });
});
