/**
 * One TCP connection: the RFC 9293 state machine (§3.3.2, event processing §3.10), retransmission
 * per RFC 6298, loss recovery driven by the peer's SACK blocks (RFC 2018 scoreboard, RFC 6675
 * pipe/NextSeg/rescue retransmission) with NewReno (RFC 5681 / RFC 6582) as the fallback when SACK
 * is not negotiated, window scaling and timestamps (RFC 7323), SACK blocks for out-of-order data
 * and the RFC 5961 RST/SYN/ACK defences. Congestion control is pluggable (congestion/: CUBIC by
 * default, NewReno).
 *
 * The segment parsing and the demux live in layer.ts; buffers, RTT and congestion control in
 * their own files. No Nagle: data goes out as soon as window and congestion window allow.
 * Every segment that carries or completes data is acknowledged at once (no delayed ACK): the peer
 * is one tunnel hop away, and immediate ACKs keep its RTT estimate and fast recovery crisp.
 */
import type { Clock, Timer } from "../../util/clock.ts";
import type { Logger } from "../../util/log.ts";
import type { Random } from "../../util/random.ts";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "../../wire/tcp.ts";
import type { IpAddr, IpOutput } from "../types.ts";
import type { TcpCloseReason, TcpConnectionApi, TcpState } from "./api.ts";
import { Cubic } from "./congestion/cubic.ts";
import type { CongestionControl, CongestionControlFactory } from "./congestion/types.ts";
import {
  DEFAULT_FIN_WAIT_2_TIMEOUT_MS,
  DEFAULT_MSS_V4,
  DEFAULT_MSS_V6,
  DUPACK_THRESHOLD,
  MAX_RETRANSMITS,
  TIME_WAIT_MS,
  TIMESTAMP_OPTION_BYTES,
  windowScaleFor,
} from "./constants.ts";
import { ReceiveBuffer } from "./receive-buffer.ts";
import { RttEstimator } from "./rtt.ts";
import { SackScoreboard } from "./sack.ts";
import { emitReset, emitSegment, type PayloadWriter, scratchHeader, type TcpSegmentIn } from "./segment.ts";
import { SendBuffer } from "./send-buffer.ts";
import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt } from "./seq.ts";
import type { TcpStats } from "./stats.ts";

export interface TcpConnectionOptions {
  output: IpOutput;
  clock: Clock;
  random: Random;
  log: Logger;
  stats: TcpStats;
  /** Our side of the flow. */
  local: IpAddr;
  localPort: number;
  /** The peer's side. */
  remote: IpAddr;
  remotePort: number;
  /** The MSS we advertise (and the most we send): MTU minus IP and TCP headers. */
  mss: number;
  /** Bound of each of the send and receive buffers. */
  bufferSize: number;
  /** Bound on the handshake; past it the connection closes with "timeout". */
  synTimeoutMs: number;
  /** Called once when the connection is finished and must leave the demux table. */
  onGone: (conn: TcpConnection) => void;
  /** Congestion controller per connection; CUBIC when absent. */
  congestionControl?: CongestionControlFactory;
  /** Bound on FIN-WAIT-2 without progress from the peer (default 60 s). */
  finWait2TimeoutMs?: number;
  /** Offer and accept SACK (RFC 2018); default true. */
  sack?: boolean;
}

/** Least time between two ACKs answering out-of-window segments without data. */
const OOW_ACK_INTERVAL_MS = 500;

const EV_ESTABLISHED = 1;
const EV_READABLE = 2;
const EV_WRITABLE = 4;
const EV_CLOSED = 8;

const noop = () => {};

export class TcpConnection implements TcpConnectionApi {
  state: TcpState = "CLOSED";
  onEstablished: () => void = noop;
  onReadable: () => void = noop;
  onWritable: () => void = noop;
  onClosed: (reason: TcpCloseReason) => void = noop;

  readonly local: IpAddr;
  readonly localPort: number;
  readonly remote: IpAddr;
  readonly remotePort: number;

  // Send sequence variables (RFC 9293 §3.3.1). sndMax is the highest sequence number sent so far:
  // after a timeout sndNxt goes back to sndUna (go-back-N) while sndMax remembers what was sent.
  private iss = 0;
  private sndUna = 0;
  private sndNxt = 0;
  private sndMax = 0;
  /** Peer's window in bytes (already scaled). */
  private sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  private maxSndWnd = 0;
  /** Sequence number of sendBuf's first byte. */
  private sndBufSeq = 0;

  // Receive sequence variables.
  private irs = 0;
  private rcvNxt = 0;
  /** Right edge of the window we last advertised: we never move it left (RFC 9293 §3.8.6). */
  private rcvAdvRight = 0;
  private lastAckSent = 0;

  // Negotiated options.
  /** Shift applied to windows the peer sends us (its scale). */
  private sndShift = 0;
  /** Shift applied to windows we send (our scale); 0 unless both sides sent the option. */
  private rcvShift = 0;
  private wsOffered = false;
  private tsEnabled = false;
  private tsRecent = 0;
  private readonly tsOffset: number;
  private sackEnabled = false;
  private readonly ourMss: number;
  /** Payload bytes per segment we send: min(peer MSS, our MSS) minus timestamp option bytes. */
  private sendMss: number;

  // Close bookkeeping.
  private finQueued = false;
  /** Sequence number our FIN occupies, once queued. */
  private finSeq = 0;
  /** The peer's FIN is known (its sequence number in peerFinSeq) but may sit beyond a hole. */
  private peerFinKnown = false;
  private peerFinSeq = 0;
  /** The peer's FIN has been received in order (RCV.NXT covers it). */
  private rcvFin = false;

  // Loss recovery.
  private dupAcks = 0;
  private inRecovery = false;
  /** RFC 6582 "recover" / RFC 6675 RecoveryPoint: sndMax when recovery (or the last timeout) began. */
  private recover = 0;
  /** SACK scoreboard of what the peer holds above SND.UNA (RFC 6675 §3). */
  private readonly sb = new SackScoreboard();
  /** RFC 6675 HighRxt: the end of the highest range retransmitted in this recovery. */
  private highRxt = 0;
  /** RFC 6675 rescue retransmission already done in this recovery. */
  private rescueDone = false;
  /** When an out-of-window pure ACK was last answered. */
  private lastOowAck = Number.NEGATIVE_INFINITY;
  private retries = 0;
  private persisting = false;
  /** Karn-compliant timing of one segment when timestamps are off. */
  private rttTiming = false;
  private rttSeq = 0;
  private rttTime = 0;

  private readonly passive: boolean;
  /** Passive open: the gateway called accept() and the SYN-ACK went out. */
  private synAckSent = false;
  private closedFired = false;
  /** Graceful close done; onClosed("closed") fires once the receive buffer is drained. */
  private closePending = false;
  private released = false;
  private writeBlocked = false;
  private events = 0;

  private readonly sendBuf: SendBuffer;
  private readonly recvBuf: ReceiveBuffer;
  private readonly rtt = new RttEstimator();
  private readonly cc: CongestionControl;
  private readonly rtxTimer: Timer;
  /** Handshake deadline, then the TIME-WAIT timer. */
  private readonly auxTimer: Timer;
  /** Offset into sendBuf of the payload being emitted (read by writePayload). */
  private payloadOffset = 0;
  private readonly writePayload: PayloadWriter;

  private constructor(
    private readonly opts: TcpConnectionOptions,
    passive: boolean,
  ) {
    this.local = opts.local;
    this.localPort = opts.localPort;
    this.remote = opts.remote;
    this.remotePort = opts.remotePort;
    this.passive = passive;
    this.ourMss = opts.mss;
    this.sendMss = Math.min(opts.mss, opts.remote.length === 4 ? DEFAULT_MSS_V4 : DEFAULT_MSS_V6);
    this.sendBuf = new SendBuffer(opts.bufferSize);
    this.recvBuf = new ReceiveBuffer(opts.bufferSize);
    this.cc = (opts.congestionControl ?? ((mss: number) => new Cubic(mss)))(this.sendMss);
    this.rtxTimer = opts.clock.timer(() => this.onRetransmitTimer());
    this.auxTimer = opts.clock.timer(() => this.onAuxTimer());
    this.writePayload = (dst, dstOff, len) => this.sendBuf.copyOut(this.payloadOffset, len, dst, dstOff);
    this.iss = opts.random.u32();
    this.tsOffset = opts.random.u32();
    this.sndUna = this.sndNxt = this.sndMax = this.iss;
    this.sndBufSeq = seqAdd(this.iss, 1);
    this.recover = this.iss;
  }

  /** A SYN arrived for a new flow: SYN-RECEIVED, waiting for accept() before the SYN-ACK. */
  static passive(opts: TcpConnectionOptions, syn: TcpSegmentIn): TcpConnection {
    const c = new TcpConnection(opts, true);
    c.state = "SYN-RECEIVED";
    c.irs = syn.seq;
    c.rcvNxt = seqAdd(syn.seq, 1);
    c.negotiate(syn);
    // RFC 7323 §2.2: the window field of a SYN is never scaled.
    c.updateWindow(syn.window, syn.seq, 0);
    c.auxTimer.set(opts.synTimeoutMs);
    return c;
  }

  /** Active open (RFC 9293 §3.10.1): SYN-SENT; sendInitialSyn() sends the SYN. */
  static active(opts: TcpConnectionOptions): TcpConnection {
    const c = new TcpConnection(opts, false);
    c.state = "SYN-SENT";
    c.wsOffered = true;
    c.rcvShift = windowScaleFor(opts.bufferSize);
    return c;
  }

  /** Send the SYN of an active open (separate so the layer registers the flow first). */
  sendInitialSyn(): void {
    if (this.state !== "SYN-SENT" || this.sndMax !== this.iss) return;
    this.sendSyn();
    this.armTimer();
    this.auxTimer.set(this.opts.synTimeoutMs);
  }

  // ---------------------------------------------------------------- app API

  get receiveBuffered(): number {
    return this.recvBuf.length;
  }
  get sendBuffered(): number {
    return this.sendBuf.length;
  }
  get readEof(): boolean {
    return this.rcvFin && this.recvBuf.length === 0;
  }
  /** Out-of-order bytes held for this flow (waiting for a hole to fill). */
  get outOfOrderBuffered(): number {
    return this.recvBuf.outOfOrderBytes;
  }
  /** Congestion window in bytes (for observability). */
  get congestionWindow(): number {
    return this.cc.cwnd;
  }

  accept(): void {
    if (this.state !== "SYN-RECEIVED" || this.synAckSent || !this.passive) return;
    this.synAckSent = true;
    this.sendSyn();
    this.armTimer();
  }

  refuse(): void {
    if (this.state === "SYN-RECEIVED" && this.passive && !this.synAckSent) {
      this.resetUnansweredSyn();
      this.fireClosed("refused");
      this.release();
      return;
    }
    this.abort();
  }

  /** RST answering a SYN we never acknowledged: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK> (RFC 9293 §3.10.7.1). */
  private resetUnansweredSyn(): void {
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

  dropSilently(): void {
    if (this.state === "SYN-RECEIVED" && this.passive && !this.synAckSent) {
      this.fireClosed("refused");
      this.release();
      return;
    }
    this.abort();
  }

  get initialPeerSeq(): number {
    return this.irs;
  }

  peek(): Uint8Array {
    return this.recvBuf.peek();
  }

  consume(n: number): void {
    const k = this.recvBuf.consume(n);
    if (k === 0) return;
    if (!this.released) this.opts.stats.receiveBufferedBytes -= k;
    if (this.closePending && this.recvBuf.length === 0) this.fireClosed("closed");
    if (this.rcvFin) return;
    if (this.state !== "ESTABLISHED" && this.state !== "FIN-WAIT-1" && this.state !== "FIN-WAIT-2") return;
    // Window update once the right edge can move by the SWS threshold (RFC 9293 §3.8.6.2.2).
    if (seqDiff(seqAdd(this.rcvNxt, this.recvBuf.window), this.rcvAdvRight) >= this.windowUpdateThreshold()) {
      this.sendAck();
    }
  }

  write(data: Uint8Array): number {
    if (this.finQueued || this.closedFired) return 0;
    const s = this.state;
    if (s !== "ESTABLISHED" && s !== "CLOSE-WAIT" && s !== "SYN-SENT" && s !== "SYN-RECEIVED") return 0;
    const n = this.sendBuf.write(data);
    this.opts.stats.sendBufferedBytes += n;
    if (n < data.length) this.writeBlocked = true;
    if (n > 0) this.trySend();
    return n;
  }

  shutdown(): void {
    if (this.finQueued || this.closedFired) return;
    switch (this.state) {
      case "ESTABLISHED":
        this.state = "FIN-WAIT-1";
        break;
      case "CLOSE-WAIT":
        this.state = "LAST-ACK";
        break;
      case "SYN-SENT":
      case "SYN-RECEIVED":
        // The FIN goes out after the handshake completes (the state changes then).
        break;
      default:
        return;
    }
    this.finQueued = true;
    this.finSeq = seqAdd(this.sndBufSeq, this.sendBuf.length);
    this.trySend();
  }

  abort(): void {
    if (this.released) return;
    const s = this.state;
    if (s === "SYN-RECEIVED" && this.passive && !this.synAckSent) {
      this.resetUnansweredSyn();
    } else if (s !== "SYN-SENT" && s !== "TIME-WAIT" && s !== "CLOSED") {
      this.sendReset();
    }
    this.fireClosed("aborted");
    this.release();
  }

  // ---------------------------------------------------------------- input

  /** Process one segment of this flow (checksum and options already validated by the layer). */
  handleSegment(seg: TcpSegmentIn): void {
    if (this.released) return;
    if (this.state === "SYN-SENT") this.inputSynSent(seg);
    else if (this.state === "SYN-RECEIVED" && !this.synAckSent) this.inputPending(seg);
    else this.inputSynchronized(seg);
    this.flushEvents();
  }

  /** Passive open before accept(): only the peer's SYN retransmissions and RST matter. */
  private inputPending(seg: TcpSegmentIn): void {
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
  private inputSynSent(seg: TcpSegmentIn): void {
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
  private inputSynchronized(seg: TcpSegmentIn): void {
    const f = seg.flags;
    const stats = this.opts.stats;
    const dataLen = seg.payloadLength;
    const segLen = dataLen + (f & TCP_SYN ? 1 : 0) + (f & TCP_FIN ? 1 : 0);
    if (this.state === "SYN-RECEIVED" && f & TCP_SYN && !(f & TCP_RST) && seg.seq === this.irs) {
      this.synReceivedSyn(seg);
      return;
    }
    const wnd = this.acceptWindow();
    const rcvEnd = seqAdd(this.rcvNxt, wnd);

    // First: sequence number acceptability. A zero window still takes the ACK of a segment at
    // RCV.NXT (its data is trimmed below), per the "special allowance" of §3.10.7.4.
    let acceptable: boolean;
    // A segment without data exactly at the right edge is accepted too (as Linux does): a peer that
    // filled our window sends its pure ACKs with SEQ = that edge, and refusing them (each side
    // answering the other's "unacceptable" ACK with its own) is an endless ACK ping-pong.
    if (segLen === 0) acceptable = seqLe(this.rcvNxt, seg.seq) && seqLe(seg.seq, rcvEnd);
    else if (wnd === 0) acceptable = seg.seq === this.rcvNxt;
    else
      acceptable =
        seqInRange(seg.seq, this.rcvNxt, rcvEnd) || seqInRange(seqAdd(seg.seq, segLen - 1), this.rcvNxt, rcvEnd);
    if (!acceptable) {
      if (f & TCP_RST) {
        stats.drop("tcp-rst-out-of-window");
        return;
      }
      stats.drop("tcp-out-of-window");
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
    const receiving = this.state === "ESTABLISHED" || this.state === "FIN-WAIT-1" || this.state === "FIN-WAIT-2";
    if (receiving && segLen > 0) {
      ackNeeded = true;
      let off = seqDiff(seg.seq, this.rcvNxt);
      let from = seg.payloadOffset;
      let len = dataLen;
      if (off < 0) {
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
          if (advance > 0) {
            stats.receiveBufferedBytes += advance;
            this.rcvNxt = seqAdd(this.rcvNxt, advance);
            this.events |= EV_READABLE;
            // FIN-WAIT-2 bounds idleness, not a half-closed transfer that is still moving.
            if (this.state === "FIN-WAIT-2") this.auxTimer.set(this.finWait2TimeoutMs);
          }
        }
      }
      if (f & TCP_FIN && !truncated && !this.peerFinKnown) {
        this.peerFinKnown = true;
        this.peerFinSeq = seqAdd(seg.seq, dataLen);
      }
      if (this.peerFinKnown && !this.rcvFin && this.rcvNxt === this.peerFinSeq) this.receiveFin();
    }

    // Data or our FIN going out now carries the ACK; otherwise acknowledge on its own.
    const sentBefore = stats.segmentsOut;
    this.trySend();
    if (ackNeeded && stats.segmentsOut === sentBefore) this.sendAck();
  }

  /**
   * The peer's SYN again while we are in SYN-RECEIVED: a retransmitted SYN (our SYN-ACK was lost)
   * gets the SYN-ACK again; a SYN-ACK (simultaneous open, RFC 9293 §3.5 figure 8) that acknowledges
   * our SYN completes the handshake.
   */
  private synReceivedSyn(seg: TcpSegmentIn): void {
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
  private receiveFin(): void {
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

  /**
   * ACK processing for synchronized states (§3.10.7.4 fifth check, RFC 5961 §5.2, RFC 5681/6582).
   * Returns false when the segment must be dropped.
   */
  private processAck(seg: TcpSegmentIn): boolean {
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
    const advanced = seqGt(ack, this.sndUna);
    const dataAcked = advanced ? this.ackData(seg, ack) : 0;
    // RFC 6675 Update(): fold the SACK blocks into the scoreboard.
    let newlySacked = 0;
    const o = seg.options;
    if (this.sackEnabled) {
      if (advanced) this.sb.ackTo(ack);
      for (let i = 0; i < o.sackCount; i++) {
        newlySacked += this.sb.add(
          o.sackBlocks[2 * i] as number,
          o.sackBlocks[2 * i + 1] as number,
          this.sndUna,
          this.sndMax,
        );
      }
    }
    if (advanced) {
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
    // Window update (§3.10.7.4): only from segments newer than the last update.
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      this.updateWindow(seg.window, seg.seq, ack, this.sndShift);
    }
    return true;
  }

  /** SND.UNA advances to `ack`: free the send buffer, take an RTT sample. Returns data bytes acked. */
  private ackData(seg: TcpSegmentIn, ack: number): number {
    const dataAcked = Math.min(Math.max(0, seqDiff(ack, this.sndBufSeq)), this.sendBuf.length);
    this.sendBuf.drop(dataAcked);
    this.opts.stats.sendBufferedBytes -= dataAcked;
    this.sndBufSeq = seqAdd(this.sndBufSeq, dataAcked);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    if (this.tsEnabled && seg.options.hasTimestamp && seg.options.tsEcr !== 0) {
      this.rttSample(this.tsEcrAge(seg.options.tsEcr));
    } else if (this.rttTiming && seqGe(ack, this.rttSeq)) {
      this.rttTiming = false;
      this.rttSample(this.opts.clock.now() - this.rttTime);
    }
    this.rtt.resetBackoff();
    this.retries = 0;
    return dataAcked;
  }

  private onNewAck(dataAcked: number): void {
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
      if (dataAcked > 0) this.cc.onAck(dataAcked, this.opts.clock.now(), this.rtt.srtt);
    }
    // RFC 6298 §5.2-5.3.
    if (this.sndMax === this.sndUna) this.rtxTimer.clear();
    else this.rtxTimer.set(this.rtt.rto);
    if (this.writeBlocked && this.sendBuf.free > 0) {
      this.writeBlocked = false;
      this.events |= EV_WRITABLE;
    }
  }

  private onDupAck(): void {
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
  private enterRecovery(): void {
    this.inRecovery = true;
    this.recover = this.sndMax;
    this.opts.stats.fastRecoveries++;
    this.cc.onEnterRecovery(seqDiff(this.sndMax, this.sndUna), this.opts.clock.now(), this.sackEnabled);
    if (!this.sackEnabled) {
      this.retransmitHead();
      return;
    }
    this.rescueDone = false;
    this.highRxt = this.sndUna;
    const n = this.retransmitAt(this.sndUna, this.sb.nextSackedAfter(this.sndUna, this.sndMax));
    this.highRxt = seqAdd(this.sndUna, n);
  }

  // ---------------------------------------------------------------- output

  /** Send new data (and our FIN) as window, congestion window and SWS avoidance allow. */
  private trySend(): void {
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
  private sendNormal(): void {
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
  private sendNew(usable: number, ackDue: boolean): number {
    const unsent = seqDiff(seqAdd(this.sndBufSeq, this.sendBuf.length), this.sndNxt);
    if (unsent > 0) {
      if (usable <= 0) return 0;
      const mss = this.sendMss;
      const len = Math.min(unsent, usable, mss);
      if (len < mss && len < unsent && ackDue && len < this.maxSndWnd / 2) return 0;
      const fin = this.finQueued && len === unsent;
      this.sendData(this.sndNxt, len, fin);
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
  private sendRecovery(): void {
    const mss = this.sendMss;
    const una = this.sndUna;
    if (seqLt(this.highRxt, una)) this.highRxt = una;
    let pipe = this.sb.pipe(una, this.sndMax, this.highRxt, mss);
    while (this.cc.cwnd - pipe >= mss) {
      let s = this.sb.findHole(this.highRxt, una, mss, true);
      if (s < 0) {
        const n = this.sndNxt === this.sndMax ? this.sendNew(this.sndWnd - seqDiff(this.sndNxt, una), true) : 0;
        if (n > 0) {
          pipe += n;
          continue;
        }
        s = this.sb.findHole(this.highRxt, una, mss, false);
      }
      if (s >= 0) {
        const n = this.retransmitAt(s, this.sb.holeEnd);
        if (n === 0) break;
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

  /** Emit data [seq, seq+len) from the send buffer, with FIN when `fin`. */
  private sendData(seq: number, len: number, fin: boolean): void {
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
      // Karn: a retransmitted range never yields an RTT sample.
      if (this.rttTiming && seqLt(seq, this.rttSeq)) this.rttTiming = false;
    } else if (len > 0 && !this.rttTiming && !this.tsEnabled) {
      this.rttTiming = true;
      this.rttSeq = seqAdd(seq, len);
      this.rttTime = this.opts.clock.now();
    }
    const end = seqAdd(seq, len + (fin ? 1 : 0));
    if (seqGt(end, this.sndMax)) this.sndMax = end;
  }

  /**
   * Retransmit one segment starting at `seq`, at most one MSS and not past `limit` (the FIN rides
   * along when the segment reaches it). Returns the sequence space resent (0 when nothing).
   */
  private retransmitAt(seq: number, limit: number): number {
    const dataEnd = seqAdd(this.sndBufSeq, this.sendBuf.length);
    const len = Math.max(0, Math.min(this.sendMss, seqDiff(limit, seq), seqDiff(dataEnd, seq)));
    const end = seqAdd(seq, len);
    const fin = this.finQueued && end === this.finSeq && seqGt(this.sndMax, this.finSeq) && seqGt(limit, end);
    if (len === 0 && !fin) return 0;
    this.sendData(seq, len, fin);
    return len + (fin ? 1 : 0);
  }

  /** Retransmit the first unacknowledged segment (fast retransmit, partial ACK). */
  private retransmitHead(): void {
    const outstandingData = Math.min(this.sendBuf.length, seqDiff(this.sndMax, this.sndBufSeq));
    const len = Math.max(0, Math.min(this.sendMss, outstandingData));
    const fin = this.finQueued && seqGt(this.sndMax, this.finSeq) && len === outstandingData;
    if (len === 0 && !fin) return;
    this.sendData(this.sndUna, len, fin);
  }

  private sendSyn(): void {
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
  private sendAck(): void {
    this.fillHeader(TCP_ACK, this.sndMax);
    this.emit(0);
  }

  /** RST for an established connection: <SEQ=SND.NXT><CTL=RST> (sndMax: what the peer has seen). */
  private sendReset(): void {
    this.fillHeader(TCP_RST | TCP_ACK, this.sndMax);
    scratchHeader.window = 0;
    scratchHeader.sackCount = 0;
    this.emit(0);
  }

  /** Header for a non-SYN segment: ACK, window, timestamps, SACK blocks. */
  private fillHeader(flags: number, seq: number): void {
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
    if (this.sackEnabled && this.recvBuf.outOfOrderCount > 0) {
      h.sackCount = this.recvBuf.sackBlocks(this.rcvNxt, h.sackBlocks, this.tsEnabled ? 3 : 4);
    }
    this.lastAckSent = this.rcvNxt;
  }

  private emit(payloadLength: number): void {
    emitSegment(this.opts.output, this.local, this.remote, payloadLength, this.writePayload);
    this.opts.stats.segmentsOut++;
  }

  /**
   * The window field to send. The right edge moves right only by at least min(MSS, buffer/2)
   * (receiver SWS avoidance, RFC 9293 §3.8.6.2.2) and never moves left (§3.8.6).
   */
  private advertiseWindow(): number {
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

  private get finWait2TimeoutMs(): number {
    return this.opts.finWait2TimeoutMs ?? DEFAULT_FIN_WAIT_2_TIMEOUT_MS;
  }

  private windowUpdateThreshold(): number {
    return Math.min(this.ourMss, Math.floor(this.opts.bufferSize / 2));
  }

  /** How many bytes past RCV.NXT we accept: up to the advertised right edge. */
  private acceptWindow(): number {
    return Math.max(0, Math.min(seqDiff(this.rcvAdvRight, this.rcvNxt), this.recvBuf.window));
  }

  // ---------------------------------------------------------------- timers

  private armTimer(): void {
    if (this.released || this.state === "TIME-WAIT") return;
    if (this.persisting || this.sndMax !== this.sndUna) {
      if (this.rtxTimer.deadline < 0) this.rtxTimer.set(this.rtt.rto);
    } else this.rtxTimer.clear();
  }

  private onRetransmitTimer(): void {
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
    this.retries++;
    if (this.retries > MAX_RETRANSMITS) {
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
    this.rtt.onTimeout();
    this.cc.onTimeout(seqDiff(this.sndMax, this.sndUna), this.opts.clock.now());
    this.inRecovery = false;
    this.dupAcks = 0;
    this.recover = this.sndMax;
    this.rttTiming = false;
    this.sndNxt = this.sndUna;
    this.rtxTimer.set(this.rtt.rto);
    this.trySend();
  }

  private onAuxTimer(): void {
    if (this.released) return;
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
      } else if (this.state === "SYN-RECEIVED") this.sendReset();
      this.fireClosed("timeout");
      this.release();
    }
  }

  private enterTimeWait(): void {
    this.state = "TIME-WAIT";
    this.rtxTimer.clear();
    this.auxTimer.set(TIME_WAIT_MS);
    this.finishGracefully();
  }

  /**
   * Both FINs are through. onClosed("closed") waits until the app has consumed every received
   * byte (the gateway ends the host socket on it), then only the TIME-WAIT demux entry lingers.
   */
  private finishGracefully(): void {
    this.closePending = true;
    this.events |= EV_CLOSED;
  }

  // ---------------------------------------------------------------- helpers

  /** Adopt the peer's SYN options (RFC 9293 §3.7.1, RFC 7323 §2.2/§3.2, RFC 2018 §2). */
  private negotiate(syn: TcpSegmentIn): void {
    const o = syn.options;
    const peerMss = o.mss > 0 ? o.mss : this.remote.length === 4 ? DEFAULT_MSS_V4 : DEFAULT_MSS_V6;
    if (o.windowScale >= 0 && (this.passive || this.wsOffered)) {
      this.wsOffered = true;
      this.sndShift = o.windowScale;
      this.rcvShift = windowScaleFor(this.opts.bufferSize);
    } else {
      this.wsOffered = false;
      this.sndShift = 0;
      this.rcvShift = 0;
    }
    this.tsEnabled = o.hasTimestamp;
    if (o.hasTimestamp) this.tsRecent = o.tsVal;
    this.sackEnabled = o.sackPermitted && this.opts.sack !== false;
    this.sendMss = Math.max(1, Math.min(peerMss, this.ourMss) - (this.tsEnabled ? TIMESTAMP_OPTION_BYTES : 0));
    this.cc.setMss(this.sendMss);
  }

  private updateWindow(window: number, seq: number, ack: number, shift = 0): void {
    this.sndWnd = window * 2 ** shift;
    this.sndWl1 = seq;
    this.sndWl2 = ack;
    if (this.sndWnd > this.maxSndWnd) this.maxSndWnd = this.sndWnd;
    if (this.sndWnd > 0) this.persisting = false;
  }

  private becomeEstablished(): void {
    this.auxTimer.clear();
    this.state = this.finQueued ? "FIN-WAIT-1" : "ESTABLISHED";
    this.events |= EV_ESTABLISHED;
  }

  private rttSample(ms: number): void {
    if (ms >= 0 && ms < 0x7fffffff) this.rtt.sample(ms);
  }

  private tsNow(): number {
    return (Math.floor(this.opts.clock.now()) + this.tsOffset) >>> 0;
  }

  private tsEcrAge(tsEcr: number): number {
    return (this.tsNow() - tsEcr) >>> 0;
  }

  private flushEvents(): void {
    while (this.events !== 0 && !this.closedFired) {
      const ev = this.events;
      this.events = 0;
      if (ev & EV_ESTABLISHED) this.onEstablished();
      if (ev & EV_READABLE && !this.closedFired) this.onReadable();
      if (ev & EV_WRITABLE && !this.closedFired) this.onWritable();
      if (ev & EV_CLOSED && this.closePending && this.recvBuf.length === 0) this.fireClosed("closed");
    }
    this.events = 0;
  }

  private fireClosed(reason: TcpCloseReason): void {
    if (this.closedFired) return;
    this.closedFired = true;
    this.onClosed(reason);
  }

  /** Leave the demux table and stop every timer (CLOSED). */
  private release(): void {
    if (this.released) return;
    this.released = true;
    this.state = "CLOSED";
    const stats = this.opts.stats;
    stats.sendBufferedBytes -= this.sendBuf.length;
    stats.receiveBufferedBytes -= this.recvBuf.length;
    stats.outOfOrderBytes -= this.recvBuf.outOfOrderBytes;
    this.rtxTimer.clear();
    this.auxTimer.clear();
    this.opts.onGone(this);
  }

  /** Debug view of the sequence variables (tests assert on these). */
  get debug(): {
    iss: number;
    irs: number;
    sndUna: number;
    sndNxt: number;
    sndWnd: number;
    rcvNxt: number;
    cwnd: number;
    rto: number;
    sendMss: number;
    sndShift: number;
    rcvShift: number;
    tsEnabled: boolean;
    sackEnabled: boolean;
    ssthresh: number;
    cc: string;
    inRecovery: boolean;
    sacked: number;
  } {
    return {
      iss: this.iss,
      irs: this.irs,
      sndUna: this.sndUna,
      sndNxt: this.sndNxt,
      sndWnd: this.sndWnd,
      rcvNxt: this.rcvNxt,
      cwnd: this.cc.cwnd,
      rto: this.rtt.rto,
      sendMss: this.sendMss,
      sndShift: this.sndShift,
      rcvShift: this.rcvShift,
      tsEnabled: this.tsEnabled,
      sackEnabled: this.sackEnabled,
      ssthresh: this.cc.ssthresh,
      cc: this.cc.name,
      inRecovery: this.inRecovery,
      sacked: this.sb.sackedBytes,
    };
  }
}
