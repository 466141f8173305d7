/**
 * TCP header (RFC 9293 §3.1) as a zero-copy view, option parsing (RFC 9293 §3.2, RFC 7323, RFC 2018)
 * and an emitter that writes header + options into a caller-supplied buffer.
 */
import { finish, pseudoHeaderSum, sum16 } from "./checksum.ts";

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export const TCP_HEADER_MIN = 20;
/** Options are at most 40 bytes (data offset ≤ 15 words). */
export const TCP_OPTIONS_MAX = 40;

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;
const OPT_SACK_PERMITTED = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMP = 8;

/** Most SACK blocks an option can carry (RFC 2018 §3: 4 alone, 3 next to a timestamp). */
export const TCP_MAX_SACK_BLOCKS = 4;

/** Options of one segment, filled in place by parseTcpOptions (reusable: no per-segment objects). */
export class TcpOptions {
  /** Maximum segment size, or -1 when absent. */
  mss = -1;
  /** Window scale shift (clamped to 14 per RFC 7323 §2.3), or -1 when absent. */
  windowScale = -1;
  sackPermitted = false;
  hasTimestamp = false;
  tsVal = 0;
  tsEcr = 0;
  /** Number of SACK blocks; left/right edges are sackBlocks[2i], sackBlocks[2i+1]. */
  sackCount = 0;
  readonly sackBlocks = new Uint32Array(2 * TCP_MAX_SACK_BLOCKS);

  reset(): void {
    this.mss = -1;
    this.windowScale = -1;
    this.sackPermitted = false;
    this.hasTimestamp = false;
    this.tsVal = 0;
    this.tsEcr = 0;
    this.sackCount = 0;
  }
}

function u16(b: Uint8Array, o: number): number {
  return ((b[o] as number) << 8) | (b[o + 1] as number);
}
function u32(b: Uint8Array, o: number): number {
  return (
    (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0
  );
}
function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/**
 * Parse the options area buf[off, end) into `out`. Returns a drop reason for malformed options
 * (length < 2, running past the header, wrong length for a known kind), else null. Unknown kinds are
 * skipped by their length (RFC 9293 §3.1: "must be prepared to handle an illegal option length").
 */
export function parseTcpOptions(buf: Uint8Array, off: number, end: number, out: TcpOptions): string | null {
  out.reset();
  let i = off;
  while (i < end) {
    const kind = buf[i] as number;
    if (kind === OPT_END) break;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return "tcp-option-truncated";
    const len = buf[i + 1] as number;
    if (len < 2 || i + len > end) return "tcp-option-length";
    switch (kind) {
      case OPT_MSS:
        if (len !== 4) return "tcp-option-mss";
        out.mss = u16(buf, i + 2);
        break;
      case OPT_WSCALE:
        if (len !== 3) return "tcp-option-wscale";
        out.windowScale = Math.min(14, buf[i + 2] as number);
        break;
      case OPT_SACK_PERMITTED:
        if (len !== 2) return "tcp-option-sack-permitted";
        out.sackPermitted = true;
        break;
      case OPT_SACK: {
        const n = (len - 2) >>> 3;
        if (n < 1 || n > TCP_MAX_SACK_BLOCKS || len !== 2 + 8 * n) return "tcp-option-sack";
        for (let k = 0; k < n; k++) {
          out.sackBlocks[2 * k] = u32(buf, i + 2 + 8 * k);
          out.sackBlocks[2 * k + 1] = u32(buf, i + 6 + 8 * k);
        }
        out.sackCount = n;
        break;
      }
      case OPT_TIMESTAMP:
        if (len !== 10) return "tcp-option-timestamp";
        out.hasTimestamp = true;
        out.tsVal = u32(buf, i + 2);
        out.tsEcr = u32(buf, i + 6);
        break;
      default:
        break;
    }
    i += len;
  }
  return null;
}

/** A zero-copy view of a TCP segment (header + payload). Construct only after check() returned null. */
export class TcpView {
  constructor(readonly buf: Uint8Array) {}

  /** Structural check: length, data offset. Returns a drop reason or null. */
  static check(buf: Uint8Array): string | null {
    if (buf.length < TCP_HEADER_MIN) return "tcp-short";
    const hl = ((buf[12] as number) >>> 4) * 4;
    if (hl < TCP_HEADER_MIN) return "tcp-data-offset";
    if (hl > buf.length) return "tcp-header-truncated";
    return null;
  }

  get srcPort(): number {
    return u16(this.buf, 0);
  }
  get dstPort(): number {
    return u16(this.buf, 2);
  }
  get seq(): number {
    return u32(this.buf, 4);
  }
  get ack(): number {
    return u32(this.buf, 8);
  }
  get headerLength(): number {
    return ((this.buf[12] as number) >>> 4) * 4;
  }
  get flags(): number {
    return this.buf[13] as number;
  }
  get window(): number {
    return u16(this.buf, 14);
  }
  get checksum(): number {
    return u16(this.buf, 16);
  }
  get urgentPointer(): number {
    return u16(this.buf, 18);
  }
  get payloadLength(): number {
    return this.buf.length - this.headerLength;
  }
  get payload(): Uint8Array {
    return this.buf.subarray(this.headerLength);
  }
  /** Parse this segment's options into `out`; a drop reason or null. */
  options(out: TcpOptions): string | null {
    return parseTcpOptions(this.buf, TCP_HEADER_MIN, this.headerLength, out);
  }
}

/** Verify the checksum of `segment` (header + payload) against the IPv4/IPv6 pseudo header. */
export function tcpChecksumValid(src: Uint8Array, dst: Uint8Array, segment: Uint8Array): boolean {
  const acc = sum16(segment, 0, segment.length, pseudoHeaderSum(src, dst, 6, segment.length));
  return finish(acc) === 0;
}

/** Compute and store the checksum of the segment at buf[off, off+len). */
export function writeTcpChecksum(buf: Uint8Array, off: number, len: number, src: Uint8Array, dst: Uint8Array): void {
  buf[off + 16] = 0;
  buf[off + 17] = 0;
  put16(buf, off + 16, finish(sum16(buf, off, len, pseudoHeaderSum(src, dst, 6, len))));
}

/** Fields of a segment to emit. Reuse one instance; set mss/windowScale to -1 and counts to 0 to omit. */
export class TcpHeaderFields {
  srcPort = 0;
  dstPort = 0;
  seq = 0;
  ack = 0;
  flags = 0;
  window = 0;
  mss = -1;
  windowScale = -1;
  sackPermitted = false;
  hasTimestamp = false;
  tsVal = 0;
  tsEcr = 0;
  sackCount = 0;
  readonly sackBlocks = new Uint32Array(2 * TCP_MAX_SACK_BLOCKS);

  /** Clear options and flags so the next segment starts from a plain header. */
  resetOptions(): void {
    this.mss = -1;
    this.windowScale = -1;
    this.sackPermitted = false;
    this.hasTimestamp = false;
    this.sackCount = 0;
  }
}

/**
 * Length of header + options for `h` (a multiple of 4). SACK blocks beyond what fits in 40 bytes of
 * options are not counted (emitTcpHeader drops them the same way).
 */
export function tcpHeaderLength(h: TcpHeaderFields): number {
  let n = 0;
  if (h.mss >= 0) n += 4;
  if (h.hasTimestamp || h.sackPermitted) n += h.hasTimestamp ? 12 : 4;
  if (h.windowScale >= 0) n += 4;
  const sacks = sackBlocksThatFit(h, n);
  if (sacks > 0) n += 4 + 8 * sacks;
  return TCP_HEADER_MIN + n;
}

function sackBlocksThatFit(h: TcpHeaderFields, used: number): number {
  return Math.min(h.sackCount, TCP_MAX_SACK_BLOCKS, Math.floor((TCP_OPTIONS_MAX - used - 4) / 8));
}

/**
 * Write the header and options of `h` at buf[off]; the checksum field is zeroed (see writeTcpChecksum).
 * Options are laid out on 4-byte boundaries the way Linux does: MSS, SACK-permitted + timestamps,
 * NOP + window scale, NOP NOP + SACK blocks. Returns the header length.
 */
export function emitTcpHeader(buf: Uint8Array, off: number, h: TcpHeaderFields): number {
  put16(buf, off, h.srcPort);
  put16(buf, off + 2, h.dstPort);
  put32(buf, off + 4, h.seq);
  put32(buf, off + 8, h.ack);
  put16(buf, off + 14, h.window);
  buf[off + 16] = 0;
  buf[off + 17] = 0;
  buf[off + 18] = 0;
  buf[off + 19] = 0;
  buf[off + 13] = h.flags;
  let o = off + TCP_HEADER_MIN;
  if (h.mss >= 0) {
    buf[o] = OPT_MSS;
    buf[o + 1] = 4;
    put16(buf, o + 2, h.mss);
    o += 4;
  }
  if (h.hasTimestamp) {
    if (h.sackPermitted) {
      buf[o] = OPT_SACK_PERMITTED;
      buf[o + 1] = 2;
    } else {
      buf[o] = OPT_NOP;
      buf[o + 1] = OPT_NOP;
    }
    buf[o + 2] = OPT_TIMESTAMP;
    buf[o + 3] = 10;
    put32(buf, o + 4, h.tsVal);
    put32(buf, o + 8, h.tsEcr);
    o += 12;
  } else if (h.sackPermitted) {
    buf[o] = OPT_NOP;
    buf[o + 1] = OPT_NOP;
    buf[o + 2] = OPT_SACK_PERMITTED;
    buf[o + 3] = 2;
    o += 4;
  }
  if (h.windowScale >= 0) {
    buf[o] = OPT_NOP;
    buf[o + 1] = OPT_WSCALE;
    buf[o + 2] = 3;
    buf[o + 3] = h.windowScale;
    o += 4;
  }
  const sacks = sackBlocksThatFit(h, o - off - TCP_HEADER_MIN);
  if (sacks > 0) {
    buf[o] = OPT_NOP;
    buf[o + 1] = OPT_NOP;
    buf[o + 2] = OPT_SACK;
    buf[o + 3] = 2 + 8 * sacks;
    o += 4;
    for (let k = 0; k < sacks; k++) {
      put32(buf, o, h.sackBlocks[2 * k] as number);
      put32(buf, o + 4, h.sackBlocks[2 * k + 1] as number);
      o += 8;
    }
  }
  const hl = o - off;
  buf[off + 12] = (hl / 4) << 4;
  return hl;
}
