/**
 * X25519 behind a tiny interface: @noble/curves (pure JS, the reference, ~350 µs per operation
 * here) or node:crypto's diffieHellman over KeyObjects (BoringSSL in Bun, ~30–45 µs). The DH is
 * the cost of every handshake message, and an initiation flood is paid in DHs, so the fast path
 * matters; it is used only after a self-test against noble (fixed and random keys, low-order
 * points), and noble stays the fallback. Env WGSLIRPY_X25519=noble forces noble.
 *
 * Both reject a low-order public key (an all-zero shared secret) by throwing; callers turn that
 * into `undefined` (see dh() in crypto.ts).
 */

import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from "node:crypto";
import { x25519 } from "@noble/curves/ed25519.js";

export interface X25519Backend {
  readonly name: "noble" | "node:crypto";
  /** X25519(private, public); throws for a low-order or malformed public key. */
  sharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** X25519(private, 9): the public key. */
  publicKey(privateKey: Uint8Array): Uint8Array;
}

export const nobleX25519: X25519Backend = {
  name: "noble",
  sharedSecret: (priv, pub) => x25519.getSharedSecret(priv, pub),
  publicKey: (priv) => x25519.getPublicKey(priv),
};

// DER prefixes of a raw X25519 key in PKCS#8 and SPKI (RFC 8410): the 32 key bytes follow.
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]);

function der(prefix: Uint8Array, key: Uint8Array): Buffer {
  if (key.length !== 32) throw new RangeError("X25519 keys are 32 bytes");
  const out = Buffer.allocUnsafe(prefix.length + 32);
  out.set(prefix, 0);
  out.set(key, prefix.length);
  return out;
}

/**
 * Private keys are imported once and remembered by their array, with a copy of the bytes to check
 * against: the static key is used for every initiation, but arrays may be wiped or reused in place.
 */
class PrivateKeyCache {
  private readonly keys = new WeakMap<Uint8Array, { bytes: Uint8Array; key: KeyObject }>();
  get(priv: Uint8Array): KeyObject {
    const hit = this.keys.get(priv);
    if (hit && sameBytes(hit.bytes, priv)) return hit.key;
    const key = createPrivateKey({ key: der(PKCS8_PREFIX, priv), format: "der", type: "pkcs8" });
    this.keys.set(priv, { bytes: Uint8Array.from(priv), key });
    return key;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function makeNodeX25519(): X25519Backend {
  const privates = new PrivateKeyCache();
  return {
    name: "node:crypto",
    sharedSecret(priv, pub) {
      const publicKey = createPublicKey({ key: der(SPKI_PREFIX, pub), format: "der", type: "spki" });
      const s = diffieHellman({ privateKey: privates.get(priv), publicKey });
      return new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
    },
    publicKey(priv) {
      const spki = createPublicKey(privates.get(priv)).export({ format: "der", type: "spki" });
      return Uint8Array.from(spki.subarray(SPKI_PREFIX.length));
    },
  };
}

const hexBytes = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Low-order points (and the u = p encodings of 0 and 1) that both backends must refuse. */
export const LOW_ORDER_POINTS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map(hexBytes);

/**
 * Checks `candidate` against noble: RFC 7748 §5.2 vector, the public key of that scalar, a few
 * derived keys, and the refusal of low-order points. Returns why it failed, or undefined.
 */
export function crossCheckX25519(candidate: X25519Backend, reference: X25519Backend = nobleX25519): string | undefined {
  const scalar = hexBytes("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
  const u = hexBytes("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
  if (toHex(candidate.sharedSecret(scalar, u)) !== "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    return "RFC 7748 vector mismatch";
  let priv = scalar;
  for (let i = 0; i < 4; i++) {
    const pub = reference.publicKey(priv);
    if (toHex(candidate.publicKey(priv)) !== toHex(pub)) return "public key mismatch";
    const other = reference.sharedSecret(priv, u);
    if (toHex(candidate.sharedSecret(priv, pub)) !== toHex(reference.sharedSecret(priv, pub))) return "DH mismatch";
    priv = other;
  }
  for (const p of LOW_ORDER_POINTS) {
    let refused = false;
    try {
      candidate.sharedSecret(scalar, p);
    } catch {
      refused = true;
    }
    if (!refused) return "accepts a low-order point";
  }
  return undefined;
}

let selected: X25519Backend | undefined;
let selectedReason = "";

/**
 * The backend in use: node:crypto when it is present and matches noble, else noble (decided once,
 * on first use). `env` WGSLIRPY_X25519=noble forces noble.
 */
export function x25519Backend(env: Record<string, string | undefined> = process.env): X25519Backend {
  if (selected) return selected;
  if (env.WGSLIRPY_X25519?.trim().toLowerCase() === "noble") {
    selectedReason = "WGSLIRPY_X25519=noble";
    selected = nobleX25519;
    return selected;
  }
  let fast: X25519Backend | undefined;
  let failure: string | undefined;
  try {
    fast = makeNodeX25519();
    failure = crossCheckX25519(fast);
  } catch (e) {
    failure = e instanceof Error ? e.message : String(e);
  }
  selected = fast && !failure ? fast : nobleX25519;
  selectedReason = failure ? `node:crypto X25519 unusable: ${failure}` : "cross-checked against noble";
  return selected;
}

/** Why the current backend was chosen (for a debug log line). */
export function x25519BackendReason(): string {
  x25519Backend();
  return selectedReason;
}

/** node:crypto X25519, unchecked (for tests and benchmarks; use x25519Backend()). */
export function nodeX25519(): X25519Backend {
  return makeNodeX25519();
}
