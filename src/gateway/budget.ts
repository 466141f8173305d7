/**
 * File-descriptor budget of the gateway's flows.
 *
 * Every outgoing TCP flow, every TCP connection accepted by a `-t` forward and every UDP mapping
 * holds one host socket. Unbounded, a peer (or a flood through it) runs the process out of
 * descriptors, after which every connect fails and is reported as "refused". So:
 * - `maxFlows`: host sockets of flows at once (TCP + UDP), by default the RLIMIT_NOFILE soft limit
 *   minus a reserve (the outer socket, listeners, stats server, pcap, resolver, Bun's own).
 * - `maxPendingConnects`: host TCP connects still under way (default a quarter of maxFlows). When
 *   full, the oldest one is given up (cancelled, its descriptor closed, the peer told
 *   "administratively prohibited") to make room: a black-holed destination then costs little, and
 *   a connect to a live server, which completes in milliseconds, still gets through a flood.
 * - `maxUdpMappings`: UDP mappings (default half of maxFlows); beyond it new mappings are refused.
 * - Per-peer shares: each limit is split evenly between the peers that hold some of it or asked
 *   for a flow in the last 30 s (refused or not), so one peer flooding cannot take the slots of
 *   another: once a second peer asks, the flooding peer is held to its share (freed slots go to the
 *   other), and for pending connects its oldest ones make room at once. Peers are named by the
 *   gateway (`peerOf`): one peer today.
 * Every refusal is counted (stats `budget.denied`).
 */

import type { Clock } from "../util/clock.ts";

export interface FlowLimits {
  maxFlows: number;
  maxPendingConnects: number;
  maxUdpMappings: number;
  /**
   * DNS lookups in flight at once (each relayed query holds a socket while it waits): taken out of
   * the descriptor limit next to the flows. Optional: the DNS server's own default otherwise.
   */
  maxDnsInFlight?: number;
}

/** Descriptors kept out of the flow budget: stdio, Bun's own, the outer socket, pcap, resolver, stats clients. */
export const FD_RESERVE = 64;
/** Without a readable limit (not Linux): a budget that fits the usual 1024 default. */
export const FALLBACK_MAX_FLOWS = 900;
/** The DNS server's bound on lookups in flight; an eighth of the descriptors when that is less. */
const MAX_DNS_IN_FLIGHT = 256;
/** A peer that asked for a flow this recently counts for the shares even when it holds none. */
export const SHARE_ACTIVITY_MS = 30_000;
/** The TCP layer's own bound on connections; more flows than this is never useful. */
const ABSOLUTE_MAX_FLOWS = 65536;

/**
 * Limits from the descriptor limit: `extraReserve` counts the listeners the options ask for
 * (forwards, stats server). `maxFlows` (the `--max-flows` option) overrides the derived pool.
 */
export function deriveFlowLimits(fdLimit: number | undefined, extraReserve: number, maxFlows?: number): FlowLimits {
  const dnsFor = (n: number) => Math.min(MAX_DNS_IN_FLIGHT, Math.max(4, Math.floor(n / 8)));
  let pool: number;
  let dns: number;
  if (maxFlows !== undefined || fdLimit === undefined) {
    pool = maxFlows ?? FALLBACK_MAX_FLOWS;
    dns = dnsFor(pool);
  } else {
    const available = fdLimit - FD_RESERVE - extraReserve;
    dns = dnsFor(available);
    pool = Math.min(ABSOLUTE_MAX_FLOWS, Math.max(8, available - dns));
  }
  return {
    maxFlows: pool,
    maxPendingConnects: Math.max(1, Math.floor(pool / 4)),
    maxUdpMappings: Math.max(1, Math.floor(pool / 2)),
    maxDnsInFlight: dns,
  };
}

type Dimension = "fds" | "pending" | "udp";

class Usage {
  total = 0;
  private readonly perPeer = new Map<string, number>();

  of(peer: string): number {
    return this.perPeer.get(peer) ?? 0;
  }
  /** Peers holding at least one, counting `peer` even when it holds none yet. */
  holders(peer: string): number {
    return this.perPeer.size + (this.perPeer.has(peer) ? 0 : 1);
  }
  add(peer: string, n: number): void {
    this.total += n;
    const v = (this.perPeer.get(peer) ?? 0) + n;
    if (v <= 0) this.perPeer.delete(peer);
    else this.perPeer.set(peer, v);
  }
  /** The peer holding the most (ties: any). */
  largest(): string | undefined {
    let best: string | undefined;
    let most = 0;
    for (const [p, n] of this.perPeer)
      if (n > most) {
        most = n;
        best = p;
      }
    return best;
  }
}

export type BudgetDenial = "flows" | "pending" | "udp";

/** One flow's claim on the budget. release() is idempotent; settled() ends the pending phase. */
export class FlowTicket {
  /** Holds a pending-connect slot (outgoing TCP, before the host connect settled). */
  pending: boolean;
  private released = false;

  constructor(
    private readonly budget: FlowBudget,
    readonly peer: string,
    readonly kind: "tcp" | "udp",
    pending: boolean,
    /** Give up the pending connect (called by the budget to make room; must call settled()). */
    readonly evict: (() => void) | undefined,
  ) {
    this.pending = pending;
  }

  /**
   * The host connect is over (connected, failed or given up): the pending slot goes back, the
   * descriptor slot stays until release() (the socket may still be open, or closing).
   */
  settled(): void {
    if (this.released || !this.pending) return;
    this.pending = false;
    this.budget.endPending(this);
  }

  /** The host socket is closed: everything goes back. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.releaseTicket(this);
  }
}

export interface BudgetStats extends FlowLimits {
  hostSockets: number;
  pendingConnects: number;
  udpMappings: number;
  /** Refusals by limit hit, and pending connects given up to make room. */
  denied: Record<BudgetDenial | "peer_share", number>;
  evicted: number;
}

export class FlowBudget {
  /** When each peer last asked for a flow (bounded by the number of peers; pruned as they go quiet). */
  private readonly lastAsked = new Map<string, number>();
  private readonly usage: Record<Dimension, Usage> = { fds: new Usage(), pending: new Usage(), udp: new Usage() };
  /** Pending connects, oldest first (Map iteration is insertion order). */
  private readonly pendingOrder = new Set<FlowTicket>();
  private readonly denied: Record<BudgetDenial | "peer_share", number> = {
    flows: 0,
    pending: 0,
    udp: 0,
    peer_share: 0,
  };
  private evicted = 0;

  constructor(
    readonly limits: FlowLimits,
    private readonly clock: Clock,
  ) {}

  /**
   * An outgoing TCP flow's host connect. Returns its ticket, or why not. `evict` is how the budget
   * gives this connect up later to make room for a newer one.
   */
  tryConnect(peer: string, evict: () => void): FlowTicket | BudgetDenial {
    this.asked(peer);
    const denial = this.check("fds", peer, this.limits.maxFlows);
    if (denial) return denial;
    if (!this.makePendingRoom(peer)) return this.deny("pending");
    return this.admit(new FlowTicket(this, peer, "tcp", true, evict));
  }

  /** A TCP connection accepted by a reverse forward (already connected). */
  tryAccepted(peer: string): FlowTicket | BudgetDenial {
    this.asked(peer);
    const denial = this.check("fds", peer, this.limits.maxFlows);
    if (denial) return denial;
    return this.admit(new FlowTicket(this, peer, "tcp", false, undefined));
  }

  /** A new UDP mapping. */
  tryUdp(peer: string): FlowTicket | BudgetDenial {
    this.asked(peer);
    const denial = this.check("fds", peer, this.limits.maxFlows) ?? this.check("udp", peer, this.limits.maxUdpMappings);
    if (denial) return denial;
    return this.admit(new FlowTicket(this, peer, "udp", false, undefined));
  }

  stats(): BudgetStats {
    return {
      ...this.limits,
      hostSockets: this.usage.fds.total,
      pendingConnects: this.usage.pending.total,
      udpMappings: this.usage.udp.total,
      denied: { ...this.denied },
      evicted: this.evicted,
    };
  }

  // ---- called by tickets ----

  endPending(t: FlowTicket): void {
    this.pendingOrder.delete(t);
    this.usage.pending.add(t.peer, -1);
  }

  releaseTicket(t: FlowTicket): void {
    if (t.pending) {
      t.pending = false;
      this.endPending(t);
    }
    this.usage.fds.add(t.peer, -1);
    if (t.kind === "udp") this.usage.udp.add(t.peer, -1);
  }

  // ---- internals ----

  private asked(peer: string): void {
    const now = this.clock.now();
    this.lastAsked.delete(peer);
    this.lastAsked.set(peer, now);
    // Oldest first (re-inserted on every ask): drop the ones gone quiet.
    for (const [p, t] of this.lastAsked) {
      if (now - t < SHARE_ACTIVITY_MS) break;
      this.lastAsked.delete(p);
    }
  }

  /** How many peers a limit is shared between, for `peer`'s request. */
  private sharers(u: Usage, peer: string): number {
    return Math.max(u.holders(peer), this.lastAsked.size);
  }

  private admit(t: FlowTicket): FlowTicket {
    this.usage.fds.add(t.peer, 1);
    if (t.kind === "udp") this.usage.udp.add(t.peer, 1);
    if (t.pending) {
      this.usage.pending.add(t.peer, 1);
      this.pendingOrder.add(t);
    }
    return t;
  }

  /** Over the limit, or over the peer's even share of it: the denial, else undefined. */
  private check(dim: Dimension, peer: string, limit: number): BudgetDenial | undefined {
    const u = this.usage[dim];
    const reason: BudgetDenial = dim === "udp" ? "udp" : dim === "pending" ? "pending" : "flows";
    if (u.total >= limit) return this.deny(reason);
    if (u.of(peer) >= Math.ceil(limit / this.sharers(u, peer))) {
      this.denied.peer_share++;
      return reason;
    }
    return undefined;
  }

  private deny(reason: BudgetDenial): BudgetDenial {
    this.denied[reason]++;
    return reason;
  }

  /**
   * Room for one more pending connect of `peer`: if the peer is at its share, or the limit is
   * reached, give up the oldest pending connect of the peer holding the most (the requester itself
   * when it is at its share). False when nothing could be given up.
   */
  private makePendingRoom(peer: string): boolean {
    const u = this.usage.pending;
    const limit = this.limits.maxPendingConnects;
    const atShare = u.of(peer) >= Math.ceil(limit / this.sharers(u, peer));
    if (!atShare && u.total < limit) return true;
    const victimPeer = atShare ? peer : u.largest();
    for (const t of this.pendingOrder) {
      if (t.peer !== victimPeer) continue;
      this.evicted++;
      t.evict?.();
      // The evicted connect must have released its pending slot; if it could not, refuse.
      return !t.pending;
    }
    return false;
  }
}
