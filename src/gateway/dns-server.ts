import type { FlowAddrs, IpAddr } from "../netstack/types.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import { DnsCache } from "./dns-cache.ts";
import {
  addressRecord,
  buildReply,
  CLASS_IN,
  CLASSIC_UDP_SIZE,
  type ParsedQuery,
  parseQuery,
  parseResponse,
  ptrRecord,
  RCODE,
  reverseName,
  TYPE,
} from "./dns-codec.ts";
import type { DnsRelay } from "./dns-relay.ts";
import type { DropCounter } from "./drops.ts";
import { formatIp, parseIp } from "./ip-text.ts";
import { isNotFound, type Resolver } from "./resolver.ts";

export { RCODE } from "./dns-codec.ts";

/**
 * The DNS server on the `-D` address (UDP here; TCP through DnsTcpSession, same answers).
 *
 * - A / AAAA (class IN) come from the host resolver (getaddrinfo: /etc/hosts, nsswitch), TTL 60.
 *   NXDOMAIN only when neither family exists. A name the resolver knows in one family gets NOERROR
 *   with no answer for the other, also when that family's lookup fails transiently (e.g. an offline
 *   host whose /etc/hosts has only an IPv4 entry): the other family is asked, and names seen with
 *   addresses in the last 10 minutes are remembered.
 * - PTR of the gateway's own inner addresses (-D, -P) and A/AAAA of LOCAL_NAME answer locally.
 * - Every other type of class IN is relayed verbatim to the host's nameservers (DnsRelay), its
 *   answers kept in a small TTL-honouring cache (DnsCache).
 * - Other classes and opcodes: NOTIMP; unparsable: FORMERR; a lookup over its time or a peer over
 *   its share of lookups: SERVFAIL. Replies copy the query's question bytes verbatim.
 */

export const DNS_TTL = 60;
/** The name the gateway's own inner addresses have (PTR answers, A/AAAA). */
export const LOCAL_NAME = "gateway.wgslirpy.internal";
const KNOWN_NAME_MS = 10 * 60_000;
const MAX_KNOWN_NAMES = 4096;

export interface DnsServerDeps {
  clock: Clock;
  log: Logger;
  drops: DropCounter;
  resolver: Resolver;
  /** Send the reply to the peer: flow.src/srcPort is the DNS address. */
  reply(flow: FlowAddrs, payload: Uint8Array): void;
  /** Relays other types to the host's nameservers; without one they get NOTIMP. */
  relay?: DnsRelay;
  cache?: DnsCache;
  /** The gateway's own inner addresses: PTR and LOCAL_NAME answer with them. */
  ownAddresses?: readonly IpAddr[];
  /** Lookups and relays allowed at once, in total and per peer address; more get SERVFAIL. */
  maxInFlight?: number;
  maxInFlightPerPeer?: number;
  /** A lookup not done after this long gets SERVFAIL and frees its slot. */
  lookupTimeoutMs?: number;
}

/** Where an answer goes: the UDP flow back to the peer, or a TCP session. */
export type DnsAnswerSink = (reply: Uint8Array) => void;

export interface DnsCounters {
  queries: number;
  tcpQueries: number;
  resolved: number;
  relayed: number;
  local: number;
  cacheHits: number;
  liveCacheEntries: number;
  pendingLookups: number;
  servfail: number;
  nxdomain: number;
}

export class DnsServer {
  /** Queries received (every datagram or TCP message to the DNS address). */
  queries = 0;
  tcpQueries = 0;
  private resolved = 0;
  private relayed = 0;
  private local = 0;
  private servfail = 0;
  private nxdomain = 0;
  private inFlight = 0;
  private readonly perPeer = new Map<string, number>();
  private readonly knownNames = new Map<string, number>();
  private closed = false;
  private readonly maxInFlight: number;
  private readonly maxInFlightPerPeer: number;
  private readonly lookupTimeoutMs: number;
  private readonly ptrNames: Map<string, true>;
  private readonly ownAddresses: readonly IpAddr[];

  constructor(private readonly deps: DnsServerDeps) {
    this.maxInFlight = deps.maxInFlight ?? 256;
    this.maxInFlightPerPeer = deps.maxInFlightPerPeer ?? 64;
    this.lookupTimeoutMs = deps.lookupTimeoutMs ?? 5000;
    this.ownAddresses = deps.ownAddresses ?? [];
    this.ptrNames = new Map(this.ownAddresses.map((a) => [reverseName(a), true]));
  }

  static noCounters(): DnsCounters {
    return {
      queries: 0,
      tcpQueries: 0,
      resolved: 0,
      relayed: 0,
      local: 0,
      cacheHits: 0,
      liveCacheEntries: 0,
      pendingLookups: 0,
      servfail: 0,
      nxdomain: 0,
    };
  }

  get lookupsInFlight(): number {
    return this.inFlight;
  }

  counters(): DnsCounters {
    return {
      queries: this.queries,
      tcpQueries: this.tcpQueries,
      resolved: this.resolved,
      relayed: this.relayed,
      local: this.local,
      cacheHits: this.deps.cache?.hits ?? 0,
      liveCacheEntries: this.deps.cache?.size ?? 0,
      pendingLookups: this.inFlight,
      servfail: this.servfail,
      nxdomain: this.nxdomain,
    };
  }

  /** A datagram from the peer to the DNS address (payload valid only during the call). */
  handle(flow: FlowAddrs, payload: Uint8Array): void {
    if (this.closed) return;
    const to: FlowAddrs = {
      src: flow.dst.slice(),
      srcPort: flow.dstPort,
      dst: flow.src.slice(),
      dstPort: flow.srcPort,
    };
    this.answer(flow.src, payload, false, (reply) => this.deps.reply(to, reply));
  }

  /**
   * Answer one query (`msg` is only read during the call). `overTcp`: no size limit on the reply,
   * and a truncated upstream answer is retried over TCP.
   */
  answer(peer: IpAddr, msg: Uint8Array, overTcp: boolean, sink: DnsAnswerSink): void {
    if (this.closed) return;
    this.queries++;
    if (overTcp) this.tcpQueries++;
    const parsed = parseQuery(msg);
    if (!parsed.ok) {
      this.deps.drops.count(
        `dns_${parsed.why === "short" ? "short" : parsed.why === "response" ? "not_query" : "malformed"}`,
      );
      if (parsed.why === "malformed") {
        this.deps.log.debug(`Non-DNS packet to DNS service from ${formatIp(peer)}`);
        sink(buildReply(msg, 12, 0, RCODE.FORMERR));
      }
      return;
    }
    const q = parsed.query;
    const maxSize = overTcp ? 65535 : Math.max(CLASSIC_UDP_SIZE, q.ednsSize);
    // `msg` may be a view that is reused after this call: asynchronous replies use a copy.
    let source = msg;
    const reply = (rcode: number, answers: Uint8Array[] = []) =>
      this.send(sink, buildReply(source, q.questionEnd, q.qdcount, rcode, answers, maxSize), rcode);
    if (q.opcode !== 0) {
      reply(RCODE.NOTIMP);
      return;
    }
    if (q.qdcount !== 1) {
      reply(RCODE.FORMERR);
      return;
    }
    this.deps.log.debug(`DNS query ${q.name} type ${q.qtype} from ${formatIp(peer)}`);
    if (q.qclass !== CLASS_IN) {
      reply(RCODE.NOTIMP);
      return;
    }
    const lower = q.name.toLowerCase();
    if (q.qtype === TYPE.PTR && this.ptrNames.has(lower)) {
      this.local++;
      reply(RCODE.NOERROR, [ptrRecord(LOCAL_NAME, DNS_TTL)]);
      return;
    }
    const isAddress = q.qtype === TYPE.A || q.qtype === TYPE.AAAA;
    if (isAddress && lower === LOCAL_NAME) {
      this.local++;
      const len = q.qtype === TYPE.A ? 4 : 16;
      reply(
        RCODE.NOERROR,
        this.ownAddresses.filter((a) => a.length === len).map((a) => addressRecord(a, DNS_TTL)),
      );
      return;
    }
    if (!isAddress && !this.deps.relay) {
      reply(RCODE.NOTIMP);
      return;
    }
    if (isAddress && q.name === "") {
      reply(RCODE.NOERROR);
      return;
    } // the root has no addresses
    const cacheKey = isAddress ? "" : DnsCache.key(msg, q.questionEnd, q.ednsSize > 0, q.dnssecOk);
    if (!isAddress && this.deps.cache) {
      const hit = this.deps.cache.get(cacheKey, q.id);
      if (hit && hit.length <= maxSize) {
        this.send(sink, hit, hit[3]! & 0xf);
        return;
      }
    }
    const peerKey = formatIp(peer);
    const mine = this.perPeer.get(peerKey) ?? 0;
    if (this.inFlight >= this.maxInFlight || mine >= this.maxInFlightPerPeer) {
      this.deps.drops.count("dns_overload");
      reply(RCODE.SERVFAIL);
      return;
    }
    // The slot is held until the answer or the timeout, whichever comes first.
    source = msg.slice();
    this.inFlight++;
    this.perPeer.set(peerKey, mine + 1);
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      timer.clear();
      this.inFlight--;
      const left = (this.perPeer.get(peerKey) ?? 1) - 1;
      if (left > 0) this.perPeer.set(peerKey, left);
      else this.perPeer.delete(peerKey);
      return !this.closed;
    };
    const timer = this.deps.clock.timer(() => {
      if (!finish()) return;
      this.deps.drops.count("dns_timeout");
      reply(RCODE.SERVFAIL);
    });
    timer.set(this.lookupTimeoutMs);
    if (isAddress) {
      this.resolved++;
      this.lookup(q, (rcode, addresses) => {
        if (finish()) reply(rcode, addresses);
      });
      return;
    }
    this.relayed++;
    const query = source;
    const deadline = this.deps.clock.now() + this.lookupTimeoutMs;
    this.deps.relay!.relay(query, q.questionEnd, overTcp, deadline).then(
      (answer) => {
        if (!finish()) return;
        this.deps.cache?.put(cacheKey, answer);
        if (!overTcp && answer.length > maxSize) {
          this.deps.drops.count("dns_relay_oversize");
          // Larger than the client can take over UDP: the question with TC set, so it asks over TCP.
          this.send(sink, buildReply(query, q.questionEnd, q.qdcount, RCODE.NOERROR, [], maxSize, true), 0);
          return;
        }
        this.send(sink, answer, parseResponse(answer)?.rcode ?? 0);
      },
      (e) => {
        this.deps.log.debug(`DNS relay of ${q.name} type ${q.qtype} failed: ${(e as Error).message}`);
        this.deps.drops.count("dns_relay_failed");
        if (finish()) reply(RCODE.SERVFAIL);
      },
    );
  }

  /** Drop the replies of lookups still running. */
  close(): void {
    this.closed = true;
    this.deps.relay?.close();
  }

  private send(sink: DnsAnswerSink, reply: Uint8Array, rcode: number): void {
    if (this.closed) return;
    if (rcode === RCODE.SERVFAIL) this.servfail++;
    if (rcode === RCODE.NXDOMAIN) this.nxdomain++;
    sink(reply);
  }

  private lookup(q: ParsedQuery, done: (rcode: number, answers: Uint8Array[]) => void): void {
    const family = q.qtype === TYPE.A ? 4 : 6;
    const host = q.name;
    const key = host.toLowerCase();
    this.ask(host, family).then(
      (addresses) => {
        if (addresses.length > 0) this.remember(key);
        done(RCODE.NOERROR, addresses);
      },
      async (e) => {
        const notFound = isNotFound(e);
        if (!notFound) {
          this.deps.log.debug(`DNS lookup of ${host} failed: ${(e as Error)?.message ?? e}`);
          this.deps.drops.count("dns_lookup_failed");
        }
        // The name may exist in the other family: then this one is NOERROR with no answer.
        const other = await this.ask(host, family === 4 ? 6 : 4).catch(() => [] as Uint8Array[]);
        if (other.length > 0 || this.known(key)) {
          if (other.length > 0) this.remember(key);
          done(RCODE.NOERROR, []);
        } else done(notFound ? RCODE.NXDOMAIN : RCODE.SERVFAIL, []);
      },
    );
  }

  /** The records of `host` in `family` from the resolver (a promise even when lookup() throws). */
  private async ask(host: string, family: 4 | 6): Promise<Uint8Array[]> {
    const addresses = await this.deps.resolver.lookup(host, family);
    const records: Uint8Array[] = [];
    for (const text of addresses) {
      const addr = parseIp(text);
      if (addr && addr.length === (family === 4 ? 4 : 16)) records.push(addressRecord(addr, DNS_TTL));
    }
    return records;
  }

  private remember(key: string): void {
    this.knownNames.delete(key);
    if (this.knownNames.size >= MAX_KNOWN_NAMES) this.knownNames.delete(this.knownNames.keys().next().value as string);
    this.knownNames.set(key, this.deps.clock.now() + KNOWN_NAME_MS);
  }

  private known(key: string): boolean {
    const until = this.knownNames.get(key);
    return until !== undefined && until > this.deps.clock.now();
  }
}
