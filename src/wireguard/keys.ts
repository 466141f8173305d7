import { cryptoRandom, type Random } from "../util/random.ts";
import { x25519Backend } from "./x25519.ts";

export const KEY_LENGTH = 32;

export class KeyError extends Error {}

/** Decode a base64 WireGuard key (44 characters, 32 bytes); throws KeyError naming `what`. */
export function parseKey(text: string, what = "key"): Uint8Array {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(t)) {
    throw new KeyError(
      `invalid ${what}: expected 32 bytes of base64 (44 characters ending in "="), got ${JSON.stringify(t.length > 60 ? `${t.slice(0, 57)}...` : t)}`,
    );
  }
  return new Uint8Array(Buffer.from(t, "base64"));
}

export function keyToBase64(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("base64");
}

/** A new clamped Curve25519 private key (as `wg genkey` makes). */
export function generatePrivateKey(random: Random = cryptoRandom): Uint8Array {
  const k = random.fill(new Uint8Array(KEY_LENGTH));
  k[0] = (k[0] as number) & 248;
  k[31] = ((k[31] as number) & 127) | 64;
  return k;
}

/** The public key for a private key (as `wg pubkey`). */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return x25519Backend().publicKey(privateKey);
}
