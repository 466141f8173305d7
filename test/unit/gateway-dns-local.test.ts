// What the gateway's DNS server answers without a nameserver: the question copied into its
// SERVFAIL, its own names, the other family's fallback, the per-peer bound, and DNS over TCP.
import { afterEach, describe, expect, test } from "bun:test";
import { DnsServer, LOCAL_NAME } from "../../src/gateway/dns-server.ts";
import { DnsTcpSession } from "../../src/gateway/dns-tcp.ts";
import { DropCounter } from "../../src/gateway/drops.ts";
import type { Resolver } from "../../src/gateway/resolver.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { FakeResolver, header, PEER, qname, query, question, rr, runCleanups, setup, T, u16 } from "./dns-harness.ts";
import { FakeConn, until, v4 } from "./gateway-fakes.ts";

const OTHER_PEER = v4(10, 0, 0, 3);
const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => Number.parseInt(h, 16)));

afterEach(runCleanups);

describe("the DNS server's own answers", () => {
  test("replies copy the question verbatim: a 63-byte label with 0xFF (issue 9 regression)", async () => {
    const q = hex(`123401000001000000000000` + `3fff` + "61".repeat(62) + `00000f0001`);
    const { ask } = setup(); // no nameserver: the relay fails, SERVFAIL
    expect(await ask(q)).toEqual([...header(0x1234, 0x8182, 1, 0), ...q.subarray(12)]);
    const qa = hex(`567801000001000000000000` + `3fff` + "61".repeat(62) + `0000010001`);
    expect(await ask(qa)).toEqual([...header(0x5678, 0x8183, 1, 0), ...qa.subarray(12)]);
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
