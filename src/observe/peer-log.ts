/**
 * The operator's view of a peer, as log lines: session established / lost with the endpoint and
 * roaming at info, key rotations at debug, refused handshakes as at most one warning per second
 * carrying counts (a flood of wrong-key handshakes must not flood the log).
 */
import type { Clock, Timer } from "../util/clock.ts";
import { type Endpoint, formatEndpoint } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";
import { keyToBase64 } from "../wireguard/keys.ts";
import type { Peer } from "../wireguard/peer.ts";
import type { RefusedHandshake, TunnelEvents } from "../wireguard/tunnel.ts";

/** One warning per this many ms, at most, for refused handshakes. */
export const REJECTION_WINDOW_MS = 1000;

const REJECTION_TEXT: Record<RefusedHandshake, string> = {
  badMac1: "bad MAC1 (sent to another public key)",
  unknownPeer: "unknown peer key",
  handshakeDecrypt: "could not decrypt",
  handshakeReplay: "stale or replayed timestamp",
  handshakeFlood: "initiations too frequent",
};

/**
 * Counts refused handshakes and reports them once per window: the first one arms a timer; when it
 * fires, one warning gives the total, the count per reason and the last source address.
 */
export class RejectionReporter {
  private readonly counts = new Map<RefusedHandshake, number>();
  private total = 0;
  private last: Endpoint | undefined;
  private readonly timer: Timer;

  constructor(
    private readonly log: Logger,
    clock: Clock,
    private readonly windowMs = REJECTION_WINDOW_MS,
  ) {
    this.timer = clock.timer(() => this.flush());
  }

  add(reason: RefusedHandshake, from: Endpoint): void {
    if (this.total === 0) this.timer.set(this.windowMs);
    this.total++;
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.last = from;
  }

  private flush(): void {
    if (this.total === 0) return;
    const reasons = [...this.counts].map(([r, n]) => `${REJECTION_TEXT[r]} ×${n}`).join(", ");
    const seconds = (this.windowMs / 1000).toFixed(0);
    const noun = this.total === 1 ? "handshake" : "handshakes";
    this.log.warn(
      `${this.total} ${noun} refused in ${seconds} s: ${reasons} (last from ${this.last ? formatEndpoint(this.last) : "?"})`,
    );
    this.total = 0;
    this.counts.clear();
    this.last = undefined;
  }

  close(): void {
    this.timer.clear();
  }
}

/** TunnelEvents that log for the peer called `peer` (e.g. `peer rPpCjWzI…`). */
export function peerLogEvents(log: Logger, peer: string, rejections: RejectionReporter): TunnelEvents {
  const at = (e: Endpoint | undefined) => (e ? formatEndpoint(e) : "an unknown endpoint");
  return {
    sessionEstablished(endpoint, rekey) {
      if (rekey) log.debug(`${peer}: new session keys (endpoint ${at(endpoint)})`);
      else log.info(`${peer}: session established with ${at(endpoint)}`);
    },
    sessionLost(reason, endpoint) {
      log.info(`${peer}: session lost (${reason}); last endpoint ${at(endpoint)}`);
    },
    roamed(from, to) {
      log.info(`${peer}: roamed from ${formatEndpoint(from)} to ${formatEndpoint(to)}`);
    },
    handshakeRejected(reason, from) {
      rejections.add(reason, from);
    },
  };
}

/** A peer's metric labels: its public key (as `wg show` prints it), and its name when it has one. */
export function peerMetricLabels(peer: Peer): Record<string, string> {
  const key = keyToBase64(peer.publicKey);
  return peer.name ? { peer: key, name: peer.name } : { peer: key };
}

/** How logs name a peer: its name when it has one, else its public key, shortened. */
export function peerLabel(peer: Peer): string {
  const key = `${keyToBase64(peer.publicKey).slice(0, 8)}…`;
  return peer.name ? `peer ${peer.name} (${key})` : `peer ${key}`;
}
