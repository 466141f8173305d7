import dnsPacket from "dns-packet";
import type { FlowAddrs } from "../netstack/types.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import type { DropCounter } from "./drops.ts";
import { formatIp } from "./ip-text.ts";
import { isNotFound, type Resolver } from "./resolver.ts";

/**
 * The DNS server on the `-D` address: UDP queries to it are answered here instead of being NATed.
 *
 * Only standard queries (opcode 0) with exactly one question of class IN and type A or AAAA are
 * resolved, through the host resolver, with TTL 60 like the seed. Everything else gets a reply that
 * says why: NOTIMP for other opcodes, classes and types (ANY, MX, TXT, ... cannot be answered from
 * getaddrinfo), FORMERR for a query that does not parse or has no / several questions, NXDOMAIN
 * when the name does not exist, SERVFAIL when the lookup fails, times out or too many are in
 * flight. Every reply echoes the ID, opcode, RD flag and the question, and sets QR and RA.
 * Datagrams shorter than a header and responses (QR set) get no reply at all.
 */

export const DNS_TTL = 60;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

const FLAG_QR = 0x8000;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const HEADER_LENGTH = 12;

export interface DnsServerDeps {
  clock: Clock;
  log: Logger;
  drops: DropCounter;
  resolver: Resolver;
  /** Send the reply to the peer: flow.src/srcPort is the DNS address. */
  reply(flow: FlowAddrs, payload: Uint8Array): void;
  /** Lookups allowed at once; more get SERVFAIL. */
  maxInFlight?: number;
  /** A lookup not done after this long gets SERVFAIL (the lookup itself keeps its slot until it ends). */
  lookupTimeoutMs?: number;
}

interface Query {
  id: number;
  opcode: number;
  rd: boolean;
  questions: dnsPacket.Question[];
}

export class DnsServer {
  /** Queries received (every datagram to the DNS address). */
  queries = 0;
  private inFlight = 0;
  private closed = false;
  private readonly maxInFlight: number;
  private readonly lookupTimeoutMs: number;

  constructor(private readonly deps: DnsServerDeps) {
    this.maxInFlight = deps.maxInFlight ?? 256;
    this.lookupTimeoutMs = deps.lookupTimeoutMs ?? 5000;
  }

  get lookupsInFlight(): number {
    return this.inFlight;
  }

  /** A datagram from the peer to the DNS address (payload valid only during the call). */
  handle(flow: FlowAddrs, payload: Uint8Array): void {
    if (this.closed) return;
    this.queries++;
    const to: FlowAddrs = {
      src: flow.dst.slice(),
      srcPort: flow.dstPort,
      dst: flow.src.slice(),
      dstPort: flow.srcPort,
    };
    if (payload.length < HEADER_LENGTH) {
      this.deps.drops.count("dns_short");
      return;
    }
    const id = (payload[0]! << 8) | payload[1]!;
    const flags = (payload[2]! << 8) | payload[3]!;
    if (flags & FLAG_QR) {
      this.deps.drops.count("dns_not_query");
      return;
    }
    const query: Query = { id, opcode: (flags >> 11) & 0xf, rd: (flags & FLAG_RD) !== 0, questions: [] };
    let decoded: dnsPacket.Packet;
    try {
      decoded = dnsPacket.decode(Buffer.from(payload.buffer, payload.byteOffset, payload.length));
    } catch {
      this.deps.log.warn(`Non-DNS packet to DNS service from ${formatIp(flow.src)} ${flow.srcPort}`);
      this.deps.drops.count("dns_malformed");
      this.send(to, query, RCODE.FORMERR);
      return;
    }
    query.questions = decoded.questions ?? [];
    if (query.opcode !== 0) {
      this.send(to, query, RCODE.NOTIMP);
      return;
    }
    if (query.questions.length !== 1) {
      this.deps.log.warn(`DNS query with ${query.questions.length} questions`);
      this.send(to, query, RCODE.FORMERR);
      return;
    }
    const q = query.questions[0]!;
    this.deps.log.info(`DNS query ${q.name} ${q.type} from ${formatIp(flow.src)} ${flow.srcPort}`);
    if (q.class !== "IN" || (q.type !== "A" && q.type !== "AAAA")) {
      this.send(to, query, RCODE.NOTIMP);
      return;
    }
    this.resolve(to, query, q.name, q.type === "A" ? 4 : 6);
  }

  /** Drop the replies of lookups still running. */
  close(): void {
    this.closed = true;
  }

  private resolve(to: FlowAddrs, query: Query, name: string, family: 4 | 6): void {
    const host = name.replace(/\.$/, "");
    if (host === "") {
      // The root has no addresses.
      this.send(to, query, RCODE.NOERROR);
      return;
    }
    if (this.inFlight >= this.maxInFlight) {
      this.deps.drops.count("dns_overload");
      this.send(to, query, RCODE.SERVFAIL);
      return;
    }
    this.inFlight++;
    let answered = false;
    const timer = this.deps.clock.timer(() => {
      if (answered) return;
      answered = true;
      this.deps.drops.count("dns_timeout");
      this.send(to, query, RCODE.SERVFAIL);
    });
    timer.set(this.lookupTimeoutMs);
    const done = (rcode: number, addresses: string[]) => {
      this.inFlight--;
      timer.clear();
      if (answered) return;
      answered = true;
      this.send(to, query, rcode, addresses, family);
    };
    let pending: Promise<string[]>;
    try {
      pending = this.deps.resolver.lookup(host, family);
    } catch (e) {
      pending = Promise.reject(e);
    }
    pending.then(
      (addresses) => done(RCODE.NOERROR, addresses),
      (e) => {
        if (isNotFound(e)) done(RCODE.NXDOMAIN, []);
        else {
          this.deps.log.debug(`DNS lookup of ${host} failed: ${(e as Error)?.message ?? e}`);
          this.deps.drops.count("dns_lookup_failed");
          done(RCODE.SERVFAIL, []);
        }
      },
    );
  }

  private send(to: FlowAddrs, query: Query, rcode: number, addresses: string[] = [], family: 4 | 6 = 4): void {
    if (this.closed) return;
    const reply = encodeReply(query, rcode, addresses, family);
    if (reply) this.deps.reply(to, reply);
    else this.deps.drops.count("dns_encode_failed");
  }
}

function encodeReply(query: Query, rcode: number, addresses: string[], family: 4 | 6): Uint8Array | null {
  const flags = (query.opcode << 11) | (query.rd ? FLAG_RD : 0) | FLAG_RA | rcode;
  const q = query.questions[0];
  const answers: dnsPacket.Answer[] = [];
  if (q && rcode === RCODE.NOERROR)
    for (const address of addresses)
      answers.push({ type: family === 4 ? "A" : "AAAA", name: q.name, class: "IN", ttl: DNS_TTL, data: address });
  try {
    const out = dnsPacket.encode({ type: "response", id: query.id, flags, questions: query.questions, answers });
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  } catch {
    return null;
  }
}
