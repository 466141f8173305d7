import { checksum } from "./checksum.ts";

/** ICMPv4 message view (RFC 792). Zero-copy; `Icmpv4View.check(buf)` returns a drop reason or null. */

export const ICMP_HEADER = 8;
export const ICMPV4_ECHO_REPLY = 0;
export const ICMPV4_DEST_UNREACHABLE = 3;
export const ICMPV4_SOURCE_QUENCH = 4;
export const ICMPV4_REDIRECT = 5;
export const ICMPV4_ECHO_REQUEST = 8;
export const ICMPV4_TIME_EXCEEDED = 11;
export const ICMPV4_PARAMETER_PROBLEM = 12;

/** Destination-unreachable codes (RFC 792, RFC 1812 §5.2.7.1). */
export const ICMPV4_UNREACH_NET = 0;
export const ICMPV4_UNREACH_HOST = 1;
export const ICMPV4_UNREACH_PROTOCOL = 2;
export const ICMPV4_UNREACH_PORT = 3;
export const ICMPV4_UNREACH_NEEDFRAG = 4;
export const ICMPV4_UNREACH_ADMIN = 13;

/** True for ICMPv4 error types, to which no ICMP error may be sent (RFC 1122 §3.2.2). */
export function isIcmpv4Error(type: number): boolean {
  return (
    type === ICMPV4_DEST_UNREACHABLE ||
    type === ICMPV4_SOURCE_QUENCH ||
    type === ICMPV4_REDIRECT ||
    type === ICMPV4_TIME_EXCEEDED ||
    type === ICMPV4_PARAMETER_PROBLEM
  );
}

export class Icmpv4View {
  constructor(readonly buf: Uint8Array) {}

  /** At least the 8-byte header, and the checksum over the whole message verifies. */
  static check(buf: Uint8Array): string | null {
    if (buf.length < ICMP_HEADER) return "icmpv4-truncated";
    if (checksum(buf, 0, buf.length) !== 0) return "icmpv4-bad-checksum";
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
  /** Echo identifier (echo request/reply). */
  get echoId(): number {
    return ((this.buf[4] as number) << 8) | (this.buf[5] as number);
  }
  get echoSeq(): number {
    return ((this.buf[6] as number) << 8) | (this.buf[7] as number);
  }
  /** Next-hop MTU of a fragmentation-needed message (RFC 1191 §4). */
  get nextHopMtu(): number {
    return ((this.buf[6] as number) << 8) | (this.buf[7] as number);
  }
  /** Everything after the 8-byte header: echo data, or the quoted packet of an error. */
  get body(): Uint8Array {
    return this.buf.subarray(ICMP_HEADER);
  }
}

/**
 * Write an ICMPv4 header at buf[off] (type, code, the 32-bit rest-of-header) and compute the
 * checksum over `length` bytes: call after the body is in place.
 */
export function emitIcmpv4(
  buf: Uint8Array,
  off: number,
  length: number,
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
  writeIcmpv4Checksum(buf, off, length);
}

/** Recompute the ICMPv4 checksum of the message at buf[off, off+length). */
export function writeIcmpv4Checksum(buf: Uint8Array, off: number, length: number): void {
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  const c = checksum(buf, off, length);
  buf[off + 2] = c >>> 8;
  buf[off + 3] = c & 0xff;
}
