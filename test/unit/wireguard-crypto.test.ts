import { describe, expect, test } from "bun:test";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import vectors from "../../fixtures/wireguard/kdf.json";
import { nobleChaCha20Poly1305, xOpen, xSeal } from "../../src/wireguard/aead.ts";
import { dh, hash, hmacBlake2s, kdf1, kdf2, kdf3, mac, utf8 } from "../../src/wireguard/crypto.ts";
import { tai64n, tai64nAfter } from "../../src/wireguard/tai64n.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));

describe("HMAC-BLAKE2s KDF (wireguard-go kdf_test.go vectors)", () => {
  for (const [i, v] of vectors.kdf.entries()) {
    test(`vector ${i}`, () => {
      const key = unhex(v.key);
      const input = unhex(v.input);
      const [a, b, c] = kdf3(key, input);
      expect([hex(a), hex(b), hex(c)]).toEqual([v.t0, v.t1, v.t2]);
      const [d, e] = kdf2(key, input);
      expect([hex(d), hex(e)]).toEqual([v.t0, v.t1]);
      expect(hex(kdf1(key, input))).toBe(v.t0);
    });
  }
});

describe("hash constants", () => {
  test("initial chain key and hash match boringtun's constants", () => {
    const ck = hash(utf8("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"));
    expect(Array.from(ck)).toEqual(vectors.initialChainKey);
    expect(Array.from(hash(ck, utf8("WireGuard v1 zx2c4 Jason@zx2c4.com")))).toEqual(vectors.initialHash);
  });

  test("MAC is keyed BLAKE2s-128, distinct from HMAC", () => {
    const key = new Uint8Array(32).fill(7);
    const msg = utf8("abc");
    const m = mac(key, msg);
    // Python: hashlib.blake2s(b"abc", key=bytes([7]*32), digest_size=16)
    expect(hex(m)).toBe("d7eed27fa1b07790a9c597b6f81e48f3");
    expect(hex(m)).not.toBe(hex(hmacBlake2s(key, msg).subarray(0, 16)));
    // BLAKE2s-128 keyed with a different key yields a different tag.
    expect(hex(mac(new Uint8Array(32).fill(8), msg))).not.toBe(hex(m));
  });

  test("BLAKE2s-256 known answers (RFC 7693 appendix B)", () => {
    expect(hex(hash(utf8("abc")))).toBe("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
    expect(hex(hash(utf8("a"), utf8("bc")))).toBe("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  });
});

describe("X25519", () => {
  test("RFC 7748 §6.1 shared secret", () => {
    const alicePriv = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const bobPub = unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    expect(hex(dh(alicePriv, bobPub)!)).toBe("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  });

  test("low-order public key (all-zero result) is rejected", () => {
    const priv = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    expect(dh(priv, new Uint8Array(32))).toBeUndefined();
    const one = new Uint8Array(32);
    one[0] = 1;
    expect(dh(priv, one)).toBeUndefined();
  });
});

describe("AEAD", () => {
  const key = unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");

  test("nonce is 4 zero bytes + 64-bit little-endian counter", () => {
    const counter = 0x0102_0304_0506;
    const pt = utf8("hello wireguard!");
    const out = new Uint8Array(pt.length + 16);
    nobleChaCha20Poly1305(key).seal(counter, pt, out);
    const nonce = unhex("000000000605040302010000");
    expect(hex(out)).toBe(hex(chacha20poly1305(key, nonce).encrypt(pt)));
  });

  test("round trip in place; wrong counter, AD or a flipped bit fail", () => {
    const aead = nobleChaCha20Poly1305(key);
    const buf = new Uint8Array(32 + 16);
    buf.set(utf8("0123456789abcdef0123456789abcdef"));
    const ad = utf8("ad");
    aead.seal(7, buf.subarray(0, 32), buf, ad);
    const sealed = buf.slice();
    expect(aead.open(8, sealed.slice(), new Uint8Array(32), ad)).toBe(false);
    expect(aead.open(7, sealed.slice(), new Uint8Array(32), utf8("AD"))).toBe(false);
    // In place: plaintext view over the ciphertext.
    expect(aead.open(7, buf, buf.subarray(0, 32), ad)).toBe(true);
    expect(new TextDecoder().decode(buf.subarray(0, 32))).toBe("0123456789abcdef0123456789abcdef");
    const tampered = sealed.slice();
    tampered[3]! ^= 1;
    expect(aead.open(7, tampered, new Uint8Array(32), ad)).toBe(false);
    expect(aead.open(7, new Uint8Array(5), new Uint8Array(0), ad)).toBe(false);
  });

  test("RFC 8439 §2.8.2 test vector (full 12-byte nonce via noble, counter layout via ours)", () => {
    const nonce = unhex("070000004041424344454647");
    const aad = unhex("50515253c0c1c2c3c4c5c6c7");
    const pt = utf8(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    const ct = chacha20poly1305(key, nonce, aad).encrypt(pt);
    expect(hex(ct.subarray(ct.length - 16))).toBe("1ae10b594f09e26a7e902ecbd0600691");
    expect(hex(ct.subarray(0, 16))).toBe("d31a8d34648e60db7b86afbc53ef7ec2");
  });

  test("XChaCha20-Poly1305 round trip; wrong AD fails", () => {
    const nonce = new Uint8Array(24).fill(3);
    const ct = xSeal(key, nonce, utf8("cookie-cookie-16"), utf8("mac1"));
    expect(ct.length).toBe(32);
    expect(new TextDecoder().decode(xOpen(key, nonce, ct, utf8("mac1"))!)).toBe("cookie-cookie-16");
    expect(xOpen(key, nonce, ct, utf8("mac2"))).toBeUndefined();
  });
});

describe("TAI64N", () => {
  test("layout: 2^62 + 10 + seconds, big-endian; nanoseconds whitened to 2^24 ns", () => {
    const ts = tai64n(1_700_000_000_123.5);
    // 0x400000000000000a + 1_700_000_000 = 0x400000006553f10a
    expect(hex(ts.subarray(0, 8))).toBe("400000006553f10a");
    // 123.5 ms = 123_500_000 ns = 0x075c7d60; & ~0xffffff = 0x07000000
    expect(hex(ts.subarray(8))).toBe("07000000");
  });

  test("ordering", () => {
    expect(tai64nAfter(tai64n(2000), tai64n(1000))).toBe(true);
    expect(tai64nAfter(tai64n(1000), tai64n(1000))).toBe(false);
    expect(tai64nAfter(tai64n(1000), tai64n(2000))).toBe(false);
    // Inside one whitening quantum the stamps are equal, so not newer.
    expect(tai64nAfter(tai64n(1005), tai64n(1000))).toBe(false);
    expect(tai64nAfter(tai64n(1020), tai64n(1000))).toBe(true);
  });
});
