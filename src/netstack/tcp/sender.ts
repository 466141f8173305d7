/**
 * The sending side: ACK processing (RFC 9293 §3.10.7.4 fifth check, RFC 5961 §5.2), the SACK
 * scoreboard update and loss recovery (RFC 6675, NewReno RFC 5681/6582 without SACK), and sending
 * new data and retransmissions as window and congestion window allow.
 */
import { TCP_FIN, TCP_SYN } from "../../wire/tcp.ts";
import { DUPACK_THRESHOLD } from "./constants.ts";
import { DSACK_NONE, DSACK_TLP, TcpRackRecovery } from "./rack-recovery.ts";
import type { TcpSegmentIn } from "./segment.ts";
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from "./seq.ts";
import { EV_WRITABLE } from "./tcb.ts";

export abstract class TcpSender extends TcpRackRecovery {
  /** May `len` bytes leave now under pacing (timers.ts)? */
  protected abstract paceReady(len: number): boolean;

  /**
   * ACK processing for synchronized states (§3.10.7.4 fifth check, RFC 5961 §5.2, RFC 5681/6582).
   * Returns false when the segment must be dropped.
   */
  protected processAck(seg: TcpSegmentIn): boolean {
    const ack = seg.ack;
    const stats = this.opts.stats;
    if (seqGt(ack, this.sndMax)) {
      stats.drop("tcp-ack-unsent");
      this.sendAck();
      return false;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -this.maxSndWnd))) {
      stats.drop("tcp-ack-too-old");
      this.sendAck();
      return false;
    }
    const newWnd = seg.window * 2 ** this.sndShift;
    const una0 = this.sndUna;
    const advanced = seqGt(ack, una0);
    this.ackRtt = -1;
    this.rateSampled = false;
    const dataAcked = advanced ? this.ackData(seg, ack) : 0;
    // RFC 6675 Update(): fold the SACK blocks into the scoreboard.
    let newlySacked = 0;
    // Bytes acknowledged now that were not SACKed before (delivered only now).
    let newlyAcked = advanced ? seqDiff(ack, una0) : 0;
    const o = seg.options;
    let dsack = DSACK_NONE;
    if (this.sackEnabled) {
      if (o.sackCount > 0) dsack = this.checkDsack(o.sackBlocks, o.sackCount, ack);
      if (advanced) {
        const before = this.sb.sackedBytes;
        this.sb.ackTo(ack);
        newlyAcked -= before - this.sb.sackedBytes;
        this.rackMarked.ackTo(ack);
      }
      for (let i = 0; i < o.sackCount; i++) {
        newlySacked += this.sb.add(
          o.sackBlocks[2 * i] as number,
          o.sackBlocks[2 * i + 1] as number,
          this.sndUna,
          this.sndMax,
        );
      }
    }
    if (this.tlpEndSeq >= 0 && seqGe(ack, this.tlpEndSeq)) {
      this.tlpProcessAck(ack, dsack === DSACK_TLP, !advanced && o.sackCount === 0 && seg.payloadLength === 0);
    }
    const recoveries0 = this.opts.stats.fastRecoveries;
    if (advanced) {
      // A fast or timeout recovery ends (RACK's reordering window counts them, RFC 8985 §6.2 step 4).
      if (seqLt(una0, this.recover) && seqGe(ack, this.recover)) this.rack.onRecoveryEnd();
      this.onNewAck(dataAcked);
    } else if (ack === this.sndUna && this.sndMax !== this.sndUna) {
      // A duplicate ACK (RFC 5681 §2). With SACK it must report new data (RFC 6675 §2), so
      // duplicated or window-update ACKs do not count; an ACK without any SACK block falls back to
      // the classic rule.
      const classic =
        seg.payloadLength === 0 && !(seg.flags & (TCP_SYN | TCP_FIN)) && newWnd === this.sndWnd && this.sndWnd > 0;
      if (this.sackEnabled ? newlySacked > 0 || (classic && o.sackCount === 0) : classic) this.onDupAck();
    }
    // RFC 6675 §5 (b): enough SACKed above SND.UNA means it is lost, whatever the ACK count.
    if (
      this.sackEnabled &&
      !this.inRecovery &&
      newlySacked > 0 &&
      seqGe(this.sndUna, this.recover) &&
      this.sb.isLost(this.sndUna, this.sendMss)
    ) {
      this.enterRecovery();
    }
    if (this.sackEnabled && this.rack.size > 0) this.rackUpdate(newlySacked > 0);
    if (this.cc.onDelivery) this.reportDelivery(newlyAcked + newlySacked, recoveries0);
    // Window update (§3.10.7.4): only from segments newer than the last update.
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      this.updateWindow(seg.window, seg.seq, ack, this.sndShift);
    }
    return true;
  }

  /** SND.UNA advances to `ack`: free the send buffer, take an RTT sample. Returns data bytes acked. */
  protected ackData(seg: TcpSegmentIn, ack: number): number {
    const dataAcked = Math.min(Math.max(0, seqDiff(ack, this.sndBufSeq)), this.sendBuf.length);
    this.sendBuf.drop(dataAcked);
    this.opts.stats.sendBufferedBytes -= dataAcked;
    this.sndBufSeq = seqAdd(this.sndBufSeq, dataAcked);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    if (this.tsEnabled && seg.options.hasTimestamp && seg.options.tsEcr !== 0) {
      this.ackRtt = this.tsEcrAge(seg.options.tsEcr);
      this.rttSample(this.ackRtt);
    } else if (this.rttTiming && seqGe(ack, this.rttSeq)) {
      this.rttTiming = false;
      this.ackRtt = this.opts.clock.now() - this.rttTime;
      this.rttSample(this.ackRtt);
    }
    this.rtt.resetBackoff();
    this.retries = 0;
    if (dataAcked > 0) this.path.acks++;
    return dataAcked;
  }

  protected onNewAck(dataAcked: number): void {
    const ack = this.sndUna;
    if (this.inRecovery) {
      if (seqGe(ack, this.recover)) {
        this.inRecovery = false;
        this.dupAcks = 0;
        this.cc.onExitRecovery(seqDiff(this.sndMax, this.sndUna) - this.sb.sackedBytes);
      } else if (!this.sackEnabled) {
        // RFC 6582 §3.2 step 5: partial ACK, retransmit the next hole at once.
        this.cc.onPartialAck(dataAcked);
        this.retransmitHead();
      }
      // With SACK, trySend() runs NextSeg against the updated pipe.
    } else {
      this.dupAcks = 0;
      if (dataAcked > 0) {
        let acked = dataAcked;
        if (this.cc.cwnd < this.cc.ssthresh && !this.hystart.done) {
          // HyStart++ (RFC 9406): rounds end at SND.NXT; CSS grows at a quarter of the rate.
          this.hystart.onAck(ack, this.sndNxt);
          if (this.hystart.done) this.cc.exitSlowStart();
          else acked = dataAcked / this.hystart.growthDivisor;
        }
        this.cc.onAck(acked, this.opts.clock.now(), this.rtt.srtt);
      }
    }
    if (this.autotune?.onCwnd(this.cc.cwnd, this.sendBuf) && this.writeBlocked) {
      this.writeBlocked = false;
      this.events |= EV_WRITABLE;
    }
    // RFC 6298 §5.2-5.3 (or the tail loss probe timeout, RFC 8985 §7.2).
    this.armRetransmitTimer(true);
    if (this.writeBlocked && this.sendBuf.free > 0) {
      this.writeBlocked = false;
      this.events |= EV_WRITABLE;
    }
  }

  protected onDupAck(): void {
    this.dupAcks++;
    if (this.inRecovery) {
      if (!this.sackEnabled && this.dupAcks > DUPACK_THRESHOLD) this.cc.onDupAckInRecovery();
      return;
    }
    // RFC 5681 §3.2 steps 2-3 / RFC 6582 §3.2 step 2 / RFC 6675 §5 (a): fast retransmit.
    if (this.dupAcks >= DUPACK_THRESHOLD && seqGe(this.sndUna, this.recover)) {
      if (this.sackEnabled || this.dupAcks === DUPACK_THRESHOLD) this.enterRecovery();
    }
  }

  /** Enter fast recovery and retransmit the first unacknowledged segment (RFC 6675 §5 step 4). */
  protected enterRecovery(): void {
    this.inRecovery = true;
    this.recover = this.sndMax;
    this.opts.stats.fastRecoveries++;
    // The recovery's own cwnd reduction covers whatever a probe repaired (Linux: tcp_init_cwnd_reduction).
    this.tlpEndSeq = -1;
    this.hystart.stop();
    this.cc.onEnterRecovery(seqDiff(this.sndMax, this.sndUna), this.opts.clock.now(), this.sackEnabled);
    // A pending tail loss probe timeout becomes the RTO (no probes during recovery).
    if (this.ptoArmed) this.armRetransmitTimer(true);
    if (!this.sackEnabled) {
      this.retransmitHead();
      return;
    }
    this.rescueDone = false;
    this.highRxt = this.sndUna;
    // What the last recovery resent is no longer below HighRxt: RACK's marks on it would leave it
    // out of pipe while it is on its way. Only what still waits to go again stays marked.
    this.rackMarked.clear();
    const q = this.rackLost;
    for (let i = 0; i < q.length; i += 2)
      this.rackMarked.add(q[i] as number, q[i + 1] as number, this.sndUna, this.sndMax);
    // Resent in the last recovery and still on its way: not again (RACK says when it is lost).
    const inFlight = this.rack.retransmissionInFlight(this.sndUna);
    if (inFlight >= 0) {
      this.highRxt = inFlight;
      return;
    }
    const n = this.retransmitAt(this.sndUna, this.sb.nextSackedAfter(this.sndUna, this.sndMax));
    this.highRxt = seqAdd(this.sndUna, n);
  }

  /** Send new data (and our FIN) as window, congestion window and SWS avoidance allow. */
  protected trySend(): void {
    const s = this.state;
    if (s !== "ESTABLISHED" && s !== "CLOSE-WAIT" && s !== "FIN-WAIT-1" && s !== "CLOSING" && s !== "LAST-ACK") return;
    if (this.inRecovery && this.sackEnabled) this.sendRecovery();
    else this.sendNormal();
    const unsent = seqDiff(seqAdd(this.sndBufSeq, this.sendBuf.length), this.sndNxt);
    if (this.sndWnd === 0 && unsent > 0 && this.sndNxt === this.sndUna) this.persisting = true;
    this.armTimer();
  }

  /**
   * Outside SACK recovery: send from SND.NXT (new data, or go-back-N after a timeout, skipping what
   * the peer SACKed). Bytes the peer SACKed have left the network and do not count as in flight.
   */
  protected sendNormal(): void {
    const sack = this.sackEnabled && this.sb.count > 0;
    for (;;) {
      if (sack && seqLt(this.sndNxt, this.sndMax)) {
        const skip = this.sb.skipSacked(this.sndNxt);
        if (skip !== this.sndNxt) {
          this.sndNxt = skip;
          continue;
        }
      }
      const outstanding = seqDiff(this.sndNxt, this.sndUna);
      const inFlight = sack ? outstanding - this.sb.sackedBetween(this.sndUna, this.sndNxt) : outstanding;
      const usable = Math.min(this.sndWnd - outstanding, this.cc.cwnd - inFlight);
      let limit = usable;
      if (sack && seqLt(this.sndNxt, this.sndMax)) {
        limit = Math.min(limit, seqDiff(this.sb.nextSackedAfter(this.sndNxt, this.sndMax), this.sndNxt));
      }
      const n = this.sendNew(limit, inFlight > 0);
      if (n === 0) break;
    }
  }

  /**
   * Send one segment at SND.NXT of at most `usable` bytes (FIN included when it is due). Sender SWS
   * avoidance (RFC 9293 §3.8.6.2.1): no small segment that is not the tail of the data while an ACK
   * is still due, unless it is at least half the peer's largest window. Returns the sequence space
   * used (0 when nothing went out).
   */
  protected sendNew(usable: number, ackDue: boolean): number {
    const unsent = seqDiff(seqAdd(this.sndBufSeq, this.sendBuf.length), this.sndNxt);
    if (unsent > 0) {
      if (usable <= 0) return 0;
      const mss = this.sendMss;
      const len = Math.min(unsent, usable, mss);
      if (len < mss && len < unsent && ackDue && len < this.maxSndWnd / 2) return 0;
      if (!this.paceReady(len)) return 0;
      const fin = this.finQueued && len === unsent;
      this.sendData(this.sndNxt, len, fin);
      this.pacer.spend(len);
      const used = len + (fin ? 1 : 0);
      this.sndNxt = seqAdd(this.sndNxt, used);
      return used;
    }
    if (this.finQueued && this.sndNxt === this.finSeq) {
      this.sendData(this.sndNxt, 0, true);
      this.sndNxt = seqAdd(this.sndNxt, 1);
      return 1;
    }
    return 0;
  }

  /**
   * RFC 6675 §5 step (C): while cwnd - pipe >= 1 SMSS, send what NextSeg() picks: (1) the first
   * lost hole above HighRxt, (2) new data, (3) the first un-SACKed hole above HighRxt, (4) one
   * rescue retransmission of the highest un-SACKed segment per recovery.
   */
  protected sendRecovery(): void {
    const mss = this.sendMss;
    const una = this.sndUna;
    if (seqLt(this.highRxt, una)) this.highRxt = una;
    let pipe = this.recoveryPipe();
    // Waiting for the pacer must not turn into rule (3) retransmissions of segments still in flight.
    while (this.cc.cwnd - pipe >= mss && this.paceReady(mss)) {
      const lost = this.rackLost.length > 0 ? this.retransmitRackLost() : 0;
      if (lost > 0) {
        pipe += lost;
        this.pacer.spend(lost);
        continue;
      }
      let s = this.nextHole(una, mss, true);
      if (s < 0) {
        const n = this.sndNxt === this.sndMax ? this.sendNew(this.sndWnd - seqDiff(this.sndNxt, una), true) : 0;
        if (n > 0) {
          pipe += n;
          continue;
        }
        s = this.nextHole(una, mss, false);
      }
      if (s >= 0) {
        const n = this.retransmitAt(s, this.sb.holeEnd);
        if (n === 0) break;
        this.pacer.spend(n);
        this.highRxt = seqAdd(s, n);
        pipe += n;
        continue;
      }
      if (!this.rescueDone && !this.sb.empty && seqLt(this.sb.highSacked, this.sndMax)) {
        this.rescueDone = true;
        let from = seqAdd(this.sndMax, -mss);
        if (seqLt(from, this.sb.highSacked)) from = this.sb.highSacked;
        if (seqLt(from, this.highRxt)) from = this.highRxt;
        const n = seqLt(from, this.sndMax) ? this.retransmitAt(from, this.sndMax) : 0;
        pipe += n;
      }
      break;
    }
  }

  /**
   * RFC 6675 NextSeg's hole search from HighRxt, passing over holes whose retransmission (from an
   * earlier recovery) is still on its way: HighRxt moves past them (RACK says when one is lost).
   */
  private nextHole(una: number, mss: number, lostOnly: boolean): number {
    for (;;) {
      const s = this.sb.findHole(this.highRxt, una, mss, lostOnly);
      if (s < 0) return s;
      const inFlight = this.rack.retransmissionInFlight(s);
      if (inFlight < 0 || !seqGt(inFlight, this.highRxt)) return s;
      this.highRxt = inFlight;
    }
  }

  /**
   * Retransmit one segment starting at `seq`, at most one MSS and not past `limit` (the FIN rides
   * along when the segment reaches it). Returns the sequence space resent (0 when nothing).
   */
  protected retransmitAt(seq: number, limit: number): number {
    const dataEnd = seqAdd(this.sndBufSeq, this.sendBuf.length);
    const len = Math.max(0, Math.min(this.sendMss, seqDiff(limit, seq), seqDiff(dataEnd, seq)));
    const end = seqAdd(seq, len);
    const fin = this.finQueued && end === this.finSeq && seqGt(this.sndMax, this.finSeq) && seqGt(limit, end);
    if (len === 0 && !fin) return 0;
    this.sendData(seq, len, fin);
    return len + (fin ? 1 : 0);
  }

  /** Retransmit the first unacknowledged segment (fast retransmit, partial ACK). */
  protected retransmitHead(): void {
    const outstandingData = Math.min(this.sendBuf.length, seqDiff(this.sndMax, this.sndBufSeq));
    const len = Math.max(0, Math.min(this.sendMss, outstandingData));
    const fin = this.finQueued && seqGt(this.sndMax, this.finSeq) && len === outstandingData;
    if (len === 0 && !fin) return;
    this.sendData(this.sndUna, len, fin);
  }

  protected armTimer(): void {
    this.armRetransmitTimer(false);
  }

  /** Send the first lost retransmission RACK found that is still missing; returns bytes sent. */
  private retransmitRackLost(): number {
    const q = this.rackLost;
    while (q.length > 0) {
      const s = q[0] as number;
      const e = q[1] as number;
      q.splice(0, 2);
      if (seqLe(e, this.sndUna) || (this.sb.isSacked(s) && seqGe(this.sb.skipSacked(s), e))) continue;
      const from = seqLt(s, this.sndUna) ? this.sndUna : s;
      const n = this.retransmitAt(from, e);
      if (n > 0) {
        // NextSeg (RFC 6675) must not pick the same hole again.
        if (seqGt(seqAdd(from, n), this.highRxt)) this.highRxt = seqAdd(from, n);
        return n;
      }
    }
    return 0;
  }
}
