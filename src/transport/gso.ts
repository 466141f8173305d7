/**
 * UDP GSO batching for the outer socket (Linux UDP_SEGMENT): consecutive queued datagrams to one
 * endpoint are copied into one "super-datagram" that the kernel splits back into the original
 * datagrams, so a run of N full-size datagrams costs one sendmmsg entry instead of N.
 *
 * The kernel cuts a send longer than the socket's segment size G into G-byte datagrams (the last
 * one shorter) and leaves a send of at most G bytes alone. Hence:
 * - a run holds datagrams of exactly G bytes, except its last, which may be shorter (never empty:
 *   an empty datagram would vanish inside the super-datagram);
 * - every datagram of a flush must be ≤ G, or the kernel would cut it up: G is chosen for the whole
 *   flush before anything is built (chooseSegmentSize), and grows when a longer datagram shows up.
 * G settles at the largest datagram the tunnel sends (a full-size data message for its MTU), so the
 * transport needs no MTU: it learns it from the traffic.
 */

import { LOG_LEVELS, type Logger } from "../util/log.ts";

/** Segments per super-datagram (the kernel's UDP_MAX_SEGMENTS; 128 in newer kernels, 64 in all). */
export const GSO_MAX_SEGMENTS = 64;
/** Bytes per super-datagram: below the UDP payload limit of IPv4 (65,507) and IPv6 (65,527). */
export const GSO_MAX_BYTES = 65_000;
/** Bound on the reusable buffer super-datagrams are built in; a flush needing more goes in chunks. */
export const GSO_ARENA_MAX_BYTES = 4 * 1024 * 1024;
const GSO_ARENA_MIN_BYTES = 128 * 1024;
/** regroup() gives up on flushes to more endpoints than this (a linear search per datagram). */
export const GSO_REGROUP_MAX_ENDPOINTS = 16;
/**
 * A run of datagrams shorter than this neither switches GSO on nor lowers the segment size: a few
 * sendmmsg entries for ACKs and handshakes save ~1 us each, while switching the size down costs a
 * setsockopt now and another to raise it for the next full-size run (short connections otherwise
 * flipped it ~2 times each). Runs at QUIC's 1,200-1,350 bytes still count.
 */
export const GSO_MIN_RUN_BYTES = 512;

/** Flat sendMany arguments: data, port, address, data, port, address, ... */
export type SendArgs = (Uint8Array | number | string)[];

/**
 * The segment size to use for the flush of q[0..total), given the one the socket has now (0 = off).
 * Every datagram of the flush fits the answer (or the answer is 0). It is the flush's largest
 * datagram size when a run of two or more of them to one endpoint exists and they are at least
 * GSO_MIN_RUN_BYTES long (worth switching to), or when the current size is too small for it;
 * otherwise the current size stays (no syscall).
 */
export function chooseSegmentSize(q: SendArgs, total: number, current: number): number {
  let max = 0;
  let runAtMax = false;
  for (let i = 0; i < total; i++) {
    const len = (q[i * 3] as Uint8Array).byteLength;
    if (len > max) {
      max = len;
      runAtMax = false;
    } else if (
      len === max &&
      !runAtMax &&
      i > 0 &&
      (q[i * 3 - 3] as Uint8Array).byteLength === len &&
      q[i * 3 - 2] === q[i * 3 + 1] &&
      q[i * 3 - 1] === q[i * 3 + 2]
    ) {
      runAtMax = true;
    }
  }
  // Two segments must fit one super-datagram; larger datagrams go without GSO.
  if (max === 0) return current;
  if (max * 2 > GSO_MAX_BYTES) return 0;
  if (runAtMax && max >= GSO_MIN_RUN_BYTES) return max;
  return current > 0 && current < max ? max : current;
}

function validPort(p: unknown): boolean {
  return typeof p === "number" && Number.isInteger(p) && p >= 1 && p <= 0xffff;
}

/** Builds the sendMany arguments of one flush round with runs coalesced (reused across flushes). */
export class GsoBatcher {
  /** Flat sendMany arguments built by the last build(). */
  readonly args: SendArgs = [];
  /** How many queued datagrams each message of `args` carries. */
  readonly segments: number[] = [];
  private arena = new Uint8Array(0);
  /** regroup()'s scratch: the endpoint group of each queued datagram. */
  private groupOf = new Uint8Array(0);

  /** Bytes held by the reusable super-datagram buffer (bounded by GSO_ARENA_MAX_BYTES). */
  get bufferBytes(): number {
    return this.arena.byteLength;
  }

  /**
   * Build at most `maxMessages` messages from q[head..total) for segment size `size` (> 0, and no
   * datagram in the range longer). Returns the number of messages; they carry the datagrams
   * q[head .. head + sum(segments)). Fewer than asked when the buffer bound is reached.
   */
  build(q: SendArgs, head: number, total: number, size: number, maxMessages: number): number {
    const args = this.args;
    const segs = this.segments;
    args.length = 0;
    segs.length = 0;
    this.reserve(q, head, total, maxMessages);
    let used = 0;
    let i = head;
    while (i < total && segs.length < maxMessages) {
      const d = q[i * 3] as Uint8Array;
      const port = q[i * 3 + 1] as number;
      const address = q[i * 3 + 2] as string;
      let j = i + 1;
      let bytes = d.byteLength;
      // A bad port makes the kernel answer EINVAL, which must not read as "GSO refused".
      if (bytes === size && validPort(port)) {
        while (j < total && j - i < GSO_MAX_SEGMENTS) {
          const len = (q[j * 3] as Uint8Array).byteLength;
          if (q[j * 3 + 1] !== port || q[j * 3 + 2] !== address || len === 0 || len > size) break;
          if (bytes + len > GSO_MAX_BYTES) break;
          bytes += len;
          j++;
          if (len < size) break;
        }
      }
      if (j - i === 1) {
        args.push(d, port, address);
        segs.push(1);
        i = j;
        continue;
      }
      // Full: the rest goes in the next round (reserve() makes room for at least one).
      if (used + bytes > this.arena.byteLength) break;
      const start = used;
      for (let k = i; k < j; k++) {
        const s = q[k * 3] as Uint8Array;
        this.arena.set(s, used);
        used += s.byteLength;
      }
      args.push(this.arena.subarray(start, used), port, address);
      segs.push(j - i);
      i = j;
    }
    return segs.length;
  }

  /** Grow the buffer (once, to a power of two) toward what the build could need, within the bound. */
  private reserve(q: SendArgs, head: number, total: number, maxMessages: number): void {
    const have = this.arena.byteLength;
    const limit = Math.min(GSO_ARENA_MAX_BYTES, maxMessages * GSO_MAX_BYTES);
    if (have >= limit) return;
    let need = 0;
    for (let i = head; i < total && need < limit; i++) need += (q[i * 3] as Uint8Array).byteLength;
    if (need <= have) return;
    let size = GSO_ARENA_MIN_BYTES;
    while (size < need && size < GSO_ARENA_MAX_BYTES) size *= 2;
    this.arena = new Uint8Array(size);
  }

  /**
   * Flows of several peers taking turns leave a flush interleaved by endpoint, with no runs to
   * coalesce. Returns the flush regrouped by endpoint (first-seen order), each endpoint's datagrams
   * in their own order, which is the only order with a meaning: different endpoints are different
   * peers. Null when it already comes in runs (4 or more datagrams per endpoint change on average)
   * or spans more than GSO_REGROUP_MAX_ENDPOINTS endpoints.
   */
  regroup(q: SendArgs, total: number): SendArgs | null {
    let changes = 0;
    for (let i = 1; i < total; i++) {
      if (q[i * 3 + 1] !== q[i * 3 - 2] || q[i * 3 + 2] !== q[i * 3 - 1]) changes++;
    }
    if (changes === 0 || changes * 4 < total) return null;
    if (this.groupOf.length < total) this.groupOf = new Uint8Array(Math.max(total, 2 * this.groupOf.length));
    const ports: unknown[] = [];
    const addresses: unknown[] = [];
    const counts: number[] = [];
    let last = 0;
    for (let i = 0; i < total; i++) {
      const port = q[i * 3 + 1];
      const address = q[i * 3 + 2];
      let g = last;
      if (ports[g] !== port || addresses[g] !== address) {
        g = 0;
        while (g < ports.length && (ports[g] !== port || addresses[g] !== address)) g++;
        if (g === ports.length) {
          if (g === GSO_REGROUP_MAX_ENDPOINTS) return null;
          ports.push(port);
          addresses.push(address);
          counts.push(0);
        }
      }
      this.groupOf[i] = g;
      counts[g] = (counts[g] as number) + 1;
      last = g;
    }
    if (ports.length === total) return null;
    // Each group's first slot, then place every datagram after its group's earlier ones.
    let at = 0;
    for (let g = 0; g < counts.length; g++) {
      const c = counts[g] as number;
      counts[g] = at;
      at += c;
    }
    const out: SendArgs = new Array(total * 3);
    for (let i = 0; i < total; i++) {
      const g = this.groupOf[i] as number;
      const o = (counts[g] as number) * 3;
      counts[g] = (counts[g] as number) + 1;
      out[o] = q[i * 3] as Uint8Array;
      out[o + 1] = q[i * 3 + 1] as number;
      out[o + 2] = q[i * 3 + 2] as string;
    }
    return out;
  }

  /** Let go of the built arguments (the queue's buffers) after a flush. */
  clear(): void {
    this.args.length = 0;
    this.segments.length = 0;
  }
}

/** The GSO figures of the transport's stats that GsoControl keeps. */
export interface GsoStats {
  gsoEnabled: number;
  gsoSegmentSize: number;
  gsoRefused: number;
}

/** The errors a GSO send gets where a plain send works (route MTU below the segment size, no checksums, IPsec). */
function isGsoRefusal(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === "EINVAL" || code === "EIO";
}

/**
 * The socket's UDP_SEGMENT over its life: chosen per flush, cleared when a send fails with it set,
 * and given up for good when the same datagrams then go through without it.
 */
export class GsoControl {
  /** The socket's UDP_SEGMENT (0 = none): no send may be longer unless it is meant to be split. */
  segmentSize = 0;
  /** GSO may be used: asked for, the kernel has UDP_SEGMENT, not refused since. */
  private on: boolean;
  /** A send just failed with UDP_SEGMENT set and it was cleared: the retry's outcome decides. */
  private suspect = false;

  constructor(
    private readonly fd: number,
    available: boolean,
    private readonly set: (fd: number, size: number) => boolean,
    private readonly stats: GsoStats,
    private readonly log: Logger,
  ) {
    this.on = available;
    stats.gsoEnabled = available ? 1 : 0;
  }

  /** GSO may be used on this socket now. */
  get enabled(): boolean {
    return this.on;
  }

  /** Choose the segment size for the flush of q[0..total) (a setsockopt only when it changes). */
  beginFlush(q: SendArgs, total: number): void {
    // A retry cut short by a full socket buffer decided nothing.
    this.suspect = false;
    if (this.on) this.use(chooseSegmentSize(q, total, this.segmentSize));
  }

  /**
   * A send with segment size `g` threw `e`. True when that may be GSO's doing: UDP_SEGMENT is now
   * cleared and the caller sends the same datagrams again. False: count them as failed.
   */
  failed(e: unknown, g: number): boolean {
    if (g !== 0 && !this.suspect && isGsoRefusal(e)) {
      this.suspect = true;
      if (this.log.level >= LOG_LEVELS.debug)
        this.log.debug(`udp GSO send failed: ${e instanceof Error ? e.message : String(e)}`);
      this.use(0);
      return this.segmentSize === 0;
    }
    // Refused without GSO too: the destination's doing, not GSO's (used again next flush).
    this.suspect = false;
    return false;
  }

  /** Datagrams went out with segment size `g`: settles a pending suspicion. */
  sent(g: number): void {
    if (!this.suspect) return;
    this.suspect = false;
    if (g !== 0 || !this.on) return;
    this.on = false;
    this.stats.gsoEnabled = 0;
    this.stats.gsoRefused++;
    this.log.info("udp: the kernel refused a GSO send that went through without it; sending without GSO from now on");
  }

  /** Set UDP_SEGMENT; a kernel that will not is left alone (GSO off for good). */
  private use(size: number): void {
    if (size === this.segmentSize) return;
    if (this.set(this.fd, size)) {
      this.segmentSize = size;
    } else {
      this.on = false;
      this.stats.gsoEnabled = 0;
      this.log.debug(`udp: setting UDP_SEGMENT to ${size} failed; sending without GSO`);
      // Setting it worked before, so clearing it will; were it not to, sends keep the old size.
      if (this.segmentSize !== 0 && this.set(this.fd, 0)) this.segmentSize = 0;
    }
    this.stats.gsoSegmentSize = this.segmentSize;
  }
}
