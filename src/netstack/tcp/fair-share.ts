/**
 * The layer's output shared fairly among its flows when together they outrun the peer. Every data
 * segment (new or retransmitted) a flow's own pacer lets go is counted here; once ShareRate has
 * lowered the rate, each also takes a token from one layer-wide bucket (FAIR_SHARE_BURST segments,
 * refilled at the rate on the injected clock). A flow that finds the bucket empty, or others already
 * waiting, joins a FIFO line, served at the end of the turn and on a timer, each flow sending at
 * most FAIR_SHARE_QUANTUM segments before it goes to the back (round robin).
 *
 * Why: 200 echo flows through one peer are more than its wireguard-go drains (a 212 KB UDP receive
 * buffer, ~90 datagrams), even with every flow at its minimum window: measured, 14 % of the
 * gateway's datagrams died in that buffer, each loss cost some flow a timeout, and the unlucky
 * flows fell behind. No flow's own congestion control can fix an aggregate it is 1/200 of.
 *
 * The rate starts at a ceiling (~1.4 Gbit/s at a 1,368-byte MSS), and there the bucket is not
 * engaged at all: no flow waits (a single fast flow only meets its own pacer; bounding it measured
 * half the direct download rate). It comes down (ShareRate), engaging the bucket and the line, only
 * when many flows together keep losing more than any one flow's congestion control would let it.
 * The bucket then sends about what got through, and the excess waits here, in turn, instead of
 * being dropped at the peer.
 */
import type { Clock, Timer } from "../../util/clock.ts";

/** Segments that may leave back to back, over all flows. */
export const FAIR_SHARE_BURST = 64;
/** Bucket refill, segments per ms (the ceiling of all flows together). */
export const FAIR_SHARE_RATE = 128;
/** Segments a flow sends each time the line comes round to it. */
export const FAIR_SHARE_QUANTUM = 4;
/** The line's timer: timers have millisecond resolution. */
const SERVE_INTERVAL_MS = 1;
/** ShareRate looks at the losses once per epoch. */
export const SHARE_EPOCH_MS = 100;
/** Flows that must have sent in an epoch for the rate to come down (one flow has its own CC). */
export const SHARE_MANY_FLOWS = 8;
/** Retransmitted share of the epoch's segments above which the rate comes down, below which it grows. */
export const SHARE_LOSS_HIGH = 0.05;
export const SHARE_LOSS_LOW = 0.02;
/** The rate never goes below this (segments per ms; ~45 Mbit/s). */
export const SHARE_MIN_RATE = 4;

/**
 * The bucket's rate from the losses of all flows, once per epoch: above SHARE_LOSS_HIGH with at
 * least SHARE_MANY_FLOWS flows sending, 0.8 x what was sent in the epoch; below SHARE_LOSS_LOW, up
 * by a quarter per epoch toward FAIR_SHARE_RATE; in between, unchanged.
 */
export class ShareRate {
  rate = FAIR_SHARE_RATE;
  onEpoch(sent: number, retransmitted: number, flows: number, ms: number): number {
    if (sent <= 0 || ms <= 0) return this.rate;
    const loss = retransmitted / sent;
    if (loss > SHARE_LOSS_HIGH && flows >= SHARE_MANY_FLOWS) {
      this.rate = Math.max(SHARE_MIN_RATE, Math.min(this.rate, sent / ms) * 0.8);
    } else if (loss < SHARE_LOSS_LOW) {
      this.rate = Math.min(FAIR_SHARE_RATE, this.rate * 1.25);
    }
    return this.rate;
  }
}

export interface FairShareFlow {
  /** In the line (set and cleared by FairShare only). */
  fairShareWaiting: boolean;
  /** The last epoch this flow sent in (FairShare's own bookkeeping). */
  fairShareEpoch: number;
  /** Its turn came: send what window and pacing allow (taking tokens again). */
  resumeSend(): void;
}

export interface FairShareStats {
  /** Times a flow had to wait in the line for its share. */
  fairShareWaits: number;
  /** The bucket's rate now (segments per ms). */
  fairShareRate: number;
  /** Segments sent again, by every flow (read: the loss signal). */
  readonly retransmits: number;
}

export class FairShare {
  private tokens = FAIR_SHARE_BURST;
  private at: number;
  /** FIFO of waiting flows (each at most once: bounded by the flow table). */
  private line: FairShareFlow[] = [];
  private head = 0;
  private serving: FairShareFlow | null = null;
  private servingLeft = 0;
  private turnQueued = false;
  private readonly timer: Timer;
  private readonly shareRate = new ShareRate();
  private rate = FAIR_SHARE_RATE;
  private epoch = 1;
  private epochStart: number;
  private epochSent = 0;
  private epochFlows = 0;
  private epochRetransmits: number;
  private readonly serveBound = () => {
    this.turnQueued = false;
    this.serve();
  };

  constructor(
    private readonly clock: Clock,
    private readonly stats: FairShareStats,
  ) {
    this.at = clock.now();
    this.epochStart = this.at;
    this.epochRetransmits = stats.retransmits;
    stats.fairShareRate = this.rate;
    this.timer = clock.timer(() => this.serve());
  }

  /** Flows waiting for their share. */
  get waiting(): number {
    return this.line.length - this.head;
  }

  /**
   * May one segment of `f` leave now? If not, `f` is in the line and resumeSend() is called when its
   * turn comes. Flows do not jump the line: while others wait, a newcomer waits behind them.
   */
  take(f: FairShareFlow): boolean {
    if (f.fairShareWaiting) return false;
    const idle = this.head === this.line.length;
    if (idle && this.rate >= FAIR_SHARE_RATE) {
      // Not engaged: nothing waits, nothing is bounded (a flow's own pacer bounds its bursts); the
      // epoch's figures are still kept, so heavy loss over many flows engages the bucket.
      this.refill();
      this.count(f);
      return true;
    }
    if (this.serving === f) {
      // The quantum only matters while others wait their turn.
      if ((this.servingLeft > 0 || idle) && this.refill() >= 1) {
        this.servingLeft--;
        this.tokens--;
        this.count(f);
        return true;
      }
    } else if (idle && this.refill() >= 1) {
      this.tokens--;
      this.count(f);
      return true;
    }
    this.enqueue(f);
    return false;
  }

  private count(f: FairShareFlow): void {
    this.epochSent++;
    if (f.fairShareEpoch !== this.epoch) {
      f.fairShareEpoch = this.epoch;
      this.epochFlows++;
    }
  }

  /** An epoch is over: the rate from its losses (ShareRate). */
  private endEpoch(now: number): void {
    const rtx = this.stats.retransmits - this.epochRetransmits;
    this.rate = this.shareRate.onEpoch(this.epochSent, rtx, this.epochFlows, now - this.epochStart);
    this.stats.fairShareRate = this.rate;
    this.epoch++;
    this.epochStart = now;
    this.epochSent = 0;
    this.epochFlows = 0;
    this.epochRetransmits = this.stats.retransmits;
  }

  /** A flow that is gone never gets its turn (its resumeSend() must then be a no-op anyway). */
  private enqueue(f: FairShareFlow): void {
    f.fairShareWaiting = true;
    this.line.push(f);
    this.stats.fairShareWaits++;
    if (!this.turnQueued) {
      this.turnQueued = true;
      this.clock.afterTurn(this.serveBound);
    }
    if (this.timer.deadline < 0) this.timer.set(SERVE_INTERVAL_MS);
  }

  private refill(): number {
    const now = this.clock.now();
    if (now > this.at) {
      this.tokens = Math.min(FAIR_SHARE_BURST, this.tokens + (now - this.at) * this.rate);
      this.at = now;
      if (now - this.epochStart >= SHARE_EPOCH_MS) this.endEpoch(now);
    }
    return this.tokens;
  }

  /**
   * Give the waiting flows their turns while tokens last. Bounded: each turn either spends a token
   * or takes a flow out of the line for good (one that re-queues has spent its quantum).
   */
  private serve(): void {
    if (this.serving) return;
    while (this.head < this.line.length && this.refill() >= 1) {
      const f = this.line[this.head] as FairShareFlow;
      this.line[this.head++] = undefined as unknown as FairShareFlow;
      f.fairShareWaiting = false;
      this.serving = f;
      this.servingLeft = FAIR_SHARE_QUANTUM;
      try {
        f.resumeSend();
      } finally {
        this.serving = null;
      }
    }
    if (this.head === this.line.length) {
      this.line.length = 0;
      this.head = 0;
      this.timer.clear();
    } else {
      if (this.head > 1024 && this.head * 2 > this.line.length) {
        this.line = this.line.slice(this.head);
        this.head = 0;
      }
      this.timer.set(SERVE_INTERVAL_MS);
    }
  }
}
