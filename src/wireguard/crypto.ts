/**
 * The symmetric and DH primitives of Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses them.
 * HASH is BLAKE2s-256; MAC is *keyed* BLAKE2s with a 16-byte digest (MAC1/MAC2/cookies);
 * the KDF is HKDF over HMAC-BLAKE2s. Mixing MAC and HMAC up is the classic interop bug.
 */
import { blake2s } from "@noble/hashes/blake2.js";
import { hmac } from "@noble/hashes/hmac.js";
import { x25519Backend } from "./x25519.ts";

export const HASH_SIZE = 32;
export const MAC_SIZE = 16;
export const KEY_SIZE = 32;

const textEncoder = new TextEncoder();
export const utf8 = (s: string): Uint8Array => textEncoder.encode(s);

/** HASH(a || b || ...): BLAKE2s-256 over the concatenation, without building it. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MAC(key, msg): keyed BLAKE2s, 16-byte output. */
export function mac(key: Uint8Array, msg: Uint8Array): Uint8Array {
  return blake2s(msg, { key, dkLen: MAC_SIZE });
}

/** HMAC-BLAKE2s. */
export function hmacBlake2s(key: Uint8Array, msg: Uint8Array): Uint8Array {
  return hmac(blake2s, key, msg);
}

const ONE = Uint8Array.of(1);

/** HKDF-Expand outputs T1..Tn (n ≤ 3) for `input` under chaining key `key`. */
function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const prk = hmacBlake2s(key, input);
  const out: Uint8Array[] = [];
  const t1 = hmacBlake2s(prk, ONE);
  out.push(t1);
  let prev = t1;
  for (let i = 2; i <= n; i++) {
    const buf = new Uint8Array(HASH_SIZE + 1);
    buf.set(prev, 0);
    buf[HASH_SIZE] = i;
    prev = hmacBlake2s(prk, buf);
    out.push(prev);
  }
  prk.fill(0);
  return out;
}

export function kdf1(key: Uint8Array, input: Uint8Array): Uint8Array {
  return kdf(1, key, input)[0]!;
}
export function kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const [a, b] = kdf(2, key, input);
  return [a!, b!];
}
export function kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const [a, b, c] = kdf(3, key, input);
  return [a!, b!, c!];
}

export function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}

/** Constant-time equality of two byte strings of equal length. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]! ^ b[i]!;
  return acc === 0;
}

/**
 * X25519(private, public) on the cross-checked fast backend (x25519.ts). Returns undefined for a
 * low-order public key (all-zero shared secret), which the protocol must reject, or a malformed key.
 */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | undefined {
  let ss: Uint8Array;
  try {
    ss = x25519Backend().sharedSecret(privateKey, publicKey);
  } catch {
    return undefined;
  }
  return isZero(ss) ? undefined : ss;
}
