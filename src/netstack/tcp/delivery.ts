/**
 * What each ACK tells a model-based congestion controller (BBR, congestion/bbr.ts): bytes newly
 * delivered, what is still in flight, a fine-grained RTT, and a delivery-rate sample
 * (draft-cheng-iccrg-delivery-rate-estimation) from the snapshot RACK's log keeps per transmission.
 * Loss-based controllers do not ask for it, and then none of this runs.
 */
import { type DeliverySample, emptyDeliverySample } from "./congestion/types.ts";
import { TcpSegmentOutput } from "./output.ts";
import { SackScoreboard } from "./sack.ts";
import { seqAdd, seqDiff, seqLt } from "./seq.ts";

export abstract class TcpDeliveryReport extends TcpSegmentOutput {
  /** The RTT sample of the ACK being processed (ms), -1 when it gave none. */
  protected ackRtt = -1;
  /** This ACK delivered a segment sent later than any delivered before (RACK.xmit_ts moved). */
  protected rateSampled = false;
  private readonly sample: DeliverySample = emptyDeliverySample();
  /**
   * Sequence ranges RACK found lost (rack-recovery.ts), kept after they are resent: their original
   * transmission is gone, so only a retransmission (below HighRxt) counts in flight, as Linux's
   * lost_out. Rebuilt from the lost queue at each recovery's start (HighRxt restarts there).
   */
  protected readonly rackMarked = new SackScoreboard();

  /**
   * RFC 6675 SetPipe() less what RACK found lost (Linux's tcp_packets_in_flight: packets_out -
   * (sacked_out + lost_out) + retrans_out): RACK-lost bytes count no original in the holes IsLost
   * spares, and those still queued (rackLost) no retransmission either, below HighRxt; no copy of
   * them is on its way until they go again.
   */
  protected recoveryPipe(): number {
    const una = this.sndUna;
    const highRxt = seqLt(this.highRxt, una) ? una : this.highRxt;
    let pipe = this.sb.pipe(una, this.sndMax, highRxt, this.sendMss, this.rackMarked);
    const q = this.rackLost;
    for (let i = 0; i < q.length; i += 2) {
      const s = q[i] as number;
      const e = q[i + 1] as number;
      if (!seqLt(s, highRxt)) continue;
      const lo = seqLt(s, una) ? una : s;
      const hi = seqLt(e, highRxt) ? e : highRxt;
      if (seqLt(lo, hi)) pipe -= seqDiff(hi, lo) - this.sb.sackedBetween(lo, hi);
    }
    return Math.max(pipe, 0);
  }

  /**
   * Tell a model-based controller (BBR) what this ACK delivered, after the recovery state changed.
   * RACK's RTT (clock time of the newest delivered segment) is finer than the 1 ms timestamps.
   */
  protected reportDelivery(acked: number, recoveriesBefore: number): void {
    const s = this.sample;
    this.delivered += acked;
    s.delivered = this.delivered;
    s.acked = acked;
    // In SACK recovery RFC 6675's pipe, which leaves out what is deemed lost, by IsLost or RACK (as
    // Linux's packets_in_flight does): packet conservation must not count those as still in flight.
    // After a timeout only what went again since (up to the rolled-back SND.NXT) is in flight.
    if (this.inRecovery && this.sackEnabled) s.inflight = this.recoveryPipe();
    else if (this.sndNxt !== this.sndMax)
      s.inflight = seqDiff(this.sndNxt, this.sndUna) - this.sb.sackedBetween(this.sndUna, this.sndNxt);
    else s.inflight = Math.max(0, seqDiff(this.sndMax, this.sndUna) - this.sb.sackedBytes);
    s.now = this.opts.clock.now();
    s.rtt = this.ackRtt;
    s.retransmitted = this.retransmittedBytes;
    s.recovering = seqLt(this.sndUna, this.recover);
    // RACK.xmit_ts; without SACK the timestamp echo (or Karn timing) tells when the ACKed segment left.
    s.sentAt = this.rack.xmitTs >= 0 ? this.rack.xmitTs : this.ackRtt >= 0 ? s.now - this.ackRtt : -1;
    // Delivery rate (draft-cheng-iccrg-delivery-rate-estimation): what was delivered since the
    // newest delivered segment left, over the longer of its send and ACK intervals, so neither ACK
    // compression nor a burst of SACKs for old data can claim more than the data was sent at.
    s.rate = -1;
    if (this.rateSampled) {
      const r = this.rack;
      s.interval = Math.max(r.xmitTs - r.rsFirstSent, s.now - r.rsDeliveredTime);
      if (s.interval > 0) s.rate = (this.delivered - r.rsDelivered) / s.interval;
      this.firstSentTime = r.xmitTs;
    }
    if (acked > 0) this.deliveredTime = s.now;
    s.appLimited = seqDiff(seqAdd(this.sndBufSeq, this.sendBuf.length), this.sndNxt) <= 0;
    s.lost = this.opts.stats.fastRecoveries !== recoveriesBefore || this.rackLost.length > 0;
    this.cc.onDelivery?.(s);
  }
}
