/**
 * A WireGuard device (wireguard-go device.go): one private key and UDP socket serving any number
 * of peers. It dispatches each datagram by message type — transport, responses and cookie replies
 * by receiver index (the index table), initiations by the static key they carry — checks MACs and
 * answers with cookies under load for the whole device, and routes inner packets by the peers'
 * AllowedIPs both ways (cryptokey routing). Implements IpLink for the netstack.
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
import { type Prefix, parsePrefix } from "../wire/prefix.ts";
import { type AeadFactory, aeadBackendName, selectAead } from "./aead.ts";
import { AllowedIps } from "./allowed-ips.ts";
import { MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_RESPONSE, MESSAGE_TRANSPORT } from "./constants.ts";
import { CookieChecker } from "./cookie.ts";
import type { DeviceConfig, PeerConfig } from "./device-config.ts";
import type { DeviceEvents, RefusedHandshake } from "./events.ts";
import { HandshakeQueue, type HandshakeQueueOptions } from "./handshake-queue.ts";
import { publicKeyOf } from "./keys.ts";
import { messageType, parseCookieReply, parseInitiation, parseResponse, transportReceiver } from "./messages.ts";
import { openInitiation } from "./noise.ts";
import { Peer, type PeerHost } from "./peer.ts";
import { type DropReason, emptyStats, type WireGuardStats } from "./stats.ts";
import { SEND_HEADROOM, SEND_TAILROOM } from "./transport-seal.ts";
import { x25519Backend, x25519BackendReason } from "./x25519.ts";

export type { DeviceConfig, PeerConfig } from "./device-config.ts";

export class DeviceConfigError extends Error {}

const keyId = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");

export class WireGuardDevice implements IpLink, PeerHost {
  onPacket: (packet: Uint8Array) => void = () => {};
  readonly stats: WireGuardStats;
  readonly allowedIps = new AllowedIps<Peer>();
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly aead: AeadFactory;
  readonly mtu: number;
  readonly maxPeers: number;
  private key: Uint8Array;
  private localPublic: Uint8Array;
  /** MAC checks, load detection, cookies, rate limit and the bounded queue for handshake messages. */
  private handshakeQueue: HandshakeQueue;
  private readonly queueOptions: HandshakeQueueOptions;
  private readonly events: DeviceEvents;
  private transport: DatagramTransport;
  private readonly queueCapacity: number;
  private readonly peersByKey = new Map<string, Peer>();
  /** Receiver index → the peer holding it (pending handshakes and live keypairs). */
  private readonly indexTable = new Map<number, Peer>();
  private started = false;
  private closed = false;

  constructor(cfg: DeviceConfig) {
    this.transport = cfg.transport;
    this.clock = cfg.clock;
    this.random = cfg.random;
    this.log = cfg.log;
    this.queueOptions = { underLoad: cfg.underLoad, log: cfg.log, ...cfg.handshakeQueue };
    this.events = cfg.events ?? {};
    this.queueCapacity = Math.max(1, cfg.transmitQueueCapacity ?? 256);
    this.maxPeers = cfg.maxPeers ?? 65536;
    this.mtu = cfg.mtu ?? 0;
    if (cfg.aead) {
      this.aead = cfg.aead;
      this.log.debug(`WireGuard AEAD: ${aeadBackendName(cfg.aead)} (configured)`);
    } else {
      this.aead = selectAead(this.log);
    }
    this.log.debug(`WireGuard X25519: ${x25519Backend().name} (${x25519BackendReason()})`);
    this.key = Uint8Array.from(cfg.privateKey);
    this.localPublic = publicKeyOf(this.key);
    this.handshakeQueue = this.newHandshakeQueue();
    this.stats = { ...emptyStats(), handshakeLoad: this.handshakeQueue.stats };
  }

  private newHandshakeQueue(): HandshakeQueue {
    return new HandshakeQueue(
      this.clock,
      new CookieChecker(this.localPublic, this.clock, this.random),
      {
        process: (data, from) => this.onHandshake(data, from),
        reject: (reason, from) => {
          this.drop(reason);
          if (reason === "badMac1") this.reportRejected(reason, from);
        },
        sendCookieReply: (reply, to) => {
          // No log line per reply: under a flood that would be thousands a second (the queue logs
          // when the load state starts and ends).
          this.stats.cookieRepliesSent++;
          this.stats.txBytes += reply.length;
          this.transmit(reply, to);
        },
      },
      this.queueOptions,
    );
  }

  get privateKey(): Uint8Array {
    return this.key;
  }

  get publicKey(): Uint8Array {
    return this.localPublic;
  }

  /** Number of entries in the index table (≤ 4 per peer: a pending handshake and 3 keypairs). */
  get indexCount(): number {
    return this.indexTable.size;
  }

  /** Replace the private key: every peer starts over without a session (as wireguard-go does). */
  setPrivateKey(key: Uint8Array): void {
    this.key = Uint8Array.from(key);
    this.localPublic = publicKeyOf(this.key);
    this.handshakeQueue.close();
    this.handshakeQueue = this.newHandshakeQueue();
    this.stats.handshakeLoad = this.handshakeQueue.stats;
    // A peer with our own new public key would be talking to itself: wireguard-go removes it.
    this.removePeer(this.localPublic);
    for (const peer of this.peersByKey.values()) peer.rekeyStatic();
  }

  /** Move to another socket (UAPI listen_port); the caller closes the old one. */
  setTransport(transport: DatagramTransport): void {
    this.transport.onDatagram = () => {};
    this.transport = transport;
    if (this.started) transport.onDatagram = (data, from) => this.onDatagram(data, from);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get localEndpoint(): Endpoint {
    return this.transport.local;
  }

  // ---------------------------------------------------------------- peers

  get peers(): IterableIterator<Peer> {
    return this.peersByKey.values();
  }

  get peerCount(): number {
    return this.peersByKey.size;
  }

  getPeer(publicKey: Uint8Array): Peer | undefined {
    return this.peersByKey.get(keyId(publicKey));
  }

  /** Add a peer (throws DeviceConfigError for a duplicate, our own key, a bad prefix or the bound). */
  addPeer(cfg: PeerConfig): Peer {
    const id = keyId(cfg.publicKey);
    if (this.peersByKey.has(id)) throw new DeviceConfigError("peer already configured");
    if (keyId(this.localPublic) === id) throw new DeviceConfigError("peer has the device's own public key");
    if (this.peersByKey.size >= this.maxPeers) throw new DeviceConfigError(`more than ${this.maxPeers} peers`);
    const prefixes = (cfg.allowedIps ?? []).map((p) => this.prefix(p));
    let peer: Peer;
    try {
      peer = new Peer(this, cfg, this.queueCapacity);
    } catch (e) {
      throw new DeviceConfigError(`invalid peer key: ${(e as Error).message}`);
    }
    peer.name = cfg.name;
    if (this.events.peer) peer.events = this.events.peer(peer);
    this.peersByKey.set(id, peer);
    for (const p of prefixes) this.allowedIps.insert(p, peer);
    if (this.started && !this.closed) peer.start();
    return peer;
  }

  private prefix(p: string | Prefix): Prefix {
    if (typeof p !== "string") return p;
    const parsed = parsePrefix(p.trim());
    if (!parsed) throw new DeviceConfigError(`invalid allowed IP "${p}"`);
    return parsed;
  }

  /** Give `peer` these prefixes (taking them from any other peer that had them). */
  addAllowedIps(peer: Peer, prefixes: (string | Prefix)[]): void {
    for (const p of prefixes.map((x) => this.prefix(x))) this.allowedIps.insert(p, peer);
  }

  clearAllowedIps(peer: Peer): void {
    this.allowedIps.removeValue(peer);
  }

  removePeer(publicKey: Uint8Array): boolean {
    const id = keyId(publicKey);
    const peer = this.peersByKey.get(id);
    if (!peer) return false;
    this.peersByKey.delete(id);
    this.allowedIps.removeValue(peer);
    peer.close();
    return true;
  }

  // ---------------------------------------------------------------- PeerHost

  transmit(data: Uint8Array, to: Endpoint): void {
    this.transport.send(data, to);
  }

  allocateIndex(peer: Peer): number {
    for (;;) {
      const idx = this.random.u32();
      if (idx !== 0 && !this.indexTable.has(idx)) {
        this.indexTable.set(idx, peer);
        return idx;
      }
    }
  }

  releaseIndex(index: number): void {
    this.indexTable.delete(index);
  }

  ownsSource(peer: Peer, packet: Uint8Array): boolean {
    return this.allowedIps.lookupPacket(packet, "source") === peer;
  }

  deliver(packet: Uint8Array): void {
    this.onPacket(packet);
  }

  reportRejected(reason: RefusedHandshake, from: Endpoint): void {
    this.events.handshakeRejected?.(reason, from);
  }

  // ---------------------------------------------------------------- IpLink

  start(): void {
    this.started = true;
    this.transport.onDatagram = (data, from) => this.onDatagram(data, from);
    for (const peer of this.peersByKey.values()) peer.start();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peersByKey.values()) peer.close();
    this.handshakeQueue.close();
    this.transport.onDatagram = () => {};
  }

  /** IpLink: room for the transport header, padding and tag, so owned packets seal in place. */
  readonly headroom = SEND_HEADROOM;
  readonly tailroom = SEND_TAILROOM;

  /** Cryptokey routing on send: the peer whose AllowedIPs hold the destination (longest prefix). */
  send(packet: Uint8Array, owned = false): void {
    if (this.closed) {
      this.stats.drops.closed++;
      return;
    }
    const peer = this.allowedIps.lookupPacket(packet, "destination");
    if (!peer) {
      this.stats.drops.noRoute++;
      return;
    }
    peer.send(packet, owned);
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
      case MESSAGE_TRANSPORT: {
        const receiver = transportReceiver(data);
        const peer = this.indexTable.get(receiver);
        if (peer) peer.receiveTransport(data, receiver, from);
        else this.drop("unknownIndex");
        return;
      }
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

  private receiveInitiation(data: Uint8Array, from: Endpoint): void {
    const msg = parseInitiation(data);
    if (typeof msg === "string") {
      this.drop(msg);
      return;
    }
    const opened = openInitiation(this.key, this.localPublic, msg, this.aead);
    if (opened === "handshakeDecrypt") {
      this.drop(opened);
      this.reportRejected(opened, from);
      return;
    }
    const peer = this.peersByKey.get(keyId(opened.peerStatic));
    if (!peer) {
      this.drop("unknownPeer");
      this.reportRejected("unknownPeer", from);
      return;
    }
    peer.receiveInitiation(msg, opened, data.length, from);
  }

  private receiveResponse(data: Uint8Array, from: Endpoint): void {
    const msg = parseResponse(data);
    if (typeof msg === "string") {
      this.drop(msg);
      return;
    }
    const peer = this.indexTable.get(msg.receiver);
    if (!peer) {
      this.drop("unknownIndex");
      return;
    }
    peer.receiveResponse(msg, data.length, from);
  }

  private receiveCookieReply(data: Uint8Array): void {
    const reply = parseCookieReply(data);
    if (typeof reply === "string") {
      this.drop(reply);
      return;
    }
    const peer = this.indexTable.get(reply.receiver);
    if (!peer) {
      this.drop("unknownIndex");
      return;
    }
    peer.receiveCookieReply(reply);
  }
}
