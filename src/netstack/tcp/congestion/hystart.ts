/**
 * HyStart++ (RFC 9406): leave slow start when the RTT starts to grow (the bottleneck queue is
 * filling) instead of at the first loss, which on a long path overshoots by up to a whole window.
 *
 * Rounds are delimited by the ACK passing SND.NXT of the round's start. In each round the first
 * N_RTT_SAMPLE RTT samples give currentRoundMinRTT; once it exceeds the last round's minimum by
 * RttThresh = clamp(lastRoundMinRTT / 8, 4 ms, 16 ms), Conservative Slow Start (CSS) begins: cwnd
 * grows at 1/CSS_GROWTH_DIVISOR of the slow-start rate. A round whose minimum falls back below the
 * CSS baseline resumes slow start (a false positive, e.g. jitter); CSS_ROUNDS rounds of CSS end slow
 * start (ssthresh = cwnd). A loss ends it as usual.
 */
import { seqGe } from "../seq.ts";

export const MIN_RTT_THRESH_MS = 4;
export const MAX_RTT_THRESH_MS = 16;
export const MIN_RTT_DIVISOR = 8;
export const N_RTT_SAMPLE = 8;
export const CSS_GROWTH_DIVISOR = 4;
export const CSS_ROUNDS = 5;

export class HyStart {
  private windowEnd = 0;
  private started = false;
  private lastRoundMinRtt = Number.POSITIVE_INFINITY;
  private currentRoundMinRtt = Number.POSITIVE_INFINITY;
  private samples = 0;
  /** CSS baseline (Infinity while in standard slow start). */
  private cssBaseline = Number.POSITIVE_INFINITY;
  private cssRounds = 0;
  /** Slow start is over (CSS_ROUNDS rounds of CSS): the caller sets ssthresh = cwnd. */
  done = false;

  get inCss(): boolean {
    return this.cssBaseline !== Number.POSITIVE_INFINITY;
  }

  /** Divide slow-start growth by this (1 in slow start, CSS_GROWTH_DIVISOR in CSS). */
  get growthDivisor(): number {
    return this.inCss ? CSS_GROWTH_DIVISOR : 1;
  }

  /** An ACK advanced SND.UNA to `una` while in slow start; `sndNxt` starts the next round. */
  onAck(una: number, sndNxt: number): void {
    if (this.started && !seqGe(una, this.windowEnd)) return;
    this.started = true;
    this.windowEnd = sndNxt;
    this.lastRoundMinRtt = this.currentRoundMinRtt;
    this.currentRoundMinRtt = Number.POSITIVE_INFINITY;
    this.samples = 0;
    if (this.inCss && ++this.cssRounds >= CSS_ROUNDS) this.done = true;
  }

  /** One RTT sample (ms) while in slow start. */
  onRttSample(rttMs: number): void {
    if (this.done) return;
    if (rttMs < this.currentRoundMinRtt) this.currentRoundMinRtt = rttMs;
    this.samples++;
    if (this.samples < N_RTT_SAMPLE) return;
    if (!this.inCss) {
      if (this.lastRoundMinRtt === Number.POSITIVE_INFINITY) return;
      const thresh = Math.min(MAX_RTT_THRESH_MS, Math.max(MIN_RTT_THRESH_MS, this.lastRoundMinRtt / MIN_RTT_DIVISOR));
      if (this.currentRoundMinRtt >= this.lastRoundMinRtt + thresh) {
        this.cssBaseline = this.currentRoundMinRtt;
        this.cssRounds = 0;
      }
    } else if (this.currentRoundMinRtt < this.cssBaseline) {
      this.cssBaseline = Number.POSITIVE_INFINITY;
      this.cssRounds = 0;
    }
  }

  /**
   * A loss or timeout: the initial slow start is over. Later slow starts (after an RTO, up to
   * ssthresh) are standard, as RFC 9406 §4.3 recommends.
   */
  stop(): void {
    this.done = true;
    this.cssBaseline = Number.POSITIVE_INFINITY;
  }
}
