/**
 * One TCP connection: the RFC 9293 state machine (§3.3.2, event processing §3.10), retransmission
 * per RFC 6298, loss recovery driven by the peer's SACK blocks (RFC 2018 scoreboard, RFC 6675
 * pipe/NextSeg/rescue retransmission) with NewReno (RFC 5681 / RFC 6582) as the fallback when SACK
 * is not negotiated, window scaling and timestamps (RFC 7323), SACK blocks for out-of-order data
 * and the RFC 5961 RST/SYN/ACK defences. Congestion control is pluggable (congestion/: CUBIC by
 * default, NewReno).
 *
 * The segment parsing and the demux live in layer.ts; buffers, RTT and congestion control in
 * their own files. No Nagle: data goes out as soon as window, congestion window and pacing allow.
 * In-order data (and, with SACK, out-of-order data that only extends the latest island) is
 * acknowledged once per event-loop turn (Clock.afterTurn), with the window update folded in, and the
 * app hears of it once per turn; anything else (a new island, hole filled, duplicate, FIN, window
 * re-opening from zero) is acknowledged at once.
 *
 * This file holds the application API; the class stacks one concern per file: tcb.ts (state) ←
 * output.ts (segment emission) ← sender.ts (ACKs in, data out, recovery) ← timers.ts ← input.ts.
 */
import type { TcpConnectionApi } from "./api.ts";
import type { TcpConnectionOptions } from "./connection-options.ts";
import { windowScaleFor } from "./constants.ts";
import { TcpInput } from "./input.ts";
import { INITIAL_RTT_GUESS_MS } from "./rtt.ts";
import type { TcpSegmentIn } from "./segment.ts";
import { seqAdd, seqDiff } from "./seq.ts";

export type { TcpConnectionOptions } from "./connection-options.ts";

export class TcpConnection extends TcpInput implements TcpConnectionApi {
  /** A SYN arrived for a new flow: SYN-RECEIVED, waiting for accept() before the SYN-ACK. */
  static passive(opts: TcpConnectionOptions, syn: TcpSegmentIn, iss = -1): TcpConnection {
    const c = new TcpConnection(opts, true);
    if (iss !== -1) c.useIss(iss);
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
    c.rcvShift = windowScaleFor(c.largestReceiveBuffer);
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
    if (this.autotune && !this.released) {
      const rtt = this.rtt.srtt >= 0 ? this.rtt.srtt : INITIAL_RTT_GUESS_MS;
      this.autotune.onConsumed(k, this.opts.clock.now(), rtt, this.recvBuf);
    }
    if (this.closePending && this.recvBuf.length === 0) this.fireClosed("closed");
    if (this.rcvFin) return;
    if (this.state !== "ESTABLISHED" && this.state !== "FIN-WAIT-1" && this.state !== "FIN-WAIT-2") return;
    // Window update once the right edge can move by the SWS threshold (RFC 9293 §3.8.6.2.2): at once
    // when the peer sees a window too small to send into, else folded into the turn's ACK.
    const threshold = this.windowUpdateThreshold();
    if (seqDiff(seqAdd(this.rcvNxt, this.recvBuf.window), this.rcvAdvRight) >= threshold) {
      if (seqDiff(this.rcvAdvRight, this.rcvNxt) < threshold) this.sendAck();
      else this.ackLater();
    }
  }

  write(data: Uint8Array, fin = false): number {
    if (this.finQueued || this.closedFired) return 0;
    const s = this.state;
    if (s !== "ESTABLISHED" && s !== "CLOSE-WAIT" && s !== "SYN-SENT" && s !== "SYN-RECEIVED") return 0;
    const n = this.sendBuf.write(data);
    this.opts.stats.sendBufferedBytes += n;
    if (n < data.length) this.writeBlocked = true;
    // All taken and the FIN follows: shutdown() sends both, the FIN in the last data segment.
    if (fin && n === data.length) this.shutdown();
    else if (n > 0) this.trySend();
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
}
