/**
 * Timer expiry: retransmission (RFC 6298, zero-window probes per RFC 9293 §3.8.6.1), and the
 * auxiliary timer that bounds the handshake, probes a silent peer (keepalive), and bounds
 * FIN-WAIT-2 and TIME-WAIT.
 */
import { TCP_ACK } from "../../wire/tcp.ts";
import {
  KEEPALIVE_IDLE_MS,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_PROBES,
  MAX_RETRANSMITS,
  TIME_WAIT_MS,
} from "./constants.ts";
import { TcpSender } from "./sender.ts";
import { seqAdd, seqDiff } from "./seq.ts";
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
}
