/**
 * A WireGuard link to exactly one peer: a WireGuardDevice with one peer whose AllowedIPs are
 * 0.0.0.0/0 and ::/0, every packet going to it (the seed's `-K` mode, and the unit tests' and the
 * e2e client's view of WireGuard). The device does all the work.
 */
import type { DatagramTransport } from "../transport/types.ts";
import type { Clock } from "../util/clock.ts";
import type { Endpoint } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import type { AeadFactory } from "./aead.ts";
import { WireGuardDevice } from "./device.ts";
import type { TunnelEvents } from "./events.ts";
import type { HandshakeQueueOptions } from "./handshake-queue.ts";
import type { Keypairs } from "./keypair.ts";
import type { Peer } from "./peer.ts";
import type { PeerTimers } from "./timers.ts";

export type { RefusedHandshake, TunnelEvents } from "./events.ts";
export { DROP_REASONS, type DropReason, type WireGuardStats } from "./stats.ts";

export interface WireGuardTunnelConfig {
  privateKey: Uint8Array;
  peerPublicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** Initial peer endpoint: with one, start() initiates a handshake towards it. */
  endpoint?: Endpoint;
  /** Persistent keepalive interval in seconds; 0 or absent = off. */
  persistentKeepalive?: number;
  /** Packets queued while there is no session (default 256); the oldest is dropped when full. */
  transmitQueueCapacity?: number;
  /** Inner MTU: padding stops there (default 0 = no cap). */
  mtu?: number;
  transport: DatagramTransport;
  clock: Clock;
  random: Random;
  log: Logger;
  /** When true, handshake messages need a valid MAC2 (else we answer with a cookie reply). */
  underLoad?: () => boolean;
  /** Handshake queue, load detection and rate limit settings (handshake-queue.ts). */
  handshakeQueue?: HandshakeQueueOptions;
  /** AEAD backend (default selectAead()). */
  aead?: AeadFactory;
  /** What an operator wants to know about (observe/peer-log.ts turns these into log lines). */
  events?: TunnelEvents;
}

export class WireGuardTunnel extends WireGuardDevice {
  readonly peer: Peer;

  constructor(cfg: WireGuardTunnelConfig) {
    const events = cfg.events;
    super({
      ...cfg,
      events: events
        ? { peer: () => events, handshakeRejected: (r, from) => events.handshakeRejected?.(r, from) }
        : undefined,
    });
    this.peer = this.addPeer({
      publicKey: cfg.peerPublicKey,
      presharedKey: cfg.presharedKey,
      endpoint: cfg.endpoint,
      persistentKeepalive: cfg.persistentKeepalive,
      allowedIps: ["0.0.0.0/0", "::/0"],
    });
  }

  /** Everything goes to the one peer, IP or not (the far side validates what it decrypts). */
  override send(packet: Uint8Array, owned = false): void {
    if (this.isClosed) {
      this.stats.drops.closed++;
      return;
    }
    this.peer.send(packet, owned);
  }

  /** A handshake has completed and its session has not been lost since. */
  get hasSession(): boolean {
    return this.peer.hasSession;
  }

  get endpoint(): Endpoint | undefined {
    return this.peer.endpoint;
  }

  get keypairs(): Keypairs {
    return this.peer.keypairs;
  }

  get timers(): PeerTimers {
    return this.peer.timers;
  }
}
