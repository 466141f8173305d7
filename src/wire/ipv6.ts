/**
 * IPv6 header view (RFC 8200) with the extension-header chain walk. Zero-copy.
 * `Ipv6View.check(buf)` validates the fixed header; `walk()` follows the extension headers and
 * records where the upper-layer header (or the fragment header) is.
 */

export const IPV6_HEADER = 40;
export const IPV6_FRAGMENT_HEADER = 8;

export const NH_HOP_BY_HOP = 0;
export const NH_ROUTING = 43;
export const NH_FRAGMENT = 44;
export const NH_ESP = 50;
export const NH_AH = 51;
export const NH_NO_NEXT = 59;
export const NH_DEST_OPTS = 60;

export class Ipv6View {
  /** Upper-layer protocol after the walk (for a fragment: the fragment header's next header). */
  upperProtocol = -1;
  /** Offset of the upper-layer header (for a fragment: of the fragment data). */
  upperOffset = -1;
  /** Offset of the fragment header, or -1 when the packet is not a fragment. */
  fragmentHeaderOffset = -1;
  /** Offset of the Next Header byte that names the fragment header (6 for the fixed header). */
  fragmentNextHeaderField = -1;

  constructor(readonly buf: Uint8Array) {}

  /**
   * Validate the fixed header: version 6 and payload length within the buffer (trailing padding
   * allowed). Jumbograms (payload length 0 with a hop-by-hop jumbo option, RFC 2675) are refused.
   */
  static check(buf: Uint8Array): string | null {
    if (buf.length < IPV6_HEADER) return "ipv6-truncated";
    if ((buf[0] as number) >> 4 !== 6) return "ipv6-bad-version";
    const plen = ((buf[4] as number) << 8) | (buf[5] as number);
    if (plen === 0 && buf[6] === NH_HOP_BY_HOP) return "ipv6-jumbogram";
    if (IPV6_HEADER + plen > buf.length) return "ipv6-truncated";
    return null;
  }

  get payloadLength(): number {
    return ((this.buf[4] as number) << 8) | (this.buf[5] as number);
  }
  /** End of the packet per the payload length (40 + payload length). */
  get packetLength(): number {
    return IPV6_HEADER + this.payloadLength;
  }
  get nextHeader(): number {
    return this.buf[6] as number;
  }
  get hopLimit(): number {
    return this.buf[7] as number;
  }
  get src(): Uint8Array {
    return this.buf.subarray(8, 24);
  }
  get dst(): Uint8Array {
    return this.buf.subarray(24, 40);
  }

  /** Fragment offset in bytes (valid only when fragmentHeaderOffset ≥ 0). */
  get fragmentOffset(): number {
    const o = this.fragmentHeaderOffset;
    return (((this.buf[o + 2] as number) << 8) | (this.buf[o + 3] as number)) & 0xfff8;
  }
  get moreFragments(): boolean {
    return ((this.buf[this.fragmentHeaderOffset + 3] as number) & 1) !== 0;
  }
  get fragmentIdentification(): number {
    const o = this.fragmentHeaderOffset;
    return (
      (((this.buf[o + 4] as number) << 24) |
        ((this.buf[o + 5] as number) << 16) |
        ((this.buf[o + 6] as number) << 8) |
        (this.buf[o + 7] as number)) >>>
      0
    );
  }

  /**
   * Walk the extension-header chain (RFC 8200 §4.1). Stops at the first upper-layer protocol, at a
   * fragment header (the rest belongs to the fragmentable part), at No Next Header, or at an
   * unknown header (reported as the upper protocol so the caller counts it). Returns a drop reason
   * or null; on success upperProtocol/upperOffset (and the fragment fields) are set.
   */
  walk(): string | null {
    const buf = this.buf;
    const end = this.packetLength;
    let nh = buf[6] as number;
    let nhField = 6;
    let off = IPV6_HEADER;
    for (;;) {
      // Hop-by-hop options may only follow the fixed header (RFC 8200 §4.1).
      if (nh === NH_HOP_BY_HOP && off !== IPV6_HEADER) return "ipv6-misplaced-hop-by-hop";
      switch (nh) {
        case NH_HOP_BY_HOP:
        case NH_DEST_OPTS:
        case NH_ROUTING: {
          if (off + 8 > end) return "ipv6-bad-extension-header";
          const len = ((buf[off + 1] as number) + 1) * 8;
          if (off + len > end) return "ipv6-bad-extension-header";
          // A routing header with segments left > 0 would make us an intermediate hop: refuse.
          if (nh === NH_ROUTING && buf[off + 3] !== 0) return "ipv6-routing-segments-left";
          nhField = off;
          nh = buf[off] as number;
          off += len;
          continue;
        }
        case NH_AH: {
          if (off + 8 > end) return "ipv6-bad-extension-header";
          const len = ((buf[off + 1] as number) + 2) * 4; // RFC 4302 §2.2
          if (off + len > end) return "ipv6-bad-extension-header";
          nhField = off;
          nh = buf[off] as number;
          off += len;
          continue;
        }
        case NH_FRAGMENT: {
          if (off + IPV6_FRAGMENT_HEADER > end) return "ipv6-bad-extension-header";
          this.fragmentHeaderOffset = off;
          this.fragmentNextHeaderField = nhField;
          this.upperProtocol = buf[off] as number;
          this.upperOffset = off + IPV6_FRAGMENT_HEADER;
          return null;
        }
        default:
          this.upperProtocol = nh;
          this.upperOffset = off;
          return null;
      }
    }
  }
}

/** Write a 40-byte IPv6 header at buf[off] (traffic class and flow label zero). */
export function emitIpv6Header(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  nextHeader: number,
  payloadLength: number,
  hopLimit: number,
): void {
  buf[off] = 0x60;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = payloadLength >>> 8;
  buf[off + 5] = payloadLength & 0xff;
  buf[off + 6] = nextHeader;
  buf[off + 7] = hopLimit;
  buf.set(src, off + 8);
  buf.set(dst, off + 24);
}

/** Write an 8-byte fragment header at buf[off] (RFC 8200 §4.5). `fragmentOffset` in bytes, multiple of 8. */
export function emitIpv6FragmentHeader(
  buf: Uint8Array,
  off: number,
  nextHeader: number,
  fragmentOffset: number,
  moreFragments: boolean,
  identification: number,
): void {
  buf[off] = nextHeader;
  buf[off + 1] = 0;
  const w = (fragmentOffset & 0xfff8) | (moreFragments ? 1 : 0);
  buf[off + 2] = w >>> 8;
  buf[off + 3] = w & 0xff;
  buf[off + 4] = identification >>> 24;
  buf[off + 5] = (identification >>> 16) & 0xff;
  buf[off + 6] = (identification >>> 8) & 0xff;
  buf[off + 7] = identification & 0xff;
}
