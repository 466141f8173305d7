/**
 * Shared by the DNS server's unit tests (gateway-dns-relay, gateway-dns-local): an independent
 * encoder for the expected bytes, a resolver answering through a function, and a DnsServer with
 * its relay on a VirtualClock whose answers a test awaits.
 */
import { DnsCache } from "../../src/gateway/dns-cache.ts";
import { DnsRelay } from "../../src/gateway/dns-relay.ts";
import { DnsServer } from "../../src/gateway/dns-server.ts";
import { DropCounter } from "../../src/gateway/drops.ts";
import type { Resolver } from "../../src/gateway/resolver.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { until, v4 } from "./gateway-fakes.ts";

// Independent encoders for the expected bytes.
export const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
export const u32 = (n: number) => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
export const enc = (s: string) => [...new TextEncoder().encode(s)];
export function qname(name: string): number[] {
  const out: number[] = [];
  for (const label of name.split(".").filter(Boolean)) out.push(label.length, ...enc(label));
  return [...out, 0];
}
export const T = { A: 1, NS: 2, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28 } as const;
export const header = (id: number, flags: number, qd: number, an: number, ns = 0, ar = 0) => [
  ...u16(id),
  ...u16(flags),
  ...u16(qd),
  ...u16(an),
  ...u16(ns),
  ...u16(ar),
];
export const question = (name: string, type: number, klass = 1) => [...qname(name), ...u16(type), ...u16(klass)];
export const query = (id: number, name: string, type: number, flags = 0x0100) =>
  Uint8Array.from([...header(id, flags, 1, 0), ...question(name, type)]);
export const rr = (type: number, ttl: number, rdata: number[]) => [
  0xc0,
  0x0c,
  ...u16(type),
  ...u16(1),
  ...u32(ttl),
  ...u16(rdata.length),
  ...rdata,
];

export const PEER = v4(10, 0, 0, 2);
const GW = v4(10, 0, 0, 53);

/** What setup() opened, closed after each test: `afterEach(runCleanups)` in each file. */
export const cleanups: (() => void)[] = [];
export function runCleanups(): void {
  for (const c of cleanups.splice(0)) c();
}

export class FakeResolver implements Resolver {
  constructor(private readonly answer: (name: string, family: 4 | 6) => Promise<string[]>) {}
  lookup(name: string, family: 4 | 6): Promise<string[]> {
    return this.answer(name, family);
  }
}
const noAddresses = new FakeResolver(() => Promise.reject(Object.assign(new Error("nf"), { code: "ENOTFOUND" })));

/**
 * A DnsServer and its relay on a VirtualClock; the relay asks the nameserver on 127.0.0.1 at
 * `nameserverPort` (none: relaying fails). ask() resolves with the bytes of the answer.
 */
export function setup(opts: { nameserverPort?: number; resolver?: Resolver; maxInFlightPerPeer?: number } = {}) {
  const clock = new VirtualClock();
  const drops = new DropCounter();
  const relay = new DnsRelay({
    clock,
    random: new SeededRandom(7),
    drops,
    nameservers: () => (opts.nameserverPort ? [{ address: "127.0.0.1", port: opts.nameserverPort }] : []),
  });
  const cache = new DnsCache(clock);
  const server = new DnsServer({
    clock,
    log: silentLogger,
    drops,
    resolver: opts.resolver ?? noAddresses,
    relay,
    cache,
    ownAddresses: [GW, Uint8Array.from([0xfc, 0, ...new Array(13).fill(0), 1])],
    maxInFlightPerPeer: opts.maxInFlightPerPeer,
    reply: () => {},
  });
  cleanups.push(() => server.close());
  const ask = async (msg: Uint8Array, overTcp = false, peer = PEER) => {
    let got: Uint8Array | undefined;
    server.answer(peer, msg, overTcp, (r) => (got = r));
    await until(() => got !== undefined, 3000, "DNS answer");
    return [...got!];
  };
  return { clock, drops, relay, cache, server, ask };
}
