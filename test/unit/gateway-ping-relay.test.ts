import { describe, expect, test } from "bun:test";
import { DropCounter } from "../../src/gateway/drops.ts";
import { Gateway } from "../../src/gateway/gateway.ts";
import { PING_SYSCTL_HINT, PingRelay } from "../../src/gateway/ping-relay.ts";
import type { EchoTransport } from "../../src/gateway/ping-sockets.ts";
import { DestinationPolicy, parseRule } from "../../src/gateway/policy.ts";
import type { IpLink } from "../../src/link.ts";
import { Netstack } from "../../src/netstack/stack.ts";
import type { IpAddr } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { FakeNetstack } from "./gateway-fakes.ts";

const ip = (s: string) => parseIp(s) as IpAddr;
const PEER4 = ip("192.168.76.1");
const PEER6 = ip("fc00::1");
const HOST4 = ip("10.202.0.2");
const HOST6 = ip("fd00:202::2");
const ROUTER4 = ip("10.202.0.9");
const PINGABLE = "192.168.72.2";

/** RFC 1071 over bytes, independent of src/wire. */
function inetSum(parts: number[][]): number {
  let sum = 0;
  for (const p of parts) for (let i = 0; i < p.length; i += 2) sum += (p[i]! << 8) | (p[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];

function echo4(src: IpAddr, dst: IpAddr, ttl: number, id: number, seq: number, data: number[]): Uint8Array {
  const icmp = [8, 0, 0, 0, ...u16(id), ...u16(seq), ...data];
  icmp.splice(2, 2, ...u16(inetSum([icmp])));
  const header = [0x45, 0, ...u16(20 + icmp.length), 0, 1, 0x40, 0, ttl, 1, 0, 0, ...src, ...dst];
  header.splice(10, 2, ...u16(inetSum([header])));
  return Uint8Array.from([...header, ...icmp]);
}

function echo6(src: IpAddr, dst: IpAddr, hops: number, id: number, seq: number, data: number[]): Uint8Array {
  const icmp = [128, 0, 0, 0, ...u16(id), ...u16(seq), ...data];
  const pseudo = [...src, ...dst, 0, 0, ...u16(icmp.length), 0, 0, 0, 58];
  icmp.splice(2, 2, ...u16(inetSum([pseudo, icmp])));
  return Uint8Array.from([0x60, 0, 0, 0, ...u16(icmp.length), 58, hops, ...src, ...dst, ...icmp]);
}

class FakeEchoTransport implements EchoTransport {
  onReply: EchoTransport["onReply"] = () => {};
  onError: EchoTransport["onError"] = () => {};
  sent: { family: 4 | 6; dst: number[]; hopLimit: number; icmp: number[] }[] = [];
  openError: string | null = null;
  sendError: string | null = null;
  opens = 0;
  closed = false;
  open(): string | null {
    this.opens++;
    return this.openError;
  }
  send(family: 4 | 6, dst: IpAddr, hopLimit: number, icmp: Uint8Array): string | null {
    if (this.sendError) return this.sendError;
    this.sent.push({ family, dst: [...dst], hopLimit, icmp: [...icmp] });
    return null;
  }
  close(): void {
    this.closed = true;
  }
  /** What the kernel would hand back for our echo number i: a reply with its own identifier. */
  reply(i: number, from: IpAddr, data?: number[]): void {
    const s = this.sent[i]!;
    const type = s.family === 4 ? 0 : 129;
    this.onReply(
      s.family,
      from,
      Uint8Array.from([type, 0, 0x12, 0x34, 0xbe, 0xef, s.icmp[6]!, s.icmp[7]!, ...(data ?? s.icmp.slice(8))]),
    );
  }
}

function setup(opts: { policy?: DestinationPolicy } = {}) {
  const out: Uint8Array[] = [];
  const infos: string[] = [];
  const log = {
    debug: () => {},
    warn: () => {},
    error: () => {},
    info: (m: string) => infos.push(m),
  } as unknown as typeof silentLogger;
  const link: IpLink = { send: (p) => out.push(p.slice()), onPacket: () => {} };
  const clock = new VirtualClock();
  const transport = new FakeEchoTransport();
  const gw = new Gateway({ clock, log, pingable: PINGABLE, echoTransport: transport, policy: opts.policy });
  const stack = new Netstack({ link, mtu: 1420, clock, log, handlers: gw, routerAddress: gw.ownAddresses() });
  gw.attach(stack);
  return { out, infos, clock, transport, gw, stack };
}

describe("ICMP echo to any destination (ping sockets)", () => {
  test("IPv4: sent with TTL - 1 and our sequence number; the reply has the peer's id/seq restored, byte-exact", () => {
    const { out, transport, stack, gw } = setup();
    const data = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    stack.receive(echo4(PEER4, HOST4, 64, 0x1234, 7, data));
    stack.receive(echo4(PEER4, HOST4, 3, 0x1234, 8, data));
    expect(transport.sent).toEqual([
      { family: 4, dst: [...HOST4], hopLimit: 63, icmp: [8, 0, 0, 0, 0, 0, 0, 1, ...data] },
      { family: 4, dst: [...HOST4], hopLimit: 2, icmp: [8, 0, 0, 0, 0, 0, 0, 2, ...data] },
    ]);
    transport.reply(1, HOST4);
    transport.reply(0, HOST4);
    const reply = (seq: number) => {
      const icmp = [0, 0, 0, 0, 0x12, 0x34, ...u16(seq), ...data];
      icmp.splice(2, 2, ...u16(inetSum([icmp])));
      return icmp;
    };
    expect(out.map((p) => [...p.subarray(12, 20)])).toEqual([
      [...HOST4, ...PEER4],
      [...HOST4, ...PEER4],
    ]);
    expect(out.map((p) => [...p.subarray(20)])).toEqual([reply(8), reply(7)]);
    expect(out.every((p) => p[9] === 1 && inetSum([[...p.subarray(0, 20)]]) === 0)).toBe(true);
    // A duplicate reply matches nothing any more.
    transport.reply(0, HOST4);
    expect(out.length).toBe(2);
    expect(gw.stats().ping).toEqual({ sent: 2, replies: 2, errors: 0, pendingEchoes: 0 });
    expect(gw.stats().drops).toEqual({ ping_reply_unmatched: 1 });
  });

  test("two peers using the same id/seq get distinct sequence numbers and their own replies", () => {
    const { out, transport, stack } = setup();
    const other = ip("192.168.76.2");
    stack.receive(echo4(PEER4, HOST4, 64, 1, 1, [0xaa]));
    stack.receive(echo4(other, HOST4, 64, 1, 1, [0xbb]));
    expect(transport.sent.map((s) => s.icmp.slice(6))).toEqual([
      [0, 1, 0xaa],
      [0, 2, 0xbb],
    ]);
    transport.reply(1, HOST4);
    transport.reply(0, HOST4);
    expect(out.map((p) => [[...p.subarray(16, 20)], [...p.subarray(24)]])).toEqual([
      [[...other], [0, 1, 0, 1, 0xbb]],
      [[...PEER4], [0, 1, 0, 1, 0xaa]],
    ]);
  });

  test("IPv6: hop limit - 1, reply restored with a valid ICMPv6 checksum", () => {
    const { out, transport, stack } = setup();
    stack.receive(echo6(PEER6, HOST6, 64, 0x0101, 0x0202, [9, 9, 9]));
    expect(transport.sent).toEqual([
      { family: 6, dst: [...HOST6], hopLimit: 63, icmp: [128, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9] },
    ]);
    transport.reply(0, HOST6);
    const p = out[0]!;
    expect([...p.subarray(8, 40)]).toEqual([...HOST6, ...PEER6]);
    const icmp = [...p.subarray(40)];
    expect([icmp[0], icmp[1], ...icmp.slice(4)]).toEqual([129, 0, 1, 1, 2, 2, 9, 9, 9]);
    const pseudo = [...HOST6, ...PEER6, 0, 0, ...u16(icmp.length), 0, 0, 0, 58];
    expect(inetSum([pseudo, icmp])).toBe(0);
  });

  test("a router's time exceeded / unreachable reaches the peer from that router, quoting the peer's request", () => {
    const { out, transport, stack, gw } = setup();
    const request = echo4(PEER4, HOST4, 2, 0x4242, 1, [1, 2, 3, 4]);
    stack.receive(request);
    const ours = Uint8Array.from(transport.sent[0]!.icmp);
    transport.onError(4, 11, 0, ROUTER4, ours);
    const request6 = echo6(PEER6, HOST6, 64, 5, 6, [7]);
    stack.receive(request6);
    transport.onError(6, 1, 3, null, Uint8Array.from(transport.sent[1]!.icmp));
    expect(out.length).toBe(2);
    const [e4, e6] = out as [Uint8Array, Uint8Array];
    expect([...e4.subarray(12, 20)]).toEqual([...ROUTER4, ...PEER4]);
    expect([e4[20], e4[21]]).toEqual([11, 0]);
    expect([...e4.subarray(28)]).toEqual([...request]);
    // No offender given: from the destination itself.
    expect([...e6.subarray(8, 40)]).toEqual([...HOST6, ...PEER6]);
    expect([e6[40], e6[41]]).toEqual([1, 3]);
    expect([...e6.subarray(48)]).toEqual([...request6]);
    expect(gw.stats().ping).toMatchObject({ errors: 2, pendingEchoes: 0 });
  });

  test("a send the kernel refuses at once becomes host unreachable; TTL 1 is answered by the gateway itself", () => {
    const { out, transport, stack } = setup();
    transport.sendError = "EHOSTUNREACH";
    stack.receive(echo4(PEER4, HOST4, 64, 1, 1, []));
    expect([out[0]![20], out[0]![21]]).toEqual([3, 1]);
    transport.sendError = null;
    stack.receive(echo4(PEER4, HOST4, 1, 1, 2, []));
    expect([out[1]![20], out[1]![21]]).toEqual([11, 0]);
    // From the gateway's own (pingable) address: traceroute's first hop.
    expect([...out[1]!.subarray(12, 16)]).toEqual([...ip(PINGABLE)]);
    expect(transport.sent).toEqual([]);
  });

  test("ping sockets not permitted: one info line with the sysctl; the pingable address still answers", () => {
    const { out, infos, transport, stack } = setup();
    transport.openError = "EACCES";
    stack.receive(echo4(PEER4, HOST4, 64, 1, 1, []));
    stack.receive(echo4(PEER4, HOST4, 64, 1, 2, []));
    stack.receive(echo6(PEER6, HOST6, 64, 1, 3, []));
    expect(out).toEqual([]);
    const hints = infos.filter((m) => m.includes("ping_group_range"));
    expect(hints.length).toBe(1);
    expect(hints[0]).toContain(PING_SYSCTL_HINT);
    expect(stack.stats.drops["echo-refused"]).toBe(3);
    stack.receive(echo4(PEER4, ip(PINGABLE), 64, 1, 4, [5]));
    expect([...out[0]!.subarray(20, 21), ...out[0]!.subarray(24)]).toEqual([0, 0, 1, 0, 4, 5]);
  });

  test("policy applies: a denied destination gets administratively prohibited", () => {
    const policy = new DestinationPolicy([parseRule("deny", "10.202.0.0/24")]);
    const { out, transport, stack } = setup({ policy });
    stack.receive(echo4(PEER4, HOST4, 64, 1, 1, []));
    expect(transport.sent).toEqual([]);
    expect([out[0]![20], out[0]![21]]).toEqual([3, 13]);
  });
});

describe("PingRelay bounds", () => {
  function relay(limits: Record<string, number>) {
    const clock = new VirtualClock();
    const drops = new DropCounter();
    const transport = new FakeEchoTransport();
    const netstack = new FakeNetstack();
    const r = new PingRelay({ clock, log: silentLogger, drops, transport, netstack: () => netstack, limits });
    const send = (peer: IpAddr, seq: number) => {
      const p = echo4(peer, HOST4, 64, 9, seq, []);
      return r.forward(peer, HOST4, p.subarray(20), p);
    };
    return { r, clock, drops, transport, netstack, send };
  }

  test("in flight per peer and in total; a timed-out request frees its slot", () => {
    const { r, clock, drops, transport, netstack, send } = relay({
      maxInFlightPerPeer: 2,
      maxInFlight: 3,
      timeoutMs: 1000,
    });
    const b = ip("192.168.76.2");
    for (let i = 0; i < 3; i++) send(PEER4, i);
    send(b, 10);
    send(ip("192.168.76.3"), 11);
    expect(transport.sent.length).toBe(3);
    expect(drops.snapshot()).toEqual({ ping_in_flight_full: 2 });
    clock.advance(1000);
    expect(r.inFlight).toBe(0);
    expect(drops.snapshot().ping_timeout).toBe(3);
    transport.reply(0, HOST4);
    expect(netstack.echoReplies).toEqual([]);
    send(PEER4, 5);
    expect(transport.sent.length).toBe(4);
  });

  test("per-peer rate: a burst of half the rate, then the rate", () => {
    const { clock, drops, transport, send, r } = relay({ ratePerPeer: 20, timeoutMs: 1 });
    for (let i = 0; i < 30; i++) {
      send(PEER4, i);
      clock.advance(1);
    }
    expect(transport.sent.length).toBe(10);
    expect(drops.snapshot().ping_rate_limited).toBe(20);
    clock.advance(1000);
    for (let i = 0; i < 30; i++) send(PEER4, i);
    expect(transport.sent.length).toBe(20);
    r.close();
    expect(transport.closed).toBe(true);
  });
});
