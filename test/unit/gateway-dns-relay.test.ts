// The DNS relay: queries the host resolver cannot answer go to the resolv.conf nameservers (here a
// fake one on loopback), checked, cached and answered to the peer with its own ID.
import { afterEach, describe, expect, test } from "bun:test";
import { parseResolvConf } from "../../src/gateway/dns-relay.ts";
import { cleanups, enc, header, qname, query, question, rr, runCleanups, setup, T, u16, u32 } from "./dns-harness.ts";
import { until } from "./gateway-fakes.ts";

afterEach(runCleanups);

const txt = (s: string) => {
  const out: number[] = [];
  for (let i = 0; i < s.length; i += 255) {
    const part = enc(s.slice(i, i + 255));
    out.push(part.length, ...part);
  }
  return out;
};

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

describe("DNS relay", () => {
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
