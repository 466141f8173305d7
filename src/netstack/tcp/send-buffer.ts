/**
 * The send queue of one connection: bytes written by the app and not yet acknowledged, as a ring
 * buffer bounded by `limit` (the --tcp-buffer-size backpressure). Storage is allocated lazily and
 * grows by doubling, and large storage is released when the queue drains, so idle flows stay small.
 */

import { RELEASE_RATIO } from "./receive-buffer.ts";

/** Smallest storage allocated; also the size kept after the queue drains. */
const MIN_STORAGE = 4096;
/** Storage above this size is released when the queue becomes empty. */
const KEEP_STORAGE = 64 * 1024;

export class SendBuffer {
  private storage: Uint8Array | null = null;
  /** Index in storage of the oldest byte. */
  private head = 0;
  /** Bytes queued. */
  length = 0;

  constructor(public limit: number) {}

  /** Raise the limit (autotuning); never lowers it. */
  grow(limit: number): void {
    if (limit > this.limit) this.limit = limit;
  }

  get free(): number {
    return this.limit - this.length;
  }

  get capacity(): number {
    return this.storage ? this.storage.length : 0;
  }

  /** Append as much of `data` as fits; returns the number of bytes copied. */
  write(data: Uint8Array): number {
    const n = Math.min(data.length, this.free);
    if (n === 0) return 0;
    this.reserve(this.length + n);
    const st = this.storage!;
    const tail = (this.head + this.length) % st.length;
    const first = Math.min(n, st.length - tail);
    st.set(first === data.length ? data : data.subarray(0, first), tail);
    if (first < n) st.set(data.subarray(first, n), 0);
    this.length += n;
    return n;
  }

  /** Copy `len` bytes starting `offset` bytes after the oldest one into dst[dstOff]. */
  copyOut(offset: number, len: number, dst: Uint8Array, dstOff: number): void {
    if (len <= 0) return;
    const st = this.storage!;
    const start = (this.head + offset) % st.length;
    const first = Math.min(len, st.length - start);
    dst.set(st.subarray(start, start + first), dstOff);
    if (first < len) dst.set(st.subarray(0, len - first), dstOff + first);
  }

  /** Remove `n` acknowledged bytes from the front. */
  drop(n: number): void {
    if (n <= 0) return;
    const k = Math.min(n, this.length);
    this.length -= k;
    if (this.length === 0) {
      this.head = 0;
      // As in ReceiveBuffer: released when a small drain empties it, kept across bulk drains.
      if (this.storage && this.storage.length > KEEP_STORAGE && this.storage.length > RELEASE_RATIO * k) {
        this.storage = null;
      }
    } else {
      this.head = (this.head + k) % this.storage!.length;
    }
  }

  private reserve(needed: number): void {
    const st = this.storage;
    if (st && st.length >= needed) return;
    let size = st ? st.length : MIN_STORAGE;
    while (size < needed) size *= 2;
    size = Math.min(size, Math.max(this.limit, needed));
    const next = new Uint8Array(size);
    if (st && this.length > 0) {
      const first = Math.min(this.length, st.length - this.head);
      next.set(st.subarray(this.head, this.head + first), 0);
      if (first < this.length) next.set(st.subarray(0, this.length - first), first);
    }
    this.storage = next;
    this.head = 0;
  }
}
