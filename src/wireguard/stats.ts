/** Drop reasons and counters of the WireGuard device and of each peer. */
import type { HandshakeLoadStats } from "./handshake-queue.ts";

/** Drop reasons, counted in stats.drops. */
export const DROP_REASONS = [
  "short", // shorter than its message type allows
  "badType", // unknown type or nonzero reserved bytes
  "badLength", // handshake message of the wrong size
  "badMac1",
  "badMac2", // under load without a valid MAC2: a cookie reply was sent instead
  "rateLimited", // under load, valid MAC2, but its source sent more than 20/s (burst 5)
  "handshakeQueueFull", // more handshake messages waiting than the queue holds
  "handshakeDecrypt",
  "unknownPeer",
  "handshakeReplay",
  "handshakeFlood",
  "badState",
  "badCookie",
  "unknownIndex",
  "expired", // transport packet on a keypair older than REJECT_AFTER_TIME
  "decrypt",
  "replay",
  "badInner", // decrypted payload is not a valid IPv4/IPv6 packet
  "sourceNotAllowed", // inner source address outside the sending peer's AllowedIPs
  "noRoute", // outgoing packet whose destination no peer's AllowedIPs contain
  "queueFull", // oldest queued packet dropped while waiting for a session
  "noSession", // queued packets discarded when the handshake gave up
  "closed",
  "internal",
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Counters kept per peer and, summed over every peer, for the whole device. */
export interface PeerStats {
  /** Inner IP packets delivered to onPacket / sent (keepalives excluded). */
  rxPackets: number;
  txPackets: number;
  /** Outer bytes of authenticated messages received / all messages sent (like `wg show` transfer). */
  rxBytes: number;
  txBytes: number;
  keepalivesReceived: number;
  keepalivesSent: number;
  handshakeInitiationsSent: number;
  cookieRepliesSent: number;
  handshakesCompleted: number;
  /** Wall-clock ms of the last completed handshake, 0 = never. */
  lastHandshakeAt: number;
  drops: Record<DropReason, number>;
}

/** The device's counters: every peer's summed, plus the handshake queue's. */
export interface WireGuardStats extends PeerStats {
  /** Under-load state, handshake queue and rate limiter table. */
  handshakeLoad: HandshakeLoadStats;
}

export function emptyStats(): PeerStats {
  const drops = {} as Record<DropReason, number>;
  for (const r of DROP_REASONS) drops[r] = 0;
  return {
    rxPackets: 0,
    txPackets: 0,
    rxBytes: 0,
    txBytes: 0,
    keepalivesReceived: 0,
    keepalivesSent: 0,
    handshakeInitiationsSent: 0,
    cookieRepliesSent: 0,
    handshakesCompleted: 0,
    lastHandshakeAt: 0,
    drops,
  };
}
