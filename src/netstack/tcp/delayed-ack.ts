/**
 * Delayed ACKs (RFC 9293 §3.8.6.3, RFC 5681 §4.2) for a whole TCP layer: one timer and one FIFO.
 *
 * A flow that received less than a full segment of new in-order data in a turn (a request, a
 * keystroke) may hold its ACK back for DELAYED_ACK_MS: when the host answers within that time the
 * ACK rides on the answer's first segment instead of costing a segment of its own (and a WireGuard
 * datagram, and the peer's wake-up) on the request/response path. Every flow waits the same delay,
 * so deadlines are queued in order: no per-flow timer, no sorting. A flow is queued at most once at a
 * time (its own flag), so the queue is bounded by the flow table.
 */
import type { Clock, Timer } from "../../util/clock.ts";

export interface DelayedAckOwner {
  /** The delay is over: send the ACK if it is still owed. */
  delayedAckDue(): void;
}

export class DelayedAcks {
  private owners: (DelayedAckOwner | null)[] = [];
  private deadlines: number[] = [];
  private head = 0;
  private readonly timer: Timer;

  constructor(
    private readonly clock: Clock,
    readonly delayMs: number,
  ) {
    this.timer = clock.timer(() => this.fire());
  }

  /** Flows waiting (for stats and tests). */
  get length(): number {
    return this.owners.length - this.head;
  }

  /** `owner` owes an ACK that may wait `delayMs` (the caller queues it at most once at a time). */
  add(owner: DelayedAckOwner): void {
    const at = this.clock.now() + this.delayMs;
    this.owners.push(owner);
    this.deadlines.push(at);
    if (this.timer.deadline < 0) this.timer.setAt(at);
  }

  /** Forget every waiting ACK and stop the timer (layer shutdown). */
  clear(): void {
    this.timer.cancel();
    this.owners = [];
    this.deadlines = [];
    this.head = 0;
  }

  private fire(): void {
    const now = this.clock.now();
    const owners = this.owners;
    // The timer was armed for the head's deadline: it is due; so is every later one already past.
    do {
      const o = owners[this.head] as DelayedAckOwner;
      owners[this.head] = null;
      this.head++;
      o.delayedAckDue();
    } while (this.head < owners.length && (this.deadlines[this.head] as number) <= now);
    if (this.head >= owners.length) {
      owners.length = 0;
      this.deadlines.length = 0;
      this.head = 0;
      return;
    }
    if (this.head >= 1024 && this.head * 2 >= owners.length) {
      this.owners = owners.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
    this.timer.setAt(this.deadlines[this.head] as number);
  }
}
