import { describe, expect, test } from "bun:test";
import {
  formatIp,
  ipEquals,
  ipKey,
  isMulticastOrBroadcast,
  isUnspecified,
  parseIp,
  parseIpv4,
  parseIpv6,
} from "../../src/wire/ipaddr.ts";

const bytes = (...b: number[]) => Uint8Array.from(b);

describe("ipaddr", () => {
  test("parses IPv4 dotted quads and rejects malformed ones", () => {
    expect(parseIpv4("10.0.0.1")).toEqual(bytes(10, 0, 0, 1));
    expect(parseIpv4("255.255.255.255")).toEqual(bytes(255, 255, 255, 255));
    for (const bad of ["10.0.0", "10.0.0.256", "10.0.0.01", "1.2.3.4.5", "a.b.c.d", "", "1..2.3", " 1.2.3.4"]) {
      expect(parseIpv4(bad)).toBeNull();
    }
  });

  test("parses IPv6 forms", () => {
    expect(parseIpv6("fc00::1")).toEqual(bytes(0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1));
    expect(parseIpv6("::")).toEqual(new Uint8Array(16));
    expect(parseIpv6("::1")).toEqual(bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1));
    expect(parseIpv6("2001:DB8:0:0:1:0:0:1")).toEqual(
      bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1),
    );
    expect(parseIpv6("::ffff:192.0.2.1")).toEqual(bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1));
    expect(parseIpv6("fe80::")).toEqual(bytes(0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    for (const bad of [
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "12345::",
      "1:2:3:4:5:6:7::8",
      "g::1",
      ":1",
      "1:",
      "::1.2.3",
      "fe80::1%eth0",
      "1.2.3.4",
    ]) {
      expect(parseIpv6(bad)).toBeNull();
    }
  });

  test("formats per RFC 5952", () => {
    const f = (s: string) => formatIp(parseIp(s) as Uint8Array);
    expect(f("fc00:0:0:0:0:0:0:1")).toBe("fc00::1");
    expect(f("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1"); // first of equal runs
    expect(f("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1"); // a single zero group is not compressed
    expect(f("2001:0db8:0000:0000:0000:0000:0002:0001")).toBe("2001:db8::2:1");
    expect(f("1:0:0:2:0:0:0:3")).toBe("1:0:0:2::3"); // longest run wins
    expect(f("::")).toBe("::");
    expect(f("::1")).toBe("::1");
    expect(f("1::")).toBe("1::");
    expect(f("::ffff:c000:0201")).toBe("::ffff:192.0.2.1");
    expect(f("ABCD::EF")).toBe("abcd::ef");
    expect(f("192.168.1.20")).toBe("192.168.1.20");
  });

  test("equality, keys and classes", () => {
    const a = parseIp("10.0.0.1") as Uint8Array;
    const b = parseIp("10.0.0.1") as Uint8Array;
    const mapped = parseIp("::ffff:10.0.0.1") as Uint8Array;
    expect(ipEquals(a, b)).toBe(true);
    expect(ipEquals(a, mapped)).toBe(false);
    expect(ipKey(a)).toBe("\x0a\x00\x00\x01");
    expect(ipKey(mapped).length).toBe(16);
    expect(ipKey(a) === ipKey(b)).toBe(true);
    expect(isMulticastOrBroadcast(parseIp("224.0.0.251") as Uint8Array)).toBe(true);
    expect(isMulticastOrBroadcast(parseIp("239.255.255.250") as Uint8Array)).toBe(true);
    expect(isMulticastOrBroadcast(parseIp("255.255.255.255") as Uint8Array)).toBe(true);
    expect(isMulticastOrBroadcast(parseIp("223.255.255.255") as Uint8Array)).toBe(false);
    expect(isMulticastOrBroadcast(parseIp("ff02::fb") as Uint8Array)).toBe(true);
    expect(isMulticastOrBroadcast(parseIp("fe80::1") as Uint8Array)).toBe(false);
    expect(isUnspecified(parseIp("0.0.0.0") as Uint8Array)).toBe(true);
    expect(isUnspecified(parseIp("::") as Uint8Array)).toBe(true);
    expect(isUnspecified(parseIp("::1") as Uint8Array)).toBe(false);
  });
});
