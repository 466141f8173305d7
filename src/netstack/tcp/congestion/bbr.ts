/**
 * BBR congestion control (BBR v1 as in Linux's tcp_bbr.c and draft-cardwell-iccrg-bbr-congestion-
 * control-00): a model of the path (bottleneck bandwidth, minimum RTT) sets the pacing rate and the
 * window, instead of backing off on every loss. Random loss (1 % on a lossy relay) costs CUBIC a
 * window cut each time and holds it to ~sqrt(1/p) segments; BBR keeps the delivery rate. Linux
 * hosts that default to bbr (net.ipv4.tcp_congestion_control) get it for kernel-routed flows, so a
 * gateway that terminates those flows needs it to keep up (see index.ts for the default).
 *
 * - Bandwidth: delivery-rate samples per ACK (the sender's, from RACK's per-segment snapshots; a
 *   round's delivered bytes over its duration without SACK), max-filtered over BW_WINDOW_ROUNDS
 *   rounds. Samples taken while the app had nothing to send only ever raise the estimate.
 * - Min RTT: the smallest fine-grained RTT sample of the last MIN_RTT_WINDOW_MS.
 * - States: STARTUP (gain 2/ln 2 until the bandwidth stops growing by 25 % for 3 rounds), DRAIN
 *   (until in flight <= BDP), PROBE_BW (pacing gain cycle 1.25, 0.75, 1 x 6, one min RTT each),
 *   PROBE_RTT (cwnd 4 segments for PROBE_RTT_MS when the min RTT is 10 s old).
 * - cwnd = 2 x BDP + the ACK aggregation seen (ACKs arriving in clumps, one event-loop turn apart,
 *   would otherwise leave the pipe idle), approached by the bytes acknowledged per ACK. Loss
 *   recovery conserves packets for its first round and restores the prior cwnd on exit.
 * - Loss response (BBRv2's inflight_hi): a round that resent more than LOSS_RATE of what it
 *   delivered (after STARTUP) caps in flight at max(the in flight that lost, LOSS_BETA x the old
 *   cap, 2 BDP): it trims the ACK-aggregation allowance. PROBE_BW's up phase raises the cap by
 *   1, 2, 4... segments per round it fills. A shallow buffer (a peer's
 *   212 KB UDP socket) is then overrun once per probe, not every cycle; random loss below the rate
 *   leaves it alone.
 */
import { initialWindow } from "./newreno.ts";
import type { CongestionControl, DeliverySample } from "./types.ts";

/** 2 / ln 2: the smallest gain that doubles the delivery rate every round (STARTUP). */
export const BBR_HIGH_GAIN = 2 / Math.LN2;
export const BBR_DRAIN_GAIN = 1 / BBR_HIGH_GAIN;
export const BBR_CWND_GAIN = 2;
/** PROBE_BW pacing gains, one phase per min RTT. */
export const BBR_CYCLE = [1.25, 0.75, 1, 1, 1, 1, 1, 1] as const;
export const BW_WINDOW_ROUNDS = 10;
export const MIN_RTT_WINDOW_MS = 10_000;
export const PROBE_RTT_MS = 200;
/** STARTUP ends after this many rounds without FULL_BW_GROWTH. */
export const FULL_BW_ROUNDS = 3;
export const FULL_BW_GROWTH = 1.25;
/** STARTUP also ends after a round that resent more than this share of what it delivered... */
export const STARTUP_LOSS_RATE = 0.02;
/** ...and at least this many segments. */
export const STARTUP_LOSS_SEGMENTS = 8;
/** Rounds the ACK aggregation estimate is remembered. */
export const EXTRA_ACKED_ROUNDS = 5;
/** A round that resent more than this share of what it delivered (and LOSS_SEGMENTS) was too full. */
export const LOSS_RATE = 0.02;
export const LOSS_SEGMENTS = 8;
/** On a too-full round the cap keeps at least this share of the old one. */
export const LOSS_BETA = 0.7;
/** Outside the up phase cwnd stays this share under the cap (room for the next probe's queue). */
export const LOSS_HEADROOM = 0.85;
/** Least cwnd, in segments. */
export const BBR_MIN_CWND_SEGMENTS = 4;

export enum BbrMode {
  Startup = 0,
  Drain = 1,
  ProbeBw = 2,
  ProbeRtt = 3,
}

export class Bbr implements CongestionControl {
  readonly name = "bbr";
  cwnd: number;
  readonly ssthresh = 0x7fffffff;
  mode = BbrMode.Startup;
  /** Bottleneck bandwidth estimate (bytes per ms); 0 before the first round ends. */
  bw = 0;
  /** Min RTT (ms), Infinity before the first sample. */
  minRtt = Number.POSITIVE_INFINITY;
  fullBwReached = false;
  roundCount = 0;
  pacingGain = BBR_HIGH_GAIN;
  /** Upper bound on in flight from the last too-full round (bytes; Infinity until one). */
  inflightHi = Number.POSITIVE_INFINITY;
  /** Segments the up phase adds to inflightHi in its next round; doubles each round it fills. */
  private probeUpSegments = 1;
  /** The most in flight this round, and the most when an ACK revealed a loss. */
  private roundMaxInflight = 0;
  private prevRoundMaxInflight = 0;
  private roundLossInflight = 0;
  private roundFilledCap = false;
  private cwndGain = BBR_HIGH_GAIN;
  private minRttStamp = 0;
  // Per-round bandwidth samples: ring of the last BW_WINDOW_ROUNDS round maxima.
  private readonly bwRounds = new Float64Array(BW_WINDOW_ROUNDS);
  private roundStartTime = -1;
  private roundStartDelivered = 0;
  private roundStartRetransmitted = 0;
  private roundAppLimited = false;
  /** A per-segment rate sample arrived in this round. */
  private roundRated = false;
  private fullBw = 0;
  private fullBwCount = 0;
  private cycleIndex = 0;
  private cycleStamp = 0;
  private probeRttDone = -1;
  private priorCwnd = 0;
  /** Packet conservation (first round of loss recovery) lasts until this round count. */
  private conservationUntil = -1;
  private inRecovery = false;
  /** A retransmission timeout's go-back-N is under way. */
  private afterTimeout = false;
  // ACK aggregation (Linux bbr_update_ack_aggregation).
  private ackEpochStart = -1;
  private ackEpochAcked = 0;
  private readonly extraAckedRounds = new Float64Array(EXTRA_ACKED_ROUNDS);

  constructor(private mss: number) {
    this.cwnd = initialWindow(mss);
  }

  /** Pacing rate in bytes per ms (0 until the first bandwidth sample: the default pacing applies). */
  get pacingRate(): number {
    return this.bw > 0 ? this.pacingGain * this.bw : 0;
  }

  /** Bandwidth-delay product times `gain`, in bytes (the initial window without a model). */
  bdp(gain: number): number {
    if (this.bw <= 0 || !Number.isFinite(this.minRtt)) return initialWindow(this.mss);
    return gain * this.bw * this.minRtt;
  }

  onDelivery(s: DeliverySample): void {
    const now = s.now;
    // The timeout's go-back-N is over: the window from before it comes back (as Linux on leaving
    // the Loss state). Until then cwnd, not the path, limits delivery: its samples only raise bw.
    if (this.afterTimeout && !s.recovering) {
      this.afterTimeout = false;
      this.cwnd = Math.max(this.cwnd, this.priorCwnd);
    }
    const appLimited = s.appLimited || this.afterTimeout;
    if (s.inflight > this.roundMaxInflight) this.roundMaxInflight = s.inflight;
    if (s.lost && s.inflight > this.roundLossInflight) this.roundLossInflight = s.inflight;
    if (s.inflight + s.acked + this.mss >= this.inflightHi) this.roundFilledCap = true;
    if (appLimited) this.roundAppLimited = true;
    // A rate sample over less than the min RTT is ACK compression, not bandwidth (as Linux).
    if (s.rate > 0 && !(s.interval < this.minRtt)) {
      this.roundRated = true;
      if (!appLimited || s.rate > this.bw) this.takeBwSample(s.rate);
    }
    // Round trips: a round ends when a segment sent after it began is delivered.
    let roundEnded = false;
    if (this.roundStartTime < 0) this.startRound(s);
    else if (s.sentAt >= this.roundStartTime && s.delivered > this.roundStartDelivered) {
      roundEnded = true;
      // Without per-segment rate samples (no SACK), the round's own: delivered over its duration.
      if (!this.roundRated) {
        const interval = Math.max(now - this.roundStartTime, Number.isFinite(this.minRtt) ? this.minRtt : 0);
        const sample = interval > 0 ? (s.delivered - this.roundStartDelivered) / interval : 0;
        if (!this.roundAppLimited || sample > this.bw) this.takeBwSample(sample);
      }
      if (!this.fullBwReached && !this.roundAppLimited) this.checkFullBw();
      // STARTUP overshooting a shallow queue: leave on heavy loss too (as BBRv2 does), or the
      // retransmissions, paced at the startup gain, overflow the queue again.
      const resent = s.retransmitted - this.roundStartRetransmitted;
      if (
        !this.fullBwReached &&
        resent > STARTUP_LOSS_SEGMENTS * this.mss &&
        resent > STARTUP_LOSS_RATE * (s.delivered - this.roundStartDelivered)
      ) {
        this.fullBwReached = true;
      }
      this.adaptInflightHi(s, resent);
      // The next round's slots start empty (the oldest round leaves the windows), except while a
      // timeout's go-back-N holds delivery down: the estimate from before it must not age out.
      this.roundCount++;
      if (!this.afterTimeout) {
        this.bwRounds[this.roundCount % BW_WINDOW_ROUNDS] = 0;
        this.bw = this.maxBw();
      }
      this.extraAckedRounds[this.roundCount % EXTRA_ACKED_ROUNDS] = 0;
      this.startRound(s);
    }
    const minRttExpired = this.minRttStamp > 0 && now - this.minRttStamp > MIN_RTT_WINDOW_MS;
    if (s.rtt > 0 && (s.rtt <= this.minRtt || minRttExpired)) {
      this.minRtt = s.rtt;
      this.minRttStamp = now;
    }
    this.updateAckAggregation(s);
    this.updateMode(s, roundEnded, minRttExpired);
    this.setCwnd(s);
  }

  private takeBwSample(rate: number): void {
    const slot = this.roundCount % BW_WINDOW_ROUNDS;
    if (rate > (this.bwRounds[slot] as number)) this.bwRounds[slot] = rate;
    if (rate > this.bw) this.bw = rate;
  }

  private maxBw(): number {
    let max = 0;
    for (let i = 0; i < BW_WINDOW_ROUNDS; i++) if ((this.bwRounds[i] as number) > max) max = this.bwRounds[i] as number;
    return max;
  }

  private startRound(s: DeliverySample): void {
    this.roundStartTime = s.now;
    this.roundStartDelivered = s.delivered;
    this.roundStartRetransmitted = s.retransmitted;
    this.roundAppLimited = s.appLimited;
    this.roundRated = false;
    this.prevRoundMaxInflight = this.roundMaxInflight;
    this.roundMaxInflight = s.inflight;
    this.roundLossInflight = 0;
    this.roundFilledCap = false;
  }

  /** At a round's end: cap in flight after a too-full round; raise the cap while probing up. */
  private adaptInflightHi(s: DeliverySample, resent: number): void {
    const delivered = s.delivered - this.roundStartDelivered;
    // A timeout's go-back-N resends what was in flight, not what this round lost.
    if (this.afterTimeout || this.mode === BbrMode.Startup) return;
    if (resent > LOSS_SEGMENTS * this.mss && resent > LOSS_RATE * delivered) {
      // The lost segments left a round before their loss showed: the previous round's in flight.
      const atLoss = Math.max(this.prevRoundMaxInflight, this.roundLossInflight);
      const before = Math.min(this.inflightHi, this.cwnd);
      // Never under cwnd_gain x BDP: the cap trims the ACK-aggregation allowance a shallow buffer
      // cannot hold, not the window a long path needs to keep busy between clumps of ACKs.
      this.inflightHi = Math.max(atLoss, LOSS_BETA * before, this.bdp(BBR_CWND_GAIN), BBR_MIN_CWND_SEGMENTS * this.mss);
      this.probeUpSegments = 1;
    } else if (this.mode === BbrMode.ProbeBw && this.pacingGain > 1 && this.roundFilledCap) {
      this.inflightHi += this.probeUpSegments * this.mss;
      this.probeUpSegments = Math.min(this.probeUpSegments * 2, 1 << 16);
    }
  }

  private checkFullBw(): void {
    if (this.bw >= this.fullBw * FULL_BW_GROWTH) {
      this.fullBw = this.bw;
      this.fullBwCount = 0;
      return;
    }
    if (++this.fullBwCount >= FULL_BW_ROUNDS) this.fullBwReached = true;
  }

  private updateAckAggregation(s: DeliverySample): void {
    if (this.bw <= 0 || s.acked <= 0) return;
    const expected = this.bw * (s.now - this.ackEpochStart);
    if (this.ackEpochStart < 0 || this.ackEpochAcked <= expected) {
      this.ackEpochStart = s.now;
      this.ackEpochAcked = 0;
    }
    this.ackEpochAcked += s.acked;
    const extra = Math.min(this.ackEpochAcked - this.bw * (s.now - this.ackEpochStart), this.cwnd);
    const slot = this.roundCount % EXTRA_ACKED_ROUNDS;
    if (extra > (this.extraAckedRounds[slot] as number)) this.extraAckedRounds[slot] = extra;
  }

  private get extraAcked(): number {
    let max = 0;
    for (let i = 0; i < EXTRA_ACKED_ROUNDS; i++)
      if ((this.extraAckedRounds[i] as number) > max) max = this.extraAckedRounds[i] as number;
    return max;
  }

  private updateMode(s: DeliverySample, roundEnded: boolean, minRttExpired: boolean): void {
    const now = s.now;
    if (this.mode === BbrMode.Startup && this.fullBwReached) {
      this.mode = BbrMode.Drain;
      this.pacingGain = BBR_DRAIN_GAIN;
      this.cwndGain = BBR_HIGH_GAIN;
    }
    if (this.mode === BbrMode.Drain && s.inflight <= this.bdp(1)) this.enterProbeBw(now);
    if (this.mode === BbrMode.ProbeBw) {
      const gain = BBR_CYCLE[this.cycleIndex] as number;
      let next = now - this.cycleStamp > this.minRtt;
      if (gain > 1) next = next && (s.lost || s.inflight >= this.bdp(gain));
      else if (gain < 1) next = next || s.inflight <= this.bdp(1);
      if (next) {
        this.cycleIndex = (this.cycleIndex + 1) % BBR_CYCLE.length;
        this.cycleStamp = now;
        this.pacingGain = BBR_CYCLE[this.cycleIndex] as number;
      }
    }
    // PROBE_RTT: the min RTT went stale; hold 4 segments for PROBE_RTT_MS and a round to refresh it.
    if (this.mode !== BbrMode.ProbeRtt && minRttExpired) {
      this.mode = BbrMode.ProbeRtt;
      this.pacingGain = 1;
      this.cwndGain = 1;
      this.priorCwnd = Math.max(this.priorCwnd, this.cwnd);
      this.probeRttDone = -1;
    }
    if (this.mode === BbrMode.ProbeRtt) {
      if (this.probeRttDone < 0 && s.inflight <= BBR_MIN_CWND_SEGMENTS * this.mss) {
        this.probeRttDone = now + PROBE_RTT_MS;
        this.startRound(s);
      } else if (this.probeRttDone >= 0 && now >= this.probeRttDone && roundEnded) {
        this.minRttStamp = now;
        this.cwnd = Math.max(this.cwnd, this.priorCwnd);
        if (this.fullBwReached) this.enterProbeBw(now);
        else {
          this.mode = BbrMode.Startup;
          this.pacingGain = this.cwndGain = BBR_HIGH_GAIN;
        }
      }
    }
  }

  private enterProbeBw(now: number): void {
    this.mode = BbrMode.ProbeBw;
    this.cwndGain = BBR_CWND_GAIN;
    // Start in a phase of gain 1 (Linux picks one at random, never the 0.75 one).
    this.cycleIndex = 2;
    this.cycleStamp = now;
    this.pacingGain = 1;
  }

  private setCwnd(s: DeliverySample): void {
    const minCwnd = BBR_MIN_CWND_SEGMENTS * this.mss;
    let target = this.bdp(this.cwndGain) + 3 * this.mss;
    if (this.fullBwReached) target += this.extraAcked;
    let cwnd = this.cwnd;
    if (this.inRecovery && this.roundCount <= this.conservationUntil) {
      cwnd = Math.max(cwnd, s.inflight + s.acked);
    } else if (this.fullBwReached) {
      cwnd = Math.min(cwnd + s.acked, target);
    } else if (cwnd < target || s.delivered < initialWindow(this.mss)) {
      cwnd += s.acked;
    }
    cwnd = Math.max(Math.min(cwnd, this.inflightCap()), minCwnd);
    if (this.mode === BbrMode.ProbeRtt) cwnd = Math.min(cwnd, minCwnd);
    this.cwnd = Math.floor(cwnd);
  }

  /** What in flight may reach: inflightHi in the up phase, with headroom otherwise. */
  private inflightCap(): number {
    if (this.pacingGain > 1 || !Number.isFinite(this.inflightHi)) return this.inflightHi;
    return Math.max(LOSS_HEADROOM * this.inflightHi, Math.min(this.inflightHi, this.bdp(1)));
  }

  // The loss-based hooks: BBR does not take losses as its congestion signal.
  onAck(_ackedBytes: number, _now: number, _srttMs?: number): void {}

  onEnterRecovery(_flightSize: number, _now: number, _sack?: boolean): void {
    this.priorCwnd = this.mode === BbrMode.ProbeRtt ? Math.max(this.priorCwnd, this.cwnd) : this.cwnd;
    this.inRecovery = true;
    this.conservationUntil = this.roundCount + 1;
    // Packet conservation for the first round: one segment out per segment delivered. The
    // onDelivery() of the same ACK raises cwnd to what is in flight plus what it delivered.
    this.cwnd = BBR_MIN_CWND_SEGMENTS * this.mss;
  }

  onDupAckInRecovery(): void {}

  onPartialAck(_ackedBytes: number): void {}

  onExitRecovery(_flightSize: number): void {
    this.inRecovery = false;
    this.cwnd = Math.floor(Math.max(this.cwnd, Math.min(this.priorCwnd, this.inflightCap())));
  }

  onTimeout(_flightSize: number, _now: number): void {
    this.priorCwnd = this.mode === BbrMode.ProbeRtt ? Math.max(this.priorCwnd, this.cwnd) : this.cwnd;
    this.inRecovery = false;
    this.afterTimeout = true;
    this.cwnd = this.mss;
  }

  setMss(mss: number): void {
    if (this.cwnd === initialWindow(this.mss)) this.cwnd = initialWindow(mss);
    this.mss = mss;
  }

  exitSlowStart(): void {}
}
