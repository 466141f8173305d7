/**
 * Pacing (as Linux's fq/internal pacing): data leaves at rate = factor × cwnd / SRTT, factor 2 in
 * slow start and 1.2 after, from a token bucket refilled on the injected clock. A burst is bounded by
 * PACING_BURST_MS of rate (at least PACING_MIN_BURST segments), so a whole window never leaves in
 * one ~1 ms clump: on a long path a clump overflows the receive buffer of the peer's UDP socket
 * (~90 datagrams for a default 212 KB) and every loss costs a congestion-window cut.
 *
 * Unpaced until the first RTT sample; on short paths the rate is so high that only the burst bound
 * (PACING_MAX_BURST segments) applies: a window opened at once by a stretch ACK leaves in clumps of
 * that size.
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
/** ...but at least this many full segments... */
export const PACING_MIN_BURST = 4;
/**
 * ...and at most this many, whatever the rate: on a sub-millisecond path the rate is so high that
 * PACING_BURST_MS of it is several windows, and a stretch ACK released them in one clump that
 * overflowed the peer's UDP receive buffer (212 KB, ~150 datagrams, by default): measured 200-800
 * retransmissions per 5 s on a clean direct path. 64 segments is ~90 KB.
 */
export const PACING_MAX_BURST = 64;

export class Pacer {
  private tokens = 0;
  private at = Number.NEGATIVE_INFINITY;
  /** The last rate in bytes per ms (0 = unpaced). */
  rate = 0;

  /**
   * May `len` bytes leave at `now`? Returns 0 when they may (spend() them once sent), otherwise how
   * many ms until the bucket holds them.
   */
  check(len: number, now: number, cwnd: number, slowStart: boolean, srttMs: number, mss: number, ccRate = 0): number {
    if (!(srttMs > 0) && !(ccRate > 0)) {
      this.rate = 0;
      return 0;
    }
    // A model-based controller (BBR) sets the rate itself.
    const rate = ccRate > 0 ? ccRate : ((slowStart ? PACING_SLOW_START_FACTOR : PACING_FACTOR) * cwnd) / srttMs;
    this.rate = rate;
    const burst = Math.max(Math.min(rate * PACING_BURST_MS, PACING_MAX_BURST * mss), PACING_MIN_BURST * mss);
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
