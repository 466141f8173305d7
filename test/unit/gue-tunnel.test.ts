import { describe, expect, test } from "bun:test";
import { GueTunnel } from "../../src/gue/tunnel.ts";
import { MemoryTransport } from "../../src/transport/memory.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import type { Endpoint } from "../../src/util/endpoint.ts";
import { silentLogger } from "../../src/util/log.ts";

const GW: Endpoint = { address: "127.0.0.1", port: 6556 };
const PEER: Endpoint = { address: "127.0.0.1", port: 6555 };

/** IPv4 ICMP echo request 10.0.2.15 -> 10.0.2.1 (28 bytes, checksums valid). */
const IPV4 = Uint8Array.from(Buffer.from("4500001c00010000400162d10a00020f0a0002010800f7fe00010000", "hex"));
/** IPv6 ICMPv6 echo request fd00::15 -> fd00::1 (48 bytes, checksum valid). */
const IPV6 = Uint8Array.from(
  Buffer.from(
    "6000000000083a40fd000000000000000000000000000015fd000000000000000000000000000001800085a300010001",
    "hex",
  ),
);

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

function cat(...parts: (Uint8Array | number[])[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

function setup(opts: { peer?: Endpoint; keepaliveIntervalS?: number } = {}) {
  const [gw, peer] = MemoryTransport.pair(GW, PEER);
  const clock = new VirtualClock();
  const tunnel = new GueTunnel({ transport: gw, clock, log: silentLogger, ...opts });
  const inner: string[] = [];
  tunnel.onPacket = (p) => inner.push(hex(p));
  const atPeer: string[] = [];
  peer.onDatagram = (d) => atPeer.push(hex(d));
  tunnel.start();
  return { gw, peer, clock, tunnel, inner, atPeer };
}

describe("GueTunnel receive", () => {
  test("test packets are what they claim", () => {
    expect(IPV4.length).toBe(28);
    expect(IPV4[0]).toBe(0x45);
    expect(IPV6.length).toBe(48);
    expect(IPV6[0]).toBe(0x60);
  });

  test("kernel ipip encap gue: 00 04 00 00 + IPv4 delivers the IPv4 packet", () => {
    const { peer, inner, tunnel } = setup();
    peer.send(cat([0x00, 0x04, 0x00, 0x00], IPV4), GW);
    expect(inner).toEqual([hex(IPV4)]);
    expect(tunnel.stats.packetsIn).toBe(1);
    expect(tunnel.stats.bytesIn).toBe(28);
  });

  test("kernel sit encap gue: 00 29 00 00 + IPv6 delivers the IPv6 packet", () => {
    const { peer, inner } = setup();
    peer.send(cat([0x00, 0x29, 0x00, 0x00], IPV6), GW);
    expect(inner).toEqual([hex(IPV6)]);
  });

  test("kernel ipip/sit encap fou: raw 45 ... and raw 60 ... pass through unchanged", () => {
    const { peer, inner, tunnel } = setup();
    peer.send(IPV4, GW);
    peer.send(IPV6, GW);
    expect(inner).toEqual([hex(IPV4), hex(IPV6)]);
    expect(tunnel.stats.packetsIn).toBe(2);
    expect(tunnel.stats.bytesIn).toBe(76);
  });

  test("GUE optional fields (hlen) are skipped", () => {
    const { peer, inner } = setup();
    // hlen = 2: 8 bytes of optional fields after the 4-byte base header.
    peer.send(cat([0x02, 0x04, 0x80, 0x00], [1, 2, 3, 4, 5, 6, 7, 8], IPV4), GW);
    expect(inner).toEqual([hex(IPV4)]);
  });

  test("empty datagrams are keepalives: ignored and counted", () => {
    const { peer, inner, tunnel } = setup();
    peer.send(new Uint8Array(0), GW);
    expect(inner).toEqual([]);
    expect(tunnel.stats.keepalivesIn).toBe(1);
    expect(tunnel.stats.packetsIn).toBe(0);
  });

  test("malformed and control datagrams are dropped, each counted under its reason", () => {
    const { peer, inner, tunnel } = setup();
    peer.send(cat([0x20, 0x00, 0x00, 0x00], [0, 0, 0, 0]), GW); // C bit: control message
    peer.send(cat([0x00, 0x11, 0x00, 0x00], IPV4), GW); // proto 17 (UDP) is not carried
    peer.send(cat([0x00, 0x04, 0x00, 0x00], IPV6), GW); // proto 4 but an IPv6 packet
    peer.send(cat([0x00, 0x29, 0x00, 0x00], IPV4), GW); // proto 41 but an IPv4 packet
    peer.send(Uint8Array.from([0x00, 0x04, 0x00]), GW); // shorter than the header
    peer.send(Uint8Array.from([0x00, 0x04, 0x00, 0x00]), GW); // header only
    peer.send(cat([0x03, 0x04, 0x00, 0x00], [0, 0, 0, 0]), GW); // hlen runs past the end
    peer.send(Uint8Array.from([0x55, 0, 0, 0]), GW); // variant 1, version 5
    peer.send(Uint8Array.from([0x80, 0, 0, 0]), GW); // top bits 10
    peer.send(Uint8Array.from([0xff]), GW); // top bits 11
    expect(inner).toEqual([]);
    expect(tunnel.stats.drops).toEqual({
      control: 1,
      unknownVariant: 2,
      badIpVersion: 1,
      badProto: 3,
      truncated: 3,
      noPeer: 0,
    });
    expect(tunnel.stats.packetsIn).toBe(0);
  });

  test("after close() nothing is delivered", () => {
    const { peer, inner, tunnel } = setup();
    tunnel.close();
    peer.send(IPV4, GW);
    expect(inner).toEqual([]);
  });
});

describe("GueTunnel send", () => {
  test("without -p, nothing can be sent before the peer speaks; then raw IP goes to its source", () => {
    const { peer, atPeer, tunnel } = setup();
    tunnel.send(IPV4);
    expect(tunnel.stats.drops.noPeer).toBe(1);
    expect(tunnel.peer).toBeUndefined();
    peer.send(new Uint8Array(0), GW); // a keepalive teaches the endpoint too
    expect(tunnel.peer).toEqual(PEER);
    tunnel.send(IPV4);
    tunnel.send(IPV6);
    expect(atPeer).toEqual([hex(IPV4), hex(IPV6)]);
    expect(tunnel.stats.packetsOut).toBe(2);
    expect(tunnel.stats.bytesOut).toBe(76);
  });

  test("the last seen source is the reply endpoint", () => {
    const { tunnel } = setup();
    tunnel.receive(IPV4, { address: "127.0.0.1", port: 1111 });
    tunnel.receive(IPV4, { address: "::1", port: 2222 });
    expect(tunnel.peer).toEqual({ address: "::1", port: 2222 });
  });

  test("with -p, packets go to the configured peer even after datagrams from other sources", () => {
    const { atPeer, tunnel } = setup({ peer: PEER });
    tunnel.receive(IPV4, { address: "127.0.0.1", port: 40000 }); // encap-sport auto: hashed port
    expect(tunnel.peer).toEqual(PEER);
    tunnel.send(IPV6);
    expect(atPeer).toEqual([hex(IPV6)]);
  });

  test("send copies: the caller may reuse its buffer while the transport still queues", () => {
    const { gw, peer, tunnel } = setup({ peer: PEER });
    gw.deferred = true;
    const buf = IPV4.slice();
    tunnel.send(buf);
    buf.fill(0);
    const got: string[] = [];
    peer.onDatagram = (d) => got.push(hex(d));
    gw.deliver();
    expect(got).toEqual([hex(IPV4)]);
  });

  test("-a sends empty datagrams every interval, starting at start()", () => {
    const { clock, atPeer, tunnel } = setup({ peer: PEER, keepaliveIntervalS: 10 });
    expect(atPeer).toEqual([""]);
    clock.advance(9_999);
    expect(atPeer).toEqual([""]);
    clock.advance(1);
    expect(atPeer).toEqual(["", ""]);
    clock.advance(20_000);
    expect(atPeer).toEqual(["", "", "", ""]);
    expect(tunnel.stats.keepalivesOut).toBe(4);
    tunnel.close();
    clock.advance(100_000);
    expect(atPeer.length).toBe(4);
    expect(clock.nextDeadline()).toBe(-1);
  });

  test("-a without -p waits for a learned endpoint", () => {
    const { peer, clock, atPeer, tunnel } = setup({ keepaliveIntervalS: 5 });
    clock.advance(5_000);
    expect(atPeer).toEqual([]);
    peer.send(new Uint8Array(0), GW);
    clock.advance(5_000);
    expect(atPeer).toEqual([""]);
    expect(tunnel.stats.keepalivesOut).toBe(1);
  });

  test("no keepalive timer without -a", () => {
    const { clock } = setup({ peer: PEER });
    expect(clock.nextDeadline()).toBe(-1);
  });
});
