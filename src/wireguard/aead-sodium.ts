/**
 * ChaCha20-Poly1305 (IETF, 96-bit nonce) through sodium-native's libsodium binding: ~10x the
 * @noble/ciphers rate for full-size packets. sodium-native is an optionalDependency with prebuilt
 * N-API binaries; it is loaded lazily on first use and, when it cannot load (no prebuild for the
 * platform, a `bun build --compile` binary, a broken install) or fails its known-answer self-test,
 * callers fall back to noble (see selectAead in aead.ts).
 *
 * sodium-native 5's binding takes any ArrayBuffer view, so the caller's Uint8Array subarrays are
 * passed as they are: no Buffer wrappers, no copies. The binding is called directly (fromBinding),
 * not through the package's index.js and its per-call asserts: the sizes are checked here. libsodium encrypts and
 * decrypts in place when input and output start at the same address, which is the only aliasing
 * the Aead interface allows. On an authentication failure libsodium zeroes the output.
 */
import { createRequire } from "node:module";
import type { Aead, AeadFactory } from "./aead.ts";
import { TAG_SIZE } from "./constants.ts";

/** The part of sodium-native used here (it ships no type declarations). */
interface SodiumAeadApi {
  crypto_aead_chacha20poly1305_ietf_ABYTES: number;
  crypto_aead_chacha20poly1305_ietf_KEYBYTES: number;
  crypto_aead_chacha20poly1305_ietf_NPUBBYTES: number;
  /** Returns the ciphertext length; throws when the sizes are wrong. */
  crypto_aead_chacha20poly1305_ietf_encrypt(
    c: Uint8Array,
    m: Uint8Array,
    ad: Uint8Array | null | undefined,
    nsec: null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  /** Returns the plaintext length; throws ("could not verify data") when authentication fails. */
  crypto_aead_chacha20poly1305_ietf_decrypt(
    m: Uint8Array,
    nsec: null,
    c: Uint8Array,
    ad: Uint8Array | null | undefined,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
}

const TWO32 = 4294967296;

class SodiumChaCha20Poly1305 implements Aead {
  private readonly key: Uint8Array;
  private readonly nonce = new Uint8Array(12);
  private readonly nonceView = new DataView(this.nonce.buffer);

  constructor(
    private readonly na: SodiumAeadApi,
    key: Uint8Array,
  ) {
    if (key.length !== 32) throw new RangeError("ChaCha20-Poly1305 keys are 32 bytes");
    this.key = Uint8Array.from(key);
  }

  private setNonce(counter: number): Uint8Array {
    this.nonceView.setUint32(4, counter % TWO32, true);
    this.nonceView.setUint32(8, Math.floor(counter / TWO32), true);
    return this.nonce;
  }

  seal(counter: number, plaintext: Uint8Array, out: Uint8Array, ad?: Uint8Array): void {
    if (out.length !== plaintext.length + TAG_SIZE) throw new RangeError("seal: out must be plaintext.length + 16");
    this.na.crypto_aead_chacha20poly1305_ietf_encrypt(out, plaintext, ad, null, this.setNonce(counter), this.key);
  }

  open(counter: number, ciphertext: Uint8Array, out: Uint8Array, ad?: Uint8Array): boolean {
    if (ciphertext.length < TAG_SIZE || out.length !== ciphertext.length - TAG_SIZE) return false;
    try {
      this.na.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, ciphertext, ad, this.setNonce(counter), this.key);
      return true;
    } catch {
      return false;
    }
  }
}

const hexBytes = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], (b) => Number.parseInt(b, 16));

/**
 * RFC 8439 §2.8.2 known answer, run once at load: a native module that loads but computes
 * something else must never carry traffic.
 */
function selfTest(na: SodiumAeadApi): string | undefined {
  if (
    na.crypto_aead_chacha20poly1305_ietf_ABYTES !== TAG_SIZE ||
    na.crypto_aead_chacha20poly1305_ietf_KEYBYTES !== 32 ||
    na.crypto_aead_chacha20poly1305_ietf_NPUBBYTES !== 12
  ) {
    return "unexpected chacha20poly1305_ietf sizes";
  }
  const key = hexBytes("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const nonce = hexBytes("070000004041424344454647");
  const ad = hexBytes("50515253c0c1c2c3c4c5c6c7");
  const pt = new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const out = new Uint8Array(pt.length + TAG_SIZE);
  na.crypto_aead_chacha20poly1305_ietf_encrypt(out, pt, ad, null, nonce, key);
  // First 16 ciphertext bytes and the tag from the RFC.
  const head = Buffer.from(out.subarray(0, 16)).toString("hex");
  const tag = Buffer.from(out.subarray(pt.length)).toString("hex");
  if (head !== "d31a8d34648e60db7b86afbc53ef7ec2" || tag !== "1ae10b594f09e26a7e902ecbd0600691") {
    return "RFC 8439 self-test mismatch";
  }
  const back = new Uint8Array(pt.length);
  na.crypto_aead_chacha20poly1305_ietf_decrypt(back, null, out, ad, nonce, key);
  if (Buffer.compare(back, pt) !== 0) return "RFC 8439 self-test: decrypt mismatch";
  return undefined;
}

/** The N-API binding's own signatures (no argument checks; negative result = failure). */
interface SodiumBinding {
  crypto_aead_chacha20poly1305_ietf_ABYTES: number;
  crypto_aead_chacha20poly1305_ietf_KEYBYTES: number;
  crypto_aead_chacha20poly1305_ietf_NPUBBYTES: number;
  crypto_aead_chacha20poly1305_ietf_encrypt(
    c: Uint8Array,
    m: Uint8Array,
    ad: Uint8Array | undefined,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(
    m: Uint8Array,
    c: Uint8Array,
    ad: Uint8Array | undefined,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
}

/**
 * sodium-native's prebuilt addon for this Linux CPU, required by a static path: `bun build
 * --compile` embeds a `.node` file required that way in the executable (and loads it from there),
 * while the package's own loader (require-addon, which searches the file system) cannot work in a
 * compiled binary. The sizes are checked by SodiumChaCha20Poly1305 before every call.
 */
function requireEmbeddedBinding(): SodiumBinding {
  if (process.platform !== "linux") throw new Error(`no embedded sodium-native for ${process.platform}`);
  if (process.arch === "x64") return require("sodium-native/prebuilds/linux-x64/sodium-native.node");
  if (process.arch === "arm64") return require("sodium-native/prebuilds/linux-arm64/sodium-native.node");
  throw new Error(`no embedded sodium-native for linux-${process.arch}`);
}

/** The binding behind the package's API (the same shape as sodium-native's index.js, minus its asserts). */
function fromBinding(b: SodiumBinding): SodiumAeadApi {
  return {
    crypto_aead_chacha20poly1305_ietf_ABYTES: b.crypto_aead_chacha20poly1305_ietf_ABYTES,
    crypto_aead_chacha20poly1305_ietf_KEYBYTES: b.crypto_aead_chacha20poly1305_ietf_KEYBYTES,
    crypto_aead_chacha20poly1305_ietf_NPUBBYTES: b.crypto_aead_chacha20poly1305_ietf_NPUBBYTES,
    crypto_aead_chacha20poly1305_ietf_encrypt(c, m, ad, _nsec, npub, k) {
      const n = b.crypto_aead_chacha20poly1305_ietf_encrypt(c, m, ad ?? undefined, npub, k);
      if (n < 0) throw new Error("could not encrypt data");
      return n;
    },
    crypto_aead_chacha20poly1305_ietf_decrypt(m, _nsec, c, ad, npub, k) {
      const n = b.crypto_aead_chacha20poly1305_ietf_decrypt(m, c, ad ?? undefined, npub, k);
      if (n < 0) throw new Error("could not verify data");
      return n;
    },
  };
}

/** Where the loaded sodium-native came from: the installed package, or the addon embedded in a compiled binary. */
export type SodiumSource = "package" | "embedded";
let source: SodiumSource | undefined;

/** The installed package first; in a `bun build --compile` binary, the embedded prebuilt addon. */
const requireSodium = (): unknown => {
  try {
    // The package's binding without index.js's wrappers: those run ~8 node:assert checks per call
    // (3 % of a download's CPU), and SodiumChaCha20Poly1305 checks every size itself.
    const api = fromBinding(createRequire(import.meta.url)("sodium-native/binding.js"));
    source = "package";
    return api;
  } catch (packageError) {
    try {
      const api = fromBinding(requireEmbeddedBinding());
      source = "embedded";
      return api;
    } catch (embeddedError) {
      // Both reasons: in a compiled binary the package's is always "Cannot find module", and the
      // embedded addon's (e.g. no libstdc++.so.6 on the machine) is the one that says what is wrong.
      const first = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];
      throw new Error(`${first(packageError)}; embedded addon: ${first(embeddedError)}`);
    }
  }
};

/** How sodium-native was loaded (after a successful load), for the start line and benchmarks. */
export function sodiumSource(): SodiumSource | undefined {
  load();
  return native ? source : undefined;
}

/** @internal For tests: the embedded-addon path, whatever the package loader would do. */
export const requireEmbeddedSodium = (): unknown => fromBinding(requireEmbeddedBinding());

let loader: () => unknown = requireSodium;
let native: SodiumAeadApi | null | undefined; // undefined = not tried yet, null = unavailable
let failure: string | undefined;

/**
 * @internal For tests: forget the load result and load through `fn` next time (default: the real
 * sodium-native), to exercise the fallback on platforms that do have the module.
 */
export function resetSodiumLoader(fn: () => unknown = requireSodium): void {
  loader = fn;
  native = undefined;
  failure = undefined;
}

function load(): SodiumAeadApi | null {
  if (native !== undefined) return native;
  try {
    const na = loader() as SodiumAeadApi;
    if (typeof na?.crypto_aead_chacha20poly1305_ietf_encrypt !== "function") {
      failure = "sodium-native has no crypto_aead_chacha20poly1305_ietf_encrypt";
      native = null;
      return null;
    }
    failure = selfTest(na);
    native = failure ? null : na;
  } catch (err) {
    failure = `sodium-native could not load: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`;
    native = null;
  }
  return native;
}

/** True when sodium-native loaded and passed its self-test (loads it on first call). */
export function sodiumAvailable(): boolean {
  return load() !== null;
}

/** Why sodium-native is unavailable (after a failed load), else undefined. */
export function sodiumUnavailableReason(): string | undefined {
  load();
  return failure;
}

/** The sodium-native AeadFactory, or undefined when the native module is unavailable. */
export function sodiumAeadFactory(): AeadFactory | undefined {
  return load() ? sodiumChaCha20Poly1305 : undefined;
}

/** sodium-native ChaCha20-Poly1305. Throws when the native module is unavailable: prefer selectAead(). */
export const sodiumChaCha20Poly1305: AeadFactory = (key) => {
  const na = load();
  if (!na) throw new Error(failure ?? "sodium-native unavailable");
  return new SodiumChaCha20Poly1305(na, key);
};
