/**
 * MAC1/MAC2 and cookie replies (whitepaper §5.4.4, §5.4.7; wireguard-go cookie.go).
 *
 * MAC1 = MAC(HASH("mac1----" || receiver's static public), msg[0 : len−32]) proves the sender
 * knows whom it is talking to. MAC2 = MAC(cookie, msg[0 : len−16]) proves the sender can receive
 * at its source address: under load the receiver answers with an encrypted cookie (a MAC of the
 * source address under a secret rotated every 2 minutes) and then requires MAC2.
 */
import type { Clock } from "../util/clock.ts";
import type { Endpoint } from "../util/endpoint.ts";
import { unmapV4 } from "../util/endpoint.ts";
import type { Random } from "../util/random.ts";
import { xOpen, xSeal } from "./aead.ts";
import { COOKIE_REFRESH_TIME } from "./constants.ts";
import { equalBytes, hash, isZero, MAC_SIZE, mac, utf8 } from "./crypto.ts";
import { type CookieReply, serializeCookieReply } from "./messages.ts";

const LABEL_MAC1 = utf8("mac1----");
const LABEL_COOKIE = utf8("cookie--");

/** Where MAC1 and MAC2 sit in a handshake message (always its last 32 bytes). */
const mac1Offset = (msg: Uint8Array): number => msg.length - 2 * MAC_SIZE;
const mac2Offset = (msg: Uint8Array): number => msg.length - MAC_SIZE;

/**
 * The bytes a cookie is bound to: the source address and port. Only this responder computes and
 * checks it, so the encoding is internal; IPv4-mapped IPv6 is folded onto IPv4 so a dual-stack
 * socket gives the same cookie either way.
 */
export function cookieSource(from: Endpoint): Uint8Array {
  const addr = utf8(unmapV4(from.address));
  const out = new Uint8Array(addr.length + 2);
  out.set(addr);
  out[addr.length] = from.port >>> 8;
  out[addr.length + 1] = from.port & 0xff;
  return out;
}

/** Checks MACs on handshake messages sent to us and makes cookie replies. */
export class CookieChecker {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private readonly secret = new Uint8Array(32);
  private secretSetAt = Number.NEGATIVE_INFINITY;
  /** The last source and its cookie under the current secret: a flood usually has one source. */
  private lastSource: Uint8Array | undefined;
  private lastCookie: Uint8Array | undefined;

  constructor(
    localPublicKey: Uint8Array,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {
    this.mac1Key = hash(LABEL_MAC1, localPublicKey);
    this.cookieKey = hash(LABEL_COOKIE, localPublicKey);
  }

  checkMac1(msg: Uint8Array): boolean {
    const off = mac1Offset(msg);
    return equalBytes(mac(this.mac1Key, msg.subarray(0, off)), msg.subarray(off, off + MAC_SIZE));
  }

  /** MAC2 is valid only with a cookie made from the current (unexpired) secret for `source`. */
  checkMac2(msg: Uint8Array, source: Uint8Array): boolean {
    if (this.clock.now() - this.secretSetAt > COOKIE_REFRESH_TIME) return false;
    const cookie = this.cookieFor(source);
    const off = mac2Offset(msg);
    return equalBytes(mac(cookie, msg.subarray(0, off)), msg.subarray(off, off + MAC_SIZE));
  }

  /** A cookie reply to `msg` (whose MAC1 already checked out), addressed to its sender index. */
  createReply(msg: Uint8Array, receiver: number, source: Uint8Array): Uint8Array {
    const now = this.clock.now();
    if (now - this.secretSetAt > COOKIE_REFRESH_TIME) {
      this.random.fill(this.secret);
      this.secretSetAt = now;
      this.lastSource = undefined;
    }
    const cookie = this.cookieFor(source);
    const nonce = this.random.fill(new Uint8Array(24));
    const off = mac1Offset(msg);
    const encryptedCookie = xSeal(this.cookieKey, nonce, cookie, msg.subarray(off, off + MAC_SIZE));
    return serializeCookieReply({ receiver, nonce, encryptedCookie });
  }

  private cookieFor(source: Uint8Array): Uint8Array {
    if (this.lastSource && this.lastCookie && equalBytes(this.lastSource, source)) return this.lastCookie;
    const cookie = mac(this.secret, source);
    this.lastSource = Uint8Array.from(source);
    this.lastCookie = cookie;
    return cookie;
  }
}

/** Writes MACs into handshake messages we send to the peer and takes in its cookie replies. */
export class CookieGenerator {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private cookie: Uint8Array = new Uint8Array(MAC_SIZE);
  private cookieSetAt = Number.NEGATIVE_INFINITY;
  /** MAC1 of the last message sent: a cookie reply must be bound to it. */
  private lastMac1: Uint8Array | undefined;

  constructor(
    peerPublicKey: Uint8Array,
    private readonly clock: Clock,
  ) {
    this.mac1Key = hash(LABEL_MAC1, peerPublicKey);
    this.cookieKey = hash(LABEL_COOKIE, peerPublicKey);
  }

  /** Fill MAC1 and (with a fresh cookie) MAC2 of a serialized handshake message in place. */
  addMacs(msg: Uint8Array): void {
    const o1 = mac1Offset(msg);
    const mac1 = mac(this.mac1Key, msg.subarray(0, o1));
    msg.set(mac1, o1);
    this.lastMac1 = mac1;
    const o2 = mac2Offset(msg);
    if (this.clock.now() - this.cookieSetAt > COOKIE_REFRESH_TIME) {
      msg.fill(0, o2, o2 + MAC_SIZE);
      return;
    }
    msg.set(mac(this.cookie, msg.subarray(0, o2)), o2);
  }

  get hasCookie(): boolean {
    return this.clock.now() - this.cookieSetAt <= COOKIE_REFRESH_TIME && !isZero(this.cookie);
  }

  /** Decrypt a cookie reply bound to our last MAC1; false when it does not authenticate. */
  consumeReply(reply: CookieReply): boolean {
    if (!this.lastMac1) return false;
    const cookie = xOpen(this.cookieKey, reply.nonce, reply.encryptedCookie, this.lastMac1);
    if (!cookie) return false;
    this.cookie = cookie;
    this.cookieSetAt = this.clock.now();
    this.lastMac1 = undefined;
    return true;
  }
}
