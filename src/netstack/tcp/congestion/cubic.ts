/**
 * CUBIC congestion control (RFC 9438). Windows are in bytes outside, in segments inside the cubic
 * arithmetic (the RFC's unit), time in seconds.
 *
 * - Slow start as NewReno (RFC 5681 with ABC, RFC 3465, L = SLOW_START_ACK_LIMIT); the connection
 *   runs HyStart++ (hystart.ts) on top, which may end slow start early (exitSlowStart).
 * - Congestion avoidance (§4.2): W_cubic(t) = C (t - K)^3 + W_max with
 *   K = cbrt((W_max - cwnd_epoch) / C); each ACK moves cwnd toward target = W_cubic(t + RTT),
 *   clamped to [cwnd, 1.5 cwnd], by (target - cwnd) / cwnd per acknowledged segment.
 * - Reno-friendly region (§4.3): W_est grows by alpha_cubic = 3(1 - beta)/(1 + beta) segments per
 *   window acknowledged (1 once W_est reaches cwnd_prior); cwnd follows W_est when it is larger.
 * - Multiplicative decrease (§4.6): ssthresh = cwnd * beta (beta = 0.7, at least 2 MSS). Like Linux,
 *   cwnd (not FlightSize) is the base: the RFC allows either, and cwnd keeps W_max meaningful.
 * - Fast convergence (§4.7): a loss below the previous W_max lowers W_max to cwnd (1 + beta) / 2.
 * - Timeout (§4.8): cwnd = 1 MSS, and the next congestion-avoidance epoch starts with
 *   W_max = cwnd at its start (K = 0).
 *
 * Loss recovery arithmetic (entering, inflation without SACK, partial ACKs, exit) matches NewReno
 * with beta in place of 1/2, see types.ts.
 */
import { initialWindow, SLOW_START_ACK_LIMIT } from "./newreno.ts";
import type { CongestionControl } from "./types.ts";

/** RFC 9438 §5: C = 0.4 (segments / s^3). */
export const CUBIC_C = 0.4;
/** RFC 9438 §4.6: beta_cubic = 0.7. */
export const CUBIC_BETA = 0.7;
/** RFC 9438 §4.3: alpha_cubic = 3 (1 - beta) / (1 + beta). */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

export class Cubic implements CongestionControl {
  readonly name = "cubic";
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** W_max in segments (0 before the first congestion event). */
  wMax = 0;
  /** K in seconds for the current epoch. */
  k = 0;
  /** Start of the current congestion-avoidance epoch (ms), -1 when none is running. */
  epochStart = -1;
  /** cwnd at the epoch start and at the last congestion event, in segments. */
  cwndEpoch = 0;
  private cwndPrior = 0;
  /** Reno-friendly estimate W_est, in segments. */
  private wEst = 0;
  /** cwnd in bytes, fractional (cwnd is its floor). */
  private w: number;
  /** The last event was a timeout: the next epoch takes W_max from its starting cwnd. */
  private afterTimeout = false;

  constructor(private mss: number) {
    this.w = this.cwnd = initialWindow(mss);
  }

  exitSlowStart(): void {
    if (this.w < this.ssthresh) this.ssthresh = this.cwnd;
  }

  setMss(mss: number): void {
    if (this.cwnd === initialWindow(this.mss)) this.w = this.cwnd = initialWindow(mss);
    this.mss = mss;
  }

  /** W_cubic(t) in segments, t in seconds since the epoch start (RFC 9438 Figure 1). */
  wCubic(t: number): number {
    const d = t - this.k;
    return CUBIC_C * d * d * d + this.wMax;
  }

  onAck(ackedBytes: number, now: number, srttMs = -1): void {
    const mss = this.mss;
    if (this.w < this.ssthresh) {
      this.set(this.w + Math.min(ackedBytes, SLOW_START_ACK_LIMIT * mss));
      return;
    }
    const cw = this.w / mss;
    if (this.epochStart < 0) {
      this.epochStart = now;
      this.cwndEpoch = cw;
      if (this.afterTimeout || this.wMax <= cw) {
        this.wMax = cw;
        this.k = 0;
      } else {
        this.k = Math.cbrt((this.wMax - cw) / CUBIC_C);
      }
      this.afterTimeout = false;
      this.wEst = cw;
      if (this.cwndPrior === 0) this.cwndPrior = cw;
    }
    const segs = ackedBytes / mss;
    const t = (now - this.epochStart) / 1000;
    this.wEst += ((this.wEst >= this.cwndPrior ? 1 : CUBIC_ALPHA) * segs) / cw;
    let next: number;
    if (this.wCubic(t) < this.wEst) {
      next = Math.max(cw, this.wEst);
    } else {
      const rtt = srttMs > 0 ? srttMs / 1000 : 0;
      let target = this.wCubic(t + rtt);
      if (target < cw) target = cw;
      else if (target > 1.5 * cw) target = 1.5 * cw;
      next = cw + ((target - cw) / cw) * segs;
    }
    this.set(next * mss);
  }

  onEnterRecovery(_flightSize: number, _now = 0, sack = false): void {
    this.congestionEvent();
    this.set(sack ? this.ssthresh : this.ssthresh + 3 * this.mss);
  }

  onDupAckInRecovery(): void {
    this.set(this.w + this.mss);
  }

  onPartialAck(ackedBytes: number): void {
    this.set(Math.max(this.mss, this.w - ackedBytes + (ackedBytes >= this.mss ? this.mss : 0)));
  }

  onExitRecovery(flightSize: number): void {
    this.set(Math.min(this.ssthresh, Math.max(flightSize, this.mss) + this.mss));
    this.epochStart = -1;
  }

  onTimeout(_flightSize: number, _now = 0): void {
    // Repeated timeouts of the same data keep ssthresh (RFC 5681 §3.1 note on eq. 4).
    if (!(this.afterTimeout && this.w <= this.mss)) this.congestionEvent();
    this.set(this.mss);
    this.afterTimeout = true;
  }

  private congestionEvent(): void {
    const cw = this.w / this.mss;
    // Fast convergence (§4.7).
    this.wMax = cw < this.wMax ? (cw * (1 + CUBIC_BETA)) / 2 : cw;
    this.cwndPrior = cw;
    this.ssthresh = Math.max(Math.floor(this.w * CUBIC_BETA), 2 * this.mss);
    this.epochStart = -1;
  }

  private set(bytes: number): void {
    this.w = bytes;
    this.cwnd = Math.floor(bytes);
  }
}
