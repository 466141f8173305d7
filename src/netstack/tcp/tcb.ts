/**
 * The state of one TCP connection (RFC 9293 §3.3.1 sequence variables, negotiated options, buffers,
 * recovery bookkeeping) and the small helpers every part uses. The behaviour is layered on top, one
 * concern per file as gVisor splits it: output.ts (segment emission), sender.ts (ACK processing,
 * sending, loss recovery), timers.ts (retransmission/handshake/TIME-WAIT timers), input.ts (segment
 * arrival) and connection.ts (the application API).
 */
import type { Timer } from "../../util/clock.ts";
import type { IpAddr } from "../types.ts";
import type { TcpCloseReason, TcpState } from "./api.ts";
import { BufferAutotune } from "./autotune.ts";
import { Cubic } from "./congestion/cubic.ts";
import { HyStart } from "./congestion/hystart.ts";
import type { CongestionControl } from "./congestion/types.ts";
import type { TcpConnectionOptions } from "./connection-options.ts";
import {
  DEFAULT_FIN_WAIT_2_TIMEOUT_MS,
  DEFAULT_MSS_V4,
  DEFAULT_MSS_V6,
  KEEPALIVE_IDLE_MS,
  TIME_WAIT_MS,
  TIMESTAMP_OPTION_BYTES,
  windowScaleFor,
} from "./constants.ts";
import { Pacer } from "./pacing.ts";
import { PeerPath } from "./peer-path.ts";
import { RackLog } from "./rack.ts";
import { ReceiveBuffer } from "./receive-buffer.ts";
import { RttEstimator } from "./rtt.ts";
import { SackScoreboard } from "./sack.ts";
import type { PayloadWriter, TcpSegmentIn } from "./segment.ts";
import { SendBuffer } from "./send-buffer.ts";
import { seqAdd, seqDiff } from "./seq.ts";

/** Least time between two ACKs answering out-of-window segments without data. */
export const OOW_ACK_INTERVAL_MS = 500;

export const EV_ESTABLISHED = 1;
export const EV_READABLE = 2;
export const EV_WRITABLE = 4;
export const EV_CLOSED = 8;

const noop = () => {};

export abstract class TcpControlBlock {
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
  protected iss = 0;
  protected sndUna = 0;
  protected sndNxt = 0;
  protected sndMax = 0;
  /** Peer's window in bytes (already scaled). */
  protected sndWnd = 0;
  protected sndWl1 = 0;
  protected sndWl2 = 0;
  protected maxSndWnd = 0;
  /** Sequence number of sendBuf's first byte. */
  protected sndBufSeq = 0;

  // Receive sequence variables.
  protected irs = 0;
  protected rcvNxt = 0;
  /** Right edge of the window we last advertised: we never move it left (RFC 9293 §3.8.6). */
  protected rcvAdvRight = 0;
  protected lastAckSent = 0;

  // Negotiated options.
  /** Shift applied to windows the peer sends us (its scale). */
  protected sndShift = 0;
  /** Shift applied to windows we send (our scale); 0 unless both sides sent the option. */
  protected rcvShift = 0;
  protected wsOffered = false;
  protected tsEnabled = false;
  protected tsRecent = 0;
  protected readonly tsOffset: number;
  protected sackEnabled = false;
  protected readonly ourMss: number;
  /** Payload bytes per segment we send: min(peer MSS, our MSS) minus timestamp option bytes. */
  protected sendMss: number;

  // Close bookkeeping.
  protected finQueued = false;
  /** Sequence number our FIN occupies, once queued. */
  protected finSeq = 0;
  /** The peer's FIN is known (its sequence number in peerFinSeq) but may sit beyond a hole. */
  protected peerFinKnown = false;
  protected peerFinSeq = 0;
  /** The peer's FIN has been received in order (RCV.NXT covers it). */
  protected rcvFin = false;

  // Loss recovery.
  protected dupAcks = 0;
  protected inRecovery = false;
  /** RFC 6582 "recover" / RFC 6675 RecoveryPoint: sndMax when recovery (or the last timeout) began. */
  protected recover = 0;
  /** SACK scoreboard of what the peer holds above SND.UNA (RFC 6675 §3). */
  protected readonly sb = new SackScoreboard();
  /** RFC 6675 HighRxt: the end of the highest range retransmitted in this recovery. */
  protected highRxt = 0;
  /** RACK transmission log (rack.ts) and the lost retransmissions it found, waiting to go again. */
  protected readonly rack = new RackLog();
  protected readonly rackLost: number[] = [];
  /** Smallest RTT sample (RACK's guard against ambiguous retransmissions, reo_wnd). */
  protected minRtt = Number.POSITIVE_INFINITY;
  /**
   * The retransmission timer's slot is armed as a tail loss probe timeout, or as RACK's reordering
   * timer (one slot for RTO, PTO and reordering timeout, as Linux's icsk_pending).
   */
  protected ptoArmed = false;
  protected reoArmed = false;
  /** RFC 8985 §7.3 TLP.end_seq (SND.NXT when the probe left; -1: no probe out) and TLP.is_retrans. */
  protected tlpEndSeq = -1;
  protected tlpIsRetrans = false;
  /** D-SACKed bytes reported by the peer (compared with what was ever resent). */
  protected dsackBytes = 0;
  /** RFC 6675 rescue retransmission already done in this recovery. */
  protected rescueDone = false;
  /** When an out-of-window pure ACK was last answered. */
  protected lastOowAck = Number.NEGATIVE_INFINITY;
  protected retries = 0;
  /** Of `retries`, the linear (un-backed-off) ones of a thin flow (see THIN_LINEAR_TIMEOUTS). */
  protected linearTimeouts = 0;
  /** The peer's progress (PeerPath.acks) when the retransmission timer was last started. */
  protected pathAcksAtArm = 0;
  protected readonly path: PeerPath;
  /** In the layer's fair-share line (FairShare sets and clears it). */
  fairShareWaiting = false;
  fairShareEpoch = 0;
  protected persisting = false;
  /** A segment arrived from the peer since the keepalive timer last looked (no clock read per segment). */
  protected heard = false;
  /** Keepalive intervals in a row without a segment from the peer. */
  protected keepaliveMisses = 0;
  /** Karn-compliant timing of one segment when timestamps are off. */
  protected rttTiming = false;
  protected rttSeq = 0;
  protected rttTime = 0;

  protected readonly passive: boolean;
  /** Passive open: the gateway called accept() and the SYN-ACK went out. */
  protected synAckSent = false;
  protected closedFired = false;
  /** Graceful close done; onClosed("closed") fires once the receive buffer is drained. */
  protected closePending = false;
  protected released = false;
  protected writeBlocked = false;
  protected events = 0;
  /** An ACK is owed; it goes out at the end of the turn unless a segment carries it first. */
  protected ackPending = false;
  /** A duplicate [dsackLeft, dsackRight) arrived: the next ACK reports it first, once (RFC 2883). */
  protected dsackPending = false;
  protected dsackLeft = 0;
  protected dsackRight = 0;
  /** In the layer's delayed-ACK queue (timers.ts ackAtTurnEnd). */
  protected ackDelayed = false;
  /** In the layer's end-of-turn list. */
  private turnQueued = false;

  protected readonly sendBuf: SendBuffer;
  protected readonly recvBuf: ReceiveBuffer;
  /** Growing buffers, or null for a fixed --tcp-buffer-size. */
  protected readonly autotune: BufferAutotune | null;
  protected readonly rtt = new RttEstimator();
  /** HyStart++ (RFC 9406) for slow start. */
  protected readonly hystart = new HyStart();
  protected readonly cc: CongestionControl;
  protected readonly rtxTimer: Timer;
  /** Pacing: data waits for the bucket (pacing.ts); this timer resumes sending. */
  protected readonly pacer = new Pacer();
  protected readonly paceTimer: Timer;
  /** Handshake deadline, keepalive while synchronized, FIN-WAIT-2 and TIME-WAIT timeouts. */
  protected readonly auxTimer: Timer;
  /** Offset into sendBuf of the payload being emitted (read by writePayload). */
  protected payloadOffset = 0;
  protected readonly writePayload: PayloadWriter;

  protected constructor(
    protected readonly opts: TcpConnectionOptions,
    passive: boolean,
  ) {
    this.local = opts.local;
    this.localPort = opts.localPort;
    this.remote = opts.remote;
    this.remotePort = opts.remotePort;
    this.path = opts.path ?? new PeerPath();
    this.passive = passive;
    this.ourMss = opts.mss;
    this.sendMss = Math.min(opts.mss, opts.remote.length === 4 ? DEFAULT_MSS_V4 : DEFAULT_MSS_V6);
    this.sendBuf = new SendBuffer(opts.bufferSize);
    this.recvBuf = new ReceiveBuffer(opts.bufferSize);
    const max = opts.autotuneMaxBufferSize ?? 0;
    this.autotune = max > opts.bufferSize ? new BufferAutotune(max, opts.stats) : null;
    this.cc = (opts.congestionControl ?? ((mss: number) => new Cubic(mss)))(this.sendMss);
    this.rtxTimer = opts.clock.timer(() => this.onRetransmitTimer());
    this.auxTimer = opts.clock.timer(() => this.onAuxTimer());
    this.paceTimer = opts.clock.timer(() => this.onPaceTimer());
    this.writePayload = (dst, dstOff, len) => this.sendBuf.copyOut(this.payloadOffset, len, dst, dstOff);
    this.tsOffset = opts.random.u32();
    this.useIss(opts.random.u32());
  }

  /** Our initial sequence number (a reopened TIME-WAIT 4-tuple gets one above the old incarnation's). */
  protected useIss(iss: number): void {
    this.iss = iss;
    this.sndUna = this.sndNxt = this.sndMax = iss;
    this.sndBufSeq = seqAdd(iss, 1);
    this.recover = iss;
  }

  protected abstract onRetransmitTimer(): void;
  protected abstract onAuxTimer(): void;
  protected abstract onPaceTimer(): void;

  protected get finWait2TimeoutMs(): number {
    return this.opts.finWait2TimeoutMs ?? DEFAULT_FIN_WAIT_2_TIMEOUT_MS;
  }

  /** The receive buffer's largest size: the window scale is chosen for it. */
  protected get largestReceiveBuffer(): number {
    return this.autotune ? this.autotune.max : this.opts.bufferSize;
  }

  protected windowUpdateThreshold(): number {
    return Math.min(this.ourMss, Math.floor(this.opts.bufferSize / 2));
  }

  /** How many bytes past RCV.NXT we accept: up to the advertised right edge. */
  protected acceptWindow(): number {
    return Math.max(0, Math.min(seqDiff(this.rcvAdvRight, this.rcvNxt), this.recvBuf.window));
  }

  /** Adopt the peer's SYN options (RFC 9293 §3.7.1, RFC 7323 §2.2/§3.2, RFC 2018 §2). */
  protected negotiate(syn: TcpSegmentIn): void {
    const o = syn.options;
    const peerMss = o.mss > 0 ? o.mss : this.remote.length === 4 ? DEFAULT_MSS_V4 : DEFAULT_MSS_V6;
    if (o.windowScale >= 0 && (this.passive || this.wsOffered)) {
      this.wsOffered = true;
      this.sndShift = o.windowScale;
      this.rcvShift = windowScaleFor(this.largestReceiveBuffer);
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

  protected updateWindow(window: number, seq: number, ack: number, shift = 0): void {
    this.sndWnd = window * 2 ** shift;
    this.sndWl1 = seq;
    this.sndWl2 = ack;
    if (this.sndWnd > this.maxSndWnd) this.maxSndWnd = this.sndWnd;
    if (this.sndWnd > 0) this.persisting = false;
  }

  protected becomeEstablished(): void {
    // The keepalive timer from now on (FIN-WAIT-2 and TIME-WAIT take the timer over later).
    this.auxTimer.set(KEEPALIVE_IDLE_MS);
    this.state = this.finQueued ? "FIN-WAIT-1" : "ESTABLISHED";
    this.events |= EV_ESTABLISHED;
  }

  protected rttSample(ms: number): void {
    if (!(ms >= 0 && ms < 0x7fffffff)) return;
    this.rtt.sample(ms);
    if (ms < this.minRtt) this.minRtt = ms;
    if (this.cc.cwnd < this.cc.ssthresh) this.hystart.onRttSample(ms);
  }

  protected tsNow(): number {
    return (Math.floor(this.opts.clock.now()) + this.tsOffset) >>> 0;
  }

  protected tsEcrAge(tsEcr: number): number {
    return (this.tsNow() - tsEcr) >>> 0;
  }

  /** Run this flow's end-of-turn work: the app events, then the ACK still owed (window folded in). */
  endTurn(): void {
    this.flushEvents();
    if (this.ackPending && !this.released) this.ackAtTurnEnd();
    this.turnQueued = false;
  }

  /** Have endTurn() called at the end of this turn (once). */
  protected queueTurn(): void {
    if (this.turnQueued) return;
    this.turnQueued = true;
    this.opts.queueTurn(this);
  }

  /** Owe an ACK, sent at the end of the turn (RFC 5681 §4.2 allows the delay; the turn bounds it). */
  protected ackLater(): void {
    this.ackPending = true;
    this.queueTurn();
  }

  protected abstract sendAck(): void;
  /** The ACK still owed at the end of a turn: now, or delayed (timers.ts). */
  protected abstract ackAtTurnEnd(): void;

  protected flushEvents(): void {
    while (this.events !== 0 && !this.closedFired) {
      const ev = this.events;
      this.events = 0;
      if (ev & EV_ESTABLISHED) this.onEstablished();
      if (ev & EV_READABLE && !this.closedFired) this.onReadable();
      if (ev & EV_WRITABLE && !this.closedFired) this.onWritable();
      if (ev & EV_CLOSED && this.closePending && this.recvBuf.length === 0) {
        this.fireClosed("closed");
        if (this.state === "TIME-WAIT") this.retireToTimeWait();
      }
    }
    this.events = 0;
  }

  /**
   * TIME-WAIT with nothing left for the app: the layer's TIME-WAIT table takes over the 4-tuple
   * (time-wait.ts) and this connection is released, so what it holds is freed now, not in 2*MSL.
   */
  private retireToTimeWait(): void {
    const tw = this.opts.timeWait;
    if (!tw || this.released) return;
    const rcvWnd = this.acceptWindow();
    tw.table.add(tw.key, {
      local: this.local,
      localPort: this.localPort,
      remote: this.remote,
      remotePort: this.remotePort,
      sndMax: this.sndMax,
      rcvNxt: this.rcvNxt,
      rcvWnd,
      windowField: Math.min(65535, Math.floor(rcvWnd / 2 ** this.rcvShift)),
      maxSndWnd: this.maxSndWnd,
      tsEnabled: this.tsEnabled,
      tsRecent: this.tsRecent,
      tsOffset: this.tsOffset,
      expiresAt: this.auxTimer.deadline >= 0 ? this.auxTimer.deadline : this.opts.clock.now() + TIME_WAIT_MS,
    });
    this.release();
  }

  protected fireClosed(reason: TcpCloseReason): void {
    if (this.closedFired) return;
    this.closedFired = true;
    this.onClosed(reason);
  }

  /** Leave the demux table and stop every timer (CLOSED). */
  protected release(): void {
    if (this.released) return;
    this.released = true;
    this.state = "CLOSED";
    const stats = this.opts.stats;
    stats.sendBufferedBytes -= this.sendBuf.length;
    stats.receiveBufferedBytes -= this.recvBuf.length;
    stats.outOfOrderBytes -= this.recvBuf.outOfOrderBytes;
    this.autotune?.release();
    this.rtxTimer.cancel();
    this.auxTimer.cancel();
    this.paceTimer.cancel();
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
