import { finish, pseudoHeaderSum, sum16 } from "./checksum.ts";

/** UDP header view (RFC 768). Zero-copy; `UdpView.check(buf)` returns a drop reason or null. */

export const UDP_HEADER = 8;
const IPPROTO_UDP = 17;

export class UdpView {
  constructor(readonly buf: Uint8Array) {}

  /** The UDP length field must cover the header and fit in the IP payload (which may be longer). */
  static check(buf: Uint8Array): string | null {
    if (buf.length < UDP_HEADER) return "udp-truncated";
    const len = ((buf[4] as number) << 8) | (buf[5] as number);
    if (len < UDP_HEADER) return "udp-bad-length";
    if (len > buf.length) return "udp-truncated";
    return null;
  }

  get srcPort(): number {
    return ((this.buf[0] as number) << 8) | (this.buf[1] as number);
  }
  get dstPort(): number {
    return ((this.buf[2] as number) << 8) | (this.buf[3] as number);
  }
  get length(): number {
    return ((this.buf[4] as number) << 8) | (this.buf[5] as number);
  }
  get checksum(): number {
    return ((this.buf[6] as number) << 8) | (this.buf[7] as number);
  }
  /** The datagram payload, up to the UDP length (a view). */
  get payload(): Uint8Array {
    return this.buf.subarray(UDP_HEADER, this.length);
  }
}

/**
 * Verify the checksum of a checked UDP datagram `udp` (exactly `length` bytes are covered).
 * Returns a drop reason or null. A zero checksum means "none" over IPv4 (RFC 768) but is invalid
 * over IPv6 (RFC 8200 §8.1).
 */
export function verifyUdpChecksum(src: Uint8Array, dst: Uint8Array, udp: Uint8Array): string | null {
  const stored = ((udp[6] as number) << 8) | (udp[7] as number);
  if (stored === 0) return src.length === 4 ? null : "udp-zero-checksum-v6";
  const len = ((udp[4] as number) << 8) | (udp[5] as number);
  const acc = sum16(udp, 0, len, pseudoHeaderSum(src, dst, IPPROTO_UDP, len));
  return finish(acc) === 0 ? null : "udp-bad-checksum";
}

/** Write a UDP header at buf[off] with checksum 0; call writeUdpChecksum once the payload is in place. */
export function emitUdpHeader(buf: Uint8Array, off: number, srcPort: number, dstPort: number, length: number): void {
  buf[off] = srcPort >>> 8;
  buf[off + 1] = srcPort & 0xff;
  buf[off + 2] = dstPort >>> 8;
  buf[off + 3] = dstPort & 0xff;
  buf[off + 4] = length >>> 8;
  buf[off + 5] = length & 0xff;
  buf[off + 6] = 0;
  buf[off + 7] = 0;
}

/** Fill the checksum of the UDP datagram at buf[off, off+length). A computed 0 is sent as 0xffff (RFC 768). */
export function writeUdpChecksum(buf: Uint8Array, off: number, src: Uint8Array, dst: Uint8Array, length: number): void {
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  let c = finish(sum16(buf, off, length, pseudoHeaderSum(src, dst, IPPROTO_UDP, length)));
  if (c === 0) c = 0xffff;
  buf[off + 6] = c >>> 8;
  buf[off + 7] = c & 0xff;
}
