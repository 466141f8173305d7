/**
 * RFC 6479 anti-replay sliding window, laid out like wireguard-go's replay.Filter but with 32-bit
 * blocks: a ring of 256 blocks, one kept free so the window can advance a whole block at a time,
 * giving a window of (256 − 1) × 32 = 8160 counters behind the highest seen.
 *
 * Counters are safe integers (see REJECT_COUNTER_LIMIT); arithmetic stays exact below 2^53.
 */
const BLOCK_BITS = 32;
const RING_BLOCKS = 256;
export const REPLAY_WINDOW_SIZE = (RING_BLOCKS - 1) * BLOCK_BITS;

export class ReplayFilter {
  private readonly ring = new Uint32Array(RING_BLOCKS);
  private last = 0;

  reset(): void {
    this.ring.fill(0);
    this.last = 0;
  }

  /**
   * Accept `counter` once: true when it is below `limit`, inside the window and not seen before
   * (and marks it seen); false otherwise. Call only after the packet authenticated.
   */
  validate(counter: number, limit: number): boolean {
    if (!(counter < limit) || counter < 0) return false;
    const indexBlock = Math.floor(counter / BLOCK_BITS);
    if (counter > this.last) {
      const current = Math.floor(this.last / BLOCK_BITS);
      const diff = Math.min(indexBlock - current, RING_BLOCKS);
      for (let i = current + 1; i <= current + diff; i++) this.ring[i % RING_BLOCKS] = 0;
      this.last = counter;
    } else if (this.last - counter > REPLAY_WINDOW_SIZE) {
      return false;
    }
    const slot = indexBlock % RING_BLOCKS;
    const bit = 1 << (counter % BLOCK_BITS);
    const old = this.ring[slot]!;
    if ((old & bit) !== 0) return false;
    this.ring[slot] = old | bit;
    return true;
  }
}
