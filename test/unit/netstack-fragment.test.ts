import { describe, expect, test } from "bun:test";
import type { IpLink } from "../../src/link.ts";
import { LinkIpOutput } from "../../src/netstack/ip-output.ts";
import { Netstack } from "../../src/netstack/stack.ts";
import { newNetstackStats } from "../../src/netstack/stats.ts";
import type { FlowAddrs, IpAddr, NetstackHandlers } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { emitIpv4Header, IPV4_DF, Ipv4View } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";
import { Reassembler } from "../../src/wire/reassembly.ts";
import { UdpView, verifyUdpChecksum } from "../../src/wire/udp.ts";

const ip = (s: string) => parseIp(s) as IpAddr;
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const PAYLOAD = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) & 0xff);

function stackWithCapture(mtu = 1420) {
  const sent: Uint8Array[] = [];
  // Copy: the link contract lets the sender reuse its buffer (fragments share one scratch buffer).
  const link: IpLink = { send: (p) => sent.push(p.slice()), onPacket: () => {} };
  const received: { flow: FlowAddrs; payload: Uint8Array }[] = [];
  const handlers: NetstackHandlers = {
    onTcpConnect: () => {},
    onUdp: (flow, payload) => received.push({ flow, payload: payload.slice() }),
    onEchoRequest: () => true,
  };
  const clock = new VirtualClock();
  const stack = new Netstack({ link, mtu, clock, log: silentLogger, handlers });
  return { stack, sent, received, clock };
}

describe("IPv4 fragmentation of large UDP replies", () => {
  test("a 3000-byte reply becomes three valid fragments that reassemble to the original", () => {
    const { stack, sent } = stackWithCapture();
    const flow = { src: ip("1.1.1.1"), srcPort: 53, dst: ip("10.0.0.2"), dstPort: 40000 };
    stack.sendUdp(flow, PAYLOAD);
    expect(sent.map((p) => p.length)).toEqual([1420, 1420, 228]);
    const headers = sent.map((p) => {
      expect(Ipv4View.check(p)).toBeNull();
      const v = new Ipv4View(p);
      return [v.identification, v.dontFragment, v.moreFragments, v.fragmentOffset, v.totalLength];
    });
    expect(headers).toEqual([
      [0, false, true, 0, 1420],
      [0, false, true, 1400, 1420],
      [0, false, false, 2800, 228],
    ]);
    expect(stack.stats.packetsOut).toBe(3);
    expect(stack.stats.bytesOut).toBe(1420 + 1420 + 228);

    const drops: string[] = [];
    const r = new Reassembler(new VirtualClock(), (d) => drops.push(d));
    // Out of order on purpose.
    expect(r.inputV4(new Ipv4View(sent[2]!))).toBeNull();
    expect(r.inputV4(new Ipv4View(sent[0]!))).toBeNull();
    const whole = r.inputV4(new Ipv4View(sent[1]!)) as Uint8Array;
    expect(drops).toEqual([]);
    expect(whole.length).toBe(20 + 8 + 3000);
    expect(Ipv4View.check(whole)).toBeNull();
    // Header: ID 0, no DF (it did not fit), TTL 64, UDP, 1.1.1.1 -> 10.0.0.2.
    expect(toHex(whole.subarray(0, 20))).toBe(
      toHex(
        (() => {
          const h = new Uint8Array(20);
          emitIpv4Header(h, 0, flow.src, flow.dst, 17, 3028, 0, 0, 64);
          return h;
        })(),
      ),
    );
    const udp = whole.subarray(20);
    expect(verifyUdpChecksum(flow.src, flow.dst, udp)).toBeNull();
    const u = new UdpView(udp);
    expect([u.srcPort, u.dstPort, u.length]).toEqual([53, 40000, 3008]);
    expect(toHex(u.payload)).toBe(toHex(PAYLOAD));
  });

  test("a second netstack reassembles them and delivers the datagram", () => {
    const a = stackWithCapture();
    a.stack.sendUdp({ src: ip("10.0.0.2"), srcPort: 5000, dst: ip("8.8.8.8"), dstPort: 53 }, PAYLOAD);
    const b = stackWithCapture();
    for (const p of [a.sent[1]!, a.sent[2]!, a.sent[0]!]) b.stack.receive(p);
    expect(b.received.length).toBe(1);
    expect(b.received[0]!.flow.srcPort).toBe(5000);
    expect(toHex(b.received[0]!.payload)).toBe(toHex(PAYLOAD));
    expect(b.stack.stats.drops).toEqual({});
    expect(b.stack.reassembliesInProgress).toBe(0);
  });

  test("consecutive datagrams get consecutive identifications", () => {
    const { stack, sent } = stackWithCapture();
    const flow = { src: ip("1.1.1.1"), srcPort: 53, dst: ip("10.0.0.2"), dstPort: 40000 };
    stack.sendUdp(flow, new Uint8Array(10));
    stack.sendUdp(flow, PAYLOAD);
    expect(sent.map((p) => new Ipv4View(p).identification)).toEqual([0, 1, 1, 1]);
    expect(new Ipv4View(sent[0]!).dontFragment).toBe(true);
  });

  test("an oversized packet with DF set is dropped, not fragmented", () => {
    const stats = newNetstackStats();
    const sent: Uint8Array[] = [];
    const out = new LinkIpOutput({ send: (p) => sent.push(p.slice()), onPacket: () => {} }, 576, stats);
    const p = new Uint8Array(1000);
    emitIpv4Header(p, 0, ip("10.0.0.1"), ip("10.0.0.2"), 6, 1000, 1, IPV4_DF, 64);
    out.send(p);
    expect(sent).toEqual([]);
    expect(stats.drops).toEqual({ "tx-too-big-df": 1 });
  });

  test("rejects unusable MTUs", () => {
    const link: IpLink = { send: () => {}, onPacket: () => {} };
    expect(() => new LinkIpOutput(link, 60, newNetstackStats())).toThrow(RangeError);
    expect(() => new LinkIpOutput(link, 70000, newNetstackStats())).toThrow(RangeError);
  });

  test("a large ping is reassembled and its reply fragmented", () => {
    const a = stackWithCapture();
    // Build a 2000-byte echo request via the output (no DF since it does not fit), then fragment it.
    const req = a.stack.output.allocate(ip("10.0.0.2"), ip("10.0.0.1"), 1, 2000);
    req[20] = 8;
    req.fill(0xab, 28);
    let s = 0;
    for (let i = 20; i < req.length; i += 2) s += (req[i]! << 8) | req[i + 1]!;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    req[22] = (~s >> 8) & 0xff;
    req[23] = ~s & 0xff;
    a.stack.output.send(req);
    expect(a.sent.length).toBe(2);
    const b = stackWithCapture();
    for (const p of a.sent) b.stack.receive(p);
    expect(b.sent.length).toBe(2);
    const r = new Reassembler(new VirtualClock(), () => {});
    r.inputV4(new Ipv4View(b.sent[0]!));
    const reply = r.inputV4(new Ipv4View(b.sent[1]!)) as Uint8Array;
    expect(reply.length).toBe(2020);
    expect(reply[20]).toBe(0);
    expect(toHex(reply.subarray(24))).toBe(toHex(req.subarray(24)));
  });
});

describe("IPv6 fragmentation of large UDP replies", () => {
  test("a 3000-byte reply becomes fragment-header fragments that reassemble to the original", () => {
    const { stack, sent } = stackWithCapture();
    const flow = { src: ip("2606:4700::1111"), srcPort: 53, dst: ip("fd00::2"), dstPort: 40000 };
    stack.sendUdp(flow, PAYLOAD);
    // (1420 - 48) rounded down to 8 = 1368 data bytes per fragment; 3008 = 1368 + 1368 + 272.
    expect(sent.map((p) => p.length)).toEqual([1416, 1416, 320]);
    const fields = sent.map((p) => {
      const v = new Ipv6View(p);
      expect(Ipv6View.check(p)).toBeNull();
      expect(v.walk()).toBeNull();
      return [v.nextHeader, v.upperProtocol, v.fragmentOffset, v.moreFragments, v.fragmentIdentification];
    });
    expect(fields).toEqual([
      [44, 17, 0, true, 0],
      [44, 17, 1368, true, 0],
      [44, 17, 2736, false, 0],
    ]);
    const r = new Reassembler(new VirtualClock(), () => {});
    const views = sent.map((p) => {
      const v = new Ipv6View(p);
      v.walk();
      return v;
    });
    expect(r.inputV6(views[1]!)).toBeNull();
    expect(r.inputV6(views[2]!)).toBeNull();
    const whole = r.inputV6(views[0]!) as Uint8Array;
    expect(whole.length).toBe(40 + 3008);
    expect(toHex(whole.subarray(0, 8))).toBe("600000000bc01140");
    expect(verifyUdpChecksum(flow.src, flow.dst, whole.subarray(40))).toBeNull();
    expect(toHex(new UdpView(whole.subarray(40)).payload)).toBe(toHex(PAYLOAD));
  });

  test("a second netstack reassembles and delivers; fragment IDs advance", () => {
    const a = stackWithCapture();
    const flow = { src: ip("fd00::2"), srcPort: 5000, dst: ip("2001:4860:4860::8888"), dstPort: 53 };
    a.stack.sendUdp(flow, PAYLOAD);
    a.stack.sendUdp(flow, PAYLOAD);
    const b = stackWithCapture();
    for (const p of a.sent) b.stack.receive(p);
    expect(b.received.length).toBe(2);
    expect(toHex(b.received[1]!.payload)).toBe(toHex(PAYLOAD));
    const ids = a.sent.map((p) => {
      const v = new Ipv6View(p);
      v.walk();
      return v.fragmentIdentification;
    });
    expect(ids).toEqual([0, 0, 0, 1, 1, 1]);
  });
});
