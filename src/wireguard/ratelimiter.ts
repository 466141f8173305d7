/**
 * Per-source rate limit on handshake work under load, as wireguard-go's ratelimiter/ and the
 * kernel's ratelimiter.c: a token bucket per source address, 20 messages/s with a burst of 5;
 * IPv4 sources are keyed by the whole address, IPv6 by their /64 (one host usually owns a /64).
 *
 * Unlike wireguard-go the table is bounded: idle entries (a full bucket after 1 s) are swept at
 * most once a second, and when the table is still full a new source is refused and counted.
 */
import type { Clock } from "../util/clock.ts";
import { unmapV4 } from "../util/endpoint.ts";

export const RATE_LIMIT_PER_SECOND = 20;
export const RATE_LIMIT_BURST = 5;
/** Entries idle this long (ms) are forgotten: their bucket would be full again anyway. */
export const RATE_LIMIT_GC_MS = 1000;
export const DEFAULT_RATE_LIMIT_ENTRIES = 4096;

const PACKET_COST = 1000 / RATE_LIMIT_PER_SECOND; // ms of tokens per message
const MAX_TOKENS = PACKET_COST * RATE_LIMIT_BURST;

interface Bucket {
  tokens: number;
  lastTime: number;
}

export interface RateLimiterStats {
  /** Messages refused because their source's bucket was empty. */
  limited: number;
  /** Messages refused because the table was full of active sources. */
  tableFull: number;
  /** Sources in the table now. */
  entries: number;
}

export class HandshakeRateLimiter {
  readonly stats: RateLimiterStats = { limited: 0, tableFull: 0, entries: 0 };
  private readonly table = new Map<string, Bucket>();
  private lastSweep: number;

  constructor(
    private readonly clock: Clock,
    private readonly maxEntries = DEFAULT_RATE_LIMIT_ENTRIES,
  ) {
    this.lastSweep = clock.now();
  }

  /** True when a handshake message from `address` may be processed now (takes a token). */
  allow(address: string): boolean {
    const now = this.clock.now();
    if (now - this.lastSweep >= RATE_LIMIT_GC_MS) this.sweep(now);
    const key = sourceKey(address);
    const b = this.table.get(key);
    if (b) {
      b.tokens = Math.min(MAX_TOKENS, b.tokens + (now - b.lastTime));
      b.lastTime = now;
      if (b.tokens >= PACKET_COST) {
        b.tokens -= PACKET_COST;
        return true;
      }
      this.stats.limited++;
      return false;
    }
    if (this.table.size >= this.maxEntries) {
      this.sweep(now);
      if (this.table.size >= this.maxEntries) {
        this.stats.tableFull++;
        return false;
      }
    }
    this.table.set(key, { tokens: MAX_TOKENS - PACKET_COST, lastTime: now });
    this.stats.entries = this.table.size;
    return true;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [k, b] of this.table) if (now - b.lastTime > RATE_LIMIT_GC_MS) this.table.delete(k);
    this.stats.entries = this.table.size;
  }
}

/**
 * The table key of a source address: the IPv4 address itself (IPv4-mapped IPv6 folded onto it),
 * or the first 64 bits of an IPv6 address as 4 hex groups. Unparseable text keys as itself.
 */
export function sourceKey(address: string): string {
  const a = unmapV4(address);
  if (!a.includes(":")) return a;
  const groups = ipv6Prefix64(a);
  return groups ?? a;
}

function ipv6Prefix64(text: string): string | undefined {
  const zone = text.indexOf("%");
  const t = zone === -1 ? text : text.slice(0, zone);
  const dbl = t.indexOf("::");
  const split = (s: string): string[] => (s === "" ? [] : s.split(":"));
  const head = split(dbl === -1 ? t : t.slice(0, dbl));
  const tail = dbl === -1 ? [] : split(t.slice(dbl + 2));
  // A trailing dotted quad fills two groups.
  const width = (gs: string[]): number => gs.length + (gs.length > 0 && gs[gs.length - 1]!.includes(".") ? 1 : 0);
  const missing = 8 - width(head) - width(tail);
  if (dbl === -1 ? missing !== 0 : missing < 1) return undefined;
  const all = dbl === -1 ? head : [...head, ...new Array<string>(missing).fill("0"), ...tail];
  const out: string[] = [];
  for (let i = 0; i < 4; i++) {
    const g = all[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    out.push(Number.parseInt(g, 16).toString(16));
  }
  return out.join(":");
}
