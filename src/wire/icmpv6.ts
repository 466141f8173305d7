import { finish, pseudoHeaderSum, sum16 } from "./checksum.ts";

/**
 * ICMPv6 message view (RFC 4443). Zero-copy. Unlike ICMPv4 the checksum covers an IPv6 pseudo
 * header (RFC 4443 §2.3), so `check` needs the addresses.
 */

export const ICMPV6_HEADER = 8;
const IPPROTO_ICMPV6 = 58;

export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAMETER_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

/** Destination-unreachable codes (RFC 4443 §3.1). */
export const ICMPV6_UNREACH_NO_ROUTE = 0;
export const ICMPV6_UNREACH_ADMIN = 1;
export const ICMPV6_UNREACH_ADDRESS = 3;
export const ICMPV6_UNREACH_PORT = 4;

/** Types 0-127 are errors (RFC 4443 §2.1): never answered with another error. */
export function isIcmpv6Error(type: number): boolean {
  return type < 128;
}

export class Icmpv6View {
  constructor(readonly buf: Uint8Array) {}

  static check(src: Uint8Array, dst: Uint8Array, buf: Uint8Array): string | null {
    if (buf.length < ICMPV6_HEADER) return "icmpv6-truncated";
    const acc = sum16(buf, 0, buf.length, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, buf.length));
    if (finish(acc) !== 0) return "icmpv6-bad-checksum";
    return null;
  }

  get type(): number {
    return this.buf[0] as number;
  }
  get code(): number {
    return this.buf[1] as number;
  }
  get checksum(): number {
    return ((this.buf[2] as number) << 8) | (this.buf[3] as number);
  }
  get echoId(): number {
    return ((this.buf[4] as number) << 8) | (this.buf[5] as number);
  }
  get echoSeq(): number {
    return ((this.buf[6] as number) << 8) | (this.buf[7] as number);
  }
  /** MTU of a packet-too-big message (RFC 4443 §3.2). */
  get mtu(): number {
    return (
      (((this.buf[4] as number) << 24) |
        ((this.buf[5] as number) << 16) |
        ((this.buf[6] as number) << 8) |
        (this.buf[7] as number)) >>>
      0
    );
  }
  get body(): Uint8Array {
    return this.buf.subarray(ICMPV6_HEADER);
  }
}

/**
 * Write an ICMPv6 header at buf[off] and compute the checksum over `length` bytes with the
 * pseudo header: call after the body is in place.
 */
export function emitIcmpv6(
  buf: Uint8Array,
  off: number,
  length: number,
  src: Uint8Array,
  dst: Uint8Array,
  type: number,
  code: number,
  rest: number,
): void {
  buf[off] = type;
  buf[off + 1] = code;
  buf[off + 4] = rest >>> 24;
  buf[off + 5] = (rest >>> 16) & 0xff;
  buf[off + 6] = (rest >>> 8) & 0xff;
  buf[off + 7] = rest & 0xff;
  writeIcmpv6Checksum(buf, off, length, src, dst);
}

export function writeIcmpv6Checksum(
  buf: Uint8Array,
  off: number,
  length: number,
  src: Uint8Array,
  dst: Uint8Array,
): void {
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  const c = finish(sum16(buf, off, length, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, length)));
  buf[off + 2] = c >>> 8;
  buf[off + 3] = c & 0xff;
}
