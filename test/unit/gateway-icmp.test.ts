import { describe, expect, test } from "bun:test";
import { DropCounter } from "../../src/gateway/drops.ts";
import { Gateway } from "../../src/gateway/gateway.ts";
import { synQuote } from "../../src/gateway/icmp-quote.ts";
import { parseIp } from "../../src/gateway/ip-text.ts";
import { TcpBridge } from "../../src/gateway/tcp-bridge.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { checksum } from "../../src/wire/checksum.ts";
import { Ipv4View } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";
import { tcpChecksumValid } from "../../src/wire/tcp.ts";
import { blackhole } from "./blackhole.ts";
import { FakeConn, FakeNetstack, until, v4 } from "./gateway-fakes.ts";

const CLIENT = v4(10, 0, 2, 15);
const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint32(o);
const u16 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint16(o);

describe("synQuote", () => {
  test("IPv4: a valid IP header + 20-byte SYN with the flow's ports and the SYN's sequence number", () => {
    const q = synQuote({ src: CLIENT, srcPort: 40001, dst: v4(192, 0, 2, 9), dstPort: 443 }, 0xdeadbeef);
    expect(q.length).toBe(40);
    expect(Ipv4View.check(q)).toBeNull();
    const ip = new Ipv4View(q);
    expect(Array.from(ip.src)).toEqual([10, 0, 2, 15]);
    expect(Array.from(ip.dst)).toEqual([192, 0, 2, 9]);
    expect(ip.protocol).toBe(6);
    expect(ip.totalLength).toBe(40);
    expect(checksum(q, 0, 20)).toBe(0);
    expect(u16(q, 20)).toBe(40001);
    expect(u16(q, 22)).toBe(443);
    expect(u32(q, 24)).toBe(0xdeadbeef);
    expect(q[33]).toBe(0x02); // SYN only
    expect(q[32]! >> 4).toBe(5); // data offset: 20 bytes
    expect(tcpChecksumValid(ip.src, ip.dst, q.subarray(20))).toBe(true);
  });

  test("IPv6: 40-byte header, next header TCP, payload length 20", () => {
    const src = parseIp("fd00::15")!;
    const dst = parseIp("2001:db8::1")!;
    const q = synQuote({ src, srcPort: 1, dst, dstPort: 2 }, 7);
    expect(q.length).toBe(60);
    expect(Ipv6View.check(q)).toBeNull();
    expect(q[6]).toBe(6);
    expect(u16(q, 4)).toBe(20);
    expect(u32(q, 44)).toBe(7);
    expect(tcpChecksumValid(src, dst, q.subarray(40))).toBe(true);
  });
});

/** A loopback server that accepts (used for a port that refuses once it is stopped). */
function acceptingServer() {
  return Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
}

/**
 * A loopback port whose connects stay under way (a server that accepts would finish the handshake
 * inside connect(2), and the gateway would accept the peer at once).
 */
async function pendingServer() {
  const h = await blackhole();
  return { port: h.port, stop: () => h.close() };
}

describe("TCP connect failures", () => {
  test("connect timeout (VirtualClock): ICMP host unreachable quoting the SYN, then the flow is forgotten", async () => {
    const server = await pendingServer();
    try {
      const clock = new VirtualClock();
      const netstack = new FakeNetstack();
      const gw = new Gateway({ netstack, clock, log: silentLogger, tcpConnectTimeoutMs: 50 });
      const conn = new FakeConn();
      conn.initialPeerSeq = 0x01020304;
      const flow = { src: CLIENT, srcPort: 40002, dst: v4(127, 0, 0, 1), dstPort: server.port };
      gw.onTcpConnect(flow, conn);
      expect(gw.stats().liveTcp).toBe(1);
      clock.advance(49);
      expect(netstack.unreachable.length).toBe(0);
      // The host connect cannot complete: its SYN waits in a full accept queue.
      clock.advance(1);
      expect(netstack.unreachable.length).toBe(1);
      expect(netstack.unreachable[0]!.kind).toBe("host");
      expect(Array.from(netstack.unreachable[0]!.original)).toEqual(Array.from(synQuote(flow, 0x01020304)));
      // The half-open flow is forgotten without a RST, which would contradict the ICMP error.
      expect(conn.dropped).toBe(true);
      expect(conn.refused).toBe(false);
      expect(conn.accepted).toBe(false);
      expect(gw.stats().liveTcp).toBe(0);
      expect(gw.stats().drops.tcp_connect_timeout).toBe(1);
      // The connect is cancelled, never accepted.
      await Bun.sleep(20);
      expect(conn.accepted).toBe(false);
      gw.close();
    } finally {
      server.stop();
    }
  });

  const deps = (netstack: FakeNetstack, drops: DropCounter, finished: string[]) => ({
    clock: new VirtualClock(),
    log: silentLogger,
    drops,
    connectTimeoutMs: 10_000,
    onFinished: (b: { key: string }) => finished.push(b.key),
    sendUnreachable: (o: Uint8Array, k: "port" | "host" | "net" | "admin") => netstack.sendUnreachable(o, k),
  });

  for (const [code, kind] of [
    ["EHOSTUNREACH", "host"],
    ["ENETUNREACH", "net"],
    ["ETIMEDOUT", "host"],
  ] as const) {
    test(`${code} from the host connect -> ICMP ${kind} unreachable quoting the SYN`, async () => {
      const server = await pendingServer();
      try {
        const netstack = new FakeNetstack();
        const drops = new DropCounter();
        const finished: string[] = [];
        const conn = new FakeConn();
        conn.initialPeerSeq = 99;
        const bridge = new TcpBridge("k", conn, deps(netstack, drops, finished));
        const flow = { src: CLIENT, srcPort: 40003, dst: v4(127, 0, 0, 1), dstPort: server.port };
        bridge.start(flow);
        // What Bun's connectError would report for an unreachable destination.
        bridge.hostConnectError(Object.assign(new Error(code), { code }));
        expect(netstack.unreachable.map((u) => u.kind)).toEqual([kind]);
        expect(Array.from(netstack.unreachable[0]!.original)).toEqual(Array.from(synQuote(flow, 99)));
        expect(conn.dropped).toBe(true);
        expect(conn.refused).toBe(false);
        expect(finished).toEqual(["k"]);
        expect(drops.snapshot().tcp_connect_unreachable).toBe(1);
        await Bun.sleep(20);
        expect(conn.accepted).toBe(false);
      } finally {
        server.stop();
      }
    });
  }

  test("ECONNREFUSED -> RST only (no ICMP)", async () => {
    const probe = acceptingServer();
    const port = probe.port;
    probe.stop(true);
    const netstack = new FakeNetstack();
    const gw = new Gateway({ netstack, clock: new VirtualClock(), log: silentLogger });
    const conn = new FakeConn();
    gw.onTcpConnect({ src: CLIENT, srcPort: 40004, dst: v4(127, 0, 0, 1), dstPort: port }, conn);
    await until(() => conn.refused, 2000, "refuse");
    expect(netstack.unreachable.length).toBe(0);
    expect(gw.stats().drops.tcp_connect_refused).toBe(1);
    gw.close();
  });
});
