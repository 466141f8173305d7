/**
 * Buffers that grow with the path (Linux's tcp_rcv_space_adjust and tcp_sndbuf_expand, simplified),
 * used when no fixed --tcp-buffer-size is given.
 *
 * - Receive: once per RTT, the bytes the app consumed in that RTT estimate what the sender can push
 *   per RTT; the receive limit grows to RECEIVE_FACTOR times that, so the advertised window stays
 *   ahead of a sender in slow start and never caps a long fat pipe.
 * - Send: the limit follows 2 × cwnd, so the congestion window, not the buffer, limits the flow.
 *
 * Limits only grow (a flow that slowed down keeps its window: shrinking it would have to wait for
 * the right edge anyway), never past the per-flow cap, and only while the layer-wide budget has
 * room: the bytes granted above the initial sizes are counted in TcpStats (autotuneBytes, against
 * autotuneBudgetBytes; refusals in autotuneDenied) and returned when the flow ends. Storage itself
 * grows lazily in the buffers, so a granted limit costs memory only while data actually waits.
 */
import type { TcpStats } from "./stats.ts";

/** Receive limit = this × bytes consumed per RTT. */
export const RECEIVE_FACTOR = 4;
/** Send limit = this × cwnd. */
export const SEND_FACTOR = 2;
/** Shortest measurement period (ms): very short RTTs would otherwise measure single turns. */
const MIN_PERIOD_MS = 1;

interface GrowableBuffer {
  readonly limit: number;
  grow(limit: number): void;
}

export class BufferAutotune {
  private copied = 0;
  private since = -1;
  /** Budget bytes this flow holds (its limits above the initial sizes). */
  granted = 0;

  constructor(
    /** Per-flow cap of each buffer. */
    readonly max: number,
    private readonly stats: TcpStats,
  ) {}

  /** The app consumed `n` bytes at `now` (ms); grow the receive limit once per RTT. */
  onConsumed(n: number, now: number, rttMs: number, recv: GrowableBuffer): boolean {
    this.copied += n;
    if (this.since < 0) {
      this.since = now;
      return false;
    }
    if (now - this.since < Math.max(MIN_PERIOD_MS, rttMs)) return false;
    const want = Math.min(this.max, RECEIVE_FACTOR * this.copied);
    this.copied = 0;
    this.since = now;
    return want > recv.limit && this.grow(recv, want);
  }

  /** cwnd changed: keep the send limit at SEND_FACTOR × cwnd. */
  onCwnd(cwnd: number, send: GrowableBuffer): boolean {
    const want = Math.min(this.max, SEND_FACTOR * cwnd);
    return want > send.limit && this.grow(send, want);
  }

  /** Give the budget back (the flow is gone). */
  release(): void {
    this.stats.autotuneBytes -= this.granted;
    this.granted = 0;
  }

  private grow(buf: GrowableBuffer, want: number): boolean {
    const s = this.stats;
    const room = s.autotuneBudgetBytes - s.autotuneBytes;
    if (room <= 0) {
      s.autotuneDenied++;
      return false;
    }
    const take = Math.min(want - buf.limit, room);
    buf.grow(buf.limit + take);
    this.granted += take;
    s.autotuneBytes += take;
    return true;
  }
}
