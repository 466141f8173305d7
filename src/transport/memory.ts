import type { Endpoint } from "../util/endpoint.ts";
import type { DatagramTransport } from "./types.ts";

/**
 * Two in-memory transports wired to each other, for tests. Delivery is synchronous unless
 * `deferred` is set, in which case datagrams wait in a queue until `deliver()` is called
 * (so a test controls ordering, loss and timing exactly).
 */
export class MemoryTransport implements DatagramTransport {
  onDatagram: (data: Uint8Array, from: Endpoint) => void = () => {};
  other: MemoryTransport | undefined;
  closed = false;
  /** Datagrams sent by this side, waiting for deliver() when deferred. */
  readonly queue: { data: Uint8Array; to: Endpoint }[] = [];
  deferred = false;
  /** Optional filter: return false to drop a datagram this side sends. */
  filter: ((data: Uint8Array, to: Endpoint) => boolean) | undefined;
  sent = 0;

  constructor(readonly local: Endpoint) {}

  static pair(a: Endpoint, b: Endpoint): [MemoryTransport, MemoryTransport] {
    const ta = new MemoryTransport(a);
    const tb = new MemoryTransport(b);
    ta.other = tb;
    tb.other = ta;
    return [ta, tb];
  }

  send(data: Uint8Array, to: Endpoint): void {
    if (this.closed) return;
    this.sent++;
    if (this.filter && !this.filter(data, to)) return;
    if (this.deferred) this.queue.push({ data, to });
    else this.transmit(data, to);
  }

  /** Deliver up to `max` queued datagrams in order; returns how many were delivered. */
  deliver(max = Number.POSITIVE_INFINITY): number {
    let n = 0;
    while (n < max && this.queue.length > 0) {
      const item = this.queue.shift()!;
      this.transmit(item.data, item.to);
      n++;
    }
    return n;
  }

  private transmit(data: Uint8Array, to: Endpoint): void {
    const peer = this.other;
    if (!peer || peer.closed) return;
    // Only deliver when addressed to the other side, like a real network would.
    if (to.port !== peer.local.port || to.address !== peer.local.address) return;
    peer.onDatagram(data, { address: this.local.address, port: this.local.port });
  }

  close(): void {
    this.closed = true;
  }
}
