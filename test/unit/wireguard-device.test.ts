import { describe, expect, test } from "bun:test";
import type { DatagramTransport } from "../../src/transport/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import type { Endpoint } from "../../src/util/endpoint.ts";
import { silentLogger } from "../../src/util/log.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { REJECT_AFTER_TIME } from "../../src/wireguard/constants.ts";
import { WireGuardDevice } from "../../src/wireguard/device.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { WireGuardTunnel } from "../../src/wireguard/tunnel.ts";

/** Synchronous in-memory UDP network: every transport is reachable at its local endpoint. */
class MemoryNet {
  readonly nodes = new Map<string, MemoryNode>();
  node(ep: Endpoint): MemoryNode {
    const n = new MemoryNode(this, ep);
    this.nodes.set(`${ep.address}:${ep.port}`, n);
    return n;
  }
}
class MemoryNode implements DatagramTransport {
  onDatagram: (data: Uint8Array, from: Endpoint) => void = () => {};
  constructor(
    private readonly net: MemoryNet,
    readonly local: Endpoint,
  ) {}
  send(data: Uint8Array, to: Endpoint): void {
    this.net.nodes.get(`${to.address}:${to.port}`)?.onDatagram(data.slice(), { ...this.local });
  }
  close(): void {}
}

function ipv4(src: string, dst: string, tag: number): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p[3] = p.length;
  p[8] = 64;
  p[9] = 17;
  p.set(parseIp(src)!, 12);
  p.set(parseIp(dst)!, 16);
  p[27] = tag;
  return p;
}

function ipv6(src: string, dst: string, tag: number): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = 0x60;
  p[5] = 8;
  p[6] = 17;
  p[7] = 64;
  p.set(parseIp(src)!, 8);
  p.set(parseIp(dst)!, 24);
  p[47] = tag;
  return p;
}

const GW: Endpoint = { address: "127.0.0.1", port: 51820 };

function setup() {
  const clock = new VirtualClock(0);
  const random = new SeededRandom(11);
  const net = new MemoryNet();
  const gwKey = generatePrivateKey(random);
  const gw = new WireGuardDevice({ privateKey: gwKey, transport: net.node(GW), clock, random, log: silentLogger });
  const atGateway: { from: number; packet: Uint8Array }[] = [];
  let lastFrom = -1;
  gw.onPacket = (p) => atGateway.push({ from: lastFrom, packet: p.slice() });
  const clients = [1, 2, 3].map((i) => {
    const key = generatePrivateKey(random);
    const tunnel = new WireGuardTunnel({
      privateKey: key,
      peerPublicKey: publicKeyOf(gwKey),
      endpoint: GW,
      transport: net.node({ address: "127.0.0.1", port: 40000 + i }),
      clock,
      random,
      log: silentLogger,
    });
    const received: Uint8Array[] = [];
    tunnel.onPacket = (p) => received.push(p.slice());
    const peer = gw.addPeer({ publicKey: publicKeyOf(key), allowedIps: [`10.0.0.${i + 1}/32`, `fd00::${i + 1}/128`] });
    const send = (p: Uint8Array) => {
      lastFrom = i;
      tunnel.send(p);
      lastFrom = -1;
    };
    return { i, key, tunnel, received, peer, send };
  });
  /** Start everything; handshake work beyond one per event-loop turn waits for the queue's 1 ms tick. */
  const startAll = () => {
    gw.start();
    for (const c of clients) c.tunnel.start();
    for (let i = 0; i < 20; i++) clock.advance(1);
  };
  return { clock, gw, clients, atGateway, startAll };
}

describe("WireGuardDevice with three peers", () => {
  test("each peer handshakes; packets route by destination to the right peer only, both families", () => {
    const { gw, clients, atGateway, startAll } = setup();
    startAll();
    expect(gw.stats.handshakesCompleted).toBe(3);
    for (const c of clients) {
      expect(c.peer.stats.handshakesCompleted).toBe(1);
      expect(c.peer.endpoint).toEqual({ address: "127.0.0.1", port: 40000 + c.i });
    }
    gw.send(ipv4("10.0.2.1", "10.0.0.3", 0xa2));
    gw.send(ipv6("fd00::1", "fd00::4", 0xb3));
    gw.send(ipv4("10.0.2.1", "10.0.0.9", 0xff)); // nobody's
    expect(clients.map((c) => c.received.map((p) => p[p.length - 1]))).toEqual([[], [0xa2], [0xb3]]);
    expect(gw.stats.drops.noRoute).toBe(1);
    expect(clients[1]!.peer.stats.txPackets).toBe(1);
    expect(clients[0]!.peer.stats.txPackets).toBe(0);
    for (const c of clients) c.send(ipv4(`10.0.0.${c.i + 1}`, "10.0.2.1", c.i));
    expect(atGateway.map((x) => [x.from, x.packet[27]])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(gw.stats.rxPackets).toBe(3);
    for (const c of clients) expect(c.peer.stats.rxPackets).toBe(1);
    expect(gw.indexCount).toBeLessThanOrEqual(12);
  });

  test("a peer spoofing another peer's inner source address is a counted drop", () => {
    const { gw, clients, atGateway, startAll } = setup();
    startAll();
    const [c1, c2] = clients;
    c2!.send(ipv4("10.0.0.2", "10.0.2.1", 7)); // c1's address, sent by c2
    c2!.send(ipv6("fd00::2", "fd00::1", 8));
    c2!.send(ipv4("192.168.9.9", "10.0.2.1", 9)); // nobody's
    expect(atGateway).toEqual([]);
    expect(c2!.peer.stats.drops.sourceNotAllowed).toBe(3);
    expect(gw.stats.drops.sourceNotAllowed).toBe(3);
    expect(c1!.peer.stats.drops.sourceNotAllowed).toBe(0);
    c2!.send(ipv4("10.0.0.3", "10.0.2.1", 10));
    expect(atGateway.map((x) => x.packet[27])).toEqual([10]);
  });

  test("removing a peer cuts it off and frees its indices; an unknown static key is unknownPeer", () => {
    const { clock, gw, clients, atGateway, startAll } = setup();
    startAll();
    const c3 = clients[2]!;
    expect(gw.removePeer(c3.peer.publicKey)).toBe(true);
    expect(gw.peerCount).toBe(2);
    gw.send(ipv4("10.0.2.1", "10.0.0.4", 1));
    expect(gw.stats.drops.noRoute).toBe(1);
    c3.send(ipv4("10.0.0.4", "10.0.2.1", 2));
    expect(gw.stats.drops.unknownIndex).toBe(1);
    expect(atGateway).toEqual([]);
    // Its next handshake names a static key the device no longer knows.
    clock.advance(REJECT_AFTER_TIME);
    c3.send(ipv4("10.0.0.4", "10.0.2.1", 3));
    expect(gw.stats.drops.unknownPeer).toBeGreaterThanOrEqual(1);
    // Added back (as `wg set … allowed-ips` would), it handshakes again and gets traffic.
    const again = gw.addPeer({ publicKey: c3.peer.publicKey, allowedIps: ["10.0.0.4/32"] });
    clock.advance(5_500);
    expect(again.stats.handshakesCompleted).toBe(1);
    expect(atGateway.map((x) => x.packet[27])).toContain(3);
  });

  test("key material is erased on the virtual clock and the index table empties", () => {
    const { clock, gw, clients, startAll } = setup();
    startAll();
    expect(gw.indexCount).toBe(3);
    for (let t = 0; t < 10; t++) clock.advance(REJECT_AFTER_TIME);
    expect(gw.indexCount).toBe(0);
    for (const c of clients) expect(c.peer.keypairs.current).toBeUndefined();
  });

  test("configuration errors: duplicate peer, our own key, bad prefix, the peer bound", () => {
    const { gw, clients } = setup();
    expect(() => gw.addPeer({ publicKey: clients[0]!.peer.publicKey })).toThrow("peer already configured");
    expect(() => gw.addPeer({ publicKey: gw.publicKey })).toThrow("own public key");
    expect(() =>
      gw.addPeer({ publicKey: publicKeyOf(new Uint8Array(32).fill(5)), allowedIps: ["10.0.0.0/40"] }),
    ).toThrow('invalid allowed IP "10.0.0.0/40"');
    const small = new WireGuardDevice({
      privateKey: new Uint8Array(32).fill(1),
      transport: new MemoryNet().node(GW),
      clock: new VirtualClock(0),
      random: new SeededRandom(1),
      log: silentLogger,
      maxPeers: 1,
    });
    small.addPeer({ publicKey: publicKeyOf(new Uint8Array(32).fill(2)) });
    expect(() => small.addPeer({ publicKey: publicKeyOf(new Uint8Array(32).fill(3)) })).toThrow("more than 1 peers");
  });
});
