import { afterEach, describe, expect, test } from "bun:test";
import { DnsCache } from "../../src/gateway/dns-cache.ts";
import { DnsRelay, parseResolvConf } from "../../src/gateway/dns-relay.ts";
import { DnsServer, LOCAL_NAME } from "../../src/gateway/dns-server.ts";
import { DnsTcpSession } from "../../src/gateway/dns-tcp.ts";
import { DropCounter } from "../../src/gateway/drops.ts";
import type { Resolver } from "../../src/gateway/resolver.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { FakeConn, until, v4 } from "./gateway-fakes.ts";

// Independent encoders for the expected bytes.
const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const enc = (s: string) => [...new TextEncoder().encode(s)];
function qname(name: string): number[] {
  const out: number[] = [];
  for (const label of name.split(".").filter(Boolean)) out.push(label.length, ...enc(label));
  return [...out, 0];
}
const T = { A: 1, NS: 2, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28 } as const;
const header = (id: number, flags: number, qd: number, an: number, ns = 0, ar = 0) => [
  ...u16(id),
  ...u16(flags),
  ...u16(qd),
  ...u16(an),
  ...u16(ns),
  ...u16(ar),
];
const question = (name: string, type: number) => [...qname(name), ...u16(type), ...u16(1)];
const query = (id: number, name: string, type: number) =>
  Uint8Array.from([...header(id, 0x0100, 1, 0), ...question(name, type)]);
const rr = (type: number, ttl: number, rdata: number[]) => [
  0xc0,
  0x0c,
  ...u16(type),
  ...u16(1),
  ...u32(ttl),
  ...u16(rdata.length),
  ...rdata,
];
const txt = (s: string) => {
  const out: number[] = [];
  for (let i = 0; i < s.length; i += 255) {
    const part = enc(s.slice(i, i + 255));
    out.push(part.length, ...part);
  }
  return out;
};
const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => Number.parseInt(h, 16)));

const PEER = v4(10, 0, 0, 2);
const OTHER_PEER = v4(10, 0, 0, 3);
const GW = v4(10, 0, 0, 53);

/** A nameserver on loopback (UDP and TCP, same port) answering through `respond`. */
class FakeNameserver {
  udpQueries: Uint8Array[] = [];
  tcpQueries: Uint8Array[] = [];
  port = 0;
  private udp: { close(): void } | undefined;
  private tcp: { port: number; stop(force?: boolean): void } | undefined;
  constructor(private readonly respond: (q: Uint8Array, overTcp: boolean) => Uint8Array[]) {}
  async start(): Promise<void> {
    // Bind TCP first, then UDP on the same port number.
    for (let attempt = 0; attempt < 20 && !this.udp; attempt++) {
      const tcp = Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        socket: {
          data: (s, d: Uint8Array) => {
            const q = d.slice(2, 2 + ((d[0]! << 8) | d[1]!));
            this.tcpQueries.push(q);
            for (const a of this.respond(q, true)) s.write(Uint8Array.from([...u16(a.length), ...a]));
          },
        },
      });
      this.tcp = tcp;
      try {
        this.udp = await Bun.udpSocket({
          hostname: "127.0.0.1",
          port: tcp.port,
          binaryType: "uint8array",
          socket: {
            data: (s, d, port, addr) => {
              this.udpQueries.push(d.slice());
              for (const a of this.respond(d, false)) s.send(a, port, addr);
            },
          },
        });
      } catch {
        tcp.stop(true);
      }
    }
    this.port = this.tcp!.port;
  }
  stop(): void {
    this.udp?.close();
    this.tcp?.stop(true);
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

class FakeResolver implements Resolver {
  constructor(private readonly answer: (name: string, family: 4 | 6) => Promise<string[]>) {}
  lookup(name: string, family: 4 | 6): Promise<string[]> {
    return this.answer(name, family);
  }
}
const noAddresses = new FakeResolver(() => Promise.reject(Object.assign(new Error("nf"), { code: "ENOTFOUND" })));

function setup(opts: { nameserverPort?: number; resolver?: Resolver; maxInFlightPerPeer?: number } = {}) {
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

/** The upstream's answer to `q` with the records given, its own ID and question echoed. */
function upstreamAnswer(q: Uint8Array, flags: number, answers: number[][], authority: number[][] = []) {
  let qEnd = 12;
  while (q[qEnd] !== 0) qEnd += q[qEnd]! + 1;
  qEnd += 5;
  // An OPT record in the query gets one in the answer (RFC 6891).
  const opt = q.length > qEnd ? [0, ...u16(41), ...u16(1232), 0, 0, 0, 0, 0, 0] : [];
  return Uint8Array.from([
    ...q.subarray(0, 2),
    ...u16(flags),
    ...u16(1),
    ...u16(answers.length),
    ...u16(authority.length),
    ...u16(opt.length ? 1 : 0),
    ...q.subarray(12, qEnd),
    ...answers.flat(),
    ...authority.flat(),
    ...opt,
  ]);
}

describe("DNS relay and the server's other answers", () => {
  test("replies copy the question verbatim: a 63-byte label with 0xFF (issue 9 regression)", async () => {
    const q = hex(`123401000001000000000000` + `3fff` + "61".repeat(62) + `00000f0001`);
    const { ask } = setup(); // no nameserver: the relay fails, SERVFAIL
    expect(await ask(q)).toEqual([...header(0x1234, 0x8182, 1, 0), ...q.subarray(12)]);
    const qa = hex(`567801000001000000000000` + `3fff` + "61".repeat(62) + `0000010001`);
    expect(await ask(qa)).toEqual([...header(0x5678, 0x8183, 1, 0), ...qa.subarray(12)]);
  });

  test("MX relayed: answers with a wrong ID or question are ignored; the client's ID is restored", async () => {
    const mx = rr(T.MX, 300, [0, 10, ...qname("mail.example.test")]);
    const ns = new FakeNameserver((q) => {
      const good = upstreamAnswer(q, 0x8180, [mx]);
      const wrongId = good.slice();
      wrongId[0]! ^= 0xff;
      const wrongQuestion = upstreamAnswer(
        Uint8Array.from([...q.subarray(0, 12), ...question("evil.test", T.MX)]),
        0x8180,
        [mx],
      );
      return [wrongId, wrongQuestion, good];
    });
    await ns.start();
    cleanups.push(() => ns.stop());
    const { ask, drops } = setup({ nameserverPort: ns.port });
    const q = query(0xabcd, "Example.Test", T.MX);
    const got = await ask(q);
    expect(got).toEqual([...header(0xabcd, 0x8180, 1, 1), ...question("Example.Test", T.MX), ...mx]);
    // Upstream saw the query verbatim except for a fresh ID.
    expect(ns.udpQueries.length).toBe(1);
    expect([...ns.udpQueries[0]!.subarray(2)]).toEqual([...q.subarray(2)]);
    expect((ns.udpQueries[0]![0]! << 8) | ns.udpQueries[0]![1]!).not.toBe(0xabcd);
    await until(() => (drops.snapshot().dns_relay_mismatch ?? 0) >= 2);
  });

  test("TC over UDP: a UDP client gets the TC answer, a TCP client the full answer over TCP (> 512 bytes)", async () => {
    const big = rr(T.TXT, 120, txt("x".repeat(900)));
    const ns = new FakeNameserver((q, overTcp) =>
      overTcp ? [upstreamAnswer(q, 0x8180, [big])] : [upstreamAnswer(q, 0x8380, [])],
    );
    await ns.start();
    cleanups.push(() => ns.stop());
    const { ask } = setup({ nameserverPort: ns.port });
    const q = query(77, "big.test", T.TXT);
    expect(await ask(q)).toEqual([...header(77, 0x8380, 1, 0), ...question("big.test", T.TXT)]);
    const full = await ask(q, true);
    expect(full.length).toBeGreaterThan(900);
    expect(full).toEqual([...header(77, 0x8180, 1, 1), ...question("big.test", T.TXT), ...big]);
    expect(ns.tcpQueries.length).toBe(1);
  });

  test("NXDOMAIN and SERVFAIL pass through; answers are cached with TTLs aged, negatives for the SOA's", async () => {
    // SOA rdata: MNAME, RNAME, SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM (60).
    const soaRdata = [
      ...qname("ns.test"),
      ...qname("host.ns.test"),
      ...u32(1),
      ...u32(2),
      ...u32(3),
      ...u32(4),
      ...u32(60),
    ];
    const soaRecord = rr(T.SOA, 900, soaRdata);
    const ns = new FakeNameserver((q) => {
      const name = new TextDecoder().decode(q.subarray(13, 13 + q[12]!));
      if (name === "nx") return [upstreamAnswer(q, 0x8183, [], [soaRecord])];
      if (name === "fail") return [upstreamAnswer(q, 0x8182, [])];
      return [upstreamAnswer(q, 0x8180, [rr(T.TXT, 300, txt("hello"))])];
    });
    await ns.start();
    cleanups.push(() => ns.stop());
    const { ask, clock, server } = setup({ nameserverPort: ns.port });
    expect(await ask(query(1, "nx.test", T.TXT))).toEqual([
      ...header(1, 0x8183, 1, 0, 1),
      ...question("nx.test", T.TXT),
      ...soaRecord,
    ]);
    expect(await ask(query(2, "fail.test", T.TXT))).toEqual([
      ...header(2, 0x8182, 1, 0),
      ...question("fail.test", T.TXT),
    ]);
    expect(await ask(query(3, "ok.test", T.TXT))).toEqual([
      ...header(3, 0x8180, 1, 1),
      ...question("ok.test", T.TXT),
      ...rr(T.TXT, 300, txt("hello")),
    ]);
    clock.advance(10_500);
    // From the cache: TTL 300 - 10, no new upstream query; SERVFAIL was not cached.
    expect(await ask(query(4, "OK.test", T.TXT))).toEqual([
      ...header(4, 0x8180, 1, 1),
      ...question("ok.test", T.TXT),
      ...rr(T.TXT, 290, txt("hello")),
    ]);
    await ask(query(5, "nx.test", T.TXT));
    expect(ns.udpQueries.length).toBe(3);
    await ask(query(6, "fail.test", T.TXT));
    expect(ns.udpQueries.length).toBe(4);
    // The same question with an EDNS OPT record is another entry (its answer carries an OPT).
    const withOpt = Uint8Array.from([
      ...header(8, 0x0100, 1, 0, 0, 1),
      ...question("ok.test", T.TXT),
      0,
      ...u16(41),
      ...u16(1232),
      0,
      0,
      0,
      0,
      0,
      0,
    ]);
    await ask(withOpt);
    expect(ns.udpQueries.length).toBe(5);
    await ask(withOpt);
    expect(ns.udpQueries.length).toBe(5);
    // The negative entry lives min(SOA TTL 900, MINIMUM 60) s.
    clock.advance(50_000);
    await ask(query(7, "nx.test", T.TXT));
    expect(ns.udpQueries.length).toBe(6);
    expect(server.counters()).toMatchObject({ relayed: 6, cacheHits: 3, servfail: 2, nxdomain: 3 });
  });

  test("PTR of the gateway's own addresses and A/AAAA of its name answer locally", async () => {
    const { ask } = setup();
    const ptr = () => rr(T.PTR, 60, qname(LOCAL_NAME));
    expect(await ask(query(1, "53.0.0.10.in-addr.arpa", T.PTR))).toEqual([
      ...header(1, 0x8180, 1, 1),
      ...question("53.0.0.10.in-addr.arpa", T.PTR),
      ...ptr(),
    ]);
    const v6 = `1.${"0.".repeat(29)}c.f.ip6.arpa`;
    expect(await ask(query(2, v6, T.PTR))).toEqual([...header(2, 0x8180, 1, 1), ...question(v6, T.PTR), ...ptr()]);
    expect(await ask(query(3, LOCAL_NAME, T.A))).toEqual([
      ...header(3, 0x8180, 1, 1),
      ...question(LOCAL_NAME, T.A),
      ...rr(T.A, 60, [10, 0, 0, 53]),
    ]);
  });

  test("a name known in one family answers the other NOERROR/no answer when its lookup fails transiently", async () => {
    let v4Up = true;
    const transient = () => Promise.reject(Object.assign(new Error("again"), { code: "EAI_AGAIN" }));
    const resolver = new FakeResolver((name, family) => {
      if (name !== "web4.test") return transient();
      return family === 4 && v4Up ? Promise.resolve(["10.99.2.2"]) : transient();
    });
    const { ask } = setup({ resolver });
    expect(await ask(query(1, "web4.test", T.AAAA))).toEqual([
      ...header(1, 0x8180, 1, 0),
      ...question("web4.test", T.AAAA),
    ]);
    // Both families failing now: remembered from the A answer above.
    v4Up = false;
    expect(await ask(query(2, "web4.test", T.AAAA))).toEqual([
      ...header(2, 0x8180, 1, 0),
      ...question("web4.test", T.AAAA),
    ]);
    // A name never seen: SERVFAIL.
    expect(await ask(query(3, "other.test", T.AAAA))).toEqual([
      ...header(3, 0x8182, 1, 0),
      ...question("other.test", T.AAAA),
    ]);
  });

  test("per-peer bound on lookups in flight", async () => {
    const resolver = new FakeResolver(() => new Promise(() => {}));
    const { server, drops } = setup({ resolver, maxInFlightPerPeer: 2 });
    const got: number[][] = [];
    for (let i = 0; i < 3; i++) server.answer(PEER, query(i, `n${i}.test`, T.A), false, (r) => got.push([...r]));
    server.answer(OTHER_PEER, query(9, "m.test", T.A), false, (r) => got.push([...r]));
    expect(got).toEqual([[...header(2, 0x8182, 1, 0), ...question("n2.test", T.A)]]);
    expect(server.lookupsInFlight).toBe(3);
    expect(drops.snapshot().dns_overload).toBe(1);
  });

  test("resolv.conf: nameserver lines, scope ids dropped, at most three", () => {
    expect(
      parseResolvConf(
        "# c\nsearch x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\n nameserver ::1\nnameserver 1.2.3.4\nnameserver bad\n",
      ),
    ).toEqual([
      { address: "10.0.0.1", port: 53 },
      { address: "fe80::1", port: 53 },
      { address: "::1", port: 53 },
    ]);
  });
});

/** peek() returns every buffered byte as one view, as the real receive buffer does. */
class ContiguousConn extends FakeConn {
  private all = new Uint8Array(0);
  override peerSend(data: Uint8Array): number {
    const joined = new Uint8Array(this.all.length + data.length);
    joined.set(this.all);
    joined.set(data, this.all.length);
    this.all = joined;
    return super.peerSend(data);
  }
  override peek(): Uint8Array {
    return this.all;
  }
  override consume(n: number): void {
    this.all = this.all.slice(n);
    super.consume(n);
  }
}

describe("DNS over TCP (RFC 7766)", () => {
  function session(resolver: Resolver, idleTimeoutMs = 10_000) {
    const clock = new VirtualClock();
    const drops = new DropCounter();
    const server = new DnsServer({ clock, log: silentLogger, drops, resolver, reply: () => {} });
    const conn = new ContiguousConn();
    let closed = false;
    new DnsTcpSession(conn, PEER, { clock, drops, server, idleTimeoutMs, onClosed: () => (closed = true) });
    return { conn, clock, drops, isClosed: () => closed };
  }
  const frame = (m: Uint8Array) => [...u16(m.length), ...m];
  const resolver = new FakeResolver(async (name, family) => (family === 4 ? [`192.0.2.${name.length}`] : []));

  test("several length-prefixed queries in one stream, split anywhere; answers framed", async () => {
    const { conn } = session(resolver);
    expect(conn.accepted).toBe(true);
    await until(() => conn.state === "ESTABLISHED");
    const stream = Uint8Array.from([...frame(query(1, "a.test", T.A)), ...frame(query(2, "bb.test", T.A))]);
    conn.peerSend(stream.subarray(0, 1));
    conn.peerSend(stream.subarray(1, 20));
    conn.peerSend(stream.subarray(20));
    await until(() => conn.deliveredBytes >= 2 * (2 + 12 + 12 + 16));
    const r1 = [...header(1, 0x8180, 1, 1), ...question("a.test", T.A), ...rr(T.A, 60, [192, 0, 2, 6])];
    const r2 = [...header(2, 0x8180, 1, 1), ...question("bb.test", T.A), ...rr(T.A, 60, [192, 0, 2, 7])];
    expect([...conn.deliveredConcat()]).toEqual([...u16(r1.length), ...r1, ...u16(r2.length), ...r2]);
    conn.peerFin();
    await until(() => conn.shutdownCalled);
  });

  test("idle timeout closes; a length under a header aborts", async () => {
    const a = session(resolver, 5000);
    await until(() => a.conn.state === "ESTABLISHED");
    a.clock.advance(4999);
    expect(a.conn.shutdownCalled).toBe(false);
    a.clock.advance(1);
    expect(a.conn.shutdownCalled).toBe(true);
    const b = session(resolver);
    await until(() => b.conn.state === "ESTABLISHED");
    b.conn.peerSend(Uint8Array.of(0, 3, 1, 2, 3));
    expect(b.conn.aborted).toBe(true);
    expect(b.isClosed()).toBe(true);
    expect(b.drops.snapshot()).toEqual({ dns_tcp_bad_length: 1 });
  });
});
