/** How a WireGuardDevice and its peers are configured (device.ts). */
import type { DatagramTransport } from "../transport/types.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import type { Prefix } from "../wire/prefix.ts";
import type { AeadFactory } from "./aead.ts";
import type { DeviceEvents } from "./events.ts";
import type { HandshakeQueueOptions } from "./handshake-queue.ts";
import type { PeerSettings } from "./peer.ts";

export interface DeviceConfig {
  privateKey: Uint8Array;
  transport: DatagramTransport;
  clock: Clock;
  random: Random;
  log: Logger;
  /** Packets queued per peer while it has no session (default 256); the oldest is dropped when full. */
  transmitQueueCapacity?: number;
  /** Inner MTU: padding stops there (wireguard-go's calculatePaddingSize); default 0 = no cap. */
  mtu?: number;
  /** At most this many peers (default 65536): addPeer() beyond it throws. */
  maxPeers?: number;
  /** When true, handshake messages need a valid MAC2 (else we answer with a cookie reply). */
  underLoad?: () => boolean;
  /** Handshake queue, load detection and rate limit settings (handshake-queue.ts). */
  handshakeQueue?: HandshakeQueueOptions;
  /**
   * AEAD backend for handshake and transport packets (default selectAead(): sodium-native when it
   * loads, else @noble/ciphers; env WGSLIRPY_AEAD=noble forces noble).
   */
  aead?: AeadFactory;
  /** Session and refused-handshake hooks (observe/peer-log.ts turns them into log lines). */
  events?: DeviceEvents;
}

export interface PeerConfig extends PeerSettings {
  /** Prefixes whose packets this peer may send and receive ("10.0.0.2/32", "fd00::/64"). */
  allowedIps?: (string | Prefix)[];
  name?: string;
}
