import { beforeEach, describe, expect, test } from "bun:test";
import type { IpLink } from "../../src/link.ts";
import { Netstack } from "../../src/netstack/stack.ts";
import type { TcpConnectionApi } from "../../src/netstack/tcp/api.ts";
import type { FlowAddrs, IpAddr, NetstackHandlers } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { emitIpv4Header } from "../../src/wire/ipv4.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const ip = (s: string) => parseIp(s) as IpAddr;

// Captured from Linux (`ping -c1 127.0.0.1`, `ping -6 -c1 ::1`).
const LINUX_PING =
  "45000054969a40004001a60c7f0000017f00000108009b8e4cd70001bdba056b000000007fa00e0000000000" +
  "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
const LINUX_PING6 =
  "600b008000403a40000000000000000000000000000000010000000000000000000000000000000180003e03" +
  "4cd80001bdba056b0000000064ae0e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
// Our replies: Linux's ICMP bytes under our IP header (ID 0, DF, TTL 64 / flow label 0, hop limit 64).
const ECHO_REPLY_V4 =
  "450000540000400040013ca77f0000017f0000010000a38e4cd70001bdba056b000000007fa00e0000000000" +
  "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
const ECHO_REPLY_V6 =
  "6000000000403a40000000000000000000000000000000010000000000000000000000000000000181003d03" +
  "4cd80001bdba056b0000000064ae0e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
// DNS query/response for example.com (checksums computed independently in Python).
const DNS_QUERY_V4 =
  "45000039728540004011b42c0a0000020a0000019c40003500256d8a123401000001000000000000076578616d706c6503636f6d0000010001";
const DNS_QUERY_V6 =
  "6000000000251140fd000000000000000000000000000002fd0000000000000000000000000000019c40003500258788" +
  "123401000001000000000000076578616d706c6503636f6d0000010001";
const DNS_RESPONSE = "123481800001000100000000076578616d706c6503636f6d0000010001c00c000100010000012c00045db8d822";
const DNS_REPLY_V4 = "4500004900004000401126a20a0000010a00000200359c400035d2f1" + DNS_RESPONSE;
const DNS_REPLY_V6 =
  "6000000000351140fd000000000000000000000000000001fd00000000000000000000000000000200359c400035ecef" + DNS_RESPONSE;
// The DNS query with TTL 1, and our time-exceeded answer quoting it.
const TTL1_QUERY_V4 =
  "45000039728540000111f32c0a0000020a0000019c40003500256d8a123401000001000000000000076578616d706c6503636f6d0000010001";
const TIME_EXCEEDED_V4 = "4500005500004000400126a60a0000010a0000020b00093900000000" + TTL1_QUERY_V4;

interface Harness {
  stack: Netstack;
  sent: string[];
  udp: { flow: FlowAddrs; payload: string; packet: Uint8Array }[];
  echo: { src: string; dst: string }[];
  tcp: { src: IpAddr; dst: IpAddr; segment: string }[];
  link: IpLink;
}

function harness(opts: { answerEcho?: boolean; withTcp?: boolean; onUdp?: NetstackHandlers["onUdp"] } = {}): Harness {
  const sent: string[] = [];
  const link: IpLink = { send: (p) => sent.push(toHex(p)), onPacket: () => {} };
  const h: Omit<Harness, "stack"> = { sent, udp: [], echo: [], tcp: [], link };
  const handlers: NetstackHandlers = {
    onTcpConnect: () => {},
    onUdp:
      opts.onUdp ??
      ((flow, payload, packet) => {
        h.udp.push({ flow, payload: toHex(payload), packet });
      }),
    onEchoRequest: (src, dst) => {
      h.echo.push({ src: toHex(src), dst: toHex(dst) });
      return opts.answerEcho ?? true;
    },
  };
  const tcp = {
    input: (src: IpAddr, dst: IpAddr, segment: Uint8Array) => {
      h.tcp.push({ src, dst, segment: toHex(segment) });
    },
    connect: (_flow: FlowAddrs): TcpConnectionApi => {
      throw new Error("not used");
    },
  };
  const stack = new Netstack({
    link,
    mtu: 1420,
    clock: new VirtualClock(),
    log: silentLogger,
    handlers,
    tcp: opts.withTcp ? tcp : undefined,
  });
  return { ...h, stack };
}

let h: Harness;
beforeEach(() => {
  h = harness();
});

describe("Netstack echo", () => {
  test("answers a Linux IPv4 ping byte-exactly", () => {
    h.link.onPacket(hex(LINUX_PING)); // installed by the constructor
    expect(h.echo).toEqual([{ src: "7f000001", dst: "7f000001" }]);
    expect(h.sent).toEqual([ECHO_REPLY_V4]);
    expect(h.stack.stats).toEqual({ packetsIn: 1, packetsOut: 1, bytesIn: 84, bytesOut: 84, drops: {} });
  });

  test("answers a Linux IPv6 ping byte-exactly", () => {
    h.stack.receive(hex(LINUX_PING6));
    expect(h.sent).toEqual([ECHO_REPLY_V6]);
  });

  test("sendEchoReply (a forwarded ping's answer, built from parts) is the same bytes, v4 and v6", () => {
    const data = (ping: string, icmpAt: number) => hex(ping).subarray(icmpAt + 8);
    h.stack.sendEchoReply(ip("127.0.0.1"), ip("127.0.0.1"), 0x4cd7, 1, data(LINUX_PING, 20));
    h.stack.sendEchoReply(ip("::1"), ip("::1"), 0x4cd8, 1, data(LINUX_PING6, 40));
    expect(h.sent).toEqual([ECHO_REPLY_V4, ECHO_REPLY_V6]);
  });

  test("does not answer when the handler declines", () => {
    h = harness({ answerEcho: false });
    h.stack.receive(hex(LINUX_PING));
    h.stack.receive(hex(LINUX_PING6));
    expect(h.sent).toEqual([]);
    expect(h.stack.stats.drops).toEqual({ "echo-refused": 2 });
  });

  test("other ICMP types and bad ICMP are counted", () => {
    const reply = hex(ECHO_REPLY_V4);
    h.stack.receive(reply);
    const bad = hex(LINUX_PING);
    bad[30] ^= 1;
    h.stack.receive(bad);
    const bad6 = hex(LINUX_PING6);
    bad6[60] ^= 1;
    h.stack.receive(bad6);
    expect(h.stack.stats.drops).toEqual({ "icmpv4-type-0": 1, "icmpv4-bad-checksum": 1, "icmpv6-bad-checksum": 1 });
    expect(h.sent).toEqual([]);
  });
});

describe("Netstack UDP", () => {
  test("delivers a DNS query over IPv4 with its flow, payload view and packet", () => {
    const pkt = hex(DNS_QUERY_V4);
    h.stack.receive(pkt);
    expect(h.udp.length).toBe(1);
    const { flow, payload, packet } = h.udp[0]!;
    expect([toHex(flow.src), flow.srcPort, toHex(flow.dst), flow.dstPort]).toEqual(["0a000002", 40000, "0a000001", 53]);
    expect(payload).toBe(DNS_QUERY_V4.slice(56));
    expect(packet).toBe(pkt);
    // Addresses are copies: mutating the receive buffer afterwards does not change them.
    pkt.fill(0);
    expect(toHex(flow.src)).toBe("0a000002");
  });

  test("delivers a DNS query over IPv6, trimming link padding", () => {
    const padded = new Uint8Array(hex(DNS_QUERY_V6).length + 5);
    padded.set(hex(DNS_QUERY_V6));
    h.stack.receive(padded);
    expect(h.udp.length).toBe(1);
    expect(toHex(h.udp[0]!.flow.src)).toBe("fd000000000000000000000000000002");
    expect(h.udp[0]!.payload).toBe(DNS_QUERY_V6.slice(96));
    expect(h.udp[0]!.packet.length).toBe(77);
  });

  test("sendUdp emits exact IPv4 and IPv6 datagrams with checksums", () => {
    const response = hex(DNS_RESPONSE);
    h.stack.sendUdp({ src: ip("10.0.0.1"), srcPort: 53, dst: ip("10.0.0.2"), dstPort: 40000 }, response);
    h.stack.sendUdp({ src: ip("fd00::1"), srcPort: 53, dst: ip("fd00::2"), dstPort: 40000 }, response);
    expect(h.sent).toEqual([DNS_REPLY_V4, DNS_REPLY_V6]);
    expect(h.stack.stats.packetsOut).toBe(2);
  });

  test("sendUdp refuses mixed families and oversized payloads", () => {
    h.stack.sendUdp({ src: ip("10.0.0.1"), srcPort: 53, dst: ip("fd00::2"), dstPort: 1 }, new Uint8Array(1));
    h.stack.sendUdp({ src: ip("10.0.0.1"), srcPort: 53, dst: ip("10.0.0.2"), dstPort: 1 }, new Uint8Array(65508));
    expect(h.sent).toEqual([]);
    expect(h.stack.stats.drops).toEqual({ "udp-tx-family-mismatch": 1, "udp-tx-too-big": 1 });
  });

  test("bad UDP is counted, not delivered", () => {
    const badSum = hex(DNS_QUERY_V4);
    badSum[40] ^= 1;
    h.stack.receive(badSum);
    const zero6 = hex(DNS_QUERY_V6);
    zero6[46] = 0;
    zero6[47] = 0;
    h.stack.receive(zero6);
    // Zero checksum over IPv4 means "not computed" and is accepted.
    const zero4 = hex(DNS_QUERY_V4);
    zero4[26] = 0;
    zero4[27] = 0;
    h.stack.receive(zero4);
    expect(h.udp.length).toBe(1);
    expect(h.stack.stats.drops).toEqual({ "udp-bad-checksum": 1, "udp-zero-checksum-v6": 1 });
  });

  test("a throwing handler is contained and counted", () => {
    h = harness({
      onUdp: () => {
        throw new Error("gateway bug");
      },
    });
    expect(() => h.stack.receive(hex(DNS_QUERY_V4))).not.toThrow();
    expect(h.stack.stats.drops).toEqual({ "handler-error": 1 });
  });
});

describe("Netstack dispatch and drops", () => {
  const tcpPacket = () => {
    const p = new Uint8Array(40);
    emitIpv4Header(p, 0, ip("10.0.0.2"), ip("93.184.216.34"), 6, 40, 1, 0x4000, 64);
    p.set([0x9c, 0x40, 0, 80], 20);
    return p;
  };

  test("TCP goes to the TCP layer, or is counted without one", () => {
    h.stack.receive(tcpPacket());
    expect(h.stack.stats.drops).toEqual({ "tcp-no-layer": 1 });
    h = harness({ withTcp: true });
    h.stack.receive(tcpPacket());
    expect(h.tcp.length).toBe(1);
    expect(toHex(h.tcp[0]!.src)).toBe("0a000002");
    expect(toHex(h.tcp[0]!.dst)).toBe("5db8d822");
    expect(h.tcp[0]!.segment).toBe(toHex(tcpPacket().subarray(20)));
    // Same addresses again: the interned arrays are reused.
    h.stack.receive(tcpPacket());
    expect(h.tcp[1]!.src).toBe(h.tcp[0]!.src);
  });

  test("setTcp installs the layer later", () => {
    const seen: string[] = [];
    h.stack.setTcp({
      input: (_s, _d, seg) => seen.push(toHex(seg.subarray(0, 4))),
      connect: () => {
        throw new Error("unused");
      },
    });
    h.stack.receive(tcpPacket());
    expect(seen).toEqual(["9c400050"]);
  });

  test("connectTcp without a TCP layer throws", () => {
    expect(() => h.stack.connectTcp({ src: ip("10.0.0.1"), srcPort: 1, dst: ip("10.0.0.2"), dstPort: 2 })).toThrow();
  });

  test("TTL 1 is dropped with a byte-exact time exceeded", () => {
    h.stack.receive(hex(TTL1_QUERY_V4));
    expect(h.udp).toEqual([]);
    expect(h.sent).toEqual([TIME_EXCEEDED_V4]);
    expect(h.stack.stats.drops).toEqual({ "ttl-exceeded": 1 });
  });

  test("hop limit 1 over IPv6 is dropped with time exceeded (type 3)", () => {
    const p = hex(DNS_QUERY_V6);
    p[7] = 1;
    h.stack.receive(p);
    expect(h.sent.length).toBe(1);
    expect(h.sent[0]!.slice(80, 84)).toBe("0300");
    expect(h.stack.stats.drops).toEqual({ "hop-limit-exceeded": 1 });
  });

  test("malformed and martian packets are counted by reason", () => {
    const q = hex(DNS_QUERY_V4);
    const fixSum = (p: Uint8Array) => {
      p[10] = 0;
      p[11] = 0;
      let s = 0;
      for (let i = 0; i < 20; i += 2) s += (p[i]! << 8) | p[i + 1]!;
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      p[10] = (~s >> 8) & 0xff;
      p[11] = ~s & 0xff;
      return p;
    };
    const mut = (f: (p: Uint8Array) => void) => {
      const p = q.slice();
      f(p);
      return fixSum(p);
    };
    h.stack.receive(new Uint8Array(0));
    h.stack.receive(Uint8Array.of(0x10, 0, 0, 0));
    h.stack.receive(q.subarray(0, 10));
    h.stack.receive(q.subarray(0, 50));
    h.stack.receive(mut((p) => (p[0] = 0x44)));
    h.stack.receive(mut((p) => (p[3] = 10)));
    const badSum = q.slice();
    badSum[11] ^= 0xff;
    h.stack.receive(badSum);
    h.stack.receive(mut((p) => p.set([224, 0, 0, 251], 12)));
    h.stack.receive(mut((p) => p.set([255, 255, 255, 255], 16)));
    h.stack.receive(mut((p) => p.set([0, 0, 0, 0], 12)));
    h.stack.receive(mut((p) => (p[9] = 200)));
    h.stack.receive(mut((p) => (p[9] = 58)));
    const v6 = hex(DNS_QUERY_V6);
    h.stack.receive(v6.subarray(0, 30));
    const mc6 = v6.slice();
    mc6[24] = 0xff;
    h.stack.receive(mc6);
    const nonext = v6.slice();
    nonext[6] = 59;
    h.stack.receive(nonext);
    const icmp4in6 = v6.slice();
    icmp4in6[6] = 1;
    h.stack.receive(icmp4in6);
    expect(h.stack.stats.drops).toEqual({
      empty: 1,
      "bad-ip-version": 1,
      "ipv4-truncated": 2,
      "ipv4-bad-ihl": 1,
      "ipv4-bad-total-length": 1,
      "ipv4-bad-checksum": 1,
      "martian-source": 2,
      "martian-destination": 2,
      "unknown-protocol": 1,
      "icmpv6-over-ipv4": 1,
      "ipv6-truncated": 1,
      "ipv6-no-next-header": 1,
      "icmpv4-over-ipv6": 1,
    });
    expect(h.stack.stats.packetsIn).toBe(16);
    expect(h.udp).toEqual([]);
    expect(h.sent).toEqual([]);
  });

  test("close stops receiving and sending", () => {
    h.stack.close();
    h.link.onPacket(hex(LINUX_PING));
    h.stack.receive(hex(LINUX_PING));
    h.stack.sendUdp({ src: ip("10.0.0.1"), srcPort: 53, dst: ip("10.0.0.2"), dstPort: 40000 }, new Uint8Array(4));
    expect(h.sent).toEqual([]);
    expect(h.stack.stats.packetsIn).toBe(0);
  });
});
