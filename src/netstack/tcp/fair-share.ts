/**
 * The layer's output shared fairly among its flows: every data segment (new or retransmitted) a
 * flow's own pacer lets go also takes a token from one layer-wide bucket of FAIR_SHARE_BURST
 * segments, refilled at FAIR_SHARE_RATE segments per ms on the injected clock. A flow that finds the
 * bucket empty, or other flows already waiting, joins a FIFO line; the line is served at the end of
 * the turn and on a timer, each flow in turn sending at most FAIR_SHARE_QUANTUM segments before it
 * goes to the back (round robin).
 *
 * Why: per-flow pacing bounds each flow's burst, not the sum. When the echo servers of 200 flows
 * answer in the same event-loop turn, every flow's window leaves in that turn and the whole clump
 * meets the peer's UDP receive buffer (wireguard-go's default 212 KB, ~90 datagrams) at once: the
 * tail of the clump is dropped, and it is the tail of every clump (the same flows, in the same
 * order) that loses. With the bound, the clump leaves as bursts the buffer holds, the flows taking
 * turns; what the peer cannot take yet waits here rather than being dropped there.
 *
 * The rate is a ceiling for all flows together, not a shaper: far above what one gateway process
 * sends (~1.4 Gbit/s at a 1,368-byte MSS), so a single fast flow only meets its own pacer.
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

export interface FairShareFlow {
  /** In the line (set and cleared by FairShare only). */
  fairShareWaiting: boolean;
  /** Its turn came: send what window and pacing allow (taking tokens again). */
  resumeSend(): void;
}

export interface FairShareStats {
  /** Times a flow had to wait in the line for its share. */
  fairShareWaits: number;
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
  private readonly serveBound = () => {
    this.turnQueued = false;
    this.serve();
  };

  constructor(
    private readonly clock: Clock,
    private readonly stats: FairShareStats,
  ) {
    this.at = clock.now();
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
    if (this.serving === f) {
      if (this.servingLeft > 0 && this.refill() >= 1) {
        this.servingLeft--;
        this.tokens--;
        return true;
      }
    } else if (this.head === this.line.length && this.refill() >= 1) {
      this.tokens--;
      return true;
    }
    this.enqueue(f);
    return false;
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
      this.tokens = Math.min(FAIR_SHARE_BURST, this.tokens + (now - this.at) * FAIR_SHARE_RATE);
      this.at = now;
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
