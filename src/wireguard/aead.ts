/**
 * AEAD behind a tiny interface so a faster backend can replace @noble/ciphers without touching
 * the protocol code. WireGuard's nonce is 4 zero bytes + the 64-bit little-endian counter.
 *
 * Backends: @noble/ciphers (pure JS, the reference, always available) and sodium-native
 * (libsodium via N-API, optional; aead-sodium.ts). selectAead() picks one.
 */
import { chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import type { Logger } from "../util/log.ts";
import { sodiumAeadFactory, sodiumChaCha20Poly1305, sodiumUnavailableReason } from "./aead-sodium.ts";
import { TAG_SIZE } from "./constants.ts";

export interface Aead {
  /**
   * Encrypt `plaintext` under nonce `counter` (a safe integer) into `out`, which must be exactly
   * `plaintext.length + 16` bytes. `plaintext` may be `out.subarray(0, n)` (in place).
   */
  seal(counter: number, plaintext: Uint8Array, out: Uint8Array, ad?: Uint8Array): void;
  /**
   * Authenticate and decrypt `ciphertext` (tag included) into `out` (`ciphertext.length - 16`
   * bytes; may alias `ciphertext` at the same offset). Returns false, never throws, when
   * authentication fails or the lengths are wrong; `out` must then be treated as garbage (noble
   * leaves it untouched, libsodium zeroes it; with in-place decryption the ciphertext is gone).
   */
  open(counter: number, ciphertext: Uint8Array, out: Uint8Array, ad?: Uint8Array): boolean;
}

export type AeadFactory = (key: Uint8Array) => Aead;

const TWO32 = 4294967296;

class NobleChaCha20Poly1305 implements Aead {
  private readonly key: Uint8Array;
  /** Reused per call: noble only reads the nonce during the call. */
  private readonly nonce = new Uint8Array(12);
  private readonly nonceView = new DataView(this.nonce.buffer);

  constructor(key: Uint8Array) {
    this.key = Uint8Array.from(key);
  }

  private setNonce(counter: number): Uint8Array {
    this.nonceView.setUint32(4, counter % TWO32, true);
    this.nonceView.setUint32(8, Math.floor(counter / TWO32), true);
    return this.nonce;
  }

  seal(counter: number, plaintext: Uint8Array, out: Uint8Array, ad?: Uint8Array): void {
    chacha20poly1305(this.key, this.setNonce(counter), ad).encrypt(plaintext, out);
  }

  open(counter: number, ciphertext: Uint8Array, out: Uint8Array, ad?: Uint8Array): boolean {
    if (ciphertext.length < TAG_SIZE) return false;
    try {
      chacha20poly1305(this.key, this.setNonce(counter), ad).decrypt(ciphertext, out);
      return true;
    } catch {
      return false;
    }
  }
}

export const nobleChaCha20Poly1305: AeadFactory = (key) => new NobleChaCha20Poly1305(key);

export type AeadBackend = "noble" | "sodium-native" | "custom";

/** Which backend a factory is (for logs and benchmarks). */
export function aeadBackendName(factory: AeadFactory): AeadBackend {
  if (factory === nobleChaCha20Poly1305) return "noble";
  if (factory === sodiumChaCha20Poly1305) return "sodium-native";
  return "custom";
}

/**
 * The transport AEAD to use: sodium-native when it loads (lazily, once) and passes its self-test,
 * else noble. Env WGSLIRPY_AEAD=noble forces noble; WGSLIRPY_AEAD=sodium only asks for sodium
 * (still falling back, with a warning, when it is unavailable). Logs the choice at debug.
 */
export function selectAead(log?: Logger, env: Record<string, string | undefined> = process.env): AeadFactory {
  const want = env.WGSLIRPY_AEAD?.trim().toLowerCase();
  if (want === "noble") {
    log?.debug("WireGuard AEAD: noble (WGSLIRPY_AEAD=noble)");
    return nobleChaCha20Poly1305;
  }
  const sodium = sodiumAeadFactory();
  if (sodium) {
    log?.debug("WireGuard AEAD: sodium-native (libsodium ChaCha20-Poly1305)");
    return sodium;
  }
  const reason = sodiumUnavailableReason() ?? "unavailable";
  if (want === "sodium" || want === "sodium-native") log?.warn(`WGSLIRPY_AEAD=${want}: ${reason}; using noble`);
  else log?.debug(`WireGuard AEAD: noble (${reason})`);
  return nobleChaCha20Poly1305;
}

/** XChaCha20-Poly1305 (cookie replies only; rare, so allocation is fine). */
export function xSeal(key: Uint8Array, nonce24: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce24, ad).encrypt(plaintext);
}

export function xOpen(
  key: Uint8Array,
  nonce24: Uint8Array,
  ciphertext: Uint8Array,
  ad: Uint8Array,
): Uint8Array | undefined {
  if (ciphertext.length < TAG_SIZE) return undefined;
  try {
    return xchacha20poly1305(key, nonce24, ad).decrypt(ciphertext);
  } catch {
    return undefined;
  }
}
