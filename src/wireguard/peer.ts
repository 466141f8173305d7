/**
 * One configured WireGuard peer (wireguard-go peer.go, send.go, receive.go): its Noise handshake,
 * keypairs, timers, endpoint (roaming to the source of every authenticated packet), the queue of
 * packets staged while there is no session, and its own counters (also summed into the device's).
 *
 * The device owns the socket, the index table, MAC/cookie checks and the routing table; it hands a
 * peer only messages already attributed to it.
 */
import type { Clock } from "../util/clock.ts";
import type { Endpoint } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import type { AeadFactory } from "./aead.ts";
import {
  PADDING_MULTIPLE,
  REJECT_AFTER_TIME,
  REJECT_COUNTER_LIMIT,
  REKEY_AFTER_TIME,
  REKEY_ON_RECEIVE_AGE,
  REKEY_SEND_COUNTER,
  REKEY_TIMEOUT,
  TAG_SIZE,
  TRANSPORT_HEADER_SIZE,
} from "./constants.ts";
import { CookieGenerator } from "./cookie.ts";
import type { RefusedHandshake, TunnelEvents } from "./events.ts";
import { innerPacketLength } from "./inner.ts";
import { Keypair, Keypairs } from "./keypair.ts";
import { generatePrivateKey } from "./keys.ts";
import {
  type CookieReply,
  type Initiation,
  type Response,
  transportCounterHigh,
  transportCounterLow,
  writeTransportHeader,
} from "./messages.ts";
import { NoiseHandshake, type OpenedInitiation } from "./noise.ts";
import { type DropReason, emptyStats, type PeerStats } from "./stats.ts";
import { PeerTimers } from "./timers.ts";

/** What a peer needs from its device. */
export interface PeerHost {
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly aead: AeadFactory;
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

const EMPTY = new Uint8Array(0);
const TWO32 = 4294967296;
/** Counters above this have a high word ≥ 2^21, i.e. ≥ 2^53: see REJECT_COUNTER_LIMIT. */
const MAX_COUNTER_HIGH = 2 ** 21;

export class Peer {
  readonly publicKey: Uint8Array;
  readonly stats: PeerStats = emptyStats();
  readonly keypairs = new Keypairs();
  timers: PeerTimers;
  /** Optional name (from the state directory or a config comment), for logs and `status`. */
  name: string | undefined;
  private presharedKeyBytes: Uint8Array | undefined;
  private currentEndpoint: Endpoint | undefined;
  private handshake: NoiseHandshake;
  private readonly generator: CookieGenerator;
  private staged: Uint8Array[] = [];
  private lastSentHandshakeAt = Number.NEGATIVE_INFINITY;
  private sessionCount = 0;
  /** Indices this peer holds in the device's table (pending handshake + live keypairs). */
  private ownedIndices: number[] = [];
  /** A session is up (for TunnelEvents: established vs rekeyed, and lost). */
  private sessionUp = false;
  private started = false;
  private closed = false;

  constructor(
    private readonly host: PeerHost,
    settings: PeerSettings,
    private readonly queueCapacity: number,
    public events: TunnelEvents = {},
  ) {
    this.publicKey = Uint8Array.from(settings.publicKey);
    this.presharedKeyBytes = settings.presharedKey ? Uint8Array.from(settings.presharedKey) : undefined;
    this.handshake = this.newHandshake();
    this.generator = new CookieGenerator(this.publicKey, host.clock);
    this.currentEndpoint = settings.endpoint ? { ...settings.endpoint } : undefined;
    this.timers = this.newTimers(Math.max(0, settings.persistentKeepalive ?? 0));
  }

  private newHandshake(): NoiseHandshake {
    return new NoiseHandshake(
      this.host.privateKey,
      this.publicKey,
      this.presharedKeyBytes,
      this.host.aead,
      this.host.publicKey,
    );
  }

  private newTimers(keepaliveSeconds: number): PeerTimers {
    return new PeerTimers(
      this.host.clock,
      this.host.random,
      {
        sendKeepalive: () => this.sendKeepalive(),
        sendHandshakeInitiation: (isRetry) => this.sendHandshakeInitiation(isRetry),
        handshakeGaveUp: () => {
          this.discardStaged("noSession");
          this.lostSession("no handshake answer for 90 s");
        },
        zeroKeyMaterial: () => this.zeroKeyMaterial(),
        log: (m) => this.host.log.debug(m),
      },
      keepaliveSeconds * 1000,
    );
  }

  /** A handshake has completed and its session has not been lost since. */
  get hasSession(): boolean {
    return this.sessionUp;
  }

  /** The peer's current address: roams to the source of every authenticated packet. */
  get endpoint(): Endpoint | undefined {
    return this.currentEndpoint;
  }

  set endpoint(to: Endpoint | undefined) {
    this.currentEndpoint = to ? { address: to.address, port: to.port } : undefined;
  }

  get presharedKey(): Uint8Array | undefined {
    return this.presharedKeyBytes;
  }

  get persistentKeepalive(): number {
    return this.timers.persistentKeepaliveMs / 1000;
  }

  /** Change the preshared key: the next handshake uses it (sessions in flight are dropped). */
  setPresharedKey(psk: Uint8Array | undefined): void {
    this.presharedKeyBytes = psk ? Uint8Array.from(psk) : undefined;
    this.rekeyStatic();
  }

  /** The device's private key (or this peer's PSK) changed: start over with no session. */
  rekeyStatic(): void {
    this.handshake.clear();
    this.keypairs.clear();
    this.handshake = this.newHandshake();
    this.syncIndices();
  }

  setPersistentKeepalive(seconds: number): void {
    const wasOff = this.timers.persistentKeepaliveMs === 0;
    this.timers.stopAll();
    this.timers = this.newTimers(Math.max(0, seconds));
    // wireguard-go sends a keepalive at once when persistent keepalive is switched on.
    if (this.started && wasOff && seconds > 0) this.sendKeepalive();
  }

  start(): void {
    this.started = true;
    if (!this.currentEndpoint) return;
    // wireguard-go sends a keepalive at peer start when persistent keepalive is on; either way
    // the lack of a session makes that a handshake initiation.
    if (this.timers.persistentKeepaliveMs > 0) this.sendKeepalive();
    else this.sendHandshakeInitiation(false);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timers.stopAll();
    this.keypairs.clear();
    this.handshake.clear();
    this.staged = [];
    this.syncIndices();
  }

  private drop(reason: DropReason): void {
    this.stats.drops[reason]++;
    this.host.stats.drops[reason]++;
  }

  /** Release table entries for indices no longer held by the handshake or a keypair. */
  private syncIndices(): void {
    const kp = this.keypairs;
    const pending = this.handshake.state === "zeroed" ? 0 : this.handshake.localIndex;
    let keep = 0;
    for (const idx of this.ownedIndices) {
      const live =
        idx === pending ||
        idx === kp.current?.localIndex ||
        idx === kp.previous?.localIndex ||
        idx === kp.next?.localIndex;
      if (live) this.ownedIndices[keep++] = idx;
      else this.host.releaseIndex(idx);
    }
    this.ownedIndices.length = keep;
  }

  private newIndex(): number {
    const idx = this.host.allocateIndex(this);
    this.ownedIndices.push(idx);
    return idx;
  }

  // ---------------------------------------------------------------- sending

  /** Encrypt and send one inner packet (queued while there is no usable session). */
  send(packet: Uint8Array): void {
    if (this.closed) {
      this.drop("closed");
      return;
    }
    const kp = this.keypairs.current;
    if (this.staged.length === 0 && kp && this.usable(kp) && this.currentEndpoint) {
      this.encryptAndSend(kp, packet, this.currentEndpoint);
      this.keepKeyFreshSending();
      return;
    }
    this.stage(packet.length === 0 ? EMPTY : packet.slice());
    this.sendStagedPackets();
  }

  /** Send what waits for a session, or start a handshake for it (after a configuration change). */
  sendStaged(): void {
    this.sendStagedPackets();
  }

  private usable(kp: Keypair): boolean {
    return kp.sendCounter < REJECT_COUNTER_LIMIT && this.host.clock.now() - kp.created < REJECT_AFTER_TIME;
  }

  private stage(packet: Uint8Array): void {
    if (this.staged.length >= this.queueCapacity) {
      this.staged.shift();
      this.drop("queueFull");
    }
    this.staged.push(packet);
  }

  private discardStaged(reason: DropReason): void {
    for (const p of this.staged) if (p.length > 0) this.drop(reason);
    this.staged = [];
  }

  private sendStagedPackets(): void {
    if (this.staged.length === 0 || this.closed) return;
    const kp = this.keypairs.current;
    const to = this.currentEndpoint;
    if (!kp || !this.usable(kp) || !to) {
      this.sendHandshakeInitiation(false);
      return;
    }
    const queue = this.staged;
    this.staged = [];
    for (const p of queue) this.encryptAndSend(kp, p, to);
    this.keepKeyFreshSending();
  }

  private encryptAndSend(kp: Keypair, packet: Uint8Array, to: Endpoint): void {
    const n = packet.length;
    const padded = (n + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
    const out = new Uint8Array(TRANSPORT_HEADER_SIZE + padded + TAG_SIZE);
    const counter = kp.sendCounter++;
    writeTransportHeader(out, kp.remoteIndex, counter);
    out.set(packet, TRANSPORT_HEADER_SIZE);
    kp.send.seal(counter, out.subarray(TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + padded), out.subarray(16));
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    if (n > 0) {
      this.timers.dataSent();
      this.stats.txPackets++;
      this.host.stats.txPackets++;
    } else {
      this.stats.keepalivesSent++;
      this.host.stats.keepalivesSent++;
      this.host.log.debug("Sending keepalive");
    }
    this.transmit(out, to);
  }

  private transmit(data: Uint8Array, to: Endpoint): void {
    this.stats.txBytes += data.length;
    this.host.stats.txBytes += data.length;
    this.host.transmit(data, to);
  }

  private keepKeyFreshSending(): void {
    const kp = this.keypairs.current;
    if (!kp) return;
    if (
      kp.sendCounter > REKEY_SEND_COUNTER ||
      (kp.isInitiator && this.host.clock.now() - kp.created > REKEY_AFTER_TIME)
    ) {
      this.sendHandshakeInitiation(false);
    }
  }

  private keepKeyFreshReceiving(): void {
    if (this.timers.sentLastMinuteHandshake) return;
    const kp = this.keypairs.current;
    if (kp?.isInitiator && this.host.clock.now() - kp.created > REKEY_ON_RECEIVE_AGE) {
      this.timers.sentLastMinuteHandshake = true;
      this.sendHandshakeInitiation(false);
    }
  }

  private sendKeepalive(): void {
    if (this.closed) return;
    if (this.staged.length === 0) this.staged.push(EMPTY);
    this.sendStagedPackets();
  }

  private sendHandshakeInitiation(isRetry: boolean): void {
    if (!isRetry) this.timers.handshakeAttempts = 0;
    const to = this.currentEndpoint;
    if (this.closed || !to) return;
    const now = this.host.clock.now();
    if (now - this.lastSentHandshakeAt < REKEY_TIMEOUT) return;
    this.lastSentHandshakeAt = now;
    const msg = this.handshake.createInitiation(
      this.newIndex(),
      generatePrivateKey(this.host.random),
      this.host.clock.wallNow(),
    );
    this.syncIndices();
    if (!msg) return;
    this.generator.addMacs(msg);
    this.host.log.debug("Sending handshake_initiation");
    this.stats.handshakeInitiationsSent++;
    this.host.stats.handshakeInitiationsSent++;
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    // Armed before sending: over a synchronous transport the response (which disarms it) can
    // arrive inside transmit().
    this.timers.handshakeInitiated();
    this.transmit(msg, to);
  }

  private sendHandshakeResponse(to: Endpoint): void {
    this.lastSentHandshakeAt = this.host.clock.now();
    const msg = this.handshake.createResponse(this.newIndex(), generatePrivateKey(this.host.random));
    if (!msg) {
      this.handshake.clear();
      this.syncIndices();
      this.drop("handshakeDecrypt");
      return;
    }
    this.generator.addMacs(msg);
    this.beginSession();
    this.host.log.debug("Sending handshake_response");
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    this.transmit(msg, to);
  }

  private beginSession(): Keypair | undefined {
    const keys = this.handshake.deriveKeys();
    if (!keys) return undefined;
    const kp = new Keypair(
      this.host.aead(keys.sendKey),
      this.host.aead(keys.receiveKey),
      keys.isInitiator,
      keys.localIndex,
      keys.remoteIndex,
      this.host.clock.now(),
    );
    keys.sendKey.fill(0);
    keys.receiveKey.fill(0);
    this.keypairs.install(kp);
    this.syncIndices();
    this.timers.sessionDerived();
    return kp;
  }

  private handshakeComplete(kp: Keypair): void {
    this.timers.handshakeComplete(this.host.clock.now());
    const wall = this.host.clock.wallNow();
    this.stats.handshakesCompleted++;
    this.host.stats.handshakesCompleted++;
    this.stats.lastHandshakeAt = wall;
    this.host.stats.lastHandshakeAt = wall;
    this.sessionCount++;
    this.host.log.debug(
      `New session session=${this.sessionCount} local_idx=${kp.localIndex} remote_idx=${kp.remoteIndex}`,
    );
    this.events.sessionEstablished?.(this.currentEndpoint, this.sessionUp);
    this.sessionUp = true;
  }

  private lostSession(reason: string): void {
    if (!this.sessionUp) return;
    this.sessionUp = false;
    this.events.sessionLost?.(reason, this.currentEndpoint);
  }

  private zeroKeyMaterial(): void {
    this.host.log.debug(
      `Removing all keys, since we haven't received a new one in ${(REJECT_AFTER_TIME * 3) / 1000} seconds`,
    );
    this.keypairs.clear();
    this.handshake.clear();
    this.syncIndices();
    this.discardStaged("noSession");
    this.lostSession(`no new keys for ${(REJECT_AFTER_TIME * 3) / 1000} s`);
  }

  // ---------------------------------------------------------------- receiving

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
