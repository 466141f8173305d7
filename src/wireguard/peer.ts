/**
 * One configured WireGuard peer (wireguard-go peer.go, receive.go): PeerSession's handshake,
 * keypairs, timers and sending, plus the receiving half — messages the device has already
 * attributed to this peer (by static key or receiver index): handshakes, cookie replies and
 * transport data, each ending in delivery or a counted drop, and cryptokey routing on receive.
 */
import type { Endpoint } from "../util/endpoint.ts";
import { REJECT_AFTER_TIME, REJECT_COUNTER_LIMIT, TAG_SIZE, TRANSPORT_HEADER_SIZE } from "./constants.ts";
import { innerPacketLength } from "./inner.ts";
import {
  type CookieReply,
  type Initiation,
  type Response,
  transportCounterHigh,
  transportCounterLow,
} from "./messages.ts";
import type { OpenedInitiation } from "./noise.ts";
import { PeerSession } from "./peer-session.ts";

export type { PeerHost, PeerSettings } from "./peer-host.ts";

const TWO32 = 4294967296;
/** Counters above this have a high word ≥ 2^21, i.e. ≥ 2^53: see REJECT_COUNTER_LIMIT. */
const MAX_COUNTER_HIGH = 2 ** 21;

export class Peer extends PeerSession {
  private authenticated(bytes: number, from: Endpoint): void {
    this.stats.rxBytes += bytes;
    this.host.stats.rxBytes += bytes;
    const ep = this.currentEndpoint;
    if (!ep || ep.port !== from.port || ep.address !== from.address) {
      this.currentEndpoint = { address: from.address, port: from.port };
      if (ep) this.events.roamed?.(ep, this.currentEndpoint);
    }
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketReceived();
  }

  /** An initiation whose static key is ours (MACs checked, static already decrypted). */
  receiveInitiation(msg: Initiation, opened: OpenedInitiation, size: number, from: Endpoint): void {
    const err = this.handshake.consumeInitiation(msg, this.host.clock.now(), opened);
    if (err) {
      this.drop(err);
      if (err !== "badState" && err !== "unknownIndex") this.host.reportRejected(err, from);
      return;
    }
    this.host.log.debug(`Received handshake_initiation remote_idx=${msg.sender}`);
    this.authenticated(size, from);
    this.sendHandshakeResponse(from);
  }

  /** A response addressed to one of our indices (MACs checked). */
  receiveResponse(msg: Response, size: number, from: Endpoint): void {
    const err = this.handshake.consumeResponse(msg);
    if (err) {
      this.drop(err === "badState" ? "unknownIndex" : err);
      return;
    }
    this.host.log.debug(`Received handshake_response local_idx=${msg.receiver} remote_idx=${msg.sender}`);
    this.authenticated(size, from);
    const kp = this.beginSession();
    if (!kp) return;
    this.handshakeComplete(kp);
    // Confirms the session to the responder (or flushes the queued packets, which do the same).
    this.sendKeepalive();
  }

  receiveCookieReply(reply: CookieReply): void {
    const pending = this.handshake.state === "initiationCreated" && reply.receiver === this.handshake.localIndex;
    if (!pending && !this.keypairs.hasIndex(reply.receiver)) {
      this.drop("unknownIndex");
      return;
    }
    if (!this.generator.consumeReply(reply)) {
      this.drop("badCookie");
      return;
    }
    this.host.log.debug("Received cookie_reply");
  }

  /** A transport message whose receiver index the device found in this peer's table entries. */
  receiveTransport(data: Uint8Array, receiver: number, from: Endpoint): void {
    const kp = this.keypairs.lookup(receiver);
    if (!kp) {
      this.drop("unknownIndex");
      return;
    }
    const now = this.host.clock.now();
    if (now - kp.created >= REJECT_AFTER_TIME) {
      this.drop("expired");
      return;
    }
    const high = transportCounterHigh(data);
    if (high >= MAX_COUNTER_HIGH) {
      this.drop("replay");
      return;
    }
    const counter = high * TWO32 + transportCounterLow(data);
    const plain = data.subarray(TRANSPORT_HEADER_SIZE, data.length - TAG_SIZE);
    if (!kp.receive.open(counter, data.subarray(TRANSPORT_HEADER_SIZE), plain)) {
      this.drop("decrypt");
      return;
    }
    if (!kp.replay.validate(counter, REJECT_COUNTER_LIMIT)) {
      this.drop("replay");
      return;
    }
    if (this.keypairs.confirm(kp)) {
      this.syncIndices();
      this.handshakeComplete(kp);
      this.sendStagedPackets();
    }
    this.keepKeyFreshReceiving();
    this.authenticated(data.length, from);
    if (plain.length === 0) {
      this.stats.keepalivesReceived++;
      this.host.stats.keepalivesReceived++;
      return;
    }
    this.timers.dataReceived();
    const len = innerPacketLength(plain);
    if (len < 0) {
      this.drop("badInner");
      return;
    }
    const inner = plain.subarray(0, len);
    if (!this.host.ownsSource(this, inner)) {
      this.drop("sourceNotAllowed");
      return;
    }
    this.stats.rxPackets++;
    this.host.stats.rxPackets++;
    this.host.deliver(inner);
  }
}
