import type { IpAddr } from "./types.ts";

/**
 * Addresses handed to upper layers must outlive the received buffer (the link may reuse it), but
 * copying two addresses per packet is waste when a tunnel carries a handful of address pairs.
 * This keeps the last few distinct addresses and returns the same immutable Uint8Array for equal bytes.
 */
export class AddrInterner {
  private readonly slots: IpAddr[] = [];
  private next = 0;

  constructor(private readonly capacity = 8) {}

  /** An immutable copy of buf[off, off+len), shared with earlier equal addresses when cached. */
  intern(buf: Uint8Array, off: number, len: 4 | 16): IpAddr {
    const slots = this.slots;
    outer: for (let s = 0; s < slots.length; s++) {
      const a = slots[s] as IpAddr;
      if (a.length !== len) continue;
      for (let i = 0; i < len; i++) if (a[i] !== buf[off + i]) continue outer;
      return a;
    }
    const copy = buf.slice(off, off + len);
    if (slots.length < this.capacity) slots.push(copy);
    else {
      slots[this.next] = copy;
      this.next = (this.next + 1) % this.capacity;
    }
    return copy;
  }
}
