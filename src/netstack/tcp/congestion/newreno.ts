/**
 * NewReno congestion control: slow start and congestion avoidance (RFC 5681 §3.1), fast retransmit
 * and fast recovery (RFC 5681 §3.2 with the NewReno partial-ACK rules of RFC 6582 §3.2).
 */
import type { CongestionControl } from "./types.ts";

/** RFC 6928 initial window: min(10*MSS, max(2*MSS, 14600)). */
export function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}

/**
 * Slow start grows cwnd by at most this many MSS per ACK (appropriate byte counting, RFC 3465's L).
 * 8, not RFC 3465's 2: receivers that coalesce ACKs (Linux with GRO, this stack: one ACK per flow
 * per event-loop turn) send stretch ACKs, and L = 2 would slow slow start down to a crawl; RFC 9406
 * §4.2 uses L = 8 for senders that do not pace.
 */
export const SLOW_START_ACK_LIMIT = 8;

export class NewReno implements CongestionControl {
  readonly name = "newreno";
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** Bytes acknowledged since cwnd last grew in congestion avoidance (RFC 5681 §3.1, eq. 3 alternative). */
  private avoidanceAcked = 0;

  constructor(private mss: number) {
    this.cwnd = initialWindow(mss);
  }

  exitSlowStart(): void {
    if (this.cwnd < this.ssthresh) this.ssthresh = this.cwnd;
  }

  setMss(mss: number): void {
    if (this.cwnd === initialWindow(this.mss)) this.cwnd = initialWindow(mss);
    this.mss = mss;
  }

  onAck(ackedBytes: number, _now = 0, _srttMs = -1): void {
    if (this.cwnd < this.ssthresh) {
      // Slow start with appropriate byte counting (RFC 3465 §2.2, RFC 5681 eq. 2).
      this.cwnd += Math.min(ackedBytes, SLOW_START_ACK_LIMIT * this.mss);
      return;
    }
    // Congestion avoidance: one MSS per cwnd of acknowledged data (RFC 5681 §3.1 byte counting).
    this.avoidanceAcked += ackedBytes;
    if (this.avoidanceAcked >= this.cwnd) {
      this.avoidanceAcked -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  onEnterRecovery(flightSize: number, _now = 0, sack = false): void {
    // RFC 5681 §3.2 steps 2-3 (eq. 4), RFC 6582 §3.2 step 2; with SACK, RFC 6675 §5 step 4.2
    // (cwnd = ssthresh, the pipe estimate replaces inflation).
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.mss);
    this.cwnd = sack ? this.ssthresh : this.ssthresh + 3 * this.mss;
    this.avoidanceAcked = 0;
  }

  onDupAckInRecovery(): void {
    // RFC 5681 §3.2 step 4: inflate by one segment per further duplicate ACK.
    this.cwnd += this.mss;
  }

  onPartialAck(ackedBytes: number): void {
    // RFC 6582 §3.2 step 5: deflate by the amount acknowledged, add back one MSS if ≥ 1 MSS was acked.
    this.cwnd = Math.max(this.mss, this.cwnd - ackedBytes + (ackedBytes >= this.mss ? this.mss : 0));
  }

  onExitRecovery(flightSize: number): void {
    // RFC 6582 §3.2 step 3, option 1: min(ssthresh, max(FlightSize, SMSS) + SMSS).
    this.cwnd = Math.min(this.ssthresh, Math.max(flightSize, this.mss) + this.mss);
  }

  onTimeout(flightSize: number): void {
    // RFC 5681 §3.1 eq. 4 and the loss window of one segment.
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.mss);
    this.cwnd = this.mss;
    this.avoidanceAcked = 0;
  }
}
