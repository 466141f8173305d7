/**
 * Counters of the TCP layer, shared by the layer and its connections. Plain fields (no getters) so
 * the object serializes as-is to /stats and /metrics.
 */
export class TcpStats {
  segmentsIn = 0;
  segmentsOut = 0;
  /** Segments sent again (RTO, fast retransmit, SACK recovery, SYN/SYN-ACK and zero-window probe repeats). */
  retransmits = 0;
  /** Retransmission-timer expiries with data outstanding (each one collapses cwnd to one segment). */
  rtoExpirations = 0;
  /** Backed-off retransmission timers expired early because the peer roamed (kickRetransmissions). */
  roamKicks = 0;
  /** Loss-recovery episodes entered on duplicate ACKs / SACK (RFC 6675 or RFC 6582 fast recovery). */
  fastRecoveries = 0;
  /** Tail loss probes sent (RFC 8985 §7): a timeout of 2 RTTs instead of the RTO for a lost tail. */
  tlpProbes = 0;
  /** Probes that repaired a lost tail segment (RFC 8985 §7.4: the congestion controller hears of it). */
  tlpRepairs = 0;
  /** RACK reordering-timer expiries that found losses (RFC 8985 §6.3) with no ACK to find them. */
  reorderTimeouts = 0;
  /** Retransmissions the peer reported receiving twice (D-SACK, RFC 2883): resent needlessly. */
  spuriousRetransmits = 0;
  /** Retransmissions found lost by RACK (RFC 8985 §6) and sent again without waiting for the RTO. */
  rackLostRetransmits = 0;
  /** Times a flow waited in line for its share of the layer's output (fair-share.ts). */
  fairShareWaits = 0;
  /** The rate of the layer's fair-share bucket now, segments per ms (lowered under heavy loss). */
  fairShareRate = 0;
  /** Connections closed because the peer never sent its FIN in FIN-WAIT-2. */
  finWait2Timeouts = 0;
  /** Keepalive probes sent to a silent peer, and flows closed because none was answered. */
  keepaliveProbes = 0;
  keepaliveTimeouts = 0;
  /** SYNs that reopened a 4-tuple still in TIME-WAIT as a new connection (RFC 9293 §3.10.7.4). */
  timeWaitReopens = 0;
  /** 4-tuples in TIME-WAIT now, kept as a few numbers each (time-wait.ts), not as connections. */
  timeWaitFlows = 0;
  /** TIME-WAIT entries dropped early to make room for a new connection (the table was full). */
  timeWaitEvicted = 0;
  /** SYNs refused (RST) because the layer already held maxConnections flows. */
  connectionsRejected = 0;
  /** Bytes written by apps and not yet acknowledged, over all flows. */
  sendBufferedBytes = 0;
  /** In-order received bytes waiting for the app, over all flows. */
  receiveBufferedBytes = 0;
  /** Out-of-order received bytes waiting for a hole to fill, over all flows. */
  outOfOrderBytes = 0;
  /** Buffer limits granted by autotuning above the initial sizes, over all flows (see autotune.ts). */
  autotuneBytes = 0;
  /** The bound on autotuneBytes (the layer's buffer budget). */
  autotuneBudgetBytes = 0;
  /** Growths refused because the budget was used up. */
  autotuneDenied = 0;
  /** Segments discarded, by reason. */
  readonly drops: Record<string, number> = {};

  drop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }
}
