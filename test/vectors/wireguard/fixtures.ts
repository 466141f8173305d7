/** Shared setup for the WireGuard unit tests: two tunnels over a MemoryTransport pair. */
import { MemoryTransport } from "../../../src/transport/memory.ts";
import { VirtualClock } from "../../../src/util/clock.ts";
import type { Endpoint } from "../../../src/util/endpoint.ts";
import { silentLogger } from "../../../src/util/log.ts";
import { SeededRandom } from "../../../src/util/random.ts";
import { generatePrivateKey, publicKeyOf } from "../../../src/wireguard/keys.ts";
import { WireGuardTunnel, type WireGuardTunnelConfig } from "../../../src/wireguard/tunnel.ts";

export const INITIATOR_ADDR: Endpoint = { address: "127.0.0.1", port: 51820 };
export const RESPONDER_ADDR: Endpoint = { address: "127.0.0.1", port: 51821 };

export interface Pair {
  clock: VirtualClock;
  random: SeededRandom;
  initiator: WireGuardTunnel;
  responder: WireGuardTunnel;
  /** The initiator's transport (its sends go to the responder) and the responder's. */
  ti: MemoryTransport;
  tr: MemoryTransport;
  /** Inner packets delivered on each side, copied. */
  atInitiator: Uint8Array[];
  atResponder: Uint8Array[];
  initiatorPrivate: Uint8Array;
  responderPrivate: Uint8Array;
}

export type Overrides = Partial<Omit<WireGuardTunnelConfig, "transport" | "clock" | "random" | "log">>;

export function makePair(opts: { seed?: number; initiator?: Overrides; responder?: Overrides } = {}): Pair {
  const clock = new VirtualClock(0);
  const random = new SeededRandom(opts.seed ?? 1);
  const initiatorPrivate = generatePrivateKey(random);
  const responderPrivate = generatePrivateKey(random);
  const [ti, tr] = MemoryTransport.pair(INITIATOR_ADDR, RESPONDER_ADDR);
  const initiator = new WireGuardTunnel({
    privateKey: initiatorPrivate,
    peerPublicKey: publicKeyOf(responderPrivate),
    endpoint: RESPONDER_ADDR,
    transport: ti,
    clock,
    random,
    log: silentLogger,
    ...opts.initiator,
  });
  const responder = new WireGuardTunnel({
    privateKey: responderPrivate,
    peerPublicKey: publicKeyOf(initiatorPrivate),
    transport: tr,
    clock,
    random,
    log: silentLogger,
    ...opts.responder,
  });
  const atInitiator: Uint8Array[] = [];
  const atResponder: Uint8Array[] = [];
  initiator.onPacket = (p) => atInitiator.push(p.slice());
  responder.onPacket = (p) => atResponder.push(p.slice());
  return { clock, random, initiator, responder, ti, tr, atInitiator, atResponder, initiatorPrivate, responderPrivate };
}

/** A minimal IPv4 packet of `total` bytes (header length fields valid) whose payload encodes `tag`. */
export function ipv4(total: number, tag: number): Uint8Array {
  const p = new Uint8Array(total);
  p[0] = 0x45;
  p[2] = total >>> 8;
  p[3] = total & 0xff;
  p[8] = 64;
  p[9] = 17;
  for (let i = 20; i < total; i++) p[i] = (tag + i) & 0xff;
  if (total >= 24) {
    p[20] = tag >>> 24;
    p[21] = (tag >>> 16) & 0xff;
    p[22] = (tag >>> 8) & 0xff;
    p[23] = tag & 0xff;
  }
  return p;
}

/** A minimal IPv6 packet with `payload` bytes after the 40-byte header. */
export function ipv6(payload: number, fill: number): Uint8Array {
  const p = new Uint8Array(40 + payload);
  p[0] = 0x60;
  p[4] = payload >>> 8;
  p[5] = payload & 0xff;
  p[6] = 17;
  p[7] = 64;
  p.fill(fill, 40);
  return p;
}

/** Message type of a datagram as sent (first byte). */
export const typeOf = (d: Uint8Array): number => d[0]!;
