import { describe, expect, test } from "bun:test";
import { emitIcmpv4, Icmpv4View, isIcmpv4Error } from "../../src/wire/icmpv4.ts";
import { emitIcmpv6, Icmpv6View, isIcmpv6Error } from "../../src/wire/icmpv6.ts";
import { emitUdpHeader, UdpView, verifyUdpChecksum, writeUdpChecksum } from "../../src/wire/udp.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// DNS query for example.com A from 10.0.0.2:40000 to 10.0.0.1:53 (checksums computed independently in Python).
const DNS_QUERY_V4 =
  "45000039728540004011b42c0a0000020a0000019c40003500256d8a123401000001000000000000076578616d706c6503636f6d0000010001";
const DNS_QUERY_V6 =
  "6000000000251140fd000000000000000000000000000002fd0000000000000000000000000000019c40003500258788" +
  "123401000001000000000000076578616d706c6503636f6d0000010001";
const LINUX_PING =
  "45000054969a40004001a60c7f0000017f00000108009b8e4cd70001bdba056b000000007fa00e0000000000" +
  "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
const LINUX_PING6 =
  "600b008000403a40000000000000000000000000000000010000000000000000000000000000000180003e03" +
  "4cd80001bdba056b0000000064ae0e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
// Linux's replies to the two pings above, ICMP part only.
const LINUX_REPLY_ICMP =
  "0000a38e4cd70001bdba056b000000007fa00e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
const LINUX_REPLY_ICMP6 =
  "81003d034cd80001bdba056b0000000064ae0e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";

describe("UDP", () => {
  test("reads and verifies a DNS query over IPv4 and IPv6", () => {
    const v4 = hex(DNS_QUERY_V4);
    const udp4 = v4.subarray(20);
    expect(UdpView.check(udp4)).toBeNull();
    const u = new UdpView(udp4);
    expect([u.srcPort, u.dstPort, u.length, u.checksum]).toEqual([40000, 53, 37, 0x6d8a]);
    expect(toHex(u.payload.subarray(0, 2))).toBe("1234");
    expect(verifyUdpChecksum(v4.subarray(12, 16), v4.subarray(16, 20), udp4)).toBeNull();
    const v6 = hex(DNS_QUERY_V6);
    expect(verifyUdpChecksum(v6.subarray(8, 24), v6.subarray(24, 40), v6.subarray(40))).toBeNull();
  });

  test("emits the same bytes as the fixture", () => {
    const v4 = hex(DNS_QUERY_V4);
    const out = v4.slice();
    out.fill(0, 20, 28);
    emitUdpHeader(out, 20, 40000, 53, 37);
    writeUdpChecksum(out, 20, out.subarray(12, 16), out.subarray(16, 20), 37);
    expect(toHex(out)).toBe(DNS_QUERY_V4);
  });

  test("checksum rules: zero means none over IPv4, invalid over IPv6; a computed zero is sent as ffff", () => {
    const v4 = hex(DNS_QUERY_V4);
    v4[26] = 0;
    v4[27] = 0;
    expect(verifyUdpChecksum(v4.subarray(12, 16), v4.subarray(16, 20), v4.subarray(20))).toBeNull();
    const v6 = hex(DNS_QUERY_V6);
    v6[46] = 0;
    v6[47] = 0;
    expect(verifyUdpChecksum(v6.subarray(8, 24), v6.subarray(24, 40), v6.subarray(40))).toBe("udp-zero-checksum-v6");
    const bad = hex(DNS_QUERY_V4);
    bad[40] ^= 0x80;
    expect(verifyUdpChecksum(bad.subarray(12, 16), bad.subarray(16, 20), bad.subarray(20))).toBe("udp-bad-checksum");
    // 0.0.0.0 -> 0.0.0.0, ports 0, length 10: pseudo header 0x11 + 0x0a, UDP length 0x0a => 0x25;
    // the payload word 0xffda brings the sum to 0xffff, whose complement 0 must go out as ffff.
    const z = new Uint8Array(10);
    emitUdpHeader(z, 0, 0, 0, 10);
    z[8] = 0xff;
    z[9] = 0xda;
    writeUdpChecksum(z, 0, new Uint8Array(4), new Uint8Array(4), 10);
    expect(toHex(z.subarray(6, 8))).toBe("ffff");
  });

  test("rejects bad lengths", () => {
    const udp = hex(DNS_QUERY_V4).subarray(20);
    expect(UdpView.check(udp.subarray(0, 7))).toBe("udp-truncated");
    const short = udp.slice();
    short[5] = 7;
    expect(UdpView.check(short)).toBe("udp-bad-length");
    const long = udp.slice();
    long[5] = 38;
    expect(UdpView.check(long)).toBe("udp-truncated");
    // A UDP length shorter than the IP payload is fine: the payload ends at the UDP length.
    const padded = new Uint8Array(udp.length + 3);
    padded.set(udp);
    expect(UdpView.check(padded)).toBeNull();
    expect(new UdpView(padded).payload.length).toBe(29);
  });
});

describe("ICMP", () => {
  test("ICMPv4 echo request view and a reply identical to Linux's", () => {
    const msg = hex(LINUX_PING).subarray(20);
    expect(Icmpv4View.check(msg)).toBeNull();
    const v = new Icmpv4View(msg);
    expect([v.type, v.code, v.checksum, v.echoId, v.echoSeq, v.body.length]).toEqual([8, 0, 0x9b8e, 0x4cd7, 1, 56]);
    const reply = msg.slice();
    emitIcmpv4(reply, 0, reply.length, 0, 0, 0x4cd70001);
    expect(toHex(reply)).toBe(LINUX_REPLY_ICMP);
    const bad = msg.slice();
    bad[10] ^= 1;
    expect(Icmpv4View.check(bad)).toBe("icmpv4-bad-checksum");
    expect(Icmpv4View.check(msg.subarray(0, 7))).toBe("icmpv4-truncated");
    expect([0, 3, 4, 5, 8, 11, 12].map(isIcmpv4Error)).toEqual([false, true, true, true, false, true, true]);
  });

  test("ICMPv6 echo request view with the pseudo-header checksum, reply identical to Linux's", () => {
    const pkt = hex(LINUX_PING6);
    const src = pkt.subarray(8, 24);
    const dst = pkt.subarray(24, 40);
    const msg = pkt.subarray(40);
    expect(Icmpv6View.check(src, dst, msg)).toBeNull();
    const v = new Icmpv6View(msg);
    expect([v.type, v.code, v.echoId, v.echoSeq]).toEqual([128, 0, 0x4cd8, 1]);
    const reply = msg.slice();
    emitIcmpv6(reply, 0, reply.length, dst, src, 129, 0, 0x4cd80001);
    expect(toHex(reply)).toBe(LINUX_REPLY_ICMP6);
    // Same bytes with another source address fail: the pseudo header is covered.
    const other = src.slice();
    other[15] = 2;
    expect(Icmpv6View.check(other, dst, msg)).toBe("icmpv6-bad-checksum");
    expect(Icmpv6View.check(src, dst, msg.subarray(0, 7))).toBe("icmpv6-truncated");
    expect([1, 2, 3, 4, 127, 128, 129].map(isIcmpv6Error)).toEqual([true, true, true, true, true, false, false]);
  });
});
