/**
 * Outgoing packets sealed in place: a packet built with the link's headroom and tailroom becomes
 * its own WireGuard transport message in the same ArrayBuffer (transport-seal.ts), byte-identical
 * to the copying path, on both AEAD backends; and end to end the datagram the transport is handed
 * is a view of the buffer the netstack allocated (TCP segments, UDP, ICMP), while fragments,
 * staged packets, borrowed packets, the pcap tap and GUE keep working.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ipv4, makePair, type Pair } from "../../fixtures/wireguard/fixtures.ts";
import { testOrSkip } from "../../harness/gate.ts";
import { GueTunnel } from "../../src/gue/tunnel.ts";
import type { IpLink } from "../../src/link.ts";
import { LinkIpOutput } from "../../src/netstack/ip-output.ts";
import { Netstack } from "../../src/netstack/stack.ts";
import { newNetstackStats } from "../../src/netstack/stats.ts";
import { TcpLayer } from "../../src/netstack/tcp/layer.ts";
import type { FlowAddrs, IpAddr } from "../../src/netstack/types.ts";
import { PcapWriter, readPcap, tapLink } from "../../src/pcap/writer.ts";
import { MemoryTransport } from "../../src/transport/memory.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { type AeadFactory, nobleChaCha20Poly1305 } from "../../src/wireguard/aead.ts";
import { sodiumAvailable, sodiumChaCha20Poly1305, sodiumUnavailableReason } from "../../src/wireguard/aead-sodium.ts";
import { Keypair } from "../../src/wireguard/keypair.ts";
import {
  copyWithSendRoom,
  paddedLength,
  SEND_HEADROOM,
  SEND_TAILROOM,
  sealTransport,
} from "../../src/wireguard/transport-seal.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const ip = (s: string) => parseIp(s) as IpAddr;
const HAVE_SODIUM = sodiumAvailable();
const BACKENDS: [string, AeadFactory][] = [["noble", nobleChaCha20Poly1305]];
if (HAVE_SODIUM) BACKENDS.push(["sodium-native", sodiumChaCha20Poly1305]);
const withSodium = testOrSkip(HAVE_SODIUM ? null : `sodium-native cannot load: ${sodiumUnavailableReason()}`);

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i * 5 + 1);
/** Sizes around the 16-byte padding boundary, the 0-byte keepalive and full-size packets. */
const SIZES = [0, 1, 15, 16, 17, 20, 31, 33, 40, 63, 64, 65, 576, 1279, 1280, 1419, 1420];

const keypair = (aead: AeadFactory): Keypair => new Keypair(aead(KEY), aead(KEY), true, 11, 0x01020304, 0);
const content = (n: number, salt: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 13 + salt) & 0xff);

/** `packet` in a buffer with send room around it, the room filled with garbage (must not leak). */
function withRoom(packet: Uint8Array, garbage = 0xa5): Uint8Array {
  const buf = new Uint8Array(SEND_HEADROOM + packet.length + SEND_TAILROOM).fill(garbage);
  const view = buf.subarray(SEND_HEADROOM, SEND_HEADROOM + packet.length);
  view.set(packet);
  return view;
}

describe("sealTransport", () => {
  for (const [name, aead] of BACKENDS) {
    test(`${name}: in place is byte-identical to the copying path (same key and counters), in the packet's own buffer`, () => {
      const copying = keypair(aead);
      const inPlace = keypair(aead);
      for (let round = 0; round < 3; round++) {
        for (const n of SIZES) {
          const plain = content(n, n + round);
          const borrowed = plain.slice();
          const copied = sealTransport(copying, borrowed, false);
          expect(hex(borrowed)).toBe(hex(plain)); // the copying path leaves the packet alone
          expect(copied.buffer).not.toBe(borrowed.buffer);
          const owned = withRoom(plain);
          const sealed = sealTransport(inPlace, owned, true);
          expect(hex(sealed)).toBe(hex(copied));
          expect(sealed.length).toBe(16 + Math.ceil(n / 16) * 16 + 16);
          if (n > 0) {
            expect(sealed.buffer).toBe(owned.buffer);
            expect(sealed.byteOffset).toBe(owned.byteOffset - SEND_HEADROOM);
          }
        }
      }
      expect(inPlace.sendCounter).toBe(3 * SIZES.length);
      // The receiver opens it: counter, index and plaintext (zero padding included).
      const opened = keypair(aead);
      const msg = sealTransport(keypair(aead), withRoom(content(21, 9), 0xff), true);
      expect(hex(msg.subarray(0, 16))).toBe("04000000040302010000000000000000");
      const out = new Uint8Array(32);
      expect(opened.receive.open(0, msg.subarray(16), out)).toBe(true);
      expect(hex(out)).toBe(hex(content(21, 9)) + "00".repeat(11));
    });
  }

  withSodium("noble and sodium-native seal in place to the same bytes", () => {
    const a = keypair(nobleChaCha20Poly1305);
    const b = keypair(sodiumChaCha20Poly1305);
    for (const n of SIZES) {
      const plain = content(n, 3);
      expect(hex(sealTransport(b, withRoom(plain), true))).toBe(hex(sealTransport(a, withRoom(plain), true)));
    }
  });

  test("without enough room it copies, even when told it may seal in place", () => {
    const kp = keypair(nobleChaCha20Poly1305);
    const ref = keypair(nobleChaCha20Poly1305);
    const plain = content(100, 1);
    const noHead = new Uint8Array(100 + SEND_TAILROOM);
    noHead.set(plain);
    const shortTail = new Uint8Array(SEND_HEADROOM + 100 + 27).subarray(SEND_HEADROOM, SEND_HEADROOM + 100);
    shortTail.set(plain);
    for (const p of [noHead.subarray(0, 100), shortTail]) {
      const msg = sealTransport(kp, p, true);
      expect(msg.buffer).not.toBe(p.buffer);
      expect(hex(p)).toBe(hex(plain));
      expect(hex(msg)).toBe(hex(sealTransport(ref, plain, false)));
    }
  });

  test("padding stops at the MTU (wireguard-go calculatePaddingSize): a full-size packet is not padded", () => {
    // [n, mtu, padded plaintext]
    const cases: [number, number, number][] = [
      [0, 1420, 0],
      [1, 1420, 16],
      [1404, 1420, 1408],
      [1405, 1420, 1408],
      [1409, 1420, 1420],
      [1419, 1420, 1420],
      [1420, 1420, 1420],
      [1280, 1280, 1280],
      [1279, 1280, 1280],
      [1420, 0, 1424],
      // Longer than the MTU (not from our netstack): the last MTU-sized unit pads.
      [1421, 1420, 1436],
      [2840, 1420, 2840],
    ];
    for (const [n, mtu, want] of cases) expect([n, mtu, paddedLength(n, mtu)]).toEqual([n, mtu, want]);
    for (const [name, aead] of BACKENDS) {
      const full = content(1420, 3);
      const inPlace = sealTransport(keypair(aead), withRoom(full), true, 1420);
      const copied = sealTransport(keypair(aead), full, false, 1420);
      // 16-byte header + 1420 (no padding) + 16-byte tag: what wireguard-go and the kernel send.
      expect([name, inPlace.length, copied.length]).toEqual([name, 1452, 1452]);
      expect(hex(inPlace)).toBe(hex(copied));
      // The receiver's view: the plaintext is the packet itself.
      const rx = keypair(aead);
      const body = Uint8Array.from(copied.subarray(16));
      const opened = new Uint8Array(1420);
      expect(rx.receive.open(0, body, opened)).toBe(true);
      expect(hex(opened)).toBe(hex(full));
    }
  });

  test("copyWithSendRoom: a copy with the room a later in-place seal needs", () => {
    const plain = content(40, 2);
    const c = copyWithSendRoom(plain);
    expect(hex(c)).toBe(hex(plain));
    expect(c.byteOffset).toBe(SEND_HEADROOM);
    expect(c.buffer.byteLength).toBe(SEND_HEADROOM + 40 + SEND_TAILROOM);
  });
});

/** Datagrams the initiator's transport was handed (the object itself and its bytes then). */
function captureSent(p: Pair): { data: Uint8Array; bytes: string }[] {
  const sent: { data: Uint8Array; bytes: string }[] = [];
  p.ti.filter = (data) => {
    sent.push({ data, bytes: hex(data) });
    return true;
  };
  return sent;
}

/** A netstack over the link, recording the buffer of every packet allocate() returns. */
function netstackOver(link: IpLink, clock: VirtualClock, seed: number) {
  const udp: Uint8Array[] = [];
  const stack = new Netstack({
    link,
    mtu: 1420,
    clock,
    log: silentLogger,
    handlers: { onTcpConnect: () => {}, onUdp: (_f, payload) => udp.push(payload.slice()), onEchoRequest: () => true },
  });
  const allocated = new Set<ArrayBufferLike>();
  const allocate = stack.output.allocate.bind(stack.output);
  stack.output.allocate = (src, dst, proto, len) => {
    const pkt = allocate(src, dst, proto, len);
    allocated.add(pkt.buffer);
    return pkt;
  };
  const accepted: Uint8Array[] = [];
  const tcp = new TcpLayer({
    output: stack.output,
    clock,
    random: new SeededRandom(seed),
    log: silentLogger,
    mss4: 1380,
    mss6: 1360,
    bufferSize: 1 << 18,
    pacing: false,
    onConnect: (_flow, conn) => {
      conn.onReadable = () => {
        const v = conn.peek();
        accepted.push(v.slice());
        conn.consume(v.length);
      };
      conn.accept();
    },
  });
  stack.setTcp(tcp);
  return { stack, allocated, accepted, udp };
}

describe("LinkIpOutput.allocate", () => {
  test("packets share slabs, each with the link's room to itself (disjoint, zeroed); large ones alone", () => {
    const link: IpLink = { headroom: SEND_HEADROOM, tailroom: SEND_TAILROOM, send: () => {}, onPacket: () => {} };
    const out = new LinkIpOutput(link, 1420, newNetstackStats());
    const packets = Array.from({ length: 100 }, (_, i) =>
      out.allocate(ip("10.0.0.1"), ip("10.0.0.2"), 17, [0, 1, 1380, 555][i % 4]!),
    );
    expect(new Set(packets.map((p) => p.buffer)).size).toBeLessThan(10);
    const regions = packets
      .map((p) => ({ buf: p.buffer, from: p.byteOffset - SEND_HEADROOM, to: p.byteOffset + p.length + SEND_TAILROOM }))
      .sort((a, b) => (a.buf === b.buf ? a.from - b.from : 0));
    for (const r of regions) expect(r.from >= 0 && r.to <= r.buf.byteLength).toBe(true);
    for (let i = 1; i < regions.length; i++) {
      if (regions[i]!.buf === regions[i - 1]!.buf) expect(regions[i]!.from).toBeGreaterThanOrEqual(regions[i - 1]!.to);
    }
    for (const p of packets) expect(p.subarray(20).every((b) => b === 0)).toBe(true);
    const big = out.allocate(ip("10.0.0.1"), ip("10.0.0.2"), 17, 30_000);
    expect(big.buffer.byteLength).toBe(SEND_HEADROOM + 30_020 + SEND_TAILROOM);
  });
});

describe("one buffer from the netstack to the transport", () => {
  for (const [name, aead] of BACKENDS) {
    test(`${name}: TCP segments, UDP and ICMP go out as views of the buffers allocate() returned`, () => {
      const p = makePair({ initiator: { aead }, responder: { aead } });
      p.responder.start();
      p.initiator.start();
      const a = netstackOver(p.initiator, p.clock, 1);
      const b = netstackOver(p.responder, p.clock, 2);
      const sent = captureSent(p);

      const flow: FlowAddrs = { src: ip("10.9.0.1"), srcPort: 8080, dst: ip("10.0.0.2"), dstPort: 40000 };
      const conn = a.stack.connectTcp(flow);
      const data = content(200_000, 7);
      let written = 0;
      const pump = () => {
        while (written < data.length) {
          const n = conn.write(data.subarray(written));
          if (n === 0) break;
          written += n;
        }
      };
      conn.onWritable = pump;
      conn.onEstablished = pump;
      // Deferred delivery: a segment must not arrive inside the sender's own emit.
      p.ti.deferred = true;
      p.tr.deferred = true;
      const received = () => b.accepted.reduce((sum, x) => sum + x.length, 0);
      for (let i = 0; i < 20_000 && received() < data.length; i++) {
        p.ti.deliver();
        p.tr.deliver();
        p.clock.endTurn();
        if (p.ti.queue.length + p.tr.queue.length > 0) continue;
        const t = p.clock.nextDeadline();
        if (t < 0) break;
        p.clock.runUntil(t);
      }
      expect(hex(Buffer.concat(b.accepted))).toBe(hex(data));

      a.stack.sendUdp({ src: ip("1.1.1.1"), srcPort: 53, dst: ip("10.0.0.2"), dstPort: 5353 }, content(300, 1));
      a.stack.sendEchoReply(ip("1.1.1.1"), ip("10.0.0.2"), 7, 1, content(56, 2));
      const transport = sent.filter((s) => s.data[0] === 4 && s.data.length > 32);
      expect(transport.length).toBeGreaterThan(140);
      for (const s of transport) expect(a.allocated.has(s.data.buffer)).toBe(true);
      expect(p.initiator.stats.txPackets).toBe(transport.length);
      // Sealed in neighbouring slab regions, every one still authenticated at the peer.
      p.ti.deliver();
      expect(Object.entries(p.responder.stats.drops).filter(([, n]) => n > 0)).toEqual([]);
      expect(p.responder.stats.rxPackets).toBe(transport.length);
    });
  }

  test("fragments (one scratch buffer) are copied: each datagram its own buffer, reassembling at the peer", () => {
    const p = makePair();
    p.responder.start();
    p.initiator.start();
    const a = netstackOver(p.initiator, p.clock, 1);
    const b = netstackOver(p.responder, p.clock, 2);
    const sent = captureSent(p);
    const payload = content(3000, 5);
    a.stack.sendUdp({ src: ip("1.1.1.1"), srcPort: 53, dst: ip("10.0.0.2"), dstPort: 5353 }, payload);
    expect(sent.length).toBe(3);
    expect(new Set(sent.map((s) => s.data.buffer)).size).toBe(3);
    for (const s of sent) expect(a.allocated.has(s.data.buffer)).toBe(false);
    expect(b.udp.map(hex)).toEqual([hex(payload)]);
  });

  test("staged packets are copied at once, owned or not (a queued packet must not pin a slab)", () => {
    const p = makePair();
    p.responder.start();
    p.ti.deferred = true;
    p.initiator.start(); // the initiation waits in the queue: no session yet
    const owned = withRoom(ipv4(60, 1));
    const borrowed = ipv4(61, 2);
    p.initiator.send(owned, true);
    p.initiator.send(borrowed);
    owned.fill(0xdd); // the staged copies are independent of both
    borrowed.fill(0xee); // the caller reuses its buffer
    const sent = captureSent(p);
    p.ti.deliver();
    p.ti.deliver();
    expect(p.atResponder.map(hex)).toEqual([hex(ipv4(60, 1)), hex(ipv4(61, 2))]);
    const data = sent.filter((s) => s.data[0] === 4 && s.data.length > 32);
    expect(data.length).toBe(2);
    expect(data[0]!.data.buffer).not.toBe(owned.buffer);
    expect(data[1]!.data.buffer).not.toBe(borrowed.buffer);
    // Each staged copy was itself sealed in place: the datagram is a view of a buffer with room.
    for (const d of data) expect(d.data.byteOffset).toBe(0);
    expect(data.map((d) => d.data.buffer.byteLength)).toEqual([16 + 60 + SEND_TAILROOM, 16 + 61 + SEND_TAILROOM]);
  });

  test("the pcap tap passes the room through and records the plaintext before it is sealed", async () => {
    const p = makePair();
    p.responder.start();
    p.initiator.start();
    const path = join(mkdtempSync(join(tmpdir(), "wgslirpy-seal-")), "t.pcap");
    const writer = new PcapWriter(path, p.clock);
    const link = tapLink(p.initiator, writer);
    expect([link.headroom, link.tailroom]).toEqual([SEND_HEADROOM, SEND_TAILROOM]);
    const a = netstackOver(link, p.clock, 1);
    const sent = captureSent(p);
    a.stack.sendEchoReply(ip("1.1.1.1"), ip("10.0.0.2"), 7, 1, content(56, 2));
    await writer.close();
    expect(a.allocated.has(sent[0]!.data.buffer)).toBe(true);
    const { records } = readPcap(new Uint8Array(readFileSync(path)));
    expect(records.map((r) => hex(r.packet))).toEqual(p.atResponder.map(hex));
  });

  test("GUE: an owned packet goes to the transport as it is, a borrowed one as a copy", () => {
    const gw = new MemoryTransport({ address: "127.0.0.1", port: 6080 });
    const got: Uint8Array[] = [];
    gw.filter = (d) => {
      got.push(d);
      return false;
    };
    const tunnel = new GueTunnel({
      transport: gw,
      peer: { address: "127.0.0.1", port: 6081 },
      clock: new VirtualClock(),
      log: silentLogger,
    });
    tunnel.start();
    const owned = ipv4(40, 1);
    const borrowed = ipv4(41, 2);
    tunnel.send(owned, true);
    tunnel.send(borrowed);
    expect(got[0]).toBe(owned);
    expect(got[1]).not.toBe(borrowed);
    expect(hex(got[1]!)).toBe(hex(borrowed));
  });
});
