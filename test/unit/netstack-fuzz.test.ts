import { expect, test } from "bun:test";
import type { IpLink } from "../../src/link.ts";
import { Netstack } from "../../src/netstack/stack.ts";
import type { FlowAddrs, IpAddr } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { Ipv4View, writeIpv4HeaderChecksum } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";

const ip = (s: string) => parseIp(s) as IpAddr;

/** Valid seed packets, built by a netstack's own output (UDP, fragments, pings, TCP-ish, v6 chains). */
function seeds(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const link: IpLink = { send: (p) => out.push(p.slice()), onPacket: () => {} };
  const gen = new Netstack({
    link,
    mtu: 600,
    clock: new VirtualClock(),
    log: silentLogger,
    handlers: { onTcpConnect: () => {}, onUdp: () => {}, onEchoRequest: () => true },
  });
  const flows: FlowAddrs[] = [
    { src: ip("10.0.0.2"), srcPort: 40000, dst: ip("10.0.0.1"), dstPort: 53 },
    { src: ip("fd00::2"), srcPort: 40000, dst: ip("fd00::1"), dstPort: 53 },
  ];
  for (const f of flows) {
    gen.sendUdp(f, new Uint8Array(40).fill(1));
    gen.sendUdp(f, new Uint8Array(1500).fill(2)); // fragments
    for (const [proto, type] of [
      [f.src.length === 4 ? 1 : 58, f.src.length === 4 ? 8 : 128],
      [6, 0],
    ] as const) {
      const p = gen.output.allocate(f.src, f.dst, proto, 28);
      const hl = f.src.length === 4 ? 20 : 40;
      p[hl] = type;
      gen.output.send(p);
    }
  }
  // IPv6 with hop-by-hop + destination options before UDP.
  const chain = new Uint8Array(40 + 16 + 8);
  chain.set(out[out.length - 1]!.subarray(0, 40));
  chain[4] = 0;
  chain[5] = 24;
  chain[6] = 0;
  chain.set([60, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0, 0x9c, 0x40, 0, 53, 0, 8, 0, 0], 40);
  out.push(chain);
  return out;
}

test("20,000 random and mutated packets never throw out of receive()", () => {
  const rng = new SeededRandom(0x5eed);
  const rand = (n: number) => rng.u32() % n;
  const sent: Uint8Array[] = [];
  const clock = new VirtualClock();
  let udpBytes = 0;
  const stack = new Netstack({
    link: { send: (p) => sent.push(p.slice()), onPacket: () => {} },
    mtu: 1420,
    clock,
    log: silentLogger,
    handlers: {
      onTcpConnect: () => {},
      onUdp: (_flow, payload) => {
        for (let i = 0; i < payload.length; i++) udpBytes += payload[i]!;
      },
      onEchoRequest: () => rand(2) === 0,
    },
    tcp: {
      input: (_s, _d, segment) => {
        udpBytes += segment.length;
      },
      connect: () => {
        throw new Error("unused");
      },
    },
  });
  const base = seeds();
  expect(base.length).toBeGreaterThan(10);
  const N = 20_000;
  for (let n = 0; n < N; n++) {
    let pkt: Uint8Array;
    const mode = rand(10);
    if (mode === 0) {
      // Pure noise with a plausible version nibble.
      pkt = rng.fill(new Uint8Array(rand(200)));
      if (pkt.length) pkt[0] = (rand(2) ? 0x40 : 0x60) | (pkt[0]! & 0x0f);
    } else {
      const seed = base[rand(base.length)]!;
      pkt = seed.slice();
      const flips = 1 + rand(4);
      for (let i = 0; i < flips; i++) {
        const at = rand(Math.min(pkt.length, mode < 5 ? 64 : pkt.length));
        pkt[at] = mode < 3 ? rand(256) : pkt[at]! ^ (1 << rand(8));
      }
      if (rand(4) === 0) pkt = pkt.subarray(0, rand(pkt.length + 1));
      if (rand(8) === 0) {
        const longer = new Uint8Array(pkt.length + rand(64));
        longer.set(pkt);
        pkt = longer;
      }
      // Often repair the IPv4 header checksum so mutations reach the upper layers.
      if (pkt.length >= 20 && pkt[0]! >> 4 === 4 && rand(3) > 0 && (pkt[0]! & 0x0f) * 4 <= pkt.length) {
        writeIpv4HeaderChecksum(pkt, 0);
      }
    }
    stack.receive(pkt);
    if (n % 500 === 0) clock.advance(rand(40_000));
  }
  expect(stack.stats.packetsIn).toBe(N);
  expect(stack.stats.drops["handler-error"]).toBeUndefined();
  const dropped = Object.values(stack.stats.drops).reduce((a, b) => a + b, 0);
  expect(dropped).toBeGreaterThan(N / 2);
  expect(udpBytes).toBeGreaterThan(0);
  expect(sent.length).toBeGreaterThan(0);
  // Whatever the stack sent back is itself well-formed.
  for (const p of sent) {
    if (p[0]! >> 4 === 4) expect(Ipv4View.check(p)).toBeNull();
    else expect(Ipv6View.check(p)).toBeNull();
  }
  // Reassembly state stays bounded.
  expect(stack.reassembliesInProgress).toBeLessThanOrEqual(64);
});
