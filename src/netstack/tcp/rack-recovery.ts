/**
 * RACK-TLP (RFC 8985) on the sender: what each ACK tells RACK (delivery order, reordering, D-SACKs
 * of spurious retransmissions, the reordering window), loss detection by time with its reordering
 * timer, and the bookkeeping of the tail loss probe. The probe itself and the timer slot live in
 * timers.ts; the retransmissions of what RACK finds lost go out through sender.ts's recovery.
 */
import { MAX_RACK_LOST } from "./constants.ts";
import { TcpDeliveryReport } from "./delivery.ts";
import { DUP_THRESH } from "./sack.ts";
import { seqDiff, seqGe, seqGt, seqLe, seqLt } from "./seq.ts";

/** What checkDsack() found in an ACK's first SACK block. */
export const DSACK_NONE = 0;
export const DSACK_RETRANSMISSION = 1;
export const DSACK_TLP = 2;

export abstract class TcpRackRecovery extends TcpDeliveryReport {
  /** Segments RACK has found lost (so a timer expiry knows whether it found any). */
  private rackFound = 0;
  /** Arm the retransmission timer's slot as RACK's reordering timer (timers.ts). */
  protected abstract armReorderTimer(ms: number): void;
  /** (Re)arm the retransmission or tail loss probe timer (timers.ts). */
  protected abstract armRetransmitTimer(restart: boolean): void;
  /** Enter fast recovery (sender.ts). */
  protected abstract enterRecovery(): void;
  /** Send what window, congestion window and recovery allow (sender.ts). */
  protected abstract trySend(): void;

  /**
   * A D-SACK (RFC 2883: the first block lies below the cumulative ACK or inside the second block)
   * reports a segment the peer got twice. One for a retransmission (not the tail loss probe's, and
   * not more than was ever resent: the network duplicates too) means a retransmission was spurious,
   * so RACK's reordering window grows (RFC 8985 §6.2 step 4).
   */
  protected checkDsack(blocks: Uint32Array, count: number, ack: number): number {
    const l0 = blocks[0] as number;
    const r0 = blocks[1] as number;
    const dsack = seqLt(l0, ack) || (count > 1 && seqGe(l0, blocks[2] as number) && seqLe(r0, blocks[3] as number));
    if (!dsack || !seqLt(l0, r0)) return DSACK_NONE;
    this.dsackBytes += seqDiff(r0, l0);
    if (this.dsackBytes > this.retransmittedBytes) return DSACK_NONE;
    // The probe's copy: TLP, a timer, retransmitted it; that says nothing about reordering.
    if (this.tlpEndSeq >= 0 && this.tlpIsRetrans && r0 === this.tlpEndSeq) return DSACK_TLP;
    this.opts.stats.spuriousRetransmits++;
    this.rack.onDsack(seqGt(ack, this.sndUna) ? ack : this.sndUna, this.sndMax);
    return DSACK_RETRANSMISSION;
  }

  /**
   * TLP_process_ack (RFC 8985 §7.4), for an ACK at or beyond TLP.end_seq: a probe of new data, or
   * one the peer reports as a duplicate, repaired nothing; an ACK beyond it (or a duplicate ACK
   * without SACK at it) says the probe repaired a single loss, which the congestion controller must
   * hear of (a model-based one measures loss itself, as Linux's cong_control ones do).
   */
  protected tlpProcessAck(ack: number, dsackOfProbe: boolean, plainDupAck: boolean): void {
    if (!this.tlpIsRetrans || dsackOfProbe) {
      this.tlpEndSeq = -1;
      return;
    }
    if (!seqGt(ack, this.tlpEndSeq) && !plainDupAck) return;
    this.tlpEndSeq = -1;
    this.opts.stats.tlpRepairs++;
    if (!this.cc.onDelivery) {
      this.cc.onEnterRecovery(seqDiff(this.sndMax, this.sndUna), this.opts.clock.now(), true);
      this.hystart.stop();
    }
  }

  /**
   * RACK (RFC 8985 §6) after an ACK: note what was delivered (RACK.xmit_ts, reordering, min RTT),
   * then detect losses by time: a segment sent RACK.rtt + reo_wnd before one that was delivered is
   * lost (first transmissions and retransmissions alike); enter recovery on it. RFC 6675 alone
   * never resends a hole twice (only the RTO would), and needs DupThresh segments SACKed above a
   * hole, which a lost tail never gets.
   */
  protected rackUpdate(sacked: boolean): void {
    const now = this.opts.clock.now();
    const xmitNo = this.rack.xmitNo;
    this.rack.onAck(this.sndUna, this.sb, sacked, now, this.minRtt);
    // A later-sent segment was delivered: a rate sample (segments of one burst share their send
    // time, so it is the transmission order that counts).
    if (this.rack.xmitNo !== xmitNo) {
      this.rateSampled = true;
      // Karn: a retransmission delivered "at once" may be the original's ACK (a 25 µs min RTT once).
      if (!this.rack.rttAmbiguous) this.ackRtt = this.rack.rtt;
    }
    this.rackDetectLoss(now);
  }

  /**
   * RACK_detect_loss_and_arm_timer (RFC 8985 §6.2 step 5, §6.3): queue what is lost, enter
   * recovery on it, and when segments are spared only because they left within reo_wnd of the
   * delivered one, arm the reordering timer for when the last of them would be lost.
   */
  protected rackDetectLoss(now: number): void {
    const recovering = this.inRecovery || seqLt(this.sndUna, this.recover);
    const reoWnd = this.rack.reoWnd(
      recovering,
      this.sb.sackedBytes / this.sendMss,
      DUP_THRESH,
      this.rtt.srtt,
      this.minRtt,
    );
    const timeout = this.rack.detectLoss(now, this.sndUna, reoWnd, this.onRackLost);
    if (this.rackLost.length > 0 && !this.inRecovery && seqGe(this.sndUna, this.recover)) this.enterRecovery();
    if (timeout > 0) this.armReorderTimer(timeout);
    // Nothing left to wait for: the slot goes back to the RTO.
    else if (this.reoArmed) this.armRetransmitTimer(true);
  }

  /**
   * The reordering timer expired (RFC 8985 §6.3): detect again (no ACK came to do it), and send
   * what is now found lost; the slot then goes back to the RTO unless RACK armed it again.
   */
  protected onReorderTimeout(): void {
    if (this.sndMax === this.sndUna) return;
    const found = this.rackFound;
    this.rackDetectLoss(this.opts.clock.now());
    if (this.rackFound !== found) this.opts.stats.reorderTimeouts++;
    if (this.rackLost.length > 0) this.trySend();
  }

  private readonly onRackLost = (start: number, end: number, retransmitted: boolean): boolean => {
    if (this.rackLost.length >= 2 * MAX_RACK_LOST) return false;
    this.rackLost.push(start, end);
    this.rackMarked.add(start, end, this.sndUna, this.sndMax);
    this.rackFound++;
    if (retransmitted) this.opts.stats.rackLostRetransmits++;
    return true;
  };
}
