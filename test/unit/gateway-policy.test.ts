import { describe, expect, test } from "bun:test";
import { Gateway } from "../../src/gateway/gateway.ts";
import { parseIp } from "../../src/gateway/ip-text.ts";
import {
  DenialLog,
  DestinationPolicy,
  HOST_ADDRESS_REFRESH_MS,
  hostInterfaceAddresses,
  PolicyParseError,
  type PolicyRule,
  parseRule,
  policyRulesFrom,
  watchHostAddresses,
} from "../../src/gateway/policy.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import type { Logger } from "../../src/util/log.ts";
import { silentLogger } from "../../src/util/log.ts";
import { FakeConn, FakeNetstack, v4 } from "./gateway-fakes.ts";

const ip = (t: string) => parseIp(t)!;
const policy = (...rules: ["allow" | "deny", string][]) =>
  new DestinationPolicy(rules.map(([a, r]) => parseRule(a, r)));
const decide = (p: DestinationPolicy, addr: string, port: number) => (p.allows(ip(addr), port) ? "allow" : "deny");

describe("parseRule", () => {
  test("CIDR, bare address, ports, ranges, IPv6 forms", () => {
    const r = parseRule("allow", "10.1.2.3/8");
    expect(Array.from(r.network)).toEqual([10, 0, 0, 0]);
    expect(r.prefix).toBe(8);
    expect(r.ports).toEqual([]);
    expect(r.text).toBe("allow 10.1.2.3/8");

    expect(parseRule("deny", "192.168.1.7").prefix).toBe(32);
    expect(parseRule("deny", "0.0.0.0/0:80,443,8000-8100").ports).toEqual([
      [80, 80],
      [443, 443],
      [8000, 8100],
    ]);
    expect(parseRule("allow", "1.2.3.4:53").ports).toEqual([[53, 53]]);
    expect(parseRule("allow", "1.2.3.4:53").prefix).toBe(32);

    const v6 = parseRule("allow", "fd00:1::5/32:53");
    expect(v6.network.length).toBe(16);
    expect(v6.prefix).toBe(32);
    expect(Array.from(v6.network.subarray(0, 6))).toEqual([0xfd, 0, 0, 1, 0, 0]);
    expect(v6.ports).toEqual([[53, 53]]);
    expect(parseRule("allow", "[::1]:8080").ports).toEqual([[8080, 8080]]);
    expect(parseRule("allow", "[::1]:8080").prefix).toBe(128);
    expect(parseRule("allow", "::1").prefix).toBe(128);
    expect(parseRule("allow", "fe80::/10").prefix).toBe(10);
    expect(parseRule("allow", " 10.0.0.0/8 ").text).toBe("allow 10.0.0.0/8");
  });

  test("bad rules throw one-line PolicyParseErrors naming the flag", () => {
    for (const bad of [
      "",
      "nonsense",
      "10.0.0.0/33",
      "::/129",
      "10.0.0.0/",
      "10.0.0.0/x",
      "10.0.0.256/8",
      "1.2.3.4:",
      "1.2.3.4:70000",
      "1.2.3.4:90-80",
      "1.2.3.4:80,",
      "1.2.3.4/32:a",
      "host.example:80",
    ]) {
      expect(() => parseRule("allow", bad)).toThrow(PolicyParseError);
    }
    expect(() => parseRule("deny", "10.0.0.0/33")).toThrow(
      /^invalid --deny "10\.0\.0\.0\/33": prefix length must be 0\.\.32$/,
    );
  });
});

describe("DestinationPolicy", () => {
  test("defaults: loopback, link-local and unspecified are denied; everything else allowed", () => {
    const p = new DestinationPolicy();
    for (const a of ["127.0.0.1", "127.255.0.9", "::1", "169.254.169.254", "fe80::1", "febf::1", "0.0.0.0", "::"])
      expect(decide(p, a, 80)).toBe("deny");
    for (const a of ["8.8.8.8", "10.0.0.1", "192.168.1.1", "2001:db8::1", "fec0::1", "::2"])
      expect(decide(p, a, 80)).toBe("allow");
    expect(p.match(ip("127.0.0.1"), 1)?.text).toBe("deny 127.0.0.0/8 (default)");
    expect(p.match(ip("127.0.0.1"), 1)?.builtIn).toBe(true);
    expect(p.match(ip("8.8.8.8"), 1)).toBeUndefined();
  });

  test("IPv4-mapped IPv6 destinations are matched as their IPv4 address", () => {
    const p = new DestinationPolicy();
    expect(decide(p, "::ffff:127.0.0.1", 22)).toBe("deny");
    expect(decide(p, "::ffff:8.8.8.8", 22)).toBe("allow");
    expect(decide(policy(["deny", "8.8.8.0/24"]), "::ffff:8.8.8.8", 53)).toBe("deny");
  });

  test("an explicit allow overrides a default denial, only where it matches", () => {
    const p = policy(["allow", "127.0.0.1/32:8080,9000-9001"]);
    expect(decide(p, "127.0.0.1", 8080)).toBe("allow");
    expect(decide(p, "127.0.0.1", 9001)).toBe("allow");
    expect(decide(p, "127.0.0.1", 9002)).toBe("deny");
    expect(decide(p, "127.0.0.2", 8080)).toBe("deny");
    expect(decide(p, "::1", 8080)).toBe("deny");
  });

  test("first match wins, across allow and deny", () => {
    const denyFirst = policy(["deny", "10.0.0.5/32"], ["allow", "10.0.0.0/8"], ["deny", "10.0.0.0/8"]);
    expect(decide(denyFirst, "10.0.0.5", 1)).toBe("deny");
    expect(decide(denyFirst, "10.0.0.6", 1)).toBe("allow");
    const allowFirst = policy(["allow", "10.0.0.5/32"], ["deny", "10.0.0.0/8"]);
    expect(decide(allowFirst, "10.0.0.5", 1)).toBe("allow");
    expect(decide(allowFirst, "10.0.0.6", 1)).toBe("deny");
    expect(decide(allowFirst, "11.0.0.6", 1)).toBe("allow");
  });

  test("prefixes not on a byte boundary, v6 and v4 never match each other", () => {
    const p = policy(["deny", "192.168.64.0/18"], ["deny", "2001:db8:8000::/33"]);
    expect(decide(p, "192.168.64.1", 1)).toBe("deny");
    expect(decide(p, "192.168.127.255", 1)).toBe("deny");
    expect(decide(p, "192.168.128.0", 1)).toBe("allow");
    expect(decide(p, "192.168.63.255", 1)).toBe("allow");
    expect(decide(p, "2001:db8:8000::1", 1)).toBe("deny");
    expect(decide(p, "2001:db8:ffff::1", 1)).toBe("deny");
    expect(decide(p, "2001:db8:7fff::1", 1)).toBe("allow");
    expect(decide(policy(["deny", "0.0.0.0/0"]), "2001:db8::1", 1)).toBe("allow");
    expect(decide(policy(["deny", "::/0"]), "8.8.8.8", 1)).toBe("allow");
  });

  test("deny all but a port range", () => {
    const p = policy(["allow", "0.0.0.0/0:443"], ["deny", "0.0.0.0/0"]);
    expect(decide(p, "8.8.8.8", 443)).toBe("allow");
    expect(decide(p, "8.8.8.8", 80)).toBe("deny");
    // The user's allow comes before the default loopback denial.
    expect(decide(p, "127.0.0.1", 443)).toBe("allow");
  });

  test("policyRulesFrom: `policy` in order, then deny, then allow", () => {
    const rules = policyRulesFrom({
      policy: [
        { action: "allow", rule: "10.0.0.1" },
        { action: "deny", rule: "10.0.0.0/8" },
      ],
      allow: ["127.0.0.1/32"],
      deny: ["127.0.0.1/32:22"],
    });
    expect(rules.map((r) => r.text)).toEqual([
      "allow 10.0.0.1",
      "deny 10.0.0.0/8",
      "deny 127.0.0.1/32:22",
      "allow 127.0.0.1/32",
    ]);
    const p = new DestinationPolicy(rules);
    expect(decide(p, "127.0.0.1", 22)).toBe("deny");
    expect(decide(p, "127.0.0.1", 80)).toBe("allow");
    expect(policyRulesFrom({})).toEqual([]);
    expect(() => policyRulesFrom({ allow: ["bad"] })).toThrow(PolicyParseError);
  });
});

function capturingLogger(lines: string[]): Logger {
  const info = (m: unknown) => {
    lines.push(String(m));
  };
  return { ...silentLogger, info } as unknown as Logger;
}

describe("DenialLog", () => {
  test("at most one line per rule per second; the suppressed count comes with the next line", () => {
    const clock = new VirtualClock();
    const lines: string[] = [];
    const log = new DenialLog(clock, capturingLogger(lines));
    const a = parseRule("deny", "10.0.0.0/8") as PolicyRule;
    const b = parseRule("deny", "11.0.0.0/8") as PolicyRule;
    const src = Uint8Array.of(10, 0, 2, 15);
    const dst = Uint8Array.of(10, 1, 2, 3);
    const deny = (r: PolicyRule) => log.denied(r, "UDP", src, 5353, dst, 53);
    deny(a);
    for (let i = 0; i < 5; i++) deny(a);
    deny(b);
    const x = "UDP 10.0.2.15:5353 -> 10.1.2.3:53";
    expect(lines).toEqual([
      `Denied by policy rule "deny 10.0.0.0/8": ${x}`,
      `Denied by policy rule "deny 11.0.0.0/8": ${x}`,
    ]);
    clock.advance(999);
    deny(a);
    expect(lines.length).toBe(2);
    clock.advance(1);
    deny(a);
    expect(lines[2]).toBe(`Denied by policy rule "deny 10.0.0.0/8": ${x} (+6 more denied since the last report)`);
    clock.advance(1000);
    deny(a);
    expect(lines[3]).toBe(`Denied by policy rule "deny 10.0.0.0/8": ${x}`);
    log.denied(a, "ICMP echo", src, -1, Uint8Array.of(10, 9, 9, 9), -1);
    clock.advance(1000);
    log.denied(a, "ICMP echo", src, -1, Uint8Array.of(10, 9, 9, 9), -1);
    expect(lines[4]).toBe(
      'Denied by policy rule "deny 10.0.0.0/8": ICMP echo 10.0.2.15 -> 10.9.9.9 (+1 more denied since the last report)',
    );
  });
});

describe("Gateway with a policy", () => {
  const CLIENT = v4(10, 0, 2, 15);
  function udpPacket(dst: Uint8Array, dstPort: number): Uint8Array {
    // Only the bytes matter to the fake netstack: it records what would be quoted.
    const p = new Uint8Array(28);
    p[0] = 0x45;
    p.set(CLIENT, 12);
    p.set(dst, 16);
    p[22] = dstPort >> 8;
    p[23] = dstPort & 0xff;
    return p;
  }

  test("a denied TCP connect is refused (RST) without a host connect; counted and logged", () => {
    const lines: string[] = [];
    const netstack = new FakeNetstack();
    const gw = new Gateway({
      netstack,
      clock: new VirtualClock(),
      log: capturingLogger(lines),
      policy: new DestinationPolicy(),
    });
    const conn = new FakeConn();
    gw.onTcpConnect({ src: CLIENT, srcPort: 40000, dst: v4(127, 0, 0, 1), dstPort: 22 }, conn);
    expect(conn.refused).toBe(true);
    expect(gw.stats().liveTcp).toBe(0);
    expect(gw.stats().drops.policy_denied_tcp).toBe(1);
    expect(lines).toEqual(['Denied by policy rule "deny 127.0.0.0/8 (default)": TCP 10.0.2.15:40000 -> 127.0.0.1:22']);
    gw.close();
  });

  test("a denied UDP datagram gets ICMP admin-prohibited quoting it; no NAT entry", () => {
    const netstack = new FakeNetstack();
    const gw = new Gateway({
      netstack,
      clock: new VirtualClock(),
      log: silentLogger,
      policy: new DestinationPolicy([parseRule("deny", "192.0.2.0/24:53")]),
    });
    const dst = v4(192, 0, 2, 1);
    const packet = udpPacket(dst, 53);
    gw.onUdp({ src: CLIENT, srcPort: 5000, dst, dstPort: 53 }, new Uint8Array(0), packet);
    expect(netstack.unreachable.length).toBe(1);
    expect(netstack.unreachable[0]!.kind).toBe("admin");
    expect(Array.from(netstack.unreachable[0]!.original)).toEqual(Array.from(packet));
    expect(gw.stats().liveUdp).toBe(0);
    expect(gw.stats().drops.policy_denied_udp).toBe(1);
    gw.close();
  });

  test("the DNS address is served locally even when a rule denies it", () => {
    const netstack = new FakeNetstack();
    const gw = new Gateway({
      netstack,
      clock: new VirtualClock(),
      log: silentLogger,
      dns: { address: "10.0.2.1", port: 53 },
      policy: new DestinationPolicy([parseRule("deny", "0.0.0.0/0")]),
      resolver: { lookup: async () => [] } as never,
    });
    const dst = v4(10, 0, 2, 1);
    gw.onUdp({ src: CLIENT, srcPort: 5000, dst, dstPort: 53 }, new Uint8Array(12), udpPacket(dst, 53));
    expect(netstack.unreachable.length).toBe(0);
    expect(gw.stats().drops.policy_denied_udp).toBeUndefined();
    gw.close();
  });

  test("UDP to a port of the DNS/pingable address other than DNS: ICMP port unreachable, never forwarded; TCP: RST", () => {
    const netstack = new FakeNetstack();
    const gw = new Gateway({
      netstack,
      clock: new VirtualClock(),
      log: silentLogger,
      dns: { address: "10.0.2.1", port: 53 },
      pingable: "10.0.2.1",
      policy: new DestinationPolicy([], { ownInnerAddresses: ["10.0.2.1"] }),
      resolver: { lookup: async () => [] } as never,
    });
    const dst = v4(10, 0, 2, 1);
    const packet = udpPacket(dst, 123);
    gw.onUdp({ src: CLIENT, srcPort: 5000, dst, dstPort: 123 }, new Uint8Array(4), packet);
    expect(netstack.unreachable).toEqual([{ original: packet, kind: "port" }]);
    const conn = new FakeConn();
    gw.onTcpConnect({ src: CLIENT, srcPort: 40001, dst, dstPort: 80 }, conn);
    expect(conn.refused).toBe(true);
    expect(gw.stats()).toMatchObject({ liveUdp: 0, liveTcp: 0, natEntriesCreated: 0 });
    gw.close();
  });
});

describe("built-in denials of the gateway's own host, sockets and addresses", () => {
  const builtIn = {
    hostAddresses: ["127.0.0.1", "::1", "192.0.2.2", "fd00::2"],
    listeners: [
      { what: "UDP port", address: "0.0.0.0", port: 51820 },
      { what: "stats server", address: "127.0.0.1", port: 9100 },
      { what: "TCP forward", address: "::", port: 8022 },
    ],
    ownInnerAddresses: ["10.0.2.1", "fd00:2::1"],
  };
  const text = (p: DestinationPolicy, addr: string, port: number) => p.match(ip(addr), port)?.text;

  test("every address of the host's interfaces, also as ::ffff:a.b.c.d; neighbours are allowed", () => {
    const p = new DestinationPolicy([], builtIn);
    expect(text(p, "192.0.2.2", 80)).toBe("deny 192.0.2.2 (default: an address of the gateway host)");
    expect(text(p, "::ffff:192.0.2.2", 80)).toBe("deny 192.0.2.2 (default: an address of the gateway host)");
    expect(text(p, "fd00::2", 443)).toBe("deny fd00::2 (default: an address of the gateway host)");
    expect(decide(p, "192.0.2.3", 80)).toBe("allow");
    expect(decide(p, "fd00::3", 80)).toBe("allow");
  });

  test("the gateway's own listening ports, on every address they answer on", () => {
    const p = new DestinationPolicy([], builtIn);
    expect(text(p, "192.0.2.2", 51820)).toBe("deny 192.0.2.2:51820 (default: the gateway's own UDP port)");
    expect(text(p, "0.0.0.0", 51820)).toBe("deny 0.0.0.0:51820 (default: the gateway's own UDP port)");
    expect(text(p, "127.0.0.1", 9100)).toBe("deny 127.0.0.1:9100 (default: the gateway's own stats server)");
    // Bound to "::": dual-stack, so the IPv4 addresses too.
    expect(text(p, "fd00::2", 8022)).toBe("deny [fd00::2]:8022 (default: the gateway's own TCP forward)");
    expect(text(p, "192.0.2.2", 8022)).toBe("deny 192.0.2.2:8022 (default: the gateway's own TCP forward)");
    // The same port elsewhere is someone else's.
    expect(decide(p, "198.51.100.1", 51820)).toBe("allow");
  });

  test("the DNS/pingable addresses, and cloud metadata in both families", () => {
    const p = new DestinationPolicy([], builtIn);
    const own = p.match(ip("10.0.2.1"), 80);
    expect(own?.text).toBe("deny 10.0.2.1 (default: served by the gateway itself: only its own services)");
    expect(own?.udpReply).toBe("port");
    expect(p.match(ip("fd00:2::1"), 53)?.udpReply).toBe("port");
    expect(text(p, "169.254.169.254", 80)).toBe("deny 169.254.169.254/32 (default: cloud metadata)");
    expect(text(p, "fd00:ec2::254", 80)).toBe("deny fd00:ec2::254/128 (default: cloud metadata)");
    expect(p.match(ip("192.0.2.2"), 80)?.udpReply).toBeUndefined();
  });

  test("--allow overrides each of them", () => {
    const p = new DestinationPolicy(
      [
        parseRule("allow", "192.0.2.2/32"),
        parseRule("allow", "10.0.2.1/32:80"),
        parseRule("allow", "127.0.0.1/32:9100"),
        parseRule("allow", "fd00:ec2::254"),
      ],
      builtIn,
    );
    expect(decide(p, "192.0.2.2", 51820)).toBe("allow");
    expect(decide(p, "::ffff:192.0.2.2", 22)).toBe("allow");
    expect(decide(p, "10.0.2.1", 80)).toBe("allow");
    expect(decide(p, "10.0.2.1", 81)).toBe("deny");
    expect(decide(p, "127.0.0.1", 9100)).toBe("allow");
    expect(decide(p, "fd00:ec2::254", 80)).toBe("allow");
  });

  test("the host's addresses are read again: a new address is denied, a removed one no longer", () => {
    const clock = new VirtualClock();
    let current = ["192.0.2.2"];
    const p = new DestinationPolicy([], { hostAddresses: current });
    const watch = watchHostAddresses(p, clock, silentLogger, () => current);
    expect(decide(p, "198.51.100.7", 80)).toBe("allow");
    current = ["198.51.100.7"];
    clock.advance(HOST_ADDRESS_REFRESH_MS);
    expect(decide(p, "198.51.100.7", 80)).toBe("deny");
    expect(decide(p, "192.0.2.2", 80)).toBe("allow");
    expect(p.setHostAddresses(["198.51.100.7"])).toBe(false);
    watch.clear();
    expect(clock.nextDeadline()).toBe(-1);
  });

  test("this host's interface addresses are read (loopback among them)", () => {
    expect(hostInterfaceAddresses()).toContain("127.0.0.1");
  });
});
