/**
 * TAI64N timestamps for handshake initiations: 8 bytes big-endian (2^62 + 10 + Unix seconds)
 * then 4 bytes big-endian nanoseconds. Like wireguard-go, the low 24 bits of the nanoseconds
 * are cleared so the timestamp does not leak a fine-grained clock (≈16.8 ms resolution).
 */
export const TAI64N_SIZE = 12;
const TAI64_BASE = 0x400000000000000an;
const WHITENER_MASK = 0x1000000 - 1;

/** TAI64N for a wall-clock time in Unix milliseconds. */
export function tai64n(wallMs: number): Uint8Array {
  const out = new Uint8Array(TAI64N_SIZE);
  const view = new DataView(out.buffer);
  const secs = Math.floor(wallMs / 1000);
  const nanos = Math.floor((wallMs - secs * 1000) * 1_000_000);
  view.setBigUint64(0, TAI64_BASE + BigInt(secs));
  view.setUint32(8, (nanos & ~WHITENER_MASK) >>> 0);
  return out;
}

/** True when timestamp `a` is strictly later than `b` (both big-endian, so bytewise order). */
export function tai64nAfter(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < TAI64N_SIZE; i++) {
    if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  }
  return false;
}
