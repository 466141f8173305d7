import { describe, expect, test } from "bun:test";
import { lookup } from "node:dns/promises";
import { DnsServer } from "../../src/gateway/dns-server.ts";
import { DropCounter } from "../../src/gateway/drops.ts";
import { Gateway } from "../../src/gateway/gateway.ts";
import { parseIp } from "../../src/gateway/ip-text.ts";
import type { Resolver } from "../../src/gateway/resolver.ts";
import { SystemResolver } from "../../src/gateway/resolver.ts";
import type { FlowAddrs } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { header, query, question, rr, T } from "./dns-harness.ts";
import { FakeNetstack, until, v4 } from "./gateway-fakes.ts";

/** An address record whose name points at the question's (offset 12). */
function answer(_name: string, address: Uint8Array): number[] {
  return rr(address.length === 4 ? T.A : T.AAAA, 60, [...address]);
}

const CLIENT = v4(10, 0, 0, 2);
const DNS = v4(10, 0, 0, 53);
const FROM_CLIENT: FlowAddrs = { src: CLIENT, srcPort: 33333, dst: DNS, dstPort: 53 };
const TO_CLIENT: FlowAddrs = { src: DNS, srcPort: 53, dst: CLIENT, dstPort: 33333 };

class FakeResolver implements Resolver {
  calls: string[] = [];
  constructor(private readonly answer: (name: string, family: 4 | 6) => Promise<string[]>) {}
  lookup(name: string, family: 4 | 6): Promise<string[]> {
    this.calls.push(`${name}/${family}`);
    return this.answer(name, family);
  }
}

const notFound = () => Promise.reject(Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }));

function makeServer(resolver: Resolver, extra: { maxInFlight?: number; lookupTimeoutMs?: number } = {}) {
  const replies: { flow: FlowAddrs; payload: Uint8Array }[] = [];
  const drops = new DropCounter();
  const clock = new VirtualClock();
  const server = new DnsServer({
    clock,
    log: silentLogger,
    drops,
    resolver,
    reply: (flow, payload) => replies.push({ flow, payload: payload.slice() }),
    ...extra,
  });
  return { server, replies, drops, clock };
}

describe("DNS server", () => {
  test("A and AAAA of injected names: exact bytes, ID/RD/question echoed, QR+RA, TTL 60", async () => {
    const resolver = new FakeResolver(async (_name, family) =>
      family === 4 ? ["192.0.2.1", "192.0.2.2"] : ["2001:db8::1"],
    );
    const { server, replies } = makeServer(resolver);
    server.handle(FROM_CLIENT, query(0xbeef, "Example.Test", T.A));
    server.handle(FROM_CLIENT, query(0x0102, "example.test", T.AAAA, 0x0000));
    await until(() => replies.length === 2);
    expect(replies[0]!.flow).toEqual(TO_CLIENT);
    expect([...replies[0]!.payload]).toEqual([
      ...header(0xbeef, 0x8180, 1, 2),
      ...question("Example.Test", T.A),
      ...answer("Example.Test", v4(192, 0, 2, 1)),
      ...answer("Example.Test", v4(192, 0, 2, 2)),
    ]);
    // RD clear in the query -> clear in the reply; RA always set.
    expect([...replies[1]!.payload]).toEqual([
      ...header(0x0102, 0x8080, 1, 1),
      ...question("example.test", T.AAAA),
      ...answer("example.test", parseIp("2001:db8::1")!),
    ]);
    expect(resolver.calls).toEqual(["Example.Test/4", "example.test/6"]);
    expect(server.queries).toBe(2);
  });

  test("A of localhost through the system resolver (/etc/hosts)", async () => {
    const expected4 = (await lookup("localhost", { all: true, family: 4 })).map((a) => parseIp(a.address)!);
    const { server, replies } = makeServer(new SystemResolver());
    server.handle(FROM_CLIENT, query(7, "localhost", T.A));
    await until(() => replies.length === 1);
    expect([...replies[0]!.payload]).toEqual([
      ...header(7, 0x8180, 1, expected4.length),
      ...question("localhost", T.A),
      ...expected4.flatMap((a) => answer("localhost", a)),
    ]);
  });

  test("AAAA of localhost: its ::1 entries, or NOERROR with no answers when /etc/hosts has none", async () => {
    const expected6 = await lookup("localhost", { all: true, family: 6 })
      .then((all) => all.filter((a) => a.family === 6).map((a) => parseIp(a.address)!))
      .catch(() => []);
    const { server, replies } = makeServer(new SystemResolver());
    server.handle(FROM_CLIENT, query(8, "localhost", T.AAAA));
    await until(() => replies.length === 1);
    expect([...replies[0]!.payload]).toEqual([
      ...header(8, 0x8180, 1, expected6.length),
      ...question("localhost", T.AAAA),
      ...expected6.flatMap((a) => answer("localhost", a)),
    ]);
  });

  test("NXDOMAIN for a name that does not exist", async () => {
    const { server, replies } = makeServer(new FakeResolver(notFound));
    server.handle(FROM_CLIENT, query(9, "no.such.name.invalid", T.A));
    await until(() => replies.length === 1);
    expect([...replies[0]!.payload]).toEqual([...header(9, 0x8183, 1, 0), ...question("no.such.name.invalid", T.A)]);
  });

  test("SERVFAIL when the resolver fails otherwise", async () => {
    const { server, replies, drops } = makeServer(
      new FakeResolver(() => Promise.reject(Object.assign(new Error("boom"), { code: "ESERVFAIL" }))),
    );
    server.handle(FROM_CLIENT, query(10, "x.test", T.A));
    await until(() => replies.length === 1);
    expect([...replies[0]!.payload]).toEqual([...header(10, 0x8182, 1, 0), ...question("x.test", T.A)]);
    expect(drops.snapshot()).toEqual({ dns_lookup_failed: 1 });
  });

  test("SERVFAIL when a lookup times out, and when too many are in flight; a timed-out lookup frees its slot", async () => {
    let release!: (v: string[]) => void;
    const stuck = new Promise<string[]>((r) => (release = r));
    const { server, replies, drops, clock } = makeServer(new FakeResolver(() => stuck), {
      maxInFlight: 2,
      lookupTimeoutMs: 5000,
    });
    server.handle(FROM_CLIENT, query(1, "a.test", T.A));
    server.handle(FROM_CLIENT, query(2, "b.test", T.A));
    server.handle(FROM_CLIENT, query(3, "c.test", T.A));
    expect(replies.map((r) => [...r.payload])).toEqual([[...header(3, 0x8182, 1, 0), ...question("c.test", T.A)]]);
    clock.advance(5000);
    expect(replies.length).toBe(3);
    expect([...replies[1]!.payload]).toEqual([...header(1, 0x8182, 1, 0), ...question("a.test", T.A)]);
    // Regression (issue 9): the slots were held until the stuck lookups ended, so every later
    // query got SERVFAIL for as long as getaddrinfo hung.
    expect(server.lookupsInFlight).toBe(0);
    server.handle(FROM_CLIENT, query(4, "d.test", T.A));
    expect(server.lookupsInFlight).toBe(1);
    release(["192.0.2.9"]);
    await until(() => replies.length === 4);
    expect([...replies[3]!.payload]).toEqual([
      ...header(4, 0x8180, 1, 1),
      ...question("d.test", T.A),
      ...answer("d.test", v4(192, 0, 2, 9)),
    ]);
    expect(server.lookupsInFlight).toBe(0);
    expect(drops.snapshot()).toEqual({ dns_overload: 1, dns_timeout: 2 });
  });

  test("NOTIMP for other types, classes and opcodes; the question and opcode are echoed", async () => {
    const resolver = new FakeResolver(async () => ["192.0.2.1"]);
    const { server, replies } = makeServer(resolver);
    server.handle(FROM_CLIENT, query(11, "mx.test", T.MX));
    const chaos = Uint8Array.from([...header(12, 0x0100, 1, 0), ...question("version.bind", 16, 3)]);
    server.handle(FROM_CLIENT, chaos);
    // Opcode 2 (STATUS).
    server.handle(FROM_CLIENT, query(13, "a.test", T.A, 0x1100));
    expect(replies.map((r) => [...r.payload])).toEqual([
      [...header(11, 0x8184, 1, 0), ...question("mx.test", T.MX)],
      [...header(12, 0x8184, 1, 0), ...question("version.bind", 16, 3)],
      [...header(13, 0x9184, 1, 0), ...question("a.test", T.A)],
    ]);
    expect(resolver.calls).toEqual([]);
  });

  test("FORMERR echoing the ID for malformed queries; nothing for runts and responses", async () => {
    const { server, replies, drops } = makeServer(new FakeResolver(async () => []));
    // Header says one question, but the name runs off the end.
    server.handle(FROM_CLIENT, Uint8Array.from([...header(0x4242, 0x0100, 1, 0), 5, 0x61, 0x62]));
    // No question at all.
    server.handle(FROM_CLIENT, Uint8Array.from(header(0x4343, 0x0100, 0, 0)));
    // Two questions.
    server.handle(
      FROM_CLIENT,
      Uint8Array.from([...header(0x4444, 0x0000, 2, 0), ...question("a.test", 1), ...question("b.test", 1)]),
    );
    server.handle(FROM_CLIENT, Uint8Array.of(1, 2, 3));
    server.handle(FROM_CLIENT, Uint8Array.from([...header(0x4545, 0x8180, 1, 0), ...question("a.test", 1)]));
    expect(replies.map((r) => [...r.payload])).toEqual([
      header(0x4242, 0x8181, 0, 0),
      header(0x4343, 0x8181, 0, 0),
      [...header(0x4444, 0x8081, 2, 0), ...question("a.test", 1), ...question("b.test", 1)],
    ]);
    expect(drops.snapshot()).toEqual({ dns_malformed: 1, dns_short: 1, dns_not_query: 1 });
    expect(server.queries).toBe(5);
  });

  test("the gateway answers UDP to the -D address itself and NATs other UDP", async () => {
    const netstack = new FakeNetstack();
    const gw = new Gateway({
      netstack,
      clock: new VirtualClock(),
      log: silentLogger,
      dns: { address: "10.0.0.53", port: 53 },
      resolver: new FakeResolver(async () => ["198.51.100.7"]),
    });
    try {
      gw.onUdp(FROM_CLIENT, query(0x0a0b, "host.test", T.A), new Uint8Array(0));
      const [reply] = await netstack.waitUdp(1);
      expect(reply!.flow).toEqual(TO_CLIENT);
      expect([...reply!.payload]).toEqual([
        ...header(0x0a0b, 0x8180, 1, 1),
        ...question("host.test", T.A),
        ...answer("host.test", v4(198, 51, 100, 7)),
      ]);
      expect(gw.stats()).toMatchObject({ dnsQueries: 1, liveUdp: 0, natEntriesCreated: 0 });
    } finally {
      gw.close();
    }
  });

  test("replies of lookups finishing after close() are dropped", async () => {
    let release!: (v: string[]) => void;
    const { server, replies } = makeServer(new FakeResolver(() => new Promise((r) => (release = r))));
    server.handle(FROM_CLIENT, query(1, "late.test", T.A));
    server.close();
    release(["192.0.2.1"]);
    await until(() => server.lookupsInFlight === 0);
    expect(replies).toEqual([]);
  });
});
