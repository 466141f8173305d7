/**
 * The device's door for handshake messages (initiations and responses): MAC checks, the "under
 * load" state with cookie replies and per-source rate limiting, and a bounded queue drained with
 * a per-turn budget, as wireguard-go's device/receive.go does with its handshake queue and
 * worker. JavaScript has one thread, so the budget is what keeps handshake crypto (one to four
 * X25519 per message) from starving transport packets: at most `turnBudget` messages (or
 * `turnBudgetMs` of work) run per event-loop turn; the rest wait in the queue, drained from a
 * timer tick (1 ms), i.e. after the I/O callbacks of the next poll have handled transport packets.
 *
 * Under load (the queue holds `underLoadDepth` messages, or more than `underLoadRate` MAC1-valid
 * messages arrived within a second; held for `underLoadHoldMs` after the last sign, like
 * wireguard-go's UnderLoadAfterTime) a message without a valid MAC2 is answered with a cookie
 * reply and goes no further (no DH), and one with a valid MAC2 still has to pass its source's
 * token bucket (ratelimiter.ts). Out of load every MAC1-valid message is processed.
 *
 * Device-level: nothing here depends on which peer a message is for.
 */
import type { Clock, Timer } from "../util/clock.ts";
import type { Endpoint } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";
import { type CookieChecker, cookieSource } from "./cookie.ts";
import { readU32LE } from "./messages.ts";
import { HandshakeRateLimiter } from "./ratelimiter.ts";

export interface HandshakeQueueOptions {
  /** Messages waiting at most (default 1024, wireguard-go's QueueHandshakeSize); beyond: dropped. */
  capacity?: number;
  /** Queue depth that means "under load" (default capacity / 8, as wireguard-go). */
  underLoadDepth?: number;
  /** MAC1-valid handshake messages per second that mean "under load" (default 1000). */
  underLoadRate?: number;
  /** How long the load state holds after its last sign (ms, default 1000). */
  underLoadHoldMs?: number;
  /** Messages processed per event-loop turn at most (default 8). */
  turnBudget?: number;
  /** Processing time per turn at most (ms of real time, default 2); the first message always runs. */
  turnBudgetMs?: number;
  /** Sources the rate limiter tracks at most (default 4096). */
  rateLimitEntries?: number;
  /** Force the load state (tests, or an operator who wants cookies always). */
  underLoad?: () => boolean;
  /** Says (info) when the load state starts and ends: one line each, never per message. */
  log?: Logger;
}

/** Why a handshake message went no further (counted by the caller, e.g. tunnel drops). */
export type HandshakeRejection = "badMac1" | "badMac2" | "rateLimited" | "handshakeQueueFull";

export interface HandshakeQueueHooks {
  /** Run the handshake crypto for a message that passed. */
  process(data: Uint8Array, from: Endpoint): void;
  reject(reason: HandshakeRejection, from: Endpoint): void;
  /** Send a cookie reply (64 bytes) to `to`. */
  sendCookieReply(reply: Uint8Array, to: Endpoint): void;
}

export interface HandshakeLoadStats {
  /** True while under load (read at the time the stats are read). */
  readonly underLoad: boolean;
  /** Times the device went under load. */
  underLoadEpisodes: number;
  /** Messages waiting now / the most ever waiting. */
  queued: number;
  queuePeak: number;
  /** Messages processed at once / after waiting in the queue. */
  processedAtOnce: number;
  processedQueued: number;
  /** Sources in the rate limiter table, and messages refused because it was full. */
  rateLimitEntries: number;
  rateLimitTableFull: number;
}

export class HandshakeQueue {
  readonly stats: HandshakeLoadStats;
  private readonly capacity: number;
  private readonly underLoadDepth: number;
  private readonly underLoadRate: number;
  private readonly holdMs: number;
  private readonly turnBudget: number;
  private readonly turnBudgetMs: number;
  private readonly forced: (() => boolean) | undefined;
  private readonly limiter: HandshakeRateLimiter;
  private readonly turnEnd: Timer;
  // Ring buffer of waiting messages.
  private readonly datas: (Uint8Array | undefined)[];
  private readonly froms: (Endpoint | undefined)[];
  private head = 0;
  private size = 0;
  private usedThisTurn = 0;
  private msThisTurn = 0;
  private underLoadUntil = Number.NEGATIVE_INFINITY;
  /** When the current load episode began (NaN = not under load, as far as we have looked). */
  private loadSince = Number.NaN;
  private readonly log: Logger | undefined;
  private windowStart = Number.NEGATIVE_INFINITY;
  private windowCount = 0;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly checker: CookieChecker,
    private readonly hooks: HandshakeQueueHooks,
    opts: HandshakeQueueOptions = {},
  ) {
    this.capacity = Math.max(1, opts.capacity ?? 1024);
    this.underLoadDepth = Math.max(1, opts.underLoadDepth ?? Math.floor(this.capacity / 8));
    this.underLoadRate = opts.underLoadRate ?? 1000;
    this.holdMs = opts.underLoadHoldMs ?? 1000;
    this.turnBudget = Math.max(1, opts.turnBudget ?? 8);
    this.turnBudgetMs = opts.turnBudgetMs ?? 2;
    this.forced = opts.underLoad;
    this.log = opts.log;
    this.limiter = new HandshakeRateLimiter(clock, opts.rateLimitEntries);
    this.datas = new Array(this.capacity);
    this.froms = new Array(this.capacity);
    this.turnEnd = clock.timer(() => this.endTurn());
    const self = this;
    const limiterStats = this.limiter.stats;
    this.stats = {
      get underLoad() {
        return self.isUnderLoad();
      },
      underLoadEpisodes: 0,
      queued: 0,
      queuePeak: 0,
      processedAtOnce: 0,
      processedQueued: 0,
      get rateLimitEntries() {
        return limiterStats.entries;
      },
      get rateLimitTableFull() {
        return limiterStats.tableFull;
      },
    };
  }

  /** True while the device is under load (no side effects beyond starting/ending the state). */
  isUnderLoad(): boolean {
    const now = this.clock.now();
    if (this.forced?.()) return true;
    if (this.size >= this.underLoadDepth || this.windowCount > this.underLoadRate) {
      if (this.underLoadUntil <= now) {
        this.stats.underLoadEpisodes++;
        this.loadSince = now;
        this.log?.info(
          `WireGuard: under load (${this.size} handshake messages queued, ${this.windowCount} this second): handshakes without a valid cookie get a cookie reply`,
        );
      }
      this.underLoadUntil = now + this.holdMs;
    }
    const loaded = this.underLoadUntil > now;
    if (!loaded && !Number.isNaN(this.loadSince)) {
      this.log?.info(`WireGuard: no longer under load (after ${((now - this.loadSince) / 1000).toFixed(1)} s)`);
      this.loadSince = Number.NaN;
    }
    return loaded;
  }

  /** Take one handshake message (initiation or response, length already checked). Never throws. */
  submit(data: Uint8Array, from: Endpoint): void {
    if (this.closed) return;
    if (!this.checker.checkMac1(data)) {
      this.hooks.reject("badMac1", from);
      return;
    }
    const now = this.clock.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.windowCount = 0;
    }
    this.windowCount++;
    if (this.isUnderLoad()) {
      const source = cookieSource(from);
      if (!this.checker.checkMac2(data, source)) {
        this.hooks.sendCookieReply(this.checker.createReply(data, readU32LE(data, 4), source), from);
        this.hooks.reject("badMac2", from);
        return;
      }
      if (!this.limiter.allow(from.address)) {
        this.hooks.reject("rateLimited", from);
        return;
      }
    }
    if (this.size === 0 && this.hasBudget()) {
      this.stats.processedAtOnce++;
      this.run(data, from);
      return;
    }
    if (this.size >= this.capacity) {
      this.hooks.reject("handshakeQueueFull", from);
      return;
    }
    // A copy: the transport's buffer may be reused once this callback returns.
    const slot = (this.head + this.size) % this.capacity;
    this.datas[slot] = data.slice();
    this.froms[slot] = { address: from.address, port: from.port };
    this.size++;
    this.stats.queued = this.size;
    if (this.size > this.stats.queuePeak) this.stats.queuePeak = this.size;
    this.scheduleTurnEnd();
  }

  close(): void {
    this.closed = true;
    this.turnEnd.clear();
    this.datas.fill(undefined);
    this.froms.fill(undefined);
    this.size = 0;
    this.stats.queued = 0;
  }

  private hasBudget(): boolean {
    return this.usedThisTurn < this.turnBudget && (this.usedThisTurn === 0 || this.msThisTurn < this.turnBudgetMs);
  }

  private run(data: Uint8Array, from: Endpoint): void {
    this.usedThisTurn++;
    const t0 = performance.now();
    try {
      this.hooks.process(data, from);
    } finally {
      this.msThisTurn += performance.now() - t0;
      this.scheduleTurnEnd();
    }
  }

  /**
   * The next turn starts with the next timer tick: 1 ms is what a zero-delay setTimeout gets
   * anyway, and on a virtual clock it keeps turns apart (a zero-delay timer re-armed while firing
   * would fire again in the same advance).
   */
  private scheduleTurnEnd(): void {
    if (this.turnEnd.deadline < 0) this.turnEnd.set(1);
  }

  /** A new turn: the budget is fresh; drain what waits, up to the budget. */
  private endTurn(): void {
    this.usedThisTurn = 0;
    this.msThisTurn = 0;
    while (this.size > 0 && this.hasBudget() && !this.closed) {
      const data = this.datas[this.head]!;
      const from = this.froms[this.head]!;
      this.datas[this.head] = undefined;
      this.froms[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size--;
      this.stats.queued = this.size;
      this.stats.processedQueued++;
      this.run(data, from);
    }
  }
}
