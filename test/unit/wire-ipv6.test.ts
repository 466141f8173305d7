import { describe, expect, test } from "bun:test";
import { emitIpv6FragmentHeader, emitIpv6Header, Ipv6View } from "../../src/wire/ipv6.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// Linux `ping -6 -c1 ::1` request as captured by tcpdump.
const LINUX_PING6 =
  "600b008000403a40000000000000000000000000000000010000000000000000000000000000000180003e03" +
  "4cd80001bdba056b0000000064ae0e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";

const SRC = hex("fd000000000000000000000000000002");
const DST = hex("fd000000000000000000000000000001");

/** A packet with the given chain of extension headers (each a full header) before 4 bytes of UDP-ish data. */
function withChain(firstNh: number, headers: Uint8Array[], tail = hex("01020304")): Uint8Array {
  const plen = headers.reduce((n, h) => n + h.length, 0) + tail.length;
  const out = new Uint8Array(40 + plen);
  emitIpv6Header(out, 0, SRC, DST, firstNh, plen, 64);
  let off = 40;
  for (const h of headers) {
    out.set(h, off);
    off += h.length;
  }
  out.set(tail, off);
  return out;
}

describe("Ipv6View", () => {
  test("reads a captured Linux echo request", () => {
    const buf = hex(LINUX_PING6);
    expect(Ipv6View.check(buf)).toBeNull();
    const ip = new Ipv6View(buf);
    expect(ip.payloadLength).toBe(64);
    expect(ip.nextHeader).toBe(58);
    expect(ip.hopLimit).toBe(64);
    expect(ip.walk()).toBeNull();
    expect(ip.upperProtocol).toBe(58);
    expect(ip.upperOffset).toBe(40);
    expect(ip.fragmentHeaderOffset).toBe(-1);
    expect(toHex(ip.src)).toBe("00000000000000000000000000000001");
  });

  test("emits the fixed header", () => {
    const out = new Uint8Array(40);
    emitIpv6Header(out, 0, SRC, DST, 17, 0x25, 64);
    expect(toHex(out)).toBe("6000000000251140fd000000000000000000000000000002fd000000000000000000000000000001");
  });

  test("walks hop-by-hop, destination options and routing (segments left 0) to the upper layer", () => {
    const hbh = hex("3c00010400000000"); // next = dest opts, len 0, PadN(4)
    const dest = hex("2b00010400000000"); // next = routing
    const routing = hex("1100040000000000"); // next = UDP, type 4 (SRH), segments left 0
    const buf = withChain(0, [hbh, dest, routing]);
    const ip = new Ipv6View(buf);
    expect(ip.walk()).toBeNull();
    expect(ip.upperProtocol).toBe(17);
    expect(ip.upperOffset).toBe(64);
  });

  test("walks AH with its 4-byte length unit", () => {
    const ah = hex("1104000000000100000000010000000000000000"); // next UDP, payload len 4 -> (4+2)*4 = 24 bytes
    const ahFull = new Uint8Array(24);
    ahFull.set(ah);
    const ip = new Ipv6View(withChain(51, [ahFull]));
    expect(ip.walk()).toBeNull();
    expect(ip.upperOffset).toBe(64);
  });

  test("stops at the fragment header and reads its fields", () => {
    const dest = hex("2c00010400000000"); // next = fragment
    const frag = new Uint8Array(8);
    emitIpv6FragmentHeader(frag, 0, 17, 1232, true, 0xdeadbeef);
    expect(toHex(frag)).toBe("110004d1deadbeef");
    const ip = new Ipv6View(withChain(60, [dest, frag]));
    expect(ip.walk()).toBeNull();
    expect(ip.fragmentHeaderOffset).toBe(48);
    expect(ip.fragmentNextHeaderField).toBe(40);
    expect(ip.upperProtocol).toBe(17);
    expect(ip.upperOffset).toBe(56);
    expect(ip.fragmentOffset).toBe(1232);
    expect(ip.moreFragments).toBe(true);
    expect(ip.fragmentIdentification).toBe(0xdeadbeef);
  });

  test("reports no-next-header and unknown headers as the upper protocol", () => {
    const ip = new Ipv6View(withChain(59, []));
    expect(ip.walk()).toBeNull();
    expect(ip.upperProtocol).toBe(59);
    const ip2 = new Ipv6View(withChain(253, []));
    expect(ip2.walk()).toBeNull();
    expect(ip2.upperProtocol).toBe(253);
  });

  test("rejects bad fixed headers and bad chains", () => {
    const good = hex(LINUX_PING6);
    expect(Ipv6View.check(good.subarray(0, 39))).toBe("ipv6-truncated");
    const v4 = good.slice();
    v4[0] = 0x45;
    expect(Ipv6View.check(v4)).toBe("ipv6-bad-version");
    expect(Ipv6View.check(good.subarray(0, 103))).toBe("ipv6-truncated");
    const jumbo = good.slice(0, 48);
    jumbo[4] = 0;
    jumbo[5] = 0;
    jumbo[6] = 0;
    expect(Ipv6View.check(jumbo)).toBe("ipv6-jumbogram");

    const walk = (b: Uint8Array) => new Ipv6View(b).walk();
    // Hop-by-hop after another header.
    expect(walk(withChain(60, [hex("0000010400000000"), hex("1100010400000000")]))).toBe("ipv6-misplaced-hop-by-hop");
    // Header length running past the packet.
    expect(walk(withChain(60, [hex("1105010400000000")]))).toBe("ipv6-bad-extension-header");
    // Header cut short (only 4 bytes of the 8-byte minimum left).
    expect(walk(withChain(60, [], hex("11000104")))).toBe("ipv6-bad-extension-header");
    expect(walk(withChain(44, [], hex("11000000")))).toBe("ipv6-bad-extension-header");
    // Routing header asking us to forward.
    expect(walk(withChain(43, [hex("1100040200000000")]))).toBe("ipv6-routing-segments-left");
  });
});
