/**
 * What the connection asks of a congestion controller. Loss detection (duplicate-ACK counting, the
 * SACK scoreboard, the "recover" point, RTO expiry) stays in the connection; the controller only
 * owns the window arithmetic, so algorithms (NewReno, CUBIC) plug in behind the same calls.
 *
 * Two loss-recovery styles drive it. With SACK (RFC 6675) the connection sends by `pipe`, so on
 * entering recovery cwnd becomes ssthresh and stays there (no inflation; onDupAckInRecovery and
 * onPartialAck are not called). Without SACK (RFC 5681 / RFC 6582) cwnd is inflated by 3 MSS on
 * entry, by one MSS per further duplicate ACK and deflated on partial ACKs.
 */
export interface CongestionControl {
  /** Algorithm name ("newreno", "cubic"). */
  readonly name: string;
  /** Congestion window in bytes. */
  readonly cwnd: number;
  /** Slow-start threshold in bytes. */
  readonly ssthresh: number;
  /** New data acknowledged outside loss recovery; `srttMs` is the smoothed RTT (-1 if unknown). */
  onAck(ackedBytes: number, now: number, srttMs?: number): void;
  /** Loss detected (third duplicate ACK or SACK IsLost): entering fast recovery. */
  onEnterRecovery(flightSize: number, now: number, sack?: boolean): void;
  /** A further duplicate ACK during NewReno-style fast recovery (one more segment left the network). */
  onDupAckInRecovery(): void;
  /** A partial ACK during NewReno-style fast recovery. */
  onPartialAck(ackedBytes: number): void;
  /** The ACK covering the recovery point arrived. */
  onExitRecovery(flightSize: number): void;
  /** Retransmission timeout with `flightSize` bytes outstanding. */
  onTimeout(flightSize: number, now: number): void;
  /** The sender MSS changed (known after the handshake). */
  setMss(mss: number): void;
  /** HyStart++ ended slow start without a loss: ssthresh = cwnd (RFC 9406 §4.2). */
  exitSlowStart(): void;
  /**
   * Model-based control (BBR) only: called for every ACK, in and out of recovery, after the
   * recovery state changes. Loss-based controllers leave it out.
   */
  onDelivery?(s: DeliverySample): void;
  /** Model-based control only: the pacing rate it wants (bytes per ms; 0 = the default pacing). */
  readonly pacingRate?: number;
}

/** What an ACK tells a model-based controller (reused object: read it during the call only). */
export interface DeliverySample {
  /** Bytes delivered since the connection began (cumulatively acknowledged or SACKed). */
  delivered: number;
  /** Bytes this ACK newly delivered. */
  acked: number;
  /** Bytes in flight after this ACK (sent, neither acknowledged nor SACKed). */
  inflight: number;
  /** Now (ms). */
  now: number;
  /** A fine-grained RTT sample from this ACK (ms), or -1. */
  rtt: number;
  /** When the most recently sent of the segments delivered so far left (ms), or -1: rounds. */
  sentAt: number;
  /** A delivery-rate sample (bytes per ms) over `interval` ms, or -1 when this ACK gave none. */
  rate: number;
  interval: number;
  /** Payload bytes retransmitted since the connection began. */
  retransmitted: number;
  /** The sender had nothing more to send (the app is the limit, not the network). */
  appLimited: boolean;
  /** Data from before the last loss recovery or timeout is still unacknowledged (SND.UNA < recover). */
  recovering: boolean;
  /** This ACK revealed a loss (recovery began or a retransmission is queued). */
  lost: boolean;
}

/** A sample with nothing delivered yet: the sender's reusable object starts from it. */
export function emptyDeliverySample(): DeliverySample {
  return {
    delivered: 0,
    acked: 0,
    inflight: 0,
    now: 0,
    rtt: -1,
    sentAt: -1,
    rate: -1,
    interval: 0,
    retransmitted: 0,
    recovering: false,
    appLimited: false,
    lost: false,
  };
}

export type CongestionControlFactory = (mss: number) => CongestionControl;
