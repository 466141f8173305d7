import { describe, expect, test } from "bun:test";
import { SeededRandom } from "../../src/util/random.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { formatPrefix, parsePrefix } from "../../src/wire/prefix.ts";
import { AllowedIps } from "../../src/wireguard/allowed-ips.ts";

const pfx = (t: string) => {
  const p = parsePrefix(t);
  if (!p) throw new Error(`bad prefix ${t}`);
  return p;
};
const ip = (t: string) => parseIp(t)!;

describe("AllowedIps trie", () => {
  test("longest prefix wins, IPv4 and IPv6 kept apart", () => {
    const t = new AllowedIps<string>();
    t.insert(pfx("0.0.0.0/0"), "default4");
    t.insert(pfx("10.0.0.0/8"), "ten");
    t.insert(pfx("10.1.0.0/16"), "ten-one");
    t.insert(pfx("10.1.2.3/32"), "host");
    t.insert(pfx("fd00::/8"), "ula");
    t.insert(pfx("fd00:1::/32"), "ula1");
    expect(t.lookup(ip("10.1.2.3"))).toBe("host");
    expect(t.lookup(ip("10.1.2.4"))).toBe("ten-one");
    expect(t.lookup(ip("10.2.0.1"))).toBe("ten");
    expect(t.lookup(ip("192.168.1.1"))).toBe("default4");
    expect(t.lookup(ip("fd00:1::5"))).toBe("ula1");
    expect(t.lookup(ip("fd00:2::5"))).toBe("ula");
    expect(t.lookup(ip("2001:db8::1"))).toBeUndefined(); // no ::/0
    expect(t.lookup(ip("::ffff:10.1.2.3"))).toBeUndefined(); // mapped v6 is not v4
    expect(t.size).toBe(6);
  });

  test("inserting in any order gives the same answers (fork nodes, prefixes above existing subtrees)", () => {
    const prefixes = [
      "10.0.0.0/8",
      "10.128.0.0/9",
      "10.0.0.0/24",
      "10.0.0.128/25",
      "11.0.0.0/8",
      "0.0.0.0/1",
      "10.0.0.7/32",
    ];
    const probes = [
      "10.0.0.7",
      "10.0.0.8",
      "10.0.0.200",
      "10.200.0.1",
      "10.1.0.0",
      "11.3.3.3",
      "12.0.0.0",
      "200.0.0.1",
    ];
    const expected = new Map<string, string | undefined>();
    const ref = new AllowedIps<string>();
    for (const p of prefixes) ref.insert(pfx(p), p);
    for (const q of probes) expected.set(q, ref.lookup(ip(q)));
    expect(expected.get("10.0.0.7")).toBe("10.0.0.7/32");
    expect(expected.get("10.0.0.200")).toBe("10.0.0.128/25");
    expect(expected.get("10.200.0.1")).toBe("10.128.0.0/9");
    expect(expected.get("12.0.0.0")).toBe("0.0.0.0/1");
    expect(expected.get("200.0.0.1")).toBeUndefined();
    const rnd = new SeededRandom(7);
    for (let round = 0; round < 50; round++) {
      const order = [...prefixes];
      for (let i = order.length - 1; i > 0; i--) {
        const j = rnd.u32() % (i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const t = new AllowedIps<string>();
      for (const p of order) t.insert(pfx(p), p);
      for (const q of probes) expect(t.lookup(ip(q))).toBe(expected.get(q));
    }
  });

  test("overlap: re-inserting a prefix moves it to the new value; removal by prefix and by value", () => {
    const t = new AllowedIps<string>();
    t.insert(pfx("10.0.0.0/24"), "a");
    t.insert(pfx("10.0.0.5/32"), "a");
    t.insert(pfx("fd00::5/128"), "a");
    t.insert(pfx("10.0.0.0/16"), "b");
    t.insert(pfx("10.0.0.0/24"), "b"); // moves from a to b
    expect(t.lookup(ip("10.0.0.9"))).toBe("b");
    expect(t.lookup(ip("10.0.0.5"))).toBe("a");
    expect(t.prefixesOf("a").map(formatPrefix)).toEqual(["10.0.0.5/32", "fd00::5/128"]);
    expect(t.remove(pfx("10.0.0.5/32"))).toBe(true);
    expect(t.remove(pfx("10.0.0.5/32"))).toBe(false);
    expect(t.lookup(ip("10.0.0.5"))).toBe("b");
    expect(t.removeValue("b")).toBe(2);
    expect(t.lookup(ip("10.0.0.9"))).toBeUndefined();
    expect(t.lookup(ip("fd00::5"))).toBe("a");
    expect(t.size).toBe(1);
    expect(t.entries().map((e) => [formatPrefix(e.prefix), e.value])).toEqual([["fd00::5/128", "a"]]);
  });

  test("lookups straight from packets: source and destination, v4 and v6; short or non-IP packets match nothing", () => {
    const t = new AllowedIps<string>();
    t.insert(pfx("10.0.0.2/32"), "src4");
    t.insert(pfx("10.0.0.1/32"), "dst4");
    t.insert(pfx("fd00::2/128"), "src6");
    t.insert(pfx("fd00::1/128"), "dst6");
    const v4 = new Uint8Array(20);
    v4[0] = 0x45;
    v4.set(ip("10.0.0.2"), 12);
    v4.set(ip("10.0.0.1"), 16);
    const v6 = new Uint8Array(40);
    v6[0] = 0x60;
    v6.set(ip("fd00::2"), 8);
    v6.set(ip("fd00::1"), 24);
    expect(t.lookupPacket(v4, "source")).toBe("src4");
    expect(t.lookupPacket(v4, "destination")).toBe("dst4");
    expect(t.lookupPacket(v6, "source")).toBe("src6");
    expect(t.lookupPacket(v6, "destination")).toBe("dst6");
    expect(t.lookupPacket(v4.subarray(0, 19), "source")).toBeUndefined();
    expect(t.lookupPacket(new Uint8Array(40), "source")).toBeUndefined();
  });

  test("prefix parsing clears host bits and rejects bad input", () => {
    expect(formatPrefix(pfx("10.1.2.3/8"))).toBe("10.0.0.0/8");
    expect(formatPrefix(pfx("fd00::1:2/112"))).toBe("fd00::1:0/112");
    expect(formatPrefix(pfx("192.168.0.1"))).toBe("192.168.0.1/32");
    for (const bad of ["10.0.0.0/33", "fd00::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/-1", "x/8", "::/1a"]) {
      expect(parsePrefix(bad)).toBeNull();
    }
  });
});
