/**
 * The sender's SACK scoreboard (RFC 2018, RFC 6675 §3): which bytes above SND.UNA the peer has
 * reported holding, as sorted, disjoint, non-adjacent [left, right) ranges in sequence space. The
 * loss-recovery queries of RFC 6675 §4 (IsLost, SetPipe, NextSeg's hole search) run over it.
 *
 * Ranges live in one preallocated Uint32Array (no per-ACK allocation). At most MAX_RANGES are kept:
 * a block that would need more is ignored, which only makes the sender more conservative (it
 * believes less has arrived).
 */
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from "./seq.ts";

/** Bound on distinct SACKed ranges remembered per flow. */
export const MAX_SACK_RANGES = 64;
/** RFC 6675 DupThresh. */
export const DUP_THRESH = 3;

export class SackScoreboard {
  /** left0, right0, left1, right1, ... sorted by sequence (relative to SND.UNA, no wrap). */
  private readonly r = new Uint32Array(2 * MAX_SACK_RANGES);
  /** Number of ranges. */
  count = 0;
  /** Bytes covered by all ranges. */
  sackedBytes = 0;

  get empty(): boolean {
    return this.count === 0;
  }

  /** RFC 6675 HighSACK: the right edge of the highest range (only meaningful when not empty). */
  get highSacked(): number {
    return this.r[2 * this.count - 1] as number;
  }

  left(i: number): number {
    return this.r[2 * i] as number;
  }
  right(i: number): number {
    return this.r[2 * i + 1] as number;
  }

  clear(): void {
    this.count = 0;
    this.sackedBytes = 0;
  }

  /** Forget everything at or below the cumulative ACK `una` (RFC 6675 Update()). */
  ackTo(una: number): void {
    const r = this.r;
    let drop = 0;
    while (drop < this.count && seqLe(r[2 * drop + 1] as number, una)) {
      this.sackedBytes -= seqDiff(r[2 * drop + 1] as number, r[2 * drop] as number);
      drop++;
    }
    if (drop > 0) {
      r.copyWithin(0, 2 * drop, 2 * this.count);
      this.count -= drop;
    }
    if (this.count > 0 && seqLt(r[0] as number, una)) {
      this.sackedBytes -= seqDiff(una, r[0] as number);
      r[0] = una;
    }
  }

  /**
   * Merge one SACK block, clipped to (una, max]. Returns the number of bytes newly marked SACKed
   * (0 for a stale, duplicate, D-SACK or bogus block).
   */
  add(left: number, right: number, una: number, max: number): number {
    if (seqLt(left, una)) left = una;
    if (seqGt(right, max)) right = max;
    if (!seqLt(left, right)) return 0;
    const r = this.r;
    const n = this.count;
    // First range whose right edge reaches `left` (touching ranges merge).
    let i = 0;
    while (i < n && seqLt(r[2 * i + 1] as number, left)) i++;
    // Ranges i..j-1 overlap or touch [left, right).
    let j = i;
    let covered = 0;
    let lo = left;
    let hi = right;
    while (j < n && seqLe(r[2 * j] as number, right)) {
      const a = r[2 * j] as number;
      const b = r[2 * j + 1] as number;
      covered += seqDiff(b, a);
      if (seqLt(a, lo)) lo = a;
      if (seqGt(b, hi)) hi = b;
      j++;
    }
    const added = seqDiff(hi, lo) - covered;
    if (added === 0) return 0;
    const merged = j - i;
    if (merged === 0) {
      if (n === MAX_SACK_RANGES) return 0;
      r.copyWithin(2 * i + 2, 2 * i, 2 * n);
      this.count = n + 1;
    } else if (merged > 1) {
      r.copyWithin(2 * i + 2, 2 * j, 2 * n);
      this.count = n - merged + 1;
    }
    r[2 * i] = lo;
    r[2 * i + 1] = hi;
    this.sackedBytes += added;
    return added;
  }

  /** Is `seq` inside a SACKed range? */
  isSacked(seq: number): boolean {
    for (let i = 0; i < this.count; i++) {
      if (seqLt(seq, this.r[2 * i] as number)) return false;
      if (seqLt(seq, this.r[2 * i + 1] as number)) return true;
    }
    return false;
  }

  /** If `seq` is SACKed, the right edge of its range; else `seq`. */
  skipSacked(seq: number): number {
    for (let i = 0; i < this.count; i++) {
      if (seqLt(seq, this.r[2 * i] as number)) return seq;
      if (seqLt(seq, this.r[2 * i + 1] as number)) return this.r[2 * i + 1] as number;
    }
    return seq;
  }

  /** Left edge of the first range strictly above `seq`, or `limit` when none is below it. */
  nextSackedAfter(seq: number, limit: number): number {
    for (let i = 0; i < this.count; i++) {
      const a = this.r[2 * i] as number;
      if (seqGt(a, seq)) return seqLt(a, limit) ? a : limit;
    }
    return limit;
  }

  /** SACKed bytes within [from, to). */
  sackedBetween(from: number, to: number): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const a = this.r[2 * i] as number;
      const b = this.r[2 * i + 1] as number;
      if (seqGe(a, to)) break;
      const lo = seqLt(a, from) ? from : a;
      const hi = seqGt(b, to) ? to : b;
      if (seqLt(lo, hi)) n += seqDiff(hi, lo);
    }
    return n;
  }

  /**
   * RFC 6675 IsLost(seq): DupThresh discontiguous SACKed ranges above `seq`, or more than
   * (DupThresh - 1) * mss SACKed bytes above it.
   */
  isLost(seq: number, mss: number): boolean {
    let bytes = 0;
    let ranges = 0;
    for (let i = this.count - 1; i >= 0; i--) {
      const a = this.r[2 * i] as number;
      const b = this.r[2 * i + 1] as number;
      if (seqLe(b, seq)) break;
      bytes += seqGe(a, seq) ? seqDiff(b, a) : seqDiff(b, seqAdd(seq, 1));
      ranges++;
      if (ranges >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss) return true;
    }
    return false;
  }

  /**
   * RFC 6675 SetPipe(): bytes believed in the network between `una` and `max`. Every un-SACKed byte
   * counts once unless it is deemed lost, and once more if it was retransmitted (below highRxt).
   * Holes are evaluated whole (every byte of one hole has the same SACKed data above it). Bytes in
   * `lostMarks` (found lost by other means: RACK) do not count as originals either, in holes IsLost
   * spares (the others are left out already).
   */
  pipe(una: number, max: number, highRxt: number, mss: number, lostMarks: SackScoreboard | null = null): number {
    const marks = lostMarks !== null && lostMarks.count > 0 ? lostMarks : null;
    let pipe = 0;
    // Walk from the top: above HighSACK nothing is lost.
    let above = 0;
    let rangesAbove = 0;
    let holeHi = max;
    for (let i = this.count; i >= 0; i--) {
      const holeLo = i > 0 ? (this.r[2 * i - 1] as number) : una;
      if (seqLt(holeLo, holeHi)) {
        const lost = rangesAbove >= DUP_THRESH || above > (DUP_THRESH - 1) * mss;
        if (!lost) pipe += seqDiff(holeHi, holeLo) - (marks ? marks.sackedBetween(holeLo, holeHi) : 0);
        if (seqGt(highRxt, holeLo)) pipe += seqDiff(seqLt(highRxt, holeHi) ? highRxt : holeHi, holeLo);
      }
      if (i > 0) {
        const a = this.r[2 * i - 2] as number;
        above += seqDiff(this.r[2 * i - 1] as number, a);
        rangesAbove++;
        holeHi = a;
      }
    }
    return pipe;
  }

  /**
   * RFC 6675 NextSeg() rules 1 and 3: the first un-SACKed byte at or after `from` and below
   * HighSACK that is lost (`wantLost`) or not. Returns -1 when there is none; the hole's end is left
   * in `holeEnd`.
   */
  holeEnd = 0;
  findHole(from: number, una: number, mss: number, wantLost: boolean): number {
    if (this.count === 0) return -1;
    // Precompute sacked bytes/ranges above each hole by walking downward once.
    let above = 0;
    let rangesAbove = 0;
    let result = -1;
    for (let i = this.count - 1; i >= 0; i--) {
      const a = this.r[2 * i] as number;
      above += seqDiff(this.r[2 * i + 1] as number, a);
      rangesAbove++;
      // Hole below range i: [prevRight, a).
      const holeLo = i > 0 ? (this.r[2 * i - 1] as number) : una;
      if (seqLe(a, from) || !seqLt(holeLo, a)) continue;
      const lost = rangesAbove >= DUP_THRESH || above > (DUP_THRESH - 1) * mss;
      if (lost === wantLost) {
        result = seqLt(holeLo, from) ? from : holeLo;
        this.holeEnd = a;
      }
    }
    return result;
  }
}
