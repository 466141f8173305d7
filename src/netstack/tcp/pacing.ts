/**
 * Pacing (as Linux's fq/internal pacing): data leaves at rate = factor × cwnd / SRTT, factor 2 in
 * slow start and 1.2 after, from a token bucket refilled on the injected clock. A burst is bounded by
 * PACING_BURST_MS of rate (at least PACING_MIN_BURST segments), so a whole window never leaves in
 * one ~1 ms clump: on a long path a clump overflows the receive buffer of the peer's UDP socket
 * (~90 datagrams for a default 212 KB) and every loss costs a congestion-window cut.
 *
 * Unpaced until the first RTT sample; on short paths the rate is so high that the bucket never
 * empties, so only long-RTT flows are slowed to their fair rate.
 */

/** Rate factor while cwnd < ssthresh (slow start must outrun the window doubling per RTT). */
export const PACING_SLOW_START_FACTOR = 2;
/** Rate factor in congestion avoidance. */
export const PACING_FACTOR = 1.2;
/** Shortest wait for the bucket: timers have millisecond resolution. */
export const PACING_QUANTUM_MS = 1;
/**
 * Largest burst, in ms of the pacing rate. More than the quantum: a 1 ms timer fires 1-3 ms late
 * on a busy event loop, and a bucket capped at 1 ms would lose the difference (measured: pacing then
 * held a 0.5 ms path to half the reference's rate).
 */
export const PACING_BURST_MS = 4;
/** ...but at least this many full segments. */
export const PACING_MIN_BURST = 4;

export class Pacer {
  private tokens = 0;
  private at = Number.NEGATIVE_INFINITY;
  /** The last rate in bytes per ms (0 = unpaced). */
  rate = 0;

  /**
   * May `len` bytes leave at `now`? Returns 0 when they may (spend() them once sent), otherwise how
   * many ms until the bucket holds them.
   */
  check(len: number, now: number, cwnd: number, slowStart: boolean, srttMs: number, mss: number): number {
    if (!(srttMs > 0)) {
      this.rate = 0;
      return 0;
    }
    const rate = ((slowStart ? PACING_SLOW_START_FACTOR : PACING_FACTOR) * cwnd) / srttMs;
    this.rate = rate;
    const burst = Math.max(rate * PACING_BURST_MS, PACING_MIN_BURST * mss);
    const t = this.tokens + (now - this.at) * rate;
    this.tokens = Math.min(t, burst);
    this.at = now;
    if (this.tokens >= len) return 0;
    // Wake up no more often than once per quantum: a timer per segment would cost more than pacing saves.
    return Math.max(PACING_QUANTUM_MS, (len - this.tokens) / rate);
  }

  /** `len` bytes left (after check() allowed them). */
  spend(len: number): void {
    if (this.rate > 0) this.tokens -= len;
  }
}
