/**
 * Randomness, injected: WireGuard ephemerals, session indices, TCP initial sequence numbers and
 * timer jitter all come from a Random so tests can replay them exactly.
 */
export interface Random {
  /** Fill `buf` with random bytes and return it. */
  fill(buf: Uint8Array): Uint8Array;
  /** A uniformly random unsigned 32-bit integer. */
  u32(): number;
}

export const cryptoRandom: Random = {
  fill(buf) {
    // getRandomValues is limited to 65536 bytes per call.
    for (let off = 0; off < buf.length; off += 65536) {
      crypto.getRandomValues(buf.subarray(off, Math.min(buf.length, off + 65536)));
    }
    return buf;
  },
  u32() {
    return crypto.getRandomValues(new Uint32Array(1))[0] as number;
  },
};

/** Deterministic PRNG (xoshiro128**) for tests and the impairment relay. Not for keys in production. */
export class SeededRandom implements Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  constructor(seed: number) {
    // splitmix32 to spread the seed over the state.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    return result;
  }
  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
  fill(buf: Uint8Array): Uint8Array {
    for (let i = 0; i < buf.length; i += 4) {
      const v = this.u32();
      buf[i] = v & 0xff;
      if (i + 1 < buf.length) buf[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < buf.length) buf[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < buf.length) buf[i + 3] = v >>> 24;
    }
    return buf;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
