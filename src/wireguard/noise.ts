/**
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses it (whitepaper §5.4.2–§5.4.5), for one
 * configured peer, as initiator and as responder. Message MACs are added by CookieGenerator and
 * checked by CookieChecker before anything here runs. A failed step never changes the state.
 */

import { type AeadFactory, nobleChaCha20Poly1305 } from "./aead.ts";
import { HANDSHAKE_INITIATION_RATE, TAG_SIZE } from "./constants.ts";
import { dh, equalBytes, hash, KEY_SIZE, kdf1, kdf2, kdf3, utf8 } from "./crypto.ts";
import { publicKeyOf } from "./keys.ts";
import { type Initiation, type Response, serializeInitiation, serializeResponse } from "./messages.ts";
import { TAI64N_SIZE, tai64n, tai64nAfter } from "./tai64n.ts";

export const CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
export const IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com";

const INITIAL_CHAIN_KEY = hash(utf8(CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, utf8(IDENTIFIER));
const EMPTY = new Uint8Array(0);
const ZERO_MAC = new Uint8Array(16);

export type HandshakeState =
  | "zeroed"
  | "initiationCreated"
  | "initiationConsumed"
  | "responseCreated"
  | "responseConsumed";

/** Why a handshake message was rejected after its MACs checked out. */
export type HandshakeError =
  | "handshakeDecrypt" // an AEAD step or DH failed: wrong keys or corrupted message
  | "unknownPeer" // authenticated by a static key that is not our peer's
  | "handshakeReplay" // timestamp not newer than the last accepted initiation
  | "handshakeFlood" // more than one initiation per 20 ms
  | "unknownIndex" // a response to no initiation of ours
  | "badState";

/** The first half of consuming an initiation: whose static key it carries, and the state so far. */
export interface OpenedInitiation {
  peerStatic: Uint8Array;
  hash: Uint8Array;
  chainKey: Uint8Array;
}

/**
 * Decrypt an initiation's static key with our private key, before knowing which peer sent it
 * (the device looks the peer up by this key, then that peer's handshake finishes the job).
 */
export function openInitiation(
  localPrivate: Uint8Array,
  localPublic: Uint8Array,
  msg: Initiation,
  aead: AeadFactory,
): OpenedInitiation | "handshakeDecrypt" {
  let h = hash(INITIAL_HASH, localPublic);
  h = hash(h, msg.ephemeral);
  const es = dh(localPrivate, msg.ephemeral);
  if (!es) return "handshakeDecrypt";
  const [ck, key] = kdf2(kdf1(INITIAL_CHAIN_KEY, msg.ephemeral), es);
  const peerStatic = new Uint8Array(KEY_SIZE);
  if (!aead(key).open(0, msg.encryptedStatic, peerStatic, h)) return "handshakeDecrypt";
  h = hash(h, msg.encryptedStatic);
  return { peerStatic, hash: h, chainKey: ck };
}

/** Session keys derived from a completed handshake. */
export interface SessionKeys {
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  isInitiator: boolean;
  localIndex: number;
  remoteIndex: number;
}

export class NoiseHandshake {
  state: HandshakeState = "zeroed";
  localIndex = 0;
  remoteIndex = 0;
  private hash = INITIAL_HASH;
  private chainKey = INITIAL_CHAIN_KEY;
  private localEphemeral: Uint8Array = EMPTY;
  private remoteEphemeral: Uint8Array = EMPTY;
  private lastTimestamp = new Uint8Array(TAI64N_SIZE);
  private lastInitiationConsumedAt = Number.NEGATIVE_INFINITY;
  private readonly localPublic: Uint8Array;
  private readonly staticStatic: Uint8Array;
  private psk: Uint8Array;

  constructor(
    private readonly localPrivate: Uint8Array,
    readonly peerPublic: Uint8Array,
    presharedKey: Uint8Array | undefined,
    private readonly aead: AeadFactory = nobleChaCha20Poly1305,
    /** Our public key, when the caller has it already (saves a scalar multiplication per peer). */
    localPublic?: Uint8Array,
  ) {
    if (localPrivate.length !== KEY_SIZE || peerPublic.length !== KEY_SIZE) throw new RangeError("keys are 32 bytes");
    if (presharedKey && presharedKey.length !== KEY_SIZE) throw new RangeError("preshared key is 32 bytes");
    this.localPublic = localPublic ?? publicKeyOf(localPrivate);
    const ss = dh(localPrivate, peerPublic);
    if (!ss) throw new RangeError("peer public key is invalid (low-order point)");
    this.staticStatic = ss;
    this.psk = presharedKey ? Uint8Array.from(presharedKey) : new Uint8Array(KEY_SIZE);
  }

  /** Use this preshared key (all zeros when undefined) from the next handshake message on. */
  setPresharedKey(presharedKey: Uint8Array | undefined): void {
    if (presharedKey && presharedKey.length !== KEY_SIZE) throw new RangeError("preshared key is 32 bytes");
    this.psk.fill(0);
    this.psk = presharedKey ? Uint8Array.from(presharedKey) : new Uint8Array(KEY_SIZE);
  }

  get localPublicKey(): Uint8Array {
    return this.localPublic;
  }

  private seal(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + TAG_SIZE);
    this.aead(key).seal(0, plaintext, out, this.hash);
    return out;
  }

  /**
   * Build an initiation (MACs zero; the caller adds them). `ephemeralPrivate` is a fresh X25519
   * private key; `wallMs` the wall clock for the TAI64N timestamp.
   */
  createInitiation(sender: number, ephemeralPrivate: Uint8Array, wallMs: number): Uint8Array | undefined {
    this.hash = hash(INITIAL_HASH, this.peerPublic);
    this.chainKey = INITIAL_CHAIN_KEY;
    this.localEphemeral = Uint8Array.from(ephemeralPrivate);
    const ephemeral = publicKeyOf(this.localEphemeral);
    this.chainKey = kdf1(this.chainKey, ephemeral);
    this.hash = hash(this.hash, ephemeral);
    const es = dh(this.localEphemeral, this.peerPublic);
    if (!es) return undefined;
    let key: Uint8Array;
    [this.chainKey, key] = kdf2(this.chainKey, es);
    const encryptedStatic = this.seal(key, this.localPublic);
    this.hash = hash(this.hash, encryptedStatic);
    [this.chainKey, key] = kdf2(this.chainKey, this.staticStatic);
    const encryptedTimestamp = this.seal(key, tai64n(wallMs));
    this.hash = hash(this.hash, encryptedTimestamp);
    this.localIndex = sender;
    this.state = "initiationCreated";
    return serializeInitiation({
      sender,
      ephemeral,
      encryptedStatic,
      encryptedTimestamp,
      mac1: ZERO_MAC,
      mac2: ZERO_MAC,
    });
  }

  /**
   * Responder: authenticate an initiation from our peer. `nowMs` is the monotonic clock; `opened`
   * is openInitiation()'s result when the caller already decrypted the static key.
   */
  consumeInitiation(msg: Initiation, nowMs: number, opened?: OpenedInitiation): HandshakeError | null {
    const first = opened ?? openInitiation(this.localPrivate, this.localPublic, msg, this.aead);
    if (first === "handshakeDecrypt") return first;
    let h = first.hash;
    if (!equalBytes(first.peerStatic, this.peerPublic)) return "unknownPeer";
    const [ck, key] = kdf2(first.chainKey, this.staticStatic);
    const timestamp = new Uint8Array(TAI64N_SIZE);
    if (!this.aead(key).open(0, msg.encryptedTimestamp, timestamp, h)) return "handshakeDecrypt";
    h = hash(h, msg.encryptedTimestamp);
    if (!tai64nAfter(timestamp, this.lastTimestamp)) return "handshakeReplay";
    if (nowMs - this.lastInitiationConsumedAt <= HANDSHAKE_INITIATION_RATE) return "handshakeFlood";
    this.hash = h;
    this.chainKey = ck;
    this.remoteIndex = msg.sender;
    this.remoteEphemeral = Uint8Array.from(msg.ephemeral);
    this.lastTimestamp = timestamp;
    this.lastInitiationConsumedAt = nowMs;
    this.state = "initiationConsumed";
    return null;
  }

  /** Responder: build the response to the consumed initiation (MACs zero). */
  createResponse(sender: number, ephemeralPrivate: Uint8Array): Uint8Array | undefined {
    if (this.state !== "initiationConsumed") return undefined;
    this.localEphemeral = Uint8Array.from(ephemeralPrivate);
    const ephemeral = publicKeyOf(this.localEphemeral);
    this.hash = hash(this.hash, ephemeral);
    this.chainKey = kdf1(this.chainKey, ephemeral);
    const ee = dh(this.localEphemeral, this.remoteEphemeral);
    const se = dh(this.localEphemeral, this.peerPublic);
    if (!ee || !se) return undefined;
    this.chainKey = kdf1(this.chainKey, ee);
    this.chainKey = kdf1(this.chainKey, se);
    const [ck, tau, key] = kdf3(this.chainKey, this.psk);
    this.chainKey = ck;
    this.hash = hash(this.hash, tau);
    const encryptedNothing = this.seal(key, EMPTY);
    this.hash = hash(this.hash, encryptedNothing);
    this.localIndex = sender;
    this.state = "responseCreated";
    return serializeResponse({
      sender,
      receiver: this.remoteIndex,
      ephemeral,
      encryptedNothing,
      mac1: ZERO_MAC,
      mac2: ZERO_MAC,
    });
  }

  /** Initiator: authenticate the response to our pending initiation. */
  consumeResponse(msg: Response): HandshakeError | null {
    if (this.state !== "initiationCreated") return "badState";
    if (msg.receiver !== this.localIndex) return "unknownIndex";
    let h = hash(this.hash, msg.ephemeral);
    let ck = kdf1(this.chainKey, msg.ephemeral);
    const ee = dh(this.localEphemeral, msg.ephemeral);
    const se = dh(this.localPrivate, msg.ephemeral);
    if (!ee || !se) return "handshakeDecrypt";
    ck = kdf1(ck, ee);
    ck = kdf1(ck, se);
    const [ck2, tau, key] = kdf3(ck, this.psk);
    h = hash(h, tau);
    if (!this.aead(key).open(0, msg.encryptedNothing, EMPTY, h)) return "handshakeDecrypt";
    h = hash(h, msg.encryptedNothing);
    this.hash = h;
    this.chainKey = ck2;
    this.remoteIndex = msg.sender;
    this.state = "responseConsumed";
    return null;
  }

  /** Derive transport keys after responseCreated/responseConsumed and wipe the handshake. */
  deriveKeys(): SessionKeys | undefined {
    let isInitiator: boolean;
    if (this.state === "responseConsumed") isInitiator = true;
    else if (this.state === "responseCreated") isInitiator = false;
    else return undefined;
    const [t1, t2] = kdf2(this.chainKey, EMPTY);
    const keys: SessionKeys = {
      sendKey: isInitiator ? t1 : t2,
      receiveKey: isInitiator ? t2 : t1,
      isInitiator,
      localIndex: this.localIndex,
      remoteIndex: this.remoteIndex,
    };
    this.clear();
    return keys;
  }

  /** Forget the in-progress handshake (not the replay/flood memory). */
  clear(): void {
    if (this.localEphemeral !== EMPTY) this.localEphemeral.fill(0);
    this.localEphemeral = EMPTY;
    this.remoteEphemeral = EMPTY;
    this.hash = INITIAL_HASH;
    this.chainKey = INITIAL_CHAIN_KEY;
    this.localIndex = 0;
    this.state = "zeroed";
  }
}
