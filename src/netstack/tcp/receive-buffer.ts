/**
 * The receive side of one connection: in-order bytes the app has not consumed yet, followed by
 * out-of-order data waiting for the gap before it to fill (RFC 9293 §3.10.7.4 "segment text":
 * segments beyond RCV.NXT are kept and delivered once the hole is filled).
 *
 * Layout is linear so peek() can return every in-order byte as one view: storage[start, end) is
 * in-order data; out-of-order data sits at storage[end + offset] where offset is relative to
 * RCV.NXT. The bytes held never exceed `limit`; storage grows lazily by doubling, up to twice the
 * limit so that compaction (moving the held bytes to the front) stays amortized O(1) per byte.
 */

const MIN_STORAGE = 4096;
const KEEP_STORAGE = 64 * 1024;
/**
 * Larger storage is released on a drain that took less than 1/RELEASE_RATIO of it (the flow slowed
 * down), and kept on a large drain (a bulk flow that reads once per turn would otherwise regrow it
 * from 4 KiB by doubling every turn: measured as 8% of the gateway's CPU).
 */
export const RELEASE_RATIO = 4;
/** Most out-of-order islands kept: bounds the bookkeeping per flow (and SACK reports at most 4). */
export const MAX_OUT_OF_ORDER_RANGES = 32;
/** Islands remembered in most-recently-changed order: the most SACK blocks one segment carries. */
const MAX_RECENT_ISLANDS = 4;

export class ReceiveBuffer {
  private storage: Uint8Array | null = null;
  private start = 0;
  private end = 0;
  /** Out-of-order islands as [from, to) offsets from RCV.NXT, sorted, disjoint and non-adjacent. */
  private readonly ranges: number[] = [];
  /**
   * Left edges (offsets from RCV.NXT) of the islands that changed last, most recent first: the SACK
   * blocks go in this order (RFC 2018 §4: the block holding the segment that triggered the ACK
   * first, then the most recently reported ones), so every island is reported in several ACKs and
   * one lost ACK does not hide it from the sender (which would then count the island's segments as
   * reordered once the cumulative ACK covers them, and stretch its loss detection).
   */
  private readonly recent: number[] = [];
  /** The last write() appended new data at the right edge of the island that changed last. */
  appendedToLatestIsland = false;
  /** Bytes held in out-of-order islands. */
  outOfOrderBytes = 0;

  constructor(public limit: number) {}

  /** Raise the limit (autotuning): the window opens by the difference. Never lowers it. */
  grow(limit: number): void {
    if (limit > this.limit) this.limit = limit;
  }

  /** In-order bytes not yet consumed. */
  get length(): number {
    return this.end - this.start;
  }

  /** Bytes that may arrive beyond RCV.NXT: the free space (the real receive window). */
  get window(): number {
    return this.limit - (this.end - this.start);
  }

  get outOfOrderCount(): number {
    return this.ranges.length >>> 1;
  }

  get capacity(): number {
    return this.storage ? this.storage.length : 0;
  }

  /** The in-order bytes (a view valid until the next write or consume). */
  peek(): Uint8Array {
    if (!this.storage || this.end === this.start) return EMPTY;
    return this.storage.subarray(this.start, this.end);
  }

  consume(n: number): number {
    const k = Math.min(Math.max(0, n), this.end - this.start);
    this.start += k;
    if (this.start === this.end && this.ranges.length === 0) {
      this.start = this.end = 0;
      if (this.storage && this.storage.length > KEEP_STORAGE && this.storage.length > RELEASE_RATIO * k) {
        this.storage = null;
      }
    }
    return k;
  }

  /**
   * Store data[from, from+len) at `offset` bytes past RCV.NXT. The caller has trimmed it to the
   * window (offset + len <= window). Returns how far RCV.NXT advances (0 for out-of-order data), or
   * -1 when the segment would need one island too many (dropped; the peer retransmits).
   */
  write(offset: number, data: Uint8Array, from: number, len: number): number {
    this.appendedToLatestIsland = false;
    if (len <= 0) return 0;
    if (offset > 0 && !this.canInsert(offset, offset + len)) return -1;
    this.ensureRoom(offset + len);
    this.storage!.set(data.subarray(from, from + len), this.end + offset);
    const r = this.ranges;
    const islands = r.length;
    const appends = offset > 0 && this.recent.length > 0 && this.islandEnd(this.recent[0] as number) === offset;
    this.insert(offset, offset + len);
    if (r.length === 0 || r[0] !== 0) {
      // Appended without touching the next island: the sender learns nothing new but the block's end.
      this.appendedToLatestIsland = appends && r.length === islands;
      this.countOutOfOrder();
      return 0;
    }
    const advance = r[1] as number;
    r.splice(0, 2);
    for (let i = 0; i < r.length; i++) r[i] = (r[i] as number) - advance;
    const recent = this.recent;
    let k = 0;
    for (let i = 0; i < recent.length; i++) {
      const at = recent[i] as number;
      if (at >= advance) recent[k++] = at - advance;
    }
    recent.length = k;
    this.end += advance;
    this.countOutOfOrder();
    return advance;
  }

  private countOutOfOrder(): void {
    const r = this.ranges;
    let n = 0;
    for (let i = 0; i < r.length; i += 2) n += (r[i + 1] as number) - (r[i] as number);
    this.outOfOrderBytes = n;
  }

  /**
   * Fill `out` with up to `max` SACK blocks (left, right pairs) for RCV.NXT = rcvNxt: the islands
   * in most-recently-changed order, then (when fewer changed lately than fit) the others from the
   * highest down (RFC 2018 §4). Blocks are written from index `at` (after a D-SACK block).
   */
  sackBlocks(rcvNxt: number, out: Uint32Array, max: number, at = 0): number {
    const r = this.ranges;
    const recent = this.recent;
    let n = 0;
    for (let i = 0; i < recent.length && n < max; i++) {
      const left = recent[i] as number;
      out[2 * (at + n)] = (rcvNxt + left) >>> 0;
      out[2 * (at + n) + 1] = (rcvNxt + this.islandEnd(left)) >>> 0;
      n++;
    }
    for (let i = r.length - 2; i >= 0 && n < max; i -= 2) {
      if (recent.includes(r[i] as number)) continue;
      out[2 * (at + n)] = (rcvNxt + (r[i] as number)) >>> 0;
      out[2 * (at + n) + 1] = (rcvNxt + (r[i + 1] as number)) >>> 0;
      n++;
    }
    return n;
  }

  /** Right edge of the island whose left edge is `left`. */
  private islandEnd(left: number): number {
    const r = this.ranges;
    for (let i = 0; i < r.length; i += 2) if (r[i] === left) return r[i + 1] as number;
    return -1;
  }

  /** Would [from, to) fit within the island limit? (It always fits if it touches an island.) */
  private canInsert(from: number, to: number): boolean {
    const r = this.ranges;
    if (r.length < 2 * MAX_OUT_OF_ORDER_RANGES) return true;
    for (let i = 0; i < r.length; i += 2) {
      if (from <= (r[i + 1] as number) && to >= (r[i] as number)) return true;
    }
    return false;
  }

  private insert(from: number, to: number): void {
    const r = this.ranges;
    let i = 0;
    while (i < r.length && (r[i + 1] as number) < from) i += 2;
    // r[i..] ends at or after `from`: merge every island that touches [from, to).
    let j = i;
    while (j < r.length && (r[j] as number) <= to) {
      from = Math.min(from, r[j] as number);
      to = Math.max(to, r[j + 1] as number);
      j += 2;
    }
    r.splice(i, j - i, from, to);
    // The merged island goes to the front of the recent list; the islands it swallowed leave it.
    const recent = this.recent;
    let k = 0;
    for (let m = 0; m < recent.length; m++) {
      const at = recent[m] as number;
      if (at < from || at > to) recent[k++] = at;
    }
    recent.length = Math.min(k, MAX_RECENT_ISLANDS - 1);
    recent.unshift(from);
  }

  /** Make storage[end, end + needed) addressable, compacting or growing as needed. */
  private ensureRoom(needed: number): void {
    const used = this.ranges.length ? (this.ranges[this.ranges.length - 1] as number) : 0;
    const keep = this.end - this.start + Math.max(used, needed);
    const st = this.storage;
    if (st && this.end + Math.max(used, needed) <= st.length) return;
    // Compacting moves the bytes held (in order and islands); it is only worth it when at least as
    // much room comes free in front, else the storage grows (up to twice the limit). Without that a
    // large window with a hole would be moved again for nearly every segment.
    const moving = this.end - this.start + used;
    const cap = Math.max(2 * this.limit, keep);
    if (st && keep <= st.length && (this.start >= moving || st.length >= cap)) {
      st.copyWithin(0, this.start, this.end + used);
    } else {
      let size = st ? 2 * st.length : MIN_STORAGE;
      while (size < keep) size *= 2;
      size = Math.min(size, cap);
      const next = new Uint8Array(size);
      if (st) next.set(st.subarray(this.start, this.end + used), 0);
      this.storage = next;
    }
    this.end -= this.start;
    this.start = 0;
  }
}

const EMPTY = new Uint8Array(0);
