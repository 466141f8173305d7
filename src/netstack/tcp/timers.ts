/**
 * Timer expiry: retransmission (RFC 6298, zero-window probes per RFC 9293 §3.8.6.1), tail loss
 * probes (RFC 8985 §7), pacing (pacing.ts), and the auxiliary timer that bounds the handshake, probes a silent peer (keepalive), and bounds
 * FIN-WAIT-2 and TIME-WAIT.
 */
import { TCP_ACK } from "../../wire/tcp.ts";
import {
  KEEPALIVE_IDLE_MS,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_PROBES,
  MAX_RETRANSMITS,
  THIN_FLOW_SEGMENTS,
  THIN_LINEAR_TIMEOUTS,
  TIME_WAIT_MS,
  TIMESTAMP_OPTION_BYTES,
  TLP_DELAYED_ACK_MS,
  TLP_MIN_PTO_MS,
} from "./constants.ts";
import { TcpSender } from "./sender.ts";
import { seqAdd, seqDiff, seqGt, seqLt } from "./seq.ts";
import { EV_CLOSED } from "./tcb.ts";

export abstract class TcpTimers extends TcpSender {
  protected onRetransmitTimer(): void {
    if (this.released || this.state === "TIME-WAIT") return;
    const stats = this.opts.stats;
    if (this.state === "SYN-SENT" || this.state === "SYN-RECEIVED") {
      // The handshake deadline (auxTimer) bounds these repeats.
      stats.retransmits++;
      this.rtt.onTimeout();
      this.sendSyn();
      this.rtxTimer.set(this.rtt.rto);
      return;
    }
    if (this.reoArmed) {
      // RACK's reordering timeout (RFC 8985 §6.3), then the RTO again unless RACK re-armed.
      this.reoArmed = false;
      this.onReorderTimeout();
      if (!this.reoArmed) this.armRetransmitTimer(true);
      return;
    }
    if (this.persisting) {
      if (this.sndWnd > 0) this.persisting = false;
      else {
        // Zero-window probe (RFC 9293 §3.8.6.1): one byte, repeated with backoff, never giving up
        // while the peer answers.
        if (this.sndNxt === this.sndUna) {
          this.sendData(this.sndNxt, 1, false);
          this.sndNxt = seqAdd(this.sndNxt, 1);
        } else {
          this.sendData(this.sndUna, 1, false);
        }
        this.rtt.onTimeout();
        this.rtxTimer.set(this.rtt.rto);
        return;
      }
    }
    if (this.sndMax === this.sndUna) return;
    if (this.ptoArmed) {
      // A probe timeout, not an RTO: probe, or (recovery began meanwhile) wait for the real RTO.
      this.ptoArmed = false;
      if (this.inRecovery) this.armRetransmitTimer(true);
      else this.sendProbe();
      return;
    }
    // `retries` is reset whenever new data is acknowledged; so is the count of linear timeouts.
    if (this.retries === 0) this.linearTimeouts = 0;
    this.retries++;
    const linear = this.linearTimeout();
    if (linear) this.linearTimeouts++;
    if (this.retries - this.linearTimeouts > MAX_RETRANSMITS) {
      this.opts.log.debug(`tcp ${this.localPort}->${this.remotePort}: giving up after ${MAX_RETRANSMITS} retransmits`);
      this.sendReset();
      this.fireClosed("timeout");
      this.release();
      return;
    }
    // RFC 6298 §5.4-5.6 and RFC 5681 §3.1: back off, collapse cwnd, resend from SND.UNA. The
    // SACK scoreboard is kept (RFC 6675 §5.1) so the resend skips what the peer holds, unless the
    // same data timed out again: then the peer may have reneged, so forget it (RFC 2018 §8).
    stats.rtoExpirations++;
    if (this.retries > 1) this.sb.clear();
    this.rack.clear();
    this.rackLost.length = 0;
    this.rackMarked.clear();
    this.tlpEndSeq = -1;
    if (linear) this.rtt.resetBackoff();
    else this.rtt.onTimeout();
    this.cc.onTimeout(seqDiff(this.sndMax, this.sndUna), this.opts.clock.now());
    this.hystart.stop();
    this.inRecovery = false;
    this.dupAcks = 0;
    this.recover = this.sndMax;
    this.rttTiming = false;
    this.sndNxt = this.sndUna;
    this.setRetransmitTimer(this.rtt.rto);
    this.trySend();
  }

  /** Start the retransmission timer, noting how far the peer's other flows have got. */
  private setRetransmitTimer(ms: number): void {
    this.pathAcksAtArm = this.path.acks;
    this.rtxTimer.set(ms);
  }

  /**
   * Does this expiry keep the un-backed-off RTO (THIN_LINEAR_TIMEOUTS)? Only for a thin flow, and
   * only while the peer acknowledged other flows' data during the wait: a silent peer (dead path,
   * or this flow alone) gets the RFC 6298 backoff as before.
   */
  private linearTimeout(): boolean {
    return (
      (this.state === "ESTABLISHED" || this.state === "CLOSE-WAIT") &&
      this.linearTimeouts < THIN_LINEAR_TIMEOUTS &&
      this.path.acks !== this.pathAcksAtArm &&
      seqDiff(this.sndNxt, this.sndUna) < THIN_FLOW_SEGMENTS * this.sendMss
    );
  }

  /**
   * The path to the peer changed (it roamed to a new endpoint). If the retransmission timer has
   * backed off, what it waits to resend was probably lost on the old path, and the next expiry may
   * be many seconds away: drop the backoff and the retry count (the peer is evidently alive) and
   * expire the timer now, which resends from SND.UNA. A flow whose timer has not backed off is
   * left alone: nothing says it lost anything, and a spurious resend would collapse its cwnd.
   */
  kickRetransmission(): boolean {
    if (this.released || this.rtxTimer.deadline < 0 || this.rtt.backoff === 0) return false;
    this.rtt.resetBackoff();
    this.retries = 0;
    this.rtxTimer.set(0);
    return true;
  }

  protected onAuxTimer(): void {
    if (this.released) return;
    if (this.state === "ESTABLISHED" || this.state === "CLOSE-WAIT") {
      this.onKeepaliveTimer();
      return;
    }
    if (this.state === "FIN-WAIT-2") {
      // Our FIN is acknowledged but the peer never closed its side: do not hold the flow forever.
      this.opts.stats.finWait2Timeouts++;
      this.sendReset();
      this.fireClosed("timeout");
      this.release();
      return;
    }
    if (this.state === "TIME-WAIT") {
      this.state = "CLOSED";
      this.release();
      return;
    }
    if (this.state === "SYN-SENT" || this.state === "SYN-RECEIVED") {
      if (this.state === "SYN-RECEIVED" && !this.synAckSent) {
        this.resetUnansweredSyn();
      } else if (this.state === "SYN-RECEIVED") this.sendReset();
      this.fireClosed("timeout");
      this.release();
    }
  }

  /** See KEEPALIVE_IDLE_MS. */
  private onKeepaliveTimer(): void {
    const stats = this.opts.stats;
    if (this.heard) {
      this.heard = false;
      this.keepaliveMisses = 0;
      this.auxTimer.set(KEEPALIVE_IDLE_MS);
      return;
    }
    if (this.keepaliveMisses >= KEEPALIVE_PROBES) {
      this.opts.log.debug(
        `tcp ${this.localPort}->${this.remotePort}: no answer to ${KEEPALIVE_PROBES} keepalive probes`,
      );
      stats.keepaliveTimeouts++;
      this.sendReset();
      this.fireClosed("timeout");
      this.release();
      return;
    }
    // <SEQ=SND.NXT-1>, no data: the peer must answer with an ACK. With data outstanding the
    // retransmissions (or zero-window probes) are the probes, so only the silence is counted.
    if (this.sndMax === this.sndUna) {
      this.fillHeader(TCP_ACK, seqAdd(this.sndMax, -1));
      this.emit(0);
      stats.keepaliveProbes++;
    }
    this.keepaliveMisses++;
    this.auxTimer.set(KEEPALIVE_INTERVAL_MS);
  }

  protected enterTimeWait(): void {
    this.state = "TIME-WAIT";
    this.rtxTimer.clear();
    this.auxTimer.set(TIME_WAIT_MS);
    this.finishGracefully();
  }

  /**
   * Both FINs are through. onClosed("closed") waits until the app has consumed every received
   * byte (the gateway ends the host socket on it), then only the TIME-WAIT demux entry lingers.
   */
  protected finishGracefully(): void {
    this.closePending = true;
    this.events |= EV_CLOSED;
  }

  /**
   * Arm the retransmission timer while anything is outstanding (restart: even when armed), as a
   * tail loss probe timeout (PTO = 2 SRTT, RFC 8985 §7.2) when a probe may go and that is sooner.
   */
  protected armRetransmitTimer(restart: boolean): void {
    if (this.released || this.state === "TIME-WAIT") return;
    if (!this.persisting && this.sndMax === this.sndUna) {
      this.rtxTimer.clear();
      this.ptoArmed = false;
      this.reoArmed = false;
      return;
    }
    if (!restart && this.rtxTimer.deadline >= 0) return;
    this.reoArmed = false;
    const rto = this.rtt.rto;
    if (this.tlpAllowed()) {
      let pto = Math.max(2 * this.rtt.srtt, TLP_MIN_PTO_MS);
      // One segment in flight: the peer may be holding its ACK back (delayed ACK).
      if (seqDiff(this.sndMax, this.sndUna) <= this.sendMss) pto += TLP_DELAYED_ACK_MS;
      // RFC 8985 §7.2: no later than the RTO would fire; the probe then goes in its place (cwnd
      // intact), and the RTO follows it (sendProbe).
      this.ptoArmed = true;
      this.setRetransmitTimer(Math.min(pto, rto));
      return;
    }
    this.ptoArmed = false;
    this.setRetransmitTimer(rto);
  }

  /**
   * RACK's reordering timer takes the slot (Linux: ICSK_TIME_REO_TIMEOUT replaces the RTO/PTO):
   * it fires within an RTT, and its expiry arms the RTO again.
   */
  protected armReorderTimer(ms: number): void {
    if (this.released || this.state === "TIME-WAIT") return;
    this.ptoArmed = false;
    this.reoArmed = true;
    this.rtxTimer.set(ms);
  }

  protected tlpAllowed(): boolean {
    const s = this.state;
    return (
      this.sackEnabled &&
      !this.inRecovery &&
      !this.persisting &&
      this.tlpEndSeq < 0 &&
      this.rtt.srtt >= 0 &&
      this.rtt.backoff === 0 &&
      (s === "ESTABLISHED" || s === "CLOSE-WAIT" || s === "FIN-WAIT-1" || s === "CLOSING" || s === "LAST-ACK")
    );
  }

  /**
   * The PTO expired (RFC 8985 §7.3): send one probe, new data if the window allows, else the last
   * segment again, so the peer's ACK (with SACK) reveals a lost tail without waiting for the RTO.
   */
  protected sendProbe(): void {
    this.opts.stats.tlpProbes++;
    const unsent = seqDiff(seqAdd(this.sndBufSeq, this.sendBuf.length), this.sndNxt);
    const len = Math.min(unsent, this.sendMss);
    if (len > 0 && this.sndNxt === this.sndMax && this.sndWnd - seqDiff(this.sndNxt, this.sndUna) >= len) {
      const fin = this.finQueued && len === unsent;
      this.sendData(this.sndNxt, len, fin);
      this.sndNxt = seqAdd(this.sndNxt, len + (fin ? 1 : 0));
      this.tlpIsRetrans = false;
    } else {
      this.tlpIsRetrans = true;
      // The last full segment of data (the FIN, if sent, rides along).
      const dataEnd = this.finQueued && seqGt(this.sndMax, this.finSeq) ? this.finSeq : this.sndMax;
      let from = seqAdd(dataEnd, -this.sendMss);
      if (seqLt(from, this.sndUna)) from = this.sndUna;
      this.retransmitAt(from, this.sndMax);
    }
    this.tlpEndSeq = this.sndMax;
    // RFC 8985 §7.3: the RTO, not another PTO, is the last resort after a probe.
    this.armRetransmitTimer(true);
  }

  /** May a segment of `len` bytes leave now (pacer.spend() it once sent)? Else the pacing timer is armed. */
  protected paceReady(len: number): boolean {
    if (this.opts.pacing === false) return true;
    const now = this.opts.clock.now();
    const cc = this.cc;
    const wait = this.pacer.check(len, now, cc.cwnd, cc.cwnd < cc.ssthresh, this.rtt.srtt, this.sendMss, cc.pacingRate);
    // Then the flow's share of the layer's output (fair-share.ts): it may have to wait its turn.
    if (wait <= 0) return this.opts.fairShare === undefined || this.opts.fairShare.take(this);
    if (this.paceTimer.deadline < 0) this.paceTimer.set(wait);
    return false;
  }

  /** The fair-share line came round to this flow (fair-share.ts). */
  resumeSend(): void {
    if (!this.released) this.trySend();
  }

  /**
   * Delayed ACK (delayed-ack.ts): the turn's ACK waits when all it acknowledges is less than a full
   * segment of in-order data and the window has no update the peer should see; the host's answer
   * then carries it. Anything else is acknowledged now; more data, a FIN, out-of-order data or a
   * window update in a later turn sends it then (at least every full segment, RFC 5681 §4.2).
   */
  protected ackAtTurnEnd(): void {
    if (this.ackMayWait()) {
      if (!this.ackDelayed) {
        this.ackDelayed = true;
        this.opts.delayAck?.(this);
      }
      return;
    }
    this.sendAck();
  }

  private ackMayWait(): boolean {
    if (!this.opts.delayAck || this.state !== "ESTABLISHED" || this.recvBuf.outOfOrderCount > 0) return false;
    const unacked = seqDiff(this.rcvNxt, this.lastAckSent);
    const fullSegment = this.ourMss - (this.tsEnabled ? TIMESTAMP_OPTION_BYTES : 0);
    if (unacked <= 0 || unacked >= fullSegment) return false;
    return seqDiff(seqAdd(this.rcvNxt, this.recvBuf.window), this.rcvAdvRight) < this.windowUpdateThreshold();
  }

  /** The layer's delayed-ACK timer reached this flow: the ACK goes unless a segment carried it. */
  delayedAckDue(): void {
    this.ackDelayed = false;
    if (this.ackPending && !this.released) this.sendAck();
  }

  protected onPaceTimer(): void {
    if (this.released) return;
    this.trySend();
  }
}
