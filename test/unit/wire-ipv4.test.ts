import { describe, expect, test } from "bun:test";
import { emitIpv4Header, IPV4_DF, IPV4_MF, Ipv4View } from "../../src/wire/ipv4.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// Linux `ping -c1 127.0.0.1` request as captured by tcpdump (kernel-computed checksums).
const LINUX_PING =
  "45000054969a40004001a60c7f0000017f00000108009b8e4cd70001bdba056b000000007fa00e0000000000" +
  "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
// The example header of the Wikipedia "Internet checksum" article (checksum b861).
const WIKI_HEADER = "450000730000400040 11b861c0a80001c0a800c7".replace(" ", "");

describe("Ipv4View", () => {
  test("reads a captured Linux echo request", () => {
    const buf = hex(LINUX_PING);
    expect(Ipv4View.check(buf)).toBeNull();
    const ip = new Ipv4View(buf);
    expect(ip.headerLength).toBe(20);
    expect(ip.totalLength).toBe(84);
    expect(ip.identification).toBe(0x969a);
    expect(ip.dontFragment).toBe(true);
    expect(ip.moreFragments).toBe(false);
    expect(ip.isFragment).toBe(false);
    expect(ip.fragmentOffset).toBe(0);
    expect(ip.ttl).toBe(64);
    expect(ip.protocol).toBe(1);
    expect(ip.headerChecksum).toBe(0xa60c);
    expect([...ip.src]).toEqual([127, 0, 0, 1]);
    expect(ip.payload.length).toBe(64);
    expect(ip.payload[0]).toBe(8);
    // The payload is a view, not a copy.
    expect(ip.payload.buffer).toBe(buf.buffer);
  });

  test("emits the Wikipedia header byte for byte", () => {
    const out = new Uint8Array(20);
    emitIpv4Header(out, 0, hex("c0a80001"), hex("c0a800c7"), 17, 0x73, 0, IPV4_DF, 64);
    expect(toHex(out)).toBe(WIKI_HEADER);
  });

  test("emits fragment fields and reads them back", () => {
    const out = new Uint8Array(28);
    emitIpv4Header(out, 0, hex("0a000001"), hex("0a000002"), 17, 28, 0xbeef, IPV4_MF | (1480 >> 3), 64);
    expect(toHex(out.subarray(4, 8))).toBe("beef20b9");
    const ip = new Ipv4View(out);
    expect(Ipv4View.check(out)).toBeNull();
    expect(ip.moreFragments).toBe(true);
    expect(ip.fragmentOffset).toBe(1480);
    expect(ip.isFragment).toBe(true);
  });

  test("skips options via IHL and tolerates trailing padding", () => {
    // IHL 6: one 4-byte option (NOP NOP NOP EOL), then 4 payload bytes, then 2 padding bytes.
    const out = new Uint8Array(30);
    emitIpv4Header(out, 0, hex("0a000001"), hex("0a000002"), 253, 28, 1, 0, 64);
    out[0] = 0x46;
    out.set([1, 1, 1, 0], 20);
    out.set([0xde, 0xad, 0xbe, 0xef], 24);
    // Recompute the checksum over the 24-byte header.
    out[10] = 0;
    out[11] = 0;
    let s = 0;
    for (let i = 0; i < 24; i += 2) s += (out[i] << 8) | out[i + 1];
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    out[10] = (~s >> 8) & 0xff;
    out[11] = ~s & 0xff;
    expect(Ipv4View.check(out)).toBeNull();
    expect(toHex(new Ipv4View(out).payload)).toBe("deadbeef");
  });

  test("rejects malformed headers with a reason", () => {
    const good = hex(LINUX_PING);
    const mutate = (f: (b: Uint8Array) => void) => {
      const b = good.slice();
      f(b);
      return b;
    };
    expect(Ipv4View.check(good.subarray(0, 19))).toBe("ipv4-truncated");
    expect(Ipv4View.check(mutate((b) => (b[0] = 0x55)))).toBe("ipv4-bad-version");
    expect(Ipv4View.check(mutate((b) => (b[0] = 0x44)))).toBe("ipv4-bad-ihl");
    expect(Ipv4View.check(mutate((b) => (b[0] = 0x4f)).subarray(0, 40))).toBe("ipv4-truncated");
    expect(Ipv4View.check(mutate((b) => (b[3] = 19)))).toBe("ipv4-bad-total-length");
    expect(Ipv4View.check(good.subarray(0, 83))).toBe("ipv4-truncated");
    expect(Ipv4View.check(mutate((b) => (b[11] ^= 1)))).toBe("ipv4-bad-checksum");
    expect(Ipv4View.check(mutate((b) => (b[8] = 1)))).toBe("ipv4-bad-checksum");
  });
});
