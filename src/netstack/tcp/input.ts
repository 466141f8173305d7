/**
 * Segment arrival (RFC 9293 §3.10.7): the per-state checks, sequence acceptability, RST/SYN
 * defences (RFC 5961), then ACK (sender.ts), segment text and FIN.
 */
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../../wire/tcp.ts";
import { TIME_WAIT_MS } from "./constants.ts";
import { emitReset, segmentAcceptable, type TcpSegmentIn } from "./segment.ts";
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from "./seq.ts";
import { EV_READABLE, OOW_ACK_INTERVAL_MS } from "./tcb.ts";
import { TcpTimers } from "./timers.ts";

export abstract class TcpInput extends TcpTimers {
  /** Process one segment of this flow (checksum and options already validated by the layer). */
  handleSegment(seg: TcpSegmentIn): void {
    if (this.released) return;
    if (this.state === "SYN-SENT") this.inputSynSent(seg);
    else if (this.state === "SYN-RECEIVED" && !this.synAckSent) this.inputPending(seg);
    else this.inputSynchronized(seg);
    // The app hears of it at the end of the turn: one readable event (one host write) per turn.
    if (this.events !== 0) this.queueTurn();
  }

  /** Passive open before accept(): only the peer's SYN retransmissions and RST matter. */
  protected inputPending(seg: TcpSegmentIn): void {
    if (seg.flags & TCP_RST) {
      if (seg.seq === this.rcvNxt) {
        this.fireClosed("reset");
        this.release();
      } else this.opts.stats.drop("tcp-rst-out-of-window");
      return;
    }
    if (seg.flags & TCP_SYN && seg.seq === this.irs) {
      this.opts.stats.drop("tcp-syn-retransmit-absorbed");
      return;
    }
    this.opts.stats.drop("tcp-not-accepted-yet");
  }

  /** RFC 9293 §3.10.7.3. */
  protected inputSynSent(seg: TcpSegmentIn): void {
    const f = seg.flags;
    if (f & TCP_ACK) {
      if (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax)) {
        if (!(f & TCP_RST)) {
          emitReset(this.opts.output, this.local, this.localPort, this.remote, this.remotePort, seg.ack, 0, TCP_RST);
          this.opts.stats.segmentsOut++;
        }
        this.opts.stats.drop("tcp-bad-ack-syn-sent");
        return;
      }
    }
    if (f & TCP_RST) {
      if (f & TCP_ACK) {
        this.fireClosed("refused");
        this.release();
      } else this.opts.stats.drop("tcp-rst-no-ack-syn-sent");
      return;
    }
    if (!(f & TCP_SYN)) {
      this.opts.stats.drop("tcp-no-syn-syn-sent");
      return;
    }
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.negotiate(seg);
    this.rcvAdvRight = seqAdd(this.rcvNxt, Math.min(65535, this.recvBuf.window));
    if (f & TCP_ACK) {
      this.sndUna = seg.ack;
      this.updateWindow(seg.window, seg.seq, seg.ack);
      if (this.rttTiming && seqGe(seg.ack, this.rttSeq)) this.rttSample(this.opts.clock.now() - this.rttTime);
      else if (this.tsEnabled && seg.options.tsEcr !== 0) this.rttSample(this.tsEcrAge(seg.options.tsEcr));
      this.rttTiming = false;
      this.rtt.resetBackoff();
      this.retries = 0;
      this.becomeEstablished();
      this.sendAck();
      this.trySend();
      this.armTimer();
      return;
    }
    // Simultaneous open (RFC 9293 §3.5, figure 8): SYN-RECEIVED, answer with SYN-ACK.
    this.state = "SYN-RECEIVED";
    this.synAckSent = true;
    this.updateWindow(seg.window, seg.seq, this.sndUna);
    this.sendSyn();
    this.armTimer();
  }

  /** RFC 9293 §3.10.7.4 for SYN-RECEIVED (accepted) and every later state. */
  protected inputSynchronized(seg: TcpSegmentIn): void {
    // Any segment, even an unacceptable one, shows the peer is there (keepalive).
    this.heard = true;
    const f = seg.flags;
    const stats = this.opts.stats;
    const dataLen = seg.payloadLength;
    const segLen = dataLen + (f & TCP_SYN ? 1 : 0) + (f & TCP_FIN ? 1 : 0);
    if (this.state === "SYN-RECEIVED" && f & TCP_SYN && !(f & TCP_RST) && seg.seq === this.irs) {
      this.synReceivedSyn(seg);
      return;
    }
    // First: sequence number acceptability.
    const wnd = this.acceptWindow();
    if (!segmentAcceptable(seg.seq, segLen, this.rcvNxt, wnd)) {
      if (f & TCP_RST) {
        stats.drop("tcp-rst-out-of-window");
        return;
      }
      stats.drop("tcp-out-of-window");
      // Data we already acknowledged: report the duplicate (RFC 2883 §4.1.1).
      if (dataLen > 0 && seqLe(seqAdd(seg.seq, dataLen), this.rcvNxt)) this.noteDuplicate(seg.seq, dataLen);
      // A retransmitted FIN in TIME-WAIT restarts the 2*MSL timer (§3.10.7.4, eighth check).
      if (this.state === "TIME-WAIT" && f & TCP_FIN) this.auxTimer.set(TIME_WAIT_MS);
      // Old data is re-ACKed at once; ACKs to out-of-window pure ACKs are rate-limited (RFC 5961
      // §7, Linux tcp_invalid_ratelimit) so no two stacks can keep ACKing each other forever.
      const now = this.opts.clock.now();
      if (segLen > 0 || now - this.lastOowAck >= OOW_ACK_INTERVAL_MS) {
        if (segLen === 0) this.lastOowAck = now;
        this.sendAck();
      }
      return;
    }

    // Second: RST (RFC 5961 §3.2): exact match resets, anything else in window gets a challenge ACK.
    if (f & TCP_RST) {
      if (seg.seq === this.rcvNxt) {
        this.fireClosed("reset");
        this.release();
      } else {
        stats.drop("tcp-rst-challenged");
        this.sendAck();
      }
      return;
    }

    // Fourth: SYN in a synchronized state gets a challenge ACK (RFC 5961 §4.2).
    if (f & TCP_SYN) {
      stats.drop("tcp-syn-challenged");
      this.sendAck();
      return;
    }

    // Fifth: ACK.
    if (!(f & TCP_ACK)) {
      stats.drop("tcp-no-ack");
      return;
    }
    if (this.tsEnabled && seg.options.hasTimestamp && seqLe(seg.seq, this.lastAckSent)) {
      // RFC 7323 §4.3: remember the peer's timestamp to echo, from segments at the left edge.
      if (seqGe(seg.options.tsVal, this.tsRecent)) this.tsRecent = seg.options.tsVal;
    }
    if (this.state === "SYN-RECEIVED") {
      if (!(seqLt(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndMax))) {
        emitReset(this.opts.output, this.local, this.localPort, this.remote, this.remotePort, seg.ack, 0, TCP_RST);
        stats.segmentsOut++;
        stats.drop("tcp-bad-ack-syn-received");
        return;
      }
      this.updateWindow(seg.window, seg.seq, seg.ack, this.sndShift);
      this.becomeEstablished();
    }
    if (!this.processAck(seg)) return;
    if (this.released) return;

    const ourFinAcked = this.finQueued && seqGt(this.sndUna, this.finSeq);
    switch (this.state) {
      case "FIN-WAIT-1":
        if (ourFinAcked) {
          this.state = "FIN-WAIT-2";
          this.auxTimer.set(this.finWait2TimeoutMs);
        }
        break;
      case "CLOSING":
        if (ourFinAcked) {
          this.enterTimeWait();
          return;
        }
        break;
      case "LAST-ACK":
        if (ourFinAcked) {
          this.release();
          this.finishGracefully();
          return;
        }
        break;
      default:
        break;
    }

    // Seventh: segment text, then eighth: FIN.
    let ackNeeded = false;
    // Only new in-order data with no hole on either side may wait for the end of the turn; anything
    // else (out of order, filling a hole, duplicate, beyond the window, FIN) is ACKed at once
    // (RFC 5681 §4.2, RFC 9293 §3.10.7.4).
    let ackNow = true;
    const receiving = this.state === "ESTABLISHED" || this.state === "FIN-WAIT-1" || this.state === "FIN-WAIT-2";
    if (receiving && segLen > 0) {
      ackNeeded = true;
      const inOrder = seg.seq === this.rcvNxt && this.recvBuf.outOfOrderCount === 0;
      let off = seqDiff(seg.seq, this.rcvNxt);
      let from = seg.payloadOffset;
      let len = dataLen;
      if (off < 0) {
        this.noteDuplicate(seg.seq, -off);
        from -= off;
        len += off;
        off = 0;
      }
      let truncated = false;
      if (off + len > wnd) {
        len = Math.max(0, wnd - off);
        truncated = true;
      }
      if (len > 0) {
        const oooBefore = this.recvBuf.outOfOrderBytes;
        const advance = this.recvBuf.write(off, seg.buf, from, len);
        if (advance < 0) {
          stats.drop("tcp-out-of-order-full");
          truncated = true;
        } else {
          stats.outOfOrderBytes += this.recvBuf.outOfOrderBytes - oooBefore;
          // An island already held all of it (RFC 2883 §4.1.2: the island follows as the next block).
          if (off > 0 && this.recvBuf.outOfOrderBytes === oooBefore) this.noteDuplicate(seqAdd(this.rcvNxt, off), len);
          if (inOrder && !truncated && advance === dataLen && this.recvBuf.outOfOrderCount === 0) ackNow = false;
          // Out-of-order data that only extends the island that changed last at its right edge (the
          // stream flowing on beyond a hole) tells a SACK sender nothing the turn's ACK will not: it
          // is ACKed at the end of the turn, as a GRO receiver ACKs one aggregate. The segment that
          // opens an island, fills a hole or joins two islands is still ACKed at once.
          else if (this.sackEnabled && !truncated && this.recvBuf.appendedToLatestIsland) ackNow = false;
          if (advance > 0) {
            stats.receiveBufferedBytes += advance;
            this.rcvNxt = seqAdd(this.rcvNxt, advance);
            this.events |= EV_READABLE;
            // FIN-WAIT-2 bounds idleness, not a half-closed transfer that is still moving.
            if (this.state === "FIN-WAIT-2") this.auxTimer.set(this.finWait2TimeoutMs);
          }
        }
      }
      if (f & TCP_FIN) ackNow = true;
      if (f & TCP_FIN && !truncated && !this.peerFinKnown) {
        this.peerFinKnown = true;
        this.peerFinSeq = seqAdd(seg.seq, dataLen);
      }
      if (this.peerFinKnown && !this.rcvFin && this.rcvNxt === this.peerFinSeq) this.receiveFin();
    }

    // Data or our FIN going out now carries the ACK (and clears ackPending); otherwise acknowledge on
    // its own, now or at the end of the turn.
    if (ackNeeded) this.ackPending = true;
    this.trySend();
    if (this.ackPending) {
      if (ackNeeded && ackNow) this.sendAck();
      else this.queueTurn();
    }
  }

  /** `len` bytes from `seq` arrived again: the next ACK carries them as a D-SACK block (SACK only). */
  private noteDuplicate(seq: number, len: number): void {
    if (!this.sackEnabled || len <= 0) return;
    this.dsackPending = true;
    this.dsackLeft = seq;
    this.dsackRight = seqAdd(seq, len);
  }

  /**
   * The peer's SYN again while we are in SYN-RECEIVED: a retransmitted SYN (our SYN-ACK was lost)
   * gets the SYN-ACK again; a SYN-ACK (simultaneous open, RFC 9293 §3.5 figure 8) that acknowledges
   * our SYN completes the handshake.
   */
  protected synReceivedSyn(seg: TcpSegmentIn): void {
    if (!(seg.flags & TCP_ACK)) {
      this.opts.stats.retransmits++;
      this.sendSyn();
      return;
    }
    if (!(seqLt(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndMax))) {
      this.opts.stats.drop("tcp-bad-ack-syn-received");
      return;
    }
    this.sndUna = seg.ack;
    this.updateWindow(seg.window, seg.seq, seg.ack);
    this.rttTiming = false;
    this.becomeEstablished();
    this.sendAck();
    this.trySend();
    this.armTimer();
  }

  /** The peer's FIN is in order: RCV.NXT covers it; the state advances (§3.10.7.4, eighth). */
  protected receiveFin(): void {
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.rcvFin = true;
    this.events |= EV_READABLE;
    switch (this.state) {
      case "ESTABLISHED":
        this.state = "CLOSE-WAIT";
        break;
      case "FIN-WAIT-1":
        if (this.finQueued && seqGt(this.sndUna, this.finSeq)) this.enterTimeWait();
        else this.state = "CLOSING";
        break;
      case "FIN-WAIT-2":
        this.enterTimeWait();
        break;
      default:
        break;
    }
  }
}
