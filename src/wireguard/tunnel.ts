/**
 * A WireGuard peer link: one configured peer, our own Noise handshake, transport encryption and
 * the wireguard-go timer rules, over any DatagramTransport. Implements IpLink for the netstack.
 *
 * Every datagram handler path ends in a counted drop on bad input; nothing throws out of
 * onDatagram. Received transport packets are decrypted in place (the datagram belongs to us).
 */
import type { IpLink } from "../link.ts";
import type { DatagramTransport } from "../transport/types.ts";
import type { Clock } from "../util/clock.ts";
import { type Endpoint, formatEndpoint } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import { type AeadFactory, aeadBackendName, selectAead } from "./aead.ts";
import {
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
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
import { CookieChecker, CookieGenerator } from "./cookie.ts";
import { type HandshakeLoadStats, HandshakeQueue, type HandshakeQueueOptions } from "./handshake-queue.ts";
import { innerPacketLength } from "./inner.ts";
import { Keypair, Keypairs } from "./keypair.ts";
import { generatePrivateKey } from "./keys.ts";
import {
  messageType,
  parseCookieReply,
  parseInitiation,
  parseResponse,
  transportCounterHigh,
  transportCounterLow,
  transportReceiver,
  writeTransportHeader,
} from "./messages.ts";
import { NoiseHandshake } from "./noise.ts";
import { PeerTimers } from "./timers.ts";
import { x25519Backend, x25519BackendReason } from "./x25519.ts";

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
  transport: DatagramTransport;
  clock: Clock;
  random: Random;
  log: Logger;
  /** When true, handshake messages need a valid MAC2 (else we answer with a cookie reply). */
  underLoad?: () => boolean;
  /** Handshake queue, load detection and rate limit settings (handshake-queue.ts). */
  handshakeQueue?: HandshakeQueueOptions;
  /**
   * AEAD backend for handshake and transport packets (default selectAead(): sodium-native when it
   * loads, else @noble/ciphers; env WGSLIRPY_AEAD=noble forces noble).
   */
  aead?: AeadFactory;
  /** What an operator wants to know about (observe/peer-log.ts turns these into log lines). */
  events?: TunnelEvents;
}

/** Handshake reasons reported to TunnelEvents.handshakeRejected. */
export type RefusedHandshake = "badMac1" | "unknownPeer" | "handshakeDecrypt" | "handshakeReplay" | "handshakeFlood";

/** Session lifecycle hooks; called off the transport hot path (handshakes, roaming, timeouts). */
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
  "queueFull", // oldest queued packet dropped while waiting for a session
  "noSession", // queued packets discarded when the handshake gave up
  "closed",
  "internal",
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface WireGuardStats {
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
  /** Under-load state, handshake queue and rate limiter table. */
  handshakeLoad: HandshakeLoadStats;
  drops: Record<DropReason, number>;
}

const EMPTY = new Uint8Array(0);
const TWO32 = 4294967296;
/** Counters above this have a high word ≥ 2^21, i.e. ≥ 2^53: see REJECT_COUNTER_LIMIT. */
const MAX_COUNTER_HIGH = 2 ** 21;

export class WireGuardTunnel implements IpLink {
  onPacket: (packet: Uint8Array) => void = () => {};
  readonly stats: WireGuardStats;
  private currentEndpoint: Endpoint | undefined;
  private readonly transport: DatagramTransport;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly aead: AeadFactory;
  private readonly handshake: NoiseHandshake;
  private readonly handshakeQueue: HandshakeQueue;
  private readonly generator: CookieGenerator;
  readonly keypairs = new Keypairs();
  readonly timers: PeerTimers;
  private readonly queueCapacity: number;
  /** Packets waiting for a session (copies; EMPTY stands for a keepalive). */
  private staged: Uint8Array[] = [];
  private lastSentHandshakeAt = Number.NEGATIVE_INFINITY;
  private sessionCount = 0;
  /** A session is up (for TunnelEvents: established vs rekeyed, and lost). */
  private sessionUp = false;
  private readonly events: TunnelEvents;
  private closed = false;

  constructor(cfg: WireGuardTunnelConfig) {
    this.transport = cfg.transport;
    this.clock = cfg.clock;
    this.random = cfg.random;
    this.log = cfg.log;
    this.events = cfg.events ?? {};
    if (cfg.aead) {
      this.aead = cfg.aead;
      this.log.debug(`WireGuard AEAD: ${aeadBackendName(cfg.aead)} (configured)`);
    } else {
      this.aead = selectAead(this.log);
    }
    this.log.debug(`WireGuard X25519: ${x25519Backend().name} (${x25519BackendReason()})`);
    this.currentEndpoint = cfg.endpoint ? { address: cfg.endpoint.address, port: cfg.endpoint.port } : undefined;
    this.queueCapacity = Math.max(1, cfg.transmitQueueCapacity ?? 256);
    this.handshake = new NoiseHandshake(cfg.privateKey, cfg.peerPublicKey, cfg.presharedKey, this.aead);
    const localPublic = this.handshake.localPublicKey;
    this.handshakeQueue = new HandshakeQueue(
      cfg.clock,
      new CookieChecker(localPublic, cfg.clock, cfg.random),
      {
        process: (data, from) => this.onHandshake(data, from),
        reject: (reason, from) => (reason === "badMac1" ? this.rejectHandshake(reason, from) : this.drop(reason)),
        sendCookieReply: (reply, to) => {
          this.log.debug("Sending cookie_reply");
          this.stats.cookieRepliesSent++;
          this.transmit(reply, to);
        },
      },
      { underLoad: cfg.underLoad, ...cfg.handshakeQueue },
    );
    this.generator = new CookieGenerator(cfg.peerPublicKey, cfg.clock);
    const persistentMs = Math.max(0, cfg.persistentKeepalive ?? 0) * 1000;
    this.timers = new PeerTimers(
      cfg.clock,
      cfg.random,
      {
        sendKeepalive: () => this.sendKeepalive(),
        sendHandshakeInitiation: (isRetry) => this.sendHandshakeInitiation(isRetry),
        handshakeGaveUp: () => {
          this.discardStaged("noSession");
          this.lostSession("no handshake answer for 90 s");
        },
        zeroKeyMaterial: () => this.zeroKeyMaterial(),
        log: (m) => this.log.debug(m),
      },
      persistentMs,
    );
    const drops = {} as Record<DropReason, number>;
    for (const r of DROP_REASONS) drops[r] = 0;
    this.stats = {
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
      handshakeLoad: this.handshakeQueue.stats,
      drops,
    };
  }

  /** A handshake has completed and its session has not been lost since. */
  get hasSession(): boolean {
    return this.sessionUp;
  }

  /** The peer's current address: roams to the source of every authenticated packet. */
  get endpoint(): Endpoint | undefined {
    return this.currentEndpoint;
  }

  start(): void {
    this.transport.onDatagram = (data, from) => this.onDatagram(data, from);
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
    this.handshakeQueue.close();
    this.keypairs.clear();
    this.handshake.clear();
    this.staged = [];
    this.transport.onDatagram = () => {};
  }

  // ---------------------------------------------------------------- sending

  send(packet: Uint8Array): void {
    if (this.closed) {
      this.stats.drops.closed++;
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

  private usable(kp: Keypair): boolean {
    return kp.sendCounter < REJECT_COUNTER_LIMIT && this.clock.now() - kp.created < REJECT_AFTER_TIME;
  }

  private stage(packet: Uint8Array): void {
    if (this.staged.length >= this.queueCapacity) {
      this.staged.shift();
      this.stats.drops.queueFull++;
    }
    this.staged.push(packet);
  }

  private discardStaged(reason: DropReason): void {
    for (const p of this.staged) if (p.length > 0) this.stats.drops[reason]++;
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
    } else {
      this.stats.keepalivesSent++;
      this.log.debug("Sending keepalive");
    }
    this.stats.txBytes += out.length;
    this.transport.send(out, to);
  }

  private keepKeyFreshSending(): void {
    const kp = this.keypairs.current;
    if (!kp) return;
    if (kp.sendCounter > REKEY_SEND_COUNTER || (kp.isInitiator && this.clock.now() - kp.created > REKEY_AFTER_TIME)) {
      this.sendHandshakeInitiation(false);
    }
  }

  private keepKeyFreshReceiving(): void {
    if (this.timers.sentLastMinuteHandshake) return;
    const kp = this.keypairs.current;
    if (kp?.isInitiator && this.clock.now() - kp.created > REKEY_ON_RECEIVE_AGE) {
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
    const now = this.clock.now();
    if (now - this.lastSentHandshakeAt < REKEY_TIMEOUT) return;
    this.lastSentHandshakeAt = now;
    const msg = this.handshake.createInitiation(this.newIndex(), generatePrivateKey(this.random), this.clock.wallNow());
    if (!msg) return;
    this.generator.addMacs(msg);
    this.log.debug("Sending handshake_initiation");
    this.stats.handshakeInitiationsSent++;
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    // Armed before sending: over a synchronous transport the response (which disarms it) can
    // arrive inside transmit().
    this.timers.handshakeInitiated();
    this.transmit(msg, to);
  }

  private sendHandshakeResponse(to: Endpoint): void {
    this.lastSentHandshakeAt = this.clock.now();
    const msg = this.handshake.createResponse(this.newIndex(), generatePrivateKey(this.random));
    if (!msg) {
      this.handshake.clear();
      this.drop("handshakeDecrypt");
      return;
    }
    this.generator.addMacs(msg);
    this.beginSession();
    this.log.debug("Sending handshake_response");
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    this.transmit(msg, to);
  }

  private transmit(data: Uint8Array, to: Endpoint): void {
    this.stats.txBytes += data.length;
    this.transport.send(data, to);
  }

  /** A fresh nonzero session index not used by a live keypair or the pending handshake. */
  private newIndex(): number {
    for (;;) {
      const idx = this.random.u32();
      if (idx !== 0 && idx !== this.handshake.localIndex && !this.keypairs.hasIndex(idx)) return idx;
    }
  }

  private beginSession(): Keypair | undefined {
    const keys = this.handshake.deriveKeys();
    if (!keys) return undefined;
    const kp = new Keypair(
      this.aead(keys.sendKey),
      this.aead(keys.receiveKey),
      keys.isInitiator,
      keys.localIndex,
      keys.remoteIndex,
      this.clock.now(),
    );
    keys.sendKey.fill(0);
    keys.receiveKey.fill(0);
    this.keypairs.install(kp);
    this.timers.sessionDerived();
    return kp;
  }

  private handshakeComplete(kp: Keypair): void {
    this.timers.handshakeComplete(this.clock.now());
    this.stats.handshakesCompleted++;
    this.stats.lastHandshakeAt = this.clock.wallNow();
    this.sessionCount++;
    this.log.debug(`New session session=${this.sessionCount} local_idx=${kp.localIndex} remote_idx=${kp.remoteIndex}`);
    this.events.sessionEstablished?.(this.currentEndpoint, this.sessionUp);
    this.sessionUp = true;
  }

  private lostSession(reason: string): void {
    if (!this.sessionUp) return;
    this.sessionUp = false;
    this.events.sessionLost?.(reason, this.currentEndpoint);
  }

  /** A refused handshake: counted, and reported (the log rate-limits it). */
  private rejectHandshake(reason: RefusedHandshake, from: Endpoint): void {
    this.drop(reason);
    this.events.handshakeRejected?.(reason, from);
  }

  private zeroKeyMaterial(): void {
    this.log.debug(
      `Removing all keys, since we haven't received a new one in ${(REJECT_AFTER_TIME * 3) / 1000} seconds`,
    );
    this.keypairs.clear();
    this.handshake.clear();
    this.discardStaged("noSession");
    this.lostSession(`no new keys for ${(REJECT_AFTER_TIME * 3) / 1000} s`);
  }

  // ---------------------------------------------------------------- receiving

  private drop(reason: DropReason): void {
    this.stats.drops[reason]++;
  }

  /** Entry point for every outer datagram. Never throws. */
  onDatagram(data: Uint8Array, from: Endpoint): void {
    if (this.closed) return;
    try {
      this.receive(data, from);
    } catch (err) {
      this.drop("internal");
      this.log.debug(`WireGuard: internal error on datagram from ${formatEndpoint(from)}: ${String(err)}`);
    }
  }

  private receive(data: Uint8Array, from: Endpoint): void {
    const type = messageType(data);
    if (typeof type === "string") {
      this.drop(type);
      return;
    }
    switch (type) {
      case MESSAGE_TRANSPORT:
        this.receiveTransport(data, from);
        return;
      case MESSAGE_INITIATION:
      case MESSAGE_RESPONSE:
        this.handshakeQueue.submit(data, from);
        return;
      case MESSAGE_COOKIE_REPLY:
        this.receiveCookieReply(data);
        return;
    }
  }

  /** A handshake message through the queue's MAC, load and rate checks (maybe a turn later). */
  private onHandshake(data: Uint8Array, from: Endpoint): void {
    if (this.closed) return;
    try {
      if (messageType(data) === MESSAGE_INITIATION) this.receiveInitiation(data, from);
      else this.receiveResponse(data, from);
    } catch (err) {
      this.drop("internal");
      this.log.debug(`WireGuard: internal error on handshake from ${formatEndpoint(from)}: ${String(err)}`);
    }
  }

  private roam(from: Endpoint): void {
    const ep = this.currentEndpoint;
    if (ep && ep.port === from.port && ep.address === from.address) return;
    this.currentEndpoint = { address: from.address, port: from.port };
    if (ep) this.events.roamed?.(ep, this.currentEndpoint);
  }

  private receiveInitiation(data: Uint8Array, from: Endpoint): void {
    const msg = parseInitiation(data);
    if (typeof msg === "string") {
      this.drop(msg);
      return;
    }
    const err = this.handshake.consumeInitiation(msg, this.clock.now());
    if (err) {
      if (err === "badState" || err === "unknownIndex") this.drop(err);
      else this.rejectHandshake(err, from);
      return;
    }
    this.log.debug(`Received handshake_initiation remote_idx=${msg.sender}`);
    this.stats.rxBytes += data.length;
    this.roam(from);
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketReceived();
    this.sendHandshakeResponse(from);
  }

  private receiveResponse(data: Uint8Array, from: Endpoint): void {
    const msg = parseResponse(data);
    if (typeof msg === "string") {
      this.drop(msg);
      return;
    }
    const err = this.handshake.consumeResponse(msg);
    if (err) {
      this.drop(err === "badState" ? "unknownIndex" : err);
      return;
    }
    this.log.debug(`Received handshake_response local_idx=${msg.receiver} remote_idx=${msg.sender}`);
    this.stats.rxBytes += data.length;
    this.roam(from);
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketReceived();
    const kp = this.beginSession();
    if (!kp) return;
    this.handshakeComplete(kp);
    // Confirms the session to the responder (or flushes the queued packets, which do the same).
    this.sendKeepalive();
  }

  private receiveCookieReply(data: Uint8Array): void {
    const reply = parseCookieReply(data);
    if (typeof reply === "string") {
      this.drop(reply);
      return;
    }
    const pending = this.handshake.state === "initiationCreated" && reply.receiver === this.handshake.localIndex;
    if (!pending && !this.keypairs.hasIndex(reply.receiver)) {
      this.drop("unknownIndex");
      return;
    }
    if (!this.generator.consumeReply(reply)) {
      this.drop("badCookie");
      return;
    }
    this.log.debug("Received cookie_reply");
  }

  private receiveTransport(data: Uint8Array, from: Endpoint): void {
    const kp = this.keypairs.lookup(transportReceiver(data));
    if (!kp) {
      this.drop("unknownIndex");
      return;
    }
    const now = this.clock.now();
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
      this.handshakeComplete(kp);
      this.sendStagedPackets();
    }
    this.keepKeyFreshReceiving();
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketReceived();
    this.roam(from);
    this.stats.rxBytes += data.length;
    if (plain.length === 0) {
      this.stats.keepalivesReceived++;
      return;
    }
    this.timers.dataReceived();
    const len = innerPacketLength(plain);
    if (len < 0) {
      this.drop("badInner");
      return;
    }
    this.stats.rxPackets++;
    this.onPacket(plain.subarray(0, len));
  }
}
