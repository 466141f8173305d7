/**
 * One configured WireGuard peer, its session half (wireguard-go peer.go, send.go, noise-protocol.go):
 * the Noise handshake, keypairs and their table indices, timers, endpoint, the queue of packets
 * staged while there is no session, sending, and its counters (also summed into the device's).
 * peer.ts adds the receiving half.
 */
import type { Endpoint } from "../util/endpoint.ts";
import {
  REJECT_AFTER_TIME,
  REJECT_COUNTER_LIMIT,
  REKEY_AFTER_TIME,
  REKEY_ON_RECEIVE_AGE,
  REKEY_SEND_COUNTER,
  REKEY_TIMEOUT,
} from "./constants.ts";
import { CookieGenerator } from "./cookie.ts";
import type { TunnelEvents } from "./events.ts";
import { Keypair, Keypairs } from "./keypair.ts";
import { generatePrivateKey } from "./keys.ts";
import { NoiseHandshake } from "./noise.ts";
import type { Peer } from "./peer.ts";
import type { PeerHost, PeerSettings } from "./peer-host.ts";
import { type DropReason, emptyStats, type PeerStats } from "./stats.ts";
import { PeerTimers } from "./timers.ts";
import { copyWithSendRoom, sealTransport } from "./transport-seal.ts";

const EMPTY = new Uint8Array(0);

export abstract class PeerSession {
  readonly publicKey: Uint8Array;
  readonly stats: PeerStats = emptyStats();
  readonly keypairs = new Keypairs();
  readonly timers: PeerTimers;
  /** Optional name (from the state directory or a config comment), for logs and `status`. */
  name: string | undefined;
  protected presharedKeyBytes: Uint8Array | undefined;
  protected currentEndpoint: Endpoint | undefined;
  protected handshake: NoiseHandshake;
  protected readonly generator: CookieGenerator;
  /** Packets waiting for a session: copies with send room around them (or EMPTY). */
  protected staged: Uint8Array[] = [];
  protected lastSentHandshakeAt = Number.NEGATIVE_INFINITY;
  protected sessionCount = 0;
  /** Indices this peer holds in the device's table (pending handshake + live keypairs). */
  protected ownedIndices: number[] = [];
  /** A session is up (for TunnelEvents: established vs rekeyed, and lost). */
  protected sessionUp = false;
  protected started = false;
  protected closed = false;

  constructor(
    protected readonly host: PeerHost,
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

  protected newHandshake(): NoiseHandshake {
    return new NoiseHandshake(
      this.host.privateKey,
      this.publicKey,
      this.presharedKeyBytes,
      this.host.aead,
      this.host.publicKey,
    );
  }

  protected newTimers(keepaliveSeconds: number): PeerTimers {
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
  /**
   * Change the preshared key for the next handshake; the current session keeps running (as in
   * wireguard-go, so `wg syncconf` re-sending an unchanged key disturbs nothing).
   */
  setPresharedKey(psk: Uint8Array | undefined): void {
    this.presharedKeyBytes = psk ? Uint8Array.from(psk) : undefined;
    this.handshake.setPresharedKey(this.presharedKeyBytes);
  }

  /** The device's private key changed: start over with no session. */
  rekeyStatic(): void {
    this.handshake.clear();
    this.keypairs.clear();
    this.handshake = this.newHandshake();
    this.syncIndices();
  }

  setPersistentKeepalive(seconds: number): void {
    const wasOff = this.timers.persistentKeepaliveMs === 0;
    const ms = Math.max(0, seconds) * 1000;
    if (ms === this.timers.persistentKeepaliveMs) return;
    this.timers.setPersistentKeepalive(ms);
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

  protected drop(reason: DropReason): void {
    this.stats.drops[reason]++;
    this.host.stats.drops[reason]++;
  }

  /** Release table entries for indices no longer held by the handshake or a keypair. */
  protected syncIndices(): void {
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

  protected newIndex(): number {
    // Every PeerSession is a Peer (the only subclass): the table maps indices to peers.
    const idx = this.host.allocateIndex(this as unknown as Peer);
    this.ownedIndices.push(idx);
    return idx;
  }

  // ---------------------------------------------------------------- sending

  /**
   * Encrypt and send one inner packet (queued while there is no usable session). `owned`: the
   * caller gives `packet`'s buffer away (IpLink.send), so it is sealed in place when it has room.
   */
  send(packet: Uint8Array, owned = false): void {
    if (this.closed) {
      this.drop("closed");
      return;
    }
    const kp = this.keypairs.current;
    if (this.staged.length === 0 && kp && this.usable(kp) && this.currentEndpoint) {
      this.encryptAndSend(kp, packet, this.currentEndpoint, owned);
      this.keepKeyFreshSending();
      return;
    }
    // Copied even when owned: a queued packet must not pin the slab it was carved from.
    this.stage(packet.length === 0 ? EMPTY : copyWithSendRoom(packet));
    this.sendStagedPackets();
  }

  /** Send what waits for a session, or start a handshake for it (after a configuration change). */
  sendStaged(): void {
    this.sendStagedPackets();
  }

  protected usable(kp: Keypair): boolean {
    return kp.sendCounter < REJECT_COUNTER_LIMIT && this.host.clock.now() - kp.created < REJECT_AFTER_TIME;
  }

  protected stage(packet: Uint8Array): void {
    if (this.staged.length >= this.queueCapacity) {
      this.staged.shift();
      this.drop("queueFull");
    }
    this.staged.push(packet);
  }

  protected discardStaged(reason: DropReason): void {
    for (const p of this.staged) if (p.length > 0) this.drop(reason);
    this.staged = [];
  }

  protected sendStagedPackets(): void {
    if (this.staged.length === 0 || this.closed) return;
    const kp = this.keypairs.current;
    const to = this.currentEndpoint;
    if (!kp || !this.usable(kp) || !to) {
      this.sendHandshakeInitiation(false);
      return;
    }
    const queue = this.staged;
    this.staged = [];
    for (const p of queue) this.encryptAndSend(kp, p, to, true);
    this.keepKeyFreshSending();
  }

  protected encryptAndSend(kp: Keypair, packet: Uint8Array, to: Endpoint, owned: boolean): void {
    const n = packet.length;
    const out = sealTransport(kp, packet, owned, this.host.mtu);
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

  protected transmit(data: Uint8Array, to: Endpoint): void {
    this.stats.txBytes += data.length;
    this.host.stats.txBytes += data.length;
    this.host.transmit(data, to);
  }

  protected keepKeyFreshSending(): void {
    const kp = this.keypairs.current;
    if (!kp) return;
    if (
      kp.sendCounter > REKEY_SEND_COUNTER ||
      (kp.isInitiator && this.host.clock.now() - kp.created > REKEY_AFTER_TIME)
    ) {
      this.sendHandshakeInitiation(false);
    }
  }

  protected keepKeyFreshReceiving(): void {
    if (this.timers.sentLastMinuteHandshake) return;
    const kp = this.keypairs.current;
    if (kp?.isInitiator && this.host.clock.now() - kp.created > REKEY_ON_RECEIVE_AGE) {
      this.timers.sentLastMinuteHandshake = true;
      this.sendHandshakeInitiation(false);
    }
  }

  protected sendKeepalive(): void {
    if (this.closed) return;
    if (this.staged.length === 0) this.staged.push(EMPTY);
    this.sendStagedPackets();
  }

  protected sendHandshakeInitiation(isRetry: boolean): void {
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

  protected sendHandshakeResponse(to: Endpoint): void {
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

  protected beginSession(): Keypair | undefined {
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

  protected handshakeComplete(kp: Keypair): void {
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

  protected lostSession(reason: string): void {
    if (!this.sessionUp) return;
    this.sessionUp = false;
    this.events.sessionLost?.(reason, this.currentEndpoint);
  }

  protected zeroKeyMaterial(): void {
    this.host.log.debug(
      `Removing all keys, since we haven't received a new one in ${(REJECT_AFTER_TIME * 3) / 1000} seconds`,
    );
    this.keypairs.clear();
    this.handshake.clear();
    this.syncIndices();
    this.discardStaged("noSession");
    this.lostSession(`no new keys for ${(REJECT_AFTER_TIME * 3) / 1000} s`);
  }
}
