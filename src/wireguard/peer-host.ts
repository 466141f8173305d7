/** What a peer needs from its device, and what configures it. */
import type { Clock } from "../util/clock.ts";
import type { Endpoint } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import type { AeadFactory } from "./aead.ts";
import type { RefusedHandshake } from "./events.ts";
import type { Peer } from "./peer.ts";
import type { PeerStats } from "./stats.ts";

/** What a peer needs from its device. */
export interface PeerHost {
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly aead: AeadFactory;
  /** Inner MTU: transport messages are padded to a multiple of 16 but not past it (0 = no cap). */
  readonly mtu: number;
  /** The device's counters: every peer counter is added there too. */
  readonly stats: PeerStats;
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  transmit(data: Uint8Array, to: Endpoint): void;
  /** A fresh session index registered to `peer` in the device's index table. */
  allocateIndex(peer: Peer): number;
  releaseIndex(index: number): void;
  /** Cryptokey routing on receive: does `peer` own this inner packet's source address? */
  ownsSource(peer: Peer, packet: Uint8Array): boolean;
  /** Hand a decrypted, source-checked inner packet to the netstack. */
  deliver(packet: Uint8Array): void;
  /** A refused handshake, for the operator's log (the peer has counted it). */
  reportRejected(reason: RefusedHandshake, from: Endpoint): void;
}

export interface PeerSettings {
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** Initial endpoint: with one, start() initiates a handshake towards it. */
  endpoint?: Endpoint;
  /** Persistent keepalive interval in seconds; 0 or absent = off. */
  persistentKeepalive?: number;
}
