import { describe, expect, test } from "bun:test";
import { formatIp, formatIpPort, ipEquals, parseIp } from "../../src/gateway/ip-text.ts";
import { type NatEntry, NatTable, pingNatKey, tcpNatKey, udpNatKey } from "../../src/gateway/nat-table.ts";
import { silentLogger } from "../../src/util/log.ts";

class Entry implements NatEntry {
  closes = 0;
  constructor(
    readonly kind: "tcp" | "udp" | "ping",
    readonly key: string,
    private readonly table: NatTable,
    private readonly held = 0,
  ) {}
  bufferedBytes(): number {
    return this.held;
  }
  close(): void {
    this.closes++;
    this.table.remove(this);
  }
}

describe("ip-text", () => {
  test("formats IPv4 and RFC 5952 IPv6", () => {
    expect(formatIp(Uint8Array.of(10, 0, 0, 2))).toBe("10.0.0.2");
    expect(formatIp(parseIp("::1")!)).toBe("::1");
    expect(formatIp(new Uint8Array(16))).toBe("::");
    expect(formatIp(parseIp("2001:db8:0:0:1:0:0:1")!)).toBe("2001:db8::1:0:0:1");
    expect(formatIp(parseIp("fe80::%eth0")!)).toBe("fe80::");
    expect(formatIp(parseIp("1:2:3:4:5:6:7:8")!)).toBe("1:2:3:4:5:6:7:8");
    expect(formatIpPort(parseIp("::1")!, 53)).toBe("[::1]:53");
    expect(formatIpPort(Uint8Array.of(1, 2, 3, 4), 80)).toBe("1.2.3.4:80");
  });
  test("parses literals to bytes, rejects names", () => {
    expect([...parseIp("192.168.1.254")!]).toEqual([192, 168, 1, 254]);
    expect([...parseIp("::ffff:1.2.3.4")!]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
    expect([...parseIp("2001:db8::8:800:200c:417a")!]).toEqual([
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0x08, 0x08, 0x00, 0x20, 0x0c, 0x41, 0x7a,
    ]);
    expect(parseIp("localhost")).toBeNull();
    expect(parseIp("1.2.3")).toBeNull();
    expect(ipEquals(parseIp("::1")!, parseIp("0::0:1")!)).toBe(true);
    expect(ipEquals(parseIp("0.0.0.1")!, parseIp("::1")!)).toBe(false);
  });
});

describe("NatTable", () => {
  const a = Uint8Array.of(10, 0, 0, 2);
  const b = Uint8Array.of(93, 184, 216, 34);

  test("keys read like the seed's", () => {
    expect(tcpNatKey(a, 40000, b, 80)).toBe("TCP 10.0.0.2:40000 -> 93.184.216.34:80");
    expect(udpNatKey(parseIp("fd00::2")!, 5353)).toBe("UDP [fd00::2]:5353 -> *");
    expect(pingNatKey(a, b)).toBe("Pingable 10.0.0.2 -> 93.184.216.34");
  });

  test("counts live entries by kind, created ever, buffered bytes; closeAll empties it", () => {
    const table = new NatTable(silentLogger);
    const t1 = new Entry("tcp", "TCP x", table, 100);
    const u1 = new Entry("udp", "UDP y", table, 7);
    const p1 = new Entry("ping", "Pingable z", table);
    expect(table.add(t1)).toBe(true);
    expect(table.add(u1)).toBe(true);
    expect(table.add(p1)).toBe(true);
    expect(table.add(new Entry("tcp", "TCP x", table))).toBe(false);
    expect([table.count("tcp"), table.count("udp"), table.count("ping"), table.created]).toEqual([1, 1, 1, 3]);
    expect(table.bufferedBytes()).toBe(107);
    expect(table.get("UDP y")).toBe(u1);

    table.remove(u1);
    table.remove(u1);
    expect([table.count("udp"), table.size]).toEqual([0, 2]);

    table.closeAll();
    expect([table.size, table.count("tcp"), table.count("ping"), table.created]).toEqual([0, 0, 0, 3]);
    expect([t1.closes, p1.closes, u1.closes]).toEqual([1, 1, 0]);
  });

  test("remove ignores an entry that is not the registered one", () => {
    const table = new NatTable(silentLogger);
    const first = new Entry("udp", "UDP k", table);
    const impostor = new Entry("udp", "UDP k", table);
    table.add(first);
    table.remove(impostor);
    expect(table.get("UDP k")).toBe(first);
    expect(table.count("udp")).toBe(1);
  });

  test("per-flow lines are debug: New NAT entry, Finished serving", () => {
    const lines: string[] = [];
    const log = {
      level: 4,
      info: (m: string) => lines.push(`info ${m}`),
      debug: (m: string) => lines.push(`debug ${m}`),
    } as unknown as typeof silentLogger;
    const table = new NatTable(log);
    const e = new Entry("tcp", tcpNatKey(a, 1, b, 2), table);
    table.add(e);
    e.close();
    expect(lines).toEqual([
      "debug New NAT entry for TCP 10.0.0.2:1 -> 93.184.216.34:2",
      "debug Finished serving TCP 10.0.0.2:1 -> 93.184.216.34:2",
    ]);
    // Below debug the lines are not even built (a template string per flow otherwise).
    log.level = 3;
    const f = new Entry("tcp", tcpNatKey(a, 3, b, 4), table);
    table.add(f);
    f.close();
    expect(lines.length).toBe(2);
  });
});
