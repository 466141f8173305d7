/**
 * Time, injected. Every timer in wgslirpy (WireGuard rekey/keepalive, TCP RTO, NAT idle timeouts)
 * goes through a Clock so tests drive it deterministically with VirtualClock.
 *
 * A Timer is a reusable slot: re-arming it is cheap (no new setTimeout when the new deadline is
 * later than the pending one), because TCP re-arms its RTO on nearly every ACK.
 *
 * afterTurn() runs work once the current event-loop turn's input has been handled (setImmediate:
 * after every datagram of one receive poll), so per-packet effects (ACKs, host writes) coalesce to
 * one per flow per turn.
 */

export interface Timer {
  /** Arm (or re-arm) to fire `delayMs` from now. Replaces any pending deadline. */
  set(delayMs: number): void;
  /** Arm to fire at absolute clock time `at` (ms). */
  setAt(at: number): void;
  /**
   * Disarm. Safe to call when not armed. Lazy: a pending OS timer stays (it finds nothing to do when
   * it fires), so clear-then-set, as on every packet, costs no setTimeout/clearTimeout.
   */
  clear(): void;
  /** Disarm and drop the OS timer now: for an owner at its end of life (frees it at once). */
  cancel(): void;
  /** Absolute deadline in ms, or -1 when not armed. */
  readonly deadline: number;
}

export interface Clock {
  /** Monotonic milliseconds (fractional allowed). */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch (WireGuard TAI64N timestamps). */
  wallNow(): number;
  /** A timer slot that calls `fn` when its deadline passes. */
  timer(fn: () => void): Timer;
  /**
   * Call `fn` at the end of the current event-loop turn (after the input of this poll), in the order
   * queued. Callers pass a bound function and queue it at most once per turn themselves.
   */
  afterTurn(fn: () => void): void;
}

/** Work queued for the end of a turn; runs what was queued before the run began (bounded). */
class TurnQueue {
  private q: (() => void)[] = [];
  private spare: (() => void)[] = [];
  get length(): number {
    return this.q.length;
  }
  push(fn: () => void): void {
    this.q.push(fn);
  }
  run(): void {
    const q = this.q;
    if (q.length === 0) return;
    // Work queued while running goes to the next run.
    this.q = this.spare;
    for (let i = 0; i < q.length; i++) (q[i] as () => void)();
    q.length = 0;
    this.spare = q;
  }
}

class RealTimer implements Timer {
  deadline = -1;
  private handle: ReturnType<typeof setTimeout> | undefined;
  private handleAt = -1;
  private readonly fireBound = () => this.fire();
  constructor(
    private readonly clock: RealClock,
    private readonly fn: () => void,
  ) {}
  set(delayMs: number): void {
    this.setAt(this.clock.now() + Math.max(0, delayMs));
  }
  setAt(at: number): void {
    this.deadline = at;
    // Keep an earlier pending OS timer: it re-checks the deadline when it fires.
    if (this.handle !== undefined && this.handleAt <= at) return;
    if (this.handle !== undefined) {
      clearTimeout(this.handle);
      this.clock.osTimers.cancelled++;
    }
    this.schedule(at);
  }
  clear(): void {
    this.deadline = -1;
  }
  cancel(): void {
    this.deadline = -1;
    if (this.handle !== undefined) {
      clearTimeout(this.handle);
      this.clock.osTimers.cancelled++;
      this.handle = undefined;
      this.handleAt = -1;
    }
  }
  private schedule(at: number): void {
    this.handleAt = at;
    this.clock.osTimers.scheduled++;
    this.handle = setTimeout(this.fireBound, Math.max(0, Math.ceil(at - this.clock.now())));
    // Timers never keep the process alive on their own; sockets do.
    (this.handle as { unref?: () => void }).unref?.();
  }
  private fire(): void {
    this.handle = undefined;
    this.handleAt = -1;
    if (this.deadline < 0) return;
    if (this.clock.now() + 0.5 < this.deadline) {
      this.schedule(this.deadline);
      return;
    }
    this.deadline = -1;
    this.fn();
  }
}

export class RealClock implements Clock {
  /** OS timers started and cancelled (setTimeout / clearTimeout calls): per-packet cost, in stats. */
  readonly osTimers = { scheduled: 0, cancelled: 0 };
  private readonly turn = new TurnQueue();
  private turnScheduled = false;
  private readonly runTurn = () => {
    this.turnScheduled = false;
    this.turn.run();
  };
  afterTurn(fn: () => void): void {
    this.turn.push(fn);
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      setImmediate(this.runTurn);
    }
  }
  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
  }
  timer(fn: () => void): Timer {
    return new RealTimer(this, fn);
  }
}

export const realClock: Clock = new RealClock();

class VirtualTimer implements Timer {
  deadline = -1;
  /** Order of arming, so timers with equal deadlines fire in the order they were set. */
  seq = 0;
  constructor(
    private readonly clock: VirtualClock,
    readonly fn: () => void,
  ) {}
  set(delayMs: number): void {
    this.setAt(this.clock.now() + Math.max(0, delayMs));
  }
  setAt(at: number): void {
    this.deadline = at;
    this.seq = this.clock.nextSeq();
    this.clock.armed.add(this);
  }
  clear(): void {
    this.deadline = -1;
    this.clock.armed.delete(this);
  }
  cancel(): void {
    this.clear();
  }
}

/**
 * Deterministic clock for tests: time moves only when the test calls advance()/runUntil(). A turn
 * ends after each timer callback, on endTurn(), and (for tests driven by real I/O) at the next real
 * setImmediate, whichever comes first.
 */
export class VirtualClock implements Clock {
  private t: number;
  private wallOffset: number;
  private seqCounter = 0;
  readonly armed = new Set<VirtualTimer>();
  private readonly turn = new TurnQueue();
  private turnScheduled = false;
  private readonly runTurn = () => {
    this.turnScheduled = false;
    this.endTurn();
  };

  constructor(startMs = 0, wallStartMs = 1_700_000_000_000) {
    this.t = startMs;
    this.wallOffset = wallStartMs - startMs;
  }
  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.t + this.wallOffset;
  }
  timer(fn: () => void): Timer {
    return new VirtualTimer(this, fn);
  }
  nextSeq(): number {
    return ++this.seqCounter;
  }
  afterTurn(fn: () => void): void {
    this.turn.push(fn);
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      setImmediate(this.runTurn);
    }
  }
  /** End the current turn: run the work queued for it (and what that queues, bounded). */
  endTurn(): void {
    for (let i = 0; i < 100 && this.turn.length > 0; i++) this.turn.run();
  }
  /** The earliest armed deadline, or -1. */
  nextDeadline(): number {
    let best: VirtualTimer | undefined;
    for (const tm of this.armed) if (!best || earlier(tm, best)) best = tm;
    return best ? best.deadline : -1;
  }
  /** Move time forward by `ms`, firing every timer whose deadline falls inside, in order. */
  advance(ms: number): void {
    this.runUntil(this.t + ms);
  }
  /** Move time to `at`, firing due timers in deadline order (timers armed while firing count too). */
  runUntil(at: number, maxFirings = 1_000_000): void {
    this.endTurn();
    for (let i = 0; i < maxFirings; i++) {
      let best: VirtualTimer | undefined;
      for (const tm of this.armed) if (!best || earlier(tm, best)) best = tm;
      if (!best || best.deadline > at) break;
      if (best.deadline > this.t) this.t = best.deadline;
      this.armed.delete(best);
      best.deadline = -1;
      best.fn();
      this.endTurn();
    }
    if (at > this.t) this.t = at;
  }
}

function earlier(a: VirtualTimer, b: VirtualTimer): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
}
