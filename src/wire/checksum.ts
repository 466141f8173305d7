/**
 * The Internet checksum (RFC 1071), computed over Uint8Array views without copying.
 * `sum16` returns the unfolded 32-bit-ish accumulator so callers can add a pseudo-header first.
 */

/** Add the 16-bit big-endian words of buf[off, off+len) to `acc` (odd trailing byte padded with 0). */
export function sum16(buf: Uint8Array, off: number, len: number, acc = 0): number {
  let i = off;
  const end = off + len;
  const even = end - ((end - off) & 1);
  // Unrolled by 8 bytes; the accumulator stays well below 2^53 for any packet size we handle.
  for (; i + 8 <= even; i += 8) {
    acc +=
      ((buf[i] as number) << 8) +
      (buf[i + 1] as number) +
      ((buf[i + 2] as number) << 8) +
      (buf[i + 3] as number) +
      ((buf[i + 4] as number) << 8) +
      (buf[i + 5] as number) +
      ((buf[i + 6] as number) << 8) +
      (buf[i + 7] as number);
  }
  for (; i < even; i += 2) acc += ((buf[i] as number) << 8) + (buf[i + 1] as number);
  if (i < end) acc += (buf[i] as number) << 8;
  return acc;
}

/** Fold an accumulator to 16 bits and complement it: the value to store in a checksum field. */
export function finish(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 65536);
  return ~acc & 0xffff;
}

/** Checksum of a byte range. */
export function checksum(buf: Uint8Array, off = 0, len = buf.length - off): number {
  return finish(sum16(buf, off, len));
}

/**
 * Pseudo-header sum for TCP/UDP/ICMPv6 over IPv4 or IPv6 (RFC 793 / RFC 8200 §8.1).
 * `src`/`dst` are 4- or 16-byte address views; `length` is the upper-layer length.
 */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  let acc = sum16(src, 0, src.length);
  acc = sum16(dst, 0, dst.length, acc);
  return acc + protocol + (length >>> 16) + (length & 0xffff);
}
