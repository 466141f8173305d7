/** What an operator wants to know about sessions and refused handshakes (observe/peer-log.ts logs them). */
import type { Endpoint } from "../util/endpoint.ts";
import type { Peer } from "./peer.ts";

/** Handshake reasons reported to TunnelEvents.handshakeRejected. */
export type RefusedHandshake = "badMac1" | "unknownPeer" | "handshakeDecrypt" | "handshakeReplay" | "handshakeFlood";

/** Session lifecycle hooks of one peer; called off the transport hot path (handshakes, roaming, timeouts). */
export interface TunnelEvents {
  /** A handshake completed; `rekey` when a session was already up (a routine key rotation). */
  sessionEstablished?(endpoint: Endpoint | undefined, rekey: boolean): void;
  /** The session that was up is gone: its keys expired, or re-handshaking gave up. */
  sessionLost?(reason: string, endpoint: Endpoint | undefined): void;
  /** An authenticated packet came from a new address: replies go there now. */
  roamed?(from: Endpoint, to: Endpoint): void;
  /** An initiation or response was refused (wrong key, bad MAC1, stale timestamp...). */
  handshakeRejected?(reason: RefusedHandshake, from: Endpoint): void;
}

/** The device's hooks: one TunnelEvents per peer, and refusals no peer can be named for. */
export interface DeviceEvents {
  peer?(peer: Peer): TunnelEvents;
  handshakeRejected?(reason: RefusedHandshake, from: Endpoint): void;
}
