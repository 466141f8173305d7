import { describe, expect, test } from "bun:test";
import { blake2s } from "@noble/hashes/blake2.js";
import { ipv4, ipv6, makePair, RESPONDER_ADDR, typeOf } from "../../fixtures/wireguard/fixtures.ts";
import { publicKeyOf } from "../../src/wireguard/keys.ts";

const enc = new TextEncoder();
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("WireGuardTunnel handshake and transport", () => {
  test("initiator with an endpoint handshakes at start(); data flows both ways with exact bytes", () => {
    const p = makePair();
    const sent: number[][] = [];
    const record = (d: Uint8Array): boolean => {
      sent.push([typeOf(d), d.length]);
      return true;
    };
    p.ti.filter = record;
    p.tr.filter = record;
    p.responder.start();
    p.initiator.start();
    // initiation 148, response 92, keepalive 32 (confirms the session to the responder).
    expect(sent).toEqual([
      [1, 148],
      [2, 92],
      [4, 32],
    ]);
    expect(p.initiator.stats.handshakesCompleted).toBe(1);
    expect(p.responder.stats.handshakesCompleted).toBe(1);
    expect(p.responder.endpoint).toEqual({ address: "127.0.0.1", port: 51820 });
    expect(p.responder.stats.keepalivesReceived).toBe(1);
    expect(p.atResponder.length).toBe(0); // keepalives are not delivered

    const a = ipv4(21, 7);
    const b = ipv6(3, 0xaa);
    p.initiator.send(a);
    p.responder.send(b);
    expect(p.atResponder.map(hex)).toEqual([hex(a)]);
    expect(p.atInitiator.map(hex)).toEqual([hex(b)]);
    // Zero padding to 16: 21 -> 32 and 43 -> 48 bytes of plaintext.
    expect(sent.slice(3)).toEqual([
      [4, 16 + 32 + 16],
      [4, 16 + 48 + 16],
    ]);
    expect(p.initiator.stats.txPackets).toBe(1);
    expect(p.initiator.stats.rxPackets).toBe(1);
    expect(p.responder.stats.rxPackets).toBe(1);
    expect(p.initiator.stats.txBytes).toBe(148 + 32 + 64);
    expect(p.initiator.stats.rxBytes).toBe(92 + 80);
    expect(p.initiator.stats.lastHandshakeAt).toBe(p.clock.wallNow());
  });

  test('MAC1 is keyed BLAKE2s-128 with HASH("mac1----" || responder public) over bytes 0..116', () => {
    const p = makePair();
    let initiation: Uint8Array | undefined;
    p.ti.filter = (d) => {
      initiation = d.slice();
      return false;
    };
    p.initiator.start();
    const key = blake2s.create().update(enc.encode("mac1----")).update(publicKeyOf(p.responderPrivate)).digest();
    const mac1 = blake2s(initiation!.subarray(0, 116), { key, dkLen: 16 });
    expect(hex(initiation!.subarray(116, 132))).toBe(hex(mac1));
    expect(hex(initiation!.subarray(132, 148))).toBe("00".repeat(16)); // no cookie: MAC2 zero
    expect(hex(initiation!.subarray(0, 4))).toBe("01000000");
  });

  test("responder keeps a new session in 'next' and sends nothing on it until the initiator's first packet", () => {
    const p = makePair();
    p.responder.start();
    p.ti.deferred = true; // hold the initiator's datagrams
    p.initiator.start();
    expect(p.ti.deliver(1)).toBe(1); // initiation -> responder; its response reaches the initiator at once
    expect(p.initiator.stats.handshakesCompleted).toBe(1);
    expect(p.responder.keypairs.current).toBeUndefined();
    expect(p.responder.keypairs.next).toBeDefined();
    const sentBefore = p.tr.sent;
    const pkt = ipv4(60, 1);
    p.responder.send(pkt);
    expect(p.tr.sent).toBe(sentBefore); // queued, not sent
    expect(p.ti.deliver()).toBe(1); // the initiator's keepalive confirms the session
    expect(p.responder.keypairs.current).toBeDefined();
    expect(p.responder.keypairs.next).toBeUndefined();
    expect(p.atInitiator.map(hex)).toEqual([hex(pkt)]);
  });

  test("packets sent before a session are queued and flushed after the handshake; oldest dropped when full", () => {
    const p = makePair({ initiator: { transmitQueueCapacity: 3 } });
    p.responder.start();
    p.ti.deferred = true;
    p.initiator.start();
    for (let i = 0; i < 5; i++) p.initiator.send(ipv4(40, i));
    expect(p.initiator.stats.drops.queueFull).toBe(2);
    p.ti.deliver();
    p.ti.deliver();
    expect(p.atResponder.map((x) => x[23])).toEqual([2, 3, 4]);
  });

  test("preshared key: same PSK works, different PSK yields no session", () => {
    const psk = new Uint8Array(32).fill(9);
    const ok = makePair({ initiator: { presharedKey: psk }, responder: { presharedKey: psk } });
    ok.responder.start();
    ok.initiator.start();
    expect(ok.initiator.stats.handshakesCompleted).toBe(1);
    ok.initiator.send(ipv4(30, 3));
    expect(ok.atResponder.length).toBe(1);

    const bad = makePair({ initiator: { presharedKey: psk } });
    bad.responder.start();
    bad.initiator.start();
    expect(bad.initiator.stats.handshakesCompleted).toBe(0);
    expect(bad.initiator.stats.drops.handshakeDecrypt).toBe(1);
    expect(bad.initiator.keypairs.current).toBeUndefined();
  });

  test("wrong peer keys: no session, counted drops", () => {
    // Responder expects a different initiator: the static decrypts but is not our peer.
    const stranger = makePair({ seed: 2 });
    const p = makePair({ responder: { peerPublicKey: publicKeyOf(stranger.initiatorPrivate) } });
    p.responder.start();
    p.initiator.start();
    expect(p.responder.stats.drops.unknownPeer).toBe(1);
    expect(p.responder.keypairs.next).toBeUndefined();
    expect(p.initiator.stats.handshakesCompleted).toBe(0);

    // Initiator has the wrong responder key: MAC1 fails at the responder.
    const q = makePair({ initiator: { peerPublicKey: publicKeyOf(stranger.responderPrivate) } });
    q.responder.start();
    q.initiator.start();
    expect(q.responder.stats.drops.badMac1).toBe(1);
    expect(q.initiator.stats.handshakesCompleted).toBe(0);
  });

  test("replayed transport packet and replayed initiation are dropped", () => {
    const p = makePair();
    p.responder.start();
    p.initiator.start();
    let captured: Uint8Array | undefined;
    p.ti.filter = (d) => {
      if (typeOf(d) === 4) captured = d.slice();
      return true;
    };
    p.initiator.send(ipv4(100, 5));
    expect(p.atResponder.length).toBe(1);
    p.responder.onDatagram(captured!.slice(), { address: "127.0.0.1", port: 51820 });
    expect(p.responder.stats.drops.replay).toBe(1);
    expect(p.atResponder.length).toBe(1);
    // A flipped ciphertext bit fails authentication.
    const flipped = captured!.slice();
    flipped[20]! ^= 0x40;
    p.responder.onDatagram(flipped, { address: "127.0.0.1", port: 51820 });
    expect(p.responder.stats.drops.decrypt).toBe(1);
  });

  test("replayed handshake initiation (same TAI64N) is rejected", () => {
    const p = makePair();
    let init: Uint8Array | undefined;
    p.ti.filter = (d) => {
      if (typeOf(d) === 1) init = d.slice();
      return true;
    };
    p.responder.start();
    p.initiator.start();
    p.clock.advance(1000);
    p.responder.onDatagram(init!.slice(), { address: "127.0.0.1", port: 51820 });
    expect(p.responder.stats.drops.handshakeReplay).toBe(1);
  });

  test("inner packet validation: trims padding, drops non-IP payloads", () => {
    const p = makePair();
    p.responder.start();
    p.initiator.start();
    const bogus = new Uint8Array(30); // version nibble 0
    p.initiator.send(bogus);
    const v4BadLen = ipv4(30, 1);
    v4BadLen[3] = 200; // claims 200 bytes in a 30-byte packet
    p.initiator.send(v4BadLen);
    expect(p.responder.stats.drops.badInner).toBe(2);
    expect(p.atResponder.length).toBe(0);
  });

  test("roaming: the endpoint follows authenticated packets only", () => {
    const p = makePair();
    p.responder.start();
    p.initiator.start();
    let pkt: Uint8Array | undefined;
    p.ti.filter = (d) => {
      pkt = d.slice();
      return false;
    };
    p.initiator.send(ipv4(40, 1));
    const moved = { address: "127.0.0.9", port: 40000 };
    const garbage = pkt!.slice();
    garbage[30]! ^= 1;
    p.responder.onDatagram(garbage, moved);
    expect(p.responder.endpoint).toEqual({ address: "127.0.0.1", port: 51820 });
    p.responder.onDatagram(pkt!, moved);
    expect(p.responder.endpoint).toEqual(moved);
    expect(p.initiator.endpoint).toEqual(RESPONDER_ADDR);
  });

  test("random and truncated datagrams are counted drops, never throws; the session survives", () => {
    const p = makePair({ seed: 42 });
    p.responder.start();
    const valid: Uint8Array[] = [];
    p.ti.filter = (d) => {
      valid.push(d.slice());
      return true;
    };
    p.initiator.start();
    p.initiator.send(ipv4(64, 9));
    const from = { address: "127.0.0.1", port: 51820 };
    const dropsBefore = Object.values(p.responder.stats.drops).reduce((a, b) => a + b, 0);
    let fed = 0;
    for (let i = 0; i < 2000; i++) {
      const len = p.random.u32() % 200;
      const d = p.random.fill(new Uint8Array(len));
      if (len > 0 && i % 2 === 0) d[0] = 1 + (i % 4); // make half of them look like real types
      if (len > 3 && i % 4 === 0) d.fill(0, 1, 4);
      p.responder.onDatagram(d, from);
      fed++;
    }
    for (const v of valid) {
      for (let cut = 0; cut < v.length; cut += 7) {
        p.responder.onDatagram(v.slice(0, cut), from);
        fed++;
      }
    }
    const dropsAfter = Object.values(p.responder.stats.drops).reduce((a, b) => a + b, 0);
    expect(dropsAfter - dropsBefore).toBe(fed);
    expect(p.responder.stats.drops.internal).toBe(0);
    expect(p.responder.stats.rxPackets).toBe(1);
    p.initiator.send(ipv4(64, 10));
    expect(p.atResponder.length).toBe(2);
  });

  test("close() clears every timer and stops delivery", () => {
    const p = makePair({ initiator: { persistentKeepalive: 25 } });
    p.responder.start();
    p.initiator.start();
    p.initiator.send(ipv4(40, 1));
    p.initiator.close();
    p.responder.close();
    expect(p.clock.nextDeadline()).toBe(-1);
    p.initiator.send(ipv4(40, 2));
    expect(p.initiator.stats.drops.closed).toBe(1);
  });
});
