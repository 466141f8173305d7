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
}

export type CongestionControlFactory = (mss: number) => CongestionControl;
