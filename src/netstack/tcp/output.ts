/**
 * Segment emission: every segment a connection sends is built here (SYN, SYN-ACK, ACK, data, RST)
 * with the header fields of the moment (ACK, window, timestamps, SACK blocks).
 */
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../../wire/tcp.ts";
import { emitReset, emitSegment, scratchHeader } from "./segment.ts";
import { seqAdd, seqDiff, seqGt, seqLt } from "./seq.ts";
import { TcpControlBlock } from "./tcb.ts";

export abstract class TcpSegmentOutput extends TcpControlBlock {
  /** Payload bytes sent again, over the connection's life (BBR's loss rate per round). */
  protected retransmittedBytes = 0;
  /** Delivery-rate state: bytes delivered (cumulatively acknowledged or SACKed) and when last... */
  protected delivered = 0;
  protected deliveredTime = 0;
  /** ...and when the first segment of the current flight left. */
  protected firstSentTime = 0;

  /** Emit data [seq, seq+len) from the send buffer, with FIN when `fin`. */
  protected sendData(seq: number, len: number, fin: boolean): void {
    const isRetransmit = seqLt(seq, this.sndMax);
    const dataEnd = seqAdd(this.sndBufSeq, this.sendBuf.length);
    let flags = TCP_ACK;
    if (len > 0 && seqAdd(seq, len) === dataEnd) flags |= TCP_PSH;
    if (fin) flags |= TCP_FIN;
    this.fillHeader(flags, seq);
    this.payloadOffset = seqDiff(seq, this.sndBufSeq);
    this.emit(len);
    if (isRetransmit) {
      this.opts.stats.retransmits++;
      this.retransmittedBytes += len;
      // Karn: a retransmitted range never yields an RTT sample.
      if (this.rttTiming && seqLt(seq, this.rttSeq)) this.rttTiming = false;
    } else if (len > 0 && !this.rttTiming && !this.tsEnabled) {
      this.rttTiming = true;
      this.rttSeq = seqAdd(seq, len);
      this.rttTime = this.opts.clock.now();
    }
    if (len > 0 && this.sackEnabled) {
      const now = this.opts.clock.now();
      // A new flight: the rate clock restarts (an idle gap is no part of any delivery rate).
      if (this.sndMax === this.sndUna) this.firstSentTime = this.deliveredTime = now;
      this.rack.onSend(
        seq,
        seqAdd(seq, len),
        now,
        isRetransmit,
        this.delivered,
        this.deliveredTime,
        this.firstSentTime,
      );
      if (isRetransmit && this.rackLost.length > 0) this.forgetRackLost(seq);
    }
    const end = seqAdd(seq, len + (fin ? 1 : 0));
    if (seqGt(end, this.sndMax)) this.sndMax = end;
  }

  /** A retransmission of `seq` went out: it is no longer waiting in RACK's lost queue. */
  private forgetRackLost(seq: number): void {
    const q = this.rackLost;
    for (let i = 0; i < q.length; i += 2) {
      if (q[i] === seq) {
        q.splice(i, 2);
        i -= 2;
      }
    }
  }

  protected sendSyn(): void {
    const h = scratchHeader;
    h.resetOptions();
    h.srcPort = this.localPort;
    h.dstPort = this.remotePort;
    h.seq = this.iss;
    const synAck = this.state === "SYN-RECEIVED";
    h.flags = synAck ? TCP_SYN | TCP_ACK : TCP_SYN;
    h.ack = synAck ? this.rcvNxt : 0;
    const wnd = Math.min(65535, this.recvBuf.window);
    h.window = wnd;
    h.mss = this.ourMss;
    if (this.wsOffered) h.windowScale = this.rcvShift;
    if (!synAck) {
      h.sackPermitted = this.opts.sack !== false;
      h.hasTimestamp = true;
      h.tsVal = this.tsNow();
      h.tsEcr = 0;
    } else {
      h.sackPermitted = this.sackEnabled;
      h.hasTimestamp = this.tsEnabled;
      h.tsVal = this.tsNow();
      h.tsEcr = this.tsRecent;
      this.rcvAdvRight = seqAdd(this.rcvNxt, wnd);
      this.lastAckSent = this.rcvNxt;
      this.ackPending = false;
    }
    this.emit(0);
    if (seqLt(this.sndMax, seqAdd(this.iss, 1))) {
      this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
      if (!this.tsEnabled || !synAck) {
        this.rttTiming = true;
        this.rttSeq = this.sndNxt;
        this.rttTime = this.opts.clock.now();
      }
    } else {
      this.rttTiming = false;
    }
  }

  /**
   * A pure ACK carries SEQ = sndMax, not the rolled-back sndNxt of a go-back-N retransmission: the
   * peer may already hold everything up to sndMax, and an ACK with an older SEQ would fail its
   * acceptability test, have its ACK field ignored, and be answered by another ACK (ping-pong).
   */
  protected sendAck(): void {
    this.fillHeader(TCP_ACK, this.sndMax);
    this.emit(0);
  }

  /** RST for an established connection: <SEQ=SND.NXT><CTL=RST> (sndMax: what the peer has seen). */
  protected sendReset(): void {
    this.fillHeader(TCP_RST | TCP_ACK, this.sndMax);
    scratchHeader.window = 0;
    scratchHeader.sackCount = 0;
    this.emit(0);
  }

  /** RST answering a SYN we never acknowledged: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK> (RFC 9293 §3.10.7.1). */
  protected resetUnansweredSyn(): void {
    emitReset(
      this.opts.output,
      this.local,
      this.localPort,
      this.remote,
      this.remotePort,
      0,
      this.rcvNxt,
      TCP_RST | TCP_ACK,
    );
    this.opts.stats.segmentsOut++;
  }

  /** Header for a non-SYN segment: ACK, window, timestamps, SACK blocks. */
  protected fillHeader(flags: number, seq: number): void {
    const h = scratchHeader;
    h.resetOptions();
    h.srcPort = this.localPort;
    h.dstPort = this.remotePort;
    h.seq = seq;
    h.flags = flags;
    h.ack = this.rcvNxt;
    h.window = this.advertiseWindow();
    if (this.tsEnabled) {
      h.hasTimestamp = true;
      h.tsVal = this.tsNow();
      h.tsEcr = this.tsRecent;
    }
    if (this.sackEnabled && (this.recvBuf.outOfOrderCount > 0 || this.dsackPending)) {
      const max = this.tsEnabled ? 3 : 4;
      let first = 0;
      if (this.dsackPending) {
        // D-SACK (RFC 2883 §4): the duplicate first; the island holding it (if any) is the most
        // recently changed one, so it follows as the second block.
        h.sackBlocks[0] = this.dsackLeft;
        h.sackBlocks[1] = this.dsackRight;
        this.dsackPending = false;
        first = 1;
      }
      h.sackCount = first + this.recvBuf.sackBlocks(this.rcvNxt, h.sackBlocks, max - first, first);
    }
    this.lastAckSent = this.rcvNxt;
    this.ackPending = false;
  }

  protected emit(payloadLength: number): void {
    emitSegment(this.opts.output, this.local, this.remote, payloadLength, this.writePayload);
    this.opts.stats.segmentsOut++;
  }

  /**
   * The window field to send. The right edge moves right only by at least min(MSS, buffer/2)
   * (receiver SWS avoidance, RFC 9293 §3.8.6.2.2) and never moves left (§3.8.6).
   */
  protected advertiseWindow(): number {
    const realRight = seqAdd(this.rcvNxt, this.recvBuf.window);
    let right = this.rcvAdvRight;
    if (seqDiff(realRight, right) >= this.windowUpdateThreshold()) right = realRight;
    const wnd = Math.max(0, seqDiff(right, this.rcvNxt));
    const field = Math.min(65535, Math.floor(wnd / 2 ** this.rcvShift));
    const advertised = seqAdd(this.rcvNxt, field * 2 ** this.rcvShift);
    // Rounding to the scale can land left of the old edge (RFC 7323 §2.4); keep accepting up to it.
    if (seqGt(advertised, this.rcvAdvRight)) this.rcvAdvRight = advertised;
    return field;
  }
}
