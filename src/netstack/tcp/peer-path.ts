/**
 * What the flows toward one remote address have in common: the path to that peer. A flow whose
 * retransmission timer expires can ask whether the peer was acknowledging the others' data while it
 * waited: then the peer is alive and draining, and the loss was a full buffer on the way (the peer's
 * UDP socket), not a dead path (see THIN_LINEAR_TIMEOUTS).
 */
import type { IpAddr } from "../types.ts";

export class PeerPath {
  /** Acknowledgments of new data, over every flow of this peer (a counter: no clock read per ACK). */
  acks = 0;
  /** Flows holding this entry. */
  flows = 0;
}

/** One PeerPath per remote address, held while a flow toward it exists (bounded by the flow table). */
export class PeerPaths {
  private readonly byAddr = new Map<string, PeerPath>();

  get size(): number {
    return this.byAddr.size;
  }

  acquire(remote: IpAddr): PeerPath {
    const k = addrKey(remote);
    let p = this.byAddr.get(k);
    if (!p) {
      p = new PeerPath();
      this.byAddr.set(k, p);
    }
    p.flows++;
    return p;
  }

  release(remote: IpAddr, p: PeerPath): void {
    if (--p.flows > 0) return;
    const k = addrKey(remote);
    if (this.byAddr.get(k) === p) this.byAddr.delete(k);
  }
}

/** The address as UTF-16 code units, two bytes each (2 units for IPv4, 8 for IPv6). */
function addrKey(a: IpAddr): string {
  let k = "";
  for (let i = 0; i < a.length; i += 2) k += String.fromCharCode(((a[i] as number) << 8) | (a[i + 1] as number));
  return k;
}
