import type { Clock } from "../util/clock.ts";
import { parseResponse, readU32, writeU16, writeU32 } from "./dns-codec.ts";

/**
 * A small cache of relayed answers (not of the host resolver's A/AAAA: getaddrinfo gives no TTLs,
 * and the host's own cache, if any, sits behind it).
 *
 * Positive answers live for their least record TTL, negative ones (NXDOMAIN, or NOERROR without
 * answers) for min(SOA TTL, SOA MINIMUM) from the authority section (RFC 2308); an answer without
 * either, TTL 0, TC set, or another rcode is not kept. Every lifetime is capped at `maxTtlS`. A hit
 * is served with each record's TTL reduced by the time it spent here, so clients never keep a
 * record longer than its owner said. Bounded in entries and bytes; the oldest goes first.
 */

export interface DnsCacheLimits {
  maxEntries: number;
  maxBytes: number;
  maxTtlS: number;
}

export const DEFAULT_DNS_CACHE: DnsCacheLimits = { maxEntries: 1024, maxBytes: 1 << 20, maxTtlS: 3600 };

interface CacheEntry {
  response: Uint8Array;
  storedAt: number;
  expiresAt: number;
  ttlOffsets: number[];
}

export class DnsCache {
  hits = 0;
  misses = 0;
  private readonly entries = new Map<string, CacheEntry>();
  private bytes = 0;

  constructor(
    private readonly clock: Clock,
    private readonly limits: DnsCacheLimits = DEFAULT_DNS_CACHE,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The key of a query: its question (case-folded), whether it had an EDNS OPT record (the answer
   * has one only then, RFC 6891) and its DO bit.
   */
  static key(msg: Uint8Array, questionEnd: number, edns: boolean, dnssecOk: boolean): string {
    let key = (edns ? "E" : "-") + (dnssecOk ? "D" : "-");
    for (let i = 12; i < questionEnd; i++) {
      let c = msg[i]!;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      key += String.fromCharCode(c);
    }
    return key;
  }

  /** A copy of the cached response with TTLs aged and the given ID, or null. */
  get(key: string, id: number): Uint8Array | null {
    const entry = this.entries.get(key);
    if (!entry) {
      this.misses++;
      return null;
    }
    const now = this.clock.now();
    if (now >= entry.expiresAt) {
      this.delete(key, entry);
      this.misses++;
      return null;
    }
    this.hits++;
    const out = entry.response.slice();
    writeU16(out, 0, id);
    const age = Math.floor((now - entry.storedAt) / 1000);
    for (const off of entry.ttlOffsets) writeU32(out, off, Math.max(0, readU32(out, off) - age));
    return out;
  }

  /** Keep `response` (a relayed, already checked answer) when it may be cached. */
  put(key: string, response: Uint8Array): void {
    const shape = parseResponse(response);
    if (!shape || shape.truncated || (shape.rcode !== 0 && shape.rcode !== 3)) return;
    const ttl = Math.min(shape.cacheTtl, this.limits.maxTtlS);
    if (ttl <= 0 || response.length > this.limits.maxBytes) return;
    const old = this.entries.get(key);
    if (old) this.delete(key, old);
    while (this.entries.size >= this.limits.maxEntries || this.bytes + response.length > this.limits.maxBytes) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, CacheEntry];
      this.delete(oldestKey, oldest);
    }
    const now = this.clock.now();
    this.entries.set(key, {
      response: response.slice(),
      storedAt: now,
      expiresAt: now + ttl * 1000,
      ttlOffsets: shape.ttlOffsets,
    });
    this.bytes += response.length;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private delete(key: string, entry: CacheEntry): void {
    this.entries.delete(key);
    this.bytes -= entry.response.length;
  }
}
