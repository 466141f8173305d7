/**
 * Retransmission timeout estimator, RFC 6298: SRTT/RTTVAR smoothing (§2), Karn's rule is applied by
 * the caller (it only feeds samples from segments that were not retransmitted, or timestamp echoes),
 * exponential backoff on expiry (§5.5), bounds below.
 */

/** RFC 6298 §2.1: initial RTO of one second. */
export const INITIAL_RTO_MS = 1000;
/**
 * Lower bound of the variance term, as Linux (tcp_rto_min): RTO = SRTT + max(4 RTTVAR, 200 ms).
 * RFC 6298 §2.4 asks for RTO >= 1 s, but every modern stack uses 200 ms: the peer sits behind a
 * WireGuard tunnel, and a 1 s floor would stall a flow for a second per lost tail segment. Adding
 * it to SRTT (not max(200 ms, SRTT + 4 RTTVAR)) keeps the RTO above 2 RTTs on long paths, where a
 * smooth RTT would otherwise let it fire in the middle of SACK recovery.
 */
export const MIN_RTO_MS = 200;
/** RFC 6298 §2.5 allows an upper bound of at least 60 s. */
export const MAX_RTO_MS = 60_000;
/** RTT assumed before the first sample (buffer autotuning's measurement period). */
export const INITIAL_RTT_GUESS_MS = 100;
/** Clock granularity G of RFC 6298 §2: our timers have millisecond resolution. */
const CLOCK_GRANULARITY_MS = 1;

export class RttEstimator {
  /** Smoothed RTT in ms, or -1 before the first sample. */
  srtt = -1;
  rttvar = 0;
  /** The un-backed-off RTO. */
  private baseRto = INITIAL_RTO_MS;
  /** Number of consecutive expirations (the backoff exponent). */
  backoff = 0;

  /** Feed one round-trip measurement (ms). */
  sample(rttMs: number): void {
    const r = Math.max(0, rttMs);
    if (this.srtt < 0) {
      // §2.2: first measurement.
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      // §2.3 with alpha = 1/8, beta = 1/4 (RTTVAR first, using the old SRTT).
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.baseRto = clampRto(this.srtt + Math.max(CLOCK_GRANULARITY_MS, MIN_RTO_MS, 4 * this.rttvar));
  }

  /** The current timeout including backoff. */
  get rto(): number {
    return Math.min(MAX_RTO_MS, this.baseRto * 2 ** this.backoff);
  }

  /** §5.5: the timer expired, double the RTO (bounded by MAX_RTO_MS). */
  onTimeout(): void {
    if (this.baseRto * 2 ** this.backoff < MAX_RTO_MS) this.backoff++;
  }

  /** New data was acknowledged: drop the backoff (as Linux and gVisor do, RFC 6298 §5.7 spirit). */
  resetBackoff(): void {
    this.backoff = 0;
  }
}

function clampRto(ms: number): number {
  return Math.min(MAX_RTO_MS, Math.max(MIN_RTO_MS, Math.ceil(ms)));
}
