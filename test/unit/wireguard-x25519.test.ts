import { describe, expect, test } from "bun:test";
import { SeededRandom } from "../../src/util/random.ts";
import { dh } from "../../src/wireguard/crypto.ts";
import {
  crossCheckX25519,
  LOW_ORDER_POINTS,
  nobleX25519,
  nodeX25519,
  type X25519Backend,
  x25519Backend,
} from "../../src/wireguard/x25519.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("X25519 backends", () => {
  const fast = nodeX25519();

  test("node:crypto matches noble byte for byte on 300 random key pairs, public keys included", () => {
    const random = new SeededRandom(42);
    for (let i = 0; i < 300; i++) {
      // Unclamped random bytes on both sides: both backends must clamp the scalar and mask the
      // top bit of u the same way (RFC 7748 §5).
      const a = random.fill(new Uint8Array(32));
      const b = random.fill(new Uint8Array(32));
      const bPub = nobleX25519.publicKey(b);
      expect(hex(fast.publicKey(a))).toBe(hex(nobleX25519.publicKey(a)));
      expect(hex(fast.sharedSecret(a, bPub))).toBe(hex(nobleX25519.sharedSecret(a, bPub)));
      // A random u (not necessarily on the curve, top bit set half the time).
      const u = random.fill(new Uint8Array(32));
      let n: string;
      let m: string;
      try {
        n = hex(fast.sharedSecret(a, u));
      } catch {
        n = "refused";
      }
      try {
        m = hex(nobleX25519.sharedSecret(a, u));
      } catch {
        m = "refused";
      }
      expect(n).toBe(m);
    }
  });

  test("both refuse every low-order point; dh() turns that into undefined", () => {
    const priv = new SeededRandom(3).fill(new Uint8Array(32));
    for (const p of LOW_ORDER_POINTS) {
      expect(() => fast.sharedSecret(priv, p)).toThrow();
      expect(() => nobleX25519.sharedSecret(priv, p)).toThrow();
      expect(dh(priv, p)).toBeUndefined();
    }
  });

  test("a private key array changed in place is re-imported, not served from the cache", () => {
    const random = new SeededRandom(9);
    const priv = random.fill(new Uint8Array(32));
    const pub = nobleX25519.publicKey(random.fill(new Uint8Array(32)));
    expect(hex(fast.sharedSecret(priv, pub))).toBe(hex(nobleX25519.sharedSecret(priv, pub)));
    priv[5]! ^= 0x40;
    expect(hex(fast.sharedSecret(priv, pub))).toBe(hex(nobleX25519.sharedSecret(priv, pub)));
    expect(hex(fast.publicKey(priv))).toBe(hex(nobleX25519.publicKey(priv)));
  });

  test("the cross-check passes for node:crypto and catches a backend that computes something else", () => {
    expect(crossCheckX25519(fast)).toBeUndefined();
    const wrong: X25519Backend = {
      name: "node:crypto",
      sharedSecret: (a, b) => {
        const s = nobleX25519.sharedSecret(a, b);
        s[0]! ^= 1;
        return s;
      },
      publicKey: nobleX25519.publicKey,
    };
    expect(crossCheckX25519(wrong)).toBe("RFC 7748 vector mismatch");
    const lax: X25519Backend = {
      name: "node:crypto",
      sharedSecret: (a, b) => {
        try {
          return nobleX25519.sharedSecret(a, b);
        } catch {
          return new Uint8Array(32);
        }
      },
      publicKey: nobleX25519.publicKey,
    };
    expect(crossCheckX25519(lax)).toBe("accepts a low-order point");
    expect(x25519Backend().name).toBe("node:crypto");
    expect(x25519Backend({ WGSLIRPY_X25519: "noble" }).name).toBe("node:crypto"); // decided once
  });

  test("node:crypto is at least 3x faster than noble (the reason it exists)", () => {
    const random = new SeededRandom(1);
    const a = random.fill(new Uint8Array(32));
    const pub = nobleX25519.publicKey(random.fill(new Uint8Array(32)));
    const time = (b: X25519Backend, n: number): number => {
      const t = performance.now();
      for (let i = 0; i < n; i++) b.sharedSecret(a, pub);
      return (performance.now() - t) / n;
    };
    // Best of 5 rounds each: a busy machine can only make a round slower.
    let f = Number.POSITIVE_INFINITY;
    let s = Number.POSITIVE_INFINITY;
    for (let round = 0; round < 5; round++) {
      f = Math.min(f, time(fast, 100));
      s = Math.min(s, time(nobleX25519, 20));
    }
    expect(f * 3).toBeLessThan(s);
  });
});
