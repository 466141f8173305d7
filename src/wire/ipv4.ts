import { checksum } from "./checksum.ts";

/**
 * IPv4 header view (RFC 791). Zero-copy: accessors read the caller's buffer in place.
 * Use `Ipv4View.check(buf)` before constructing: it returns a drop reason or null.
 */

export const IPV4_MIN_HEADER = 20;
/** Flags/fragment-offset word: Don't Fragment and More Fragments bits (RFC 791 §3.1). */
export const IPV4_DF = 0x4000;
export const IPV4_MF = 0x2000;
const OFFSET_MASK = 0x1fff;

export class Ipv4View {
  constructor(readonly buf: Uint8Array) {}

  /**
   * Validate a buffer as an IPv4 packet: version 4, IHL ≥ 5 and within the buffer, total length
   * covering the header and not exceeding the buffer (trailing link padding is allowed), and a
   * correct header checksum. Options are not interpreted (skipped via IHL).
   */
  static check(buf: Uint8Array): string | null {
    if (buf.length < IPV4_MIN_HEADER) return "ipv4-truncated";
    const b0 = buf[0] as number;
    if (b0 >> 4 !== 4) return "ipv4-bad-version";
    const hl = (b0 & 0x0f) * 4;
    if (hl < IPV4_MIN_HEADER) return "ipv4-bad-ihl";
    if (hl > buf.length) return "ipv4-truncated";
    const total = ((buf[2] as number) << 8) | (buf[3] as number);
    if (total < hl) return "ipv4-bad-total-length";
    if (total > buf.length) return "ipv4-truncated";
    // Summing a header that includes its own (correct) checksum yields 0 after finish().
    if (checksum(buf, 0, hl) !== 0) return "ipv4-bad-checksum";
    return null;
  }

  get headerLength(): number {
    return ((this.buf[0] as number) & 0x0f) * 4;
  }
  get totalLength(): number {
    return ((this.buf[2] as number) << 8) | (this.buf[3] as number);
  }
  get identification(): number {
    return ((this.buf[4] as number) << 8) | (this.buf[5] as number);
  }
  private get flagsOffset(): number {
    return ((this.buf[6] as number) << 8) | (this.buf[7] as number);
  }
  get dontFragment(): boolean {
    return (this.flagsOffset & IPV4_DF) !== 0;
  }
  get moreFragments(): boolean {
    return (this.flagsOffset & IPV4_MF) !== 0;
  }
  /** Fragment offset in bytes. */
  get fragmentOffset(): number {
    return (this.flagsOffset & OFFSET_MASK) * 8;
  }
  /** True when this packet is a fragment (MF set or non-zero offset). */
  get isFragment(): boolean {
    return (this.flagsOffset & (IPV4_MF | OFFSET_MASK)) !== 0;
  }
  get ttl(): number {
    return this.buf[8] as number;
  }
  get protocol(): number {
    return this.buf[9] as number;
  }
  get headerChecksum(): number {
    return ((this.buf[10] as number) << 8) | (this.buf[11] as number);
  }
  /** Source address as a view into the packet. */
  get src(): Uint8Array {
    return this.buf.subarray(12, 16);
  }
  get dst(): Uint8Array {
    return this.buf.subarray(16, 20);
  }
  /** The payload (after options, up to total length) as a view. */
  get payload(): Uint8Array {
    return this.buf.subarray(this.headerLength, this.totalLength);
  }
}

/**
 * Write a 20-byte IPv4 header (no options) at buf[off], including its checksum.
 * `flagsOffset` is the raw flags/fragment-offset word (IPV4_DF, IPV4_MF | offset/8).
 */
export function emitIpv4Header(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  totalLength: number,
  identification: number,
  flagsOffset: number,
  ttl: number,
): void {
  buf[off] = 0x45;
  buf[off + 1] = 0; // DSCP/ECN
  buf[off + 2] = totalLength >>> 8;
  buf[off + 3] = totalLength & 0xff;
  buf[off + 4] = (identification >>> 8) & 0xff;
  buf[off + 5] = identification & 0xff;
  buf[off + 6] = flagsOffset >>> 8;
  buf[off + 7] = flagsOffset & 0xff;
  buf[off + 8] = ttl;
  buf[off + 9] = protocol;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  buf.set(src, off + 12);
  buf.set(dst, off + 16);
  writeIpv4HeaderChecksum(buf, off);
}

/** Recompute the header checksum of the IPv4 header at buf[off] (after editing fields). */
export function writeIpv4HeaderChecksum(buf: Uint8Array, off: number): void {
  const hl = ((buf[off] as number) & 0x0f) * 4;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  const c = checksum(buf, off, hl);
  buf[off + 10] = c >>> 8;
  buf[off + 11] = c & 0xff;
}
