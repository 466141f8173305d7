import { describe, expect, test } from "bun:test";
import type { IpLink } from "../../src/link.ts";
import { Netstack } from "../../src/netstack/stack.ts";
import type { IpAddr, UnreachableKind } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { Icmpv4View } from "../../src/wire/icmpv4.ts";
import { Icmpv6View } from "../../src/wire/icmpv6.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { Ipv4View } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const ip = (s: string) => parseIp(s) as IpAddr;

const DNS_QUERY_V4 =
  "45000039728540004011b42c0a0000020a0000019c40003500256d8a123401000001000000000000076578616d706c6503636f6d0000010001";
const DNS_QUERY_V6 =
  "6000000000251140fd000000000000000000000000000002fd0000000000000000000000000000019c40003500258788" +
  "123401000001000000000000076578616d706c6503636f6d0000010001";
// Expected port unreachables (computed independently in Python): the whole query is quoted.
const PORT_UNREACH_V4 = "4500005500004000400126a60a0000010a0000020303113600000000" + DNS_QUERY_V4;
const PORT_UNREACH_V6 =
  "6000000000553a40fd000000000000000000000000000001fd00000000000000000000000000000201049338" +
  "00000000" +
  DNS_QUERY_V6;

function setup(mtu = 1420) {
  const sent: Uint8Array[] = [];
  const link: IpLink = { send: (p) => sent.push(p.slice()), onPacket: () => {} };
  const clock = new VirtualClock();
  const stack = new Netstack({
    link,
    mtu,
    clock,
    log: silentLogger,
    handlers: { onTcpConnect: () => {}, onUdp: () => {}, onEchoRequest: () => true },
  });
  return { stack, sent, clock };
}

/** A UDP packet from the peer of `size` bytes (the netstack's own output builds it, so it is valid). */
function udpPacket(stackSrc: IpAddr, stackDst: IpAddr, size: number): Uint8Array {
  const { stack, sent } = setup(65535);
  const hl = stackSrc.length === 4 ? 20 : 40;
  stack.sendUdp({ src: stackSrc, srcPort: 1234, dst: stackDst, dstPort: 9 }, new Uint8Array(size - hl - 8).fill(0x5a));
  return sent[0]!;
}

describe("sendUnreachable", () => {
  test("IPv4 port unreachable is byte-exact and quotes the whole short packet", () => {
    const { stack, sent } = setup();
    stack.sendUnreachable(hex(DNS_QUERY_V4), "port");
    expect(sent.map(toHex)).toEqual([PORT_UNREACH_V4]);
  });

  test("IPv6 port unreachable is byte-exact", () => {
    const { stack, sent } = setup();
    stack.sendUnreachable(hex(DNS_QUERY_V6), "port");
    expect(sent.map(toHex)).toEqual([PORT_UNREACH_V6]);
  });

  test("kinds map to RFC 792 / RFC 4443 codes", () => {
    const { stack, sent } = setup();
    const kinds: UnreachableKind[] = ["port", "host", "net", "admin"];
    for (const k of kinds) stack.sendUnreachable(hex(DNS_QUERY_V4), k);
    for (const k of kinds) stack.sendUnreachable(hex(DNS_QUERY_V6), k);
    const v4 = sent.slice(0, 4).map((p) => [p[20], p[21]]);
    const v6 = sent.slice(4).map((p) => [p[40], p[41]]);
    expect(v4).toEqual([
      [3, 3],
      [3, 1],
      [3, 0],
      [3, 13],
    ]);
    expect(v6).toEqual([
      [1, 4],
      [1, 3],
      [1, 0],
      [1, 1],
    ]);
  });

  test("IPv4 quotes are capped so the error is at most 576 bytes", () => {
    const original = udpPacket(ip("10.0.0.2"), ip("10.0.0.1"), 1000);
    const { stack, sent } = setup();
    stack.sendUnreachable(original, "host");
    const p = sent[0]!;
    expect(p.length).toBe(576);
    expect(Ipv4View.check(p)).toBeNull();
    expect(Icmpv4View.check(p.subarray(20))).toBeNull();
    expect(toHex(p.subarray(28))).toBe(toHex(original.subarray(0, 548)));
    expect(toHex(p.subarray(12, 20))).toBe("0a0000010a000002");
  });

  test("IPv6 quotes are capped so the error is at most 1280 bytes", () => {
    const original = udpPacket(ip("fd00::2"), ip("2001:db8::1"), 1400);
    const { stack, sent } = setup();
    stack.sendUnreachable(original, "admin");
    const p = sent[0]!;
    expect(p.length).toBe(1280);
    const v = new Ipv6View(p);
    expect(toHex(v.src)).toBe("20010db8000000000000000000000001");
    expect(Icmpv6View.check(v.src, v.dst, p.subarray(40))).toBeNull();
    expect(toHex(p.subarray(48))).toBe(toHex(original.subarray(0, 1232)));
  });

  test("a small MTU caps the quote too", () => {
    const original = udpPacket(ip("10.0.0.2"), ip("10.0.0.1"), 1000);
    const { stack, sent } = setup(300);
    stack.sendUnreachable(original, "port");
    expect(sent[0]!.length).toBe(300);
  });

  test("never about ICMP errors, multicast, broadcast, non-initial fragments or garbage", () => {
    const { stack, sent } = setup();
    // An ICMP port unreachable from the peer.
    stack.sendUnreachable(hex(PORT_UNREACH_V4), "port");
    stack.sendUnreachable(hex(PORT_UNREACH_V6), "port");
    const toMulticast = hex(DNS_QUERY_V6);
    toMulticast[24] = 0xff;
    stack.sendUnreachable(toMulticast, "port");
    // A v4 packet to 255.255.255.255 and a non-initial fragment (header checksums fixed via the output).
    const { stack: s2, sent: out2 } = setup(65535);
    const bcast = s2.output.allocate(ip("10.0.0.2"), ip("255.255.255.255"), 17, 8);
    const frag = s2.output.allocate(ip("10.0.0.2"), ip("10.0.0.1"), 17, 8);
    frag[6] = 0;
    frag[7] = 1;
    frag[10] = 0;
    frag[11] = 0;
    let s = 0;
    for (let i = 0; i < 20; i += 2) s += (frag[i]! << 8) | frag[i + 1]!;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    frag[10] = (~s >> 8) & 0xff;
    frag[11] = ~s & 0xff;
    expect(out2).toEqual([]);
    stack.sendUnreachable(bcast, "port");
    stack.sendUnreachable(frag, "port");
    stack.sendUnreachable(hex(DNS_QUERY_V4).subarray(0, 12), "port");
    stack.sendUnreachable(new Uint8Array(0), "port");
    expect(sent).toEqual([]);
    expect(stack.stats.drops).toEqual({ "icmp-error-suppressed": 5, "icmp-error-bad-original": 1 });
  });

  test("rate limited to a burst of 50, refilled at 100 per second", () => {
    const { stack, sent, clock } = setup();
    const q = hex(DNS_QUERY_V4);
    for (let i = 0; i < 60; i++) stack.sendUnreachable(q, "port");
    expect(sent.length).toBe(50);
    expect(stack.stats.drops).toEqual({ "icmp-rate-limited": 10 });
    clock.advance(100);
    for (let i = 0; i < 20; i++) stack.sendUnreachable(q, "port");
    expect(sent.length).toBe(60);
    clock.advance(10_000);
    for (let i = 0; i < 60; i++) stack.sendUnreachable(q, "port");
    expect(sent.length).toBe(110);
  });
});
