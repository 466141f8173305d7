import type { Clock, Timer } from "../util/clock.ts";
import { type Ipv4View, writeIpv4HeaderChecksum } from "./ipv4.ts";
import { IPV6_HEADER, type Ipv6View } from "./ipv6.ts";

/**
 * IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5) fragment reassembly with hard limits:
 * - a reassembled datagram never exceeds 65535 bytes (IPv4 total length / IPv6 40 + payload length):
 *   checked per fragment against its own headers and again against the offset-0 fragment's
 *   headers, which may be longer than a later fragment's (IPv4 options, IPv6 extension headers);
 * - at most `maxDatagrams` reassemblies in progress: a new one evicts the oldest;
 * - each reassembly is abandoned `timeoutMs` after its first fragment (RFC 8200: 60 s max; we use 30 s);
 * - overlapping fragments abandon the datagram (RFC 5722, and Linux does the same for IPv4 since
 *   4.19); exact duplicates are discarded alone, as RFC 8200 §4.5 permits;
 * - at most `maxFragments` fragments per datagram (bounds the work of tiny-fragment floods).
 * Every discarded fragment or datagram is reported through `countDrop(reason)`.
 */

export interface ReassemblyLimits {
  maxDatagrams: number;
  maxFragments: number;
  timeoutMs: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = { maxDatagrams: 64, maxFragments: 128, timeoutMs: 30_000 };

const MAX_DATAGRAM = 65535;

interface Fragment {
  offset: number;
  end: number;
  data: Uint8Array;
}

class PendingDatagram {
  readonly fragments: Fragment[] = [];
  /** Bytes of fragmentable data received (no overlaps are kept, so this is the covered length). */
  received = 0;
  /** Length of the fragmentable part, known once the last fragment (MF = 0) arrived; else -1. */
  totalLength = -1;
  /** The unfragmentable part, copied from the offset-0 fragment (v4 header / v6 headers before the fragment header). */
  header: Uint8Array | null = null;
  /** IPv6: where in `header` the Next Header field naming the fragment header is, and what it becomes. */
  nextHeaderField = -1;
  nextHeader = -1;
  constructor(readonly deadline: number) {}
}

export class Reassembler {
  private readonly pending = new Map<string, PendingDatagram>();
  private readonly timer: Timer;
  private readonly limits: ReassemblyLimits;

  constructor(
    private readonly clock: Clock,
    private readonly countDrop: (reason: string) => void,
    limits: Partial<ReassemblyLimits> = {},
  ) {
    this.limits = { ...DEFAULT_REASSEMBLY_LIMITS, ...limits };
    this.timer = clock.timer(() => this.expire());
  }

  /** Datagrams currently being reassembled. */
  get inProgress(): number {
    return this.pending.size;
  }

  /**
   * Add an IPv4 fragment (a checked packet with MF set or a non-zero offset). Returns the complete
   * datagram (a new buffer, flags/offset cleared, checksum recomputed) or null.
   */
  inputV4(ip: Ipv4View): Uint8Array | null {
    const buf = ip.buf;
    const hl = ip.headerLength;
    const data = buf.subarray(hl, ip.totalLength);
    // Key per RFC 791: source, destination, protocol, identification.
    const key = String.fromCharCode(
      4,
      buf[9] as number,
      buf[4] as number,
      buf[5] as number,
      buf[12] as number,
      buf[13] as number,
      buf[14] as number,
      buf[15] as number,
      buf[16] as number,
      buf[17] as number,
      buf[18] as number,
      buf[19] as number,
    );
    const d = this.add(key, ip.fragmentOffset, data, ip.moreFragments, hl);
    if (!d) return null;
    if (ip.fragmentOffset === 0) d.header = buf.slice(0, hl);
    if (this.exceedsLimit(key, d) || !this.isComplete(d)) return null;
    const header = d.header as Uint8Array;
    const out = this.assemble(key, d, header);
    const total = out.length;
    out[2] = total >>> 8;
    out[3] = total & 0xff;
    out[6] = 0;
    out[7] = 0;
    writeIpv4HeaderChecksum(out, 0);
    return out;
  }

  /**
   * Add an IPv6 fragment (a checked packet whose walk() found a fragment header). Returns the
   * complete packet (a new buffer: the unfragmentable headers with the fragment header removed,
   * payload length rewritten) or null.
   */
  inputV6(ip: Ipv6View): Uint8Array | null {
    const buf = ip.buf;
    const fh = ip.fragmentHeaderOffset;
    const data = buf.subarray(fh + 8, ip.packetLength);
    // Key per RFC 8200 §4.5: source, destination, fragment identification.
    let key = "\u0006";
    for (let i = 8; i < 40; i++) key += String.fromCharCode(buf[i] as number);
    key += String.fromCharCode(
      buf[fh + 4] as number,
      buf[fh + 5] as number,
      buf[fh + 6] as number,
      buf[fh + 7] as number,
    );
    const offset = ip.fragmentOffset;
    const d = this.add(key, offset, data, ip.moreFragments, fh);
    if (!d) return null;
    if (offset === 0) {
      d.header = buf.slice(0, fh);
      d.nextHeaderField = ip.fragmentNextHeaderField;
      d.nextHeader = buf[fh] as number;
    }
    if (this.exceedsLimit(key, d) || !this.isComplete(d)) return null;
    const out = this.assemble(key, d, d.header as Uint8Array);
    out[d.nextHeaderField] = d.nextHeader;
    const plen = out.length - IPV6_HEADER;
    out[4] = plen >>> 8;
    out[5] = plen & 0xff;
    return out;
  }

  /** Drop every reassembly in progress and stop the timer. */
  clear(): void {
    this.pending.clear();
    this.timer.cancel();
  }

  /**
   * Record one fragment. `headerLength` is the size of the unfragmentable part that precedes the
   * data in the reassembled packet (for the 64 KiB limit). Returns the datagram, or null when the
   * fragment (or the whole datagram) was dropped.
   */
  private add(
    key: string,
    offset: number,
    data: Uint8Array,
    more: boolean,
    headerLength: number,
  ): PendingDatagram | null {
    const len = data.length;
    const end = offset + len;
    // Every fragment but the last carries a multiple of 8 bytes (RFC 791, RFC 8200 §4.5).
    if (more && (len === 0 || (len & 7) !== 0)) {
      this.countDrop("frag-bad-length");
      return null;
    }
    if (headerLength + end > MAX_DATAGRAM) {
      this.countDrop("frag-too-big");
      return null;
    }
    let d = this.pending.get(key);
    if (!d) {
      if (this.pending.size >= this.limits.maxDatagrams) {
        const oldest = this.pending.keys().next().value as string;
        this.pending.delete(oldest);
        this.countDrop("frag-evicted");
      }
      d = new PendingDatagram(this.clock.now() + this.limits.timeoutMs);
      this.pending.set(key, d);
      if (this.timer.deadline < 0) this.timer.setAt(d.deadline);
    }
    if (!more) {
      if (d.totalLength >= 0 && d.totalLength !== end) return this.abandon(key, "frag-inconsistent");
      const last = d.fragments[d.fragments.length - 1];
      if (last && last.end > end) return this.abandon(key, "frag-inconsistent");
      d.totalLength = end;
    } else if (d.totalLength >= 0 && end > d.totalLength) {
      return this.abandon(key, "frag-inconsistent");
    }
    // Find the insertion point, rejecting overlaps (sorted, non-overlapping list).
    const frags = d.fragments;
    let at = frags.length;
    for (let i = 0; i < frags.length; i++) {
      const f = frags[i] as Fragment;
      if (f.offset === offset && f.end === end) {
        this.countDrop("frag-duplicate");
        return null;
      }
      if (offset < f.end && end > f.offset) return this.abandon(key, "frag-overlap");
      if (f.offset >= end) {
        at = i;
        break;
      }
    }
    if (frags.length >= this.limits.maxFragments) return this.abandon(key, "frag-too-many");
    frags.splice(at, 0, { offset, end, data: data.slice() });
    d.received += len;
    return d;
  }

  /**
   * The result would exceed 65535 bytes: the offset-0 fragment's headers plus the furthest fragment
   * end (the fragments are sorted, so the last one's). Abandons the datagram.
   */
  private exceedsLimit(key: string, d: PendingDatagram): boolean {
    const last = d.fragments[d.fragments.length - 1];
    if (!d.header || !last || d.header.length + Math.max(last.end, d.totalLength) <= MAX_DATAGRAM) return false;
    this.abandon(key, "frag-too-big");
    return true;
  }

  private isComplete(d: PendingDatagram): boolean {
    return d.header !== null && d.totalLength >= 0 && d.received === d.totalLength;
  }

  private assemble(key: string, d: PendingDatagram, header: Uint8Array): Uint8Array {
    this.pending.delete(key);
    const out = new Uint8Array(header.length + d.totalLength);
    out.set(header, 0);
    for (const f of d.fragments) out.set(f.data, header.length + f.offset);
    return out;
  }

  private abandon(key: string, reason: string): null {
    this.pending.delete(key);
    this.countDrop(reason);
    return null;
  }

  /** Timer callback: drop every reassembly past its deadline (insertion order = deadline order). */
  private expire(): void {
    const now = this.clock.now();
    for (const [key, d] of this.pending) {
      if (d.deadline > now) {
        this.timer.setAt(d.deadline);
        return;
      }
      this.pending.delete(key);
      this.countDrop("frag-timeout");
    }
  }
}
