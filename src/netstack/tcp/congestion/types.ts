/**
 * What the connection asks of a congestion controller. Loss detection (duplicate-ACK counting, the
 * NewReno "recover" point, RTO expiry) stays in the connection; the controller only owns the
 * window arithmetic, so another algorithm (CUBIC, RFC 9438) plugs in behind the same calls.
 */
export interface CongestionControl {
  /** Congestion window in bytes. */
  readonly cwnd: number;
  /** Slow-start threshold in bytes. */
  readonly ssthresh: number;
  /** New data acknowledged outside loss recovery. */
  onAck(ackedBytes: number, now: number): void;
  /** Third duplicate ACK: entering fast recovery with `flightSize` bytes outstanding. */
  onEnterRecovery(flightSize: number, now: number): void;
  /** A further duplicate ACK during fast recovery (one more segment left the network). */
  onDupAckInRecovery(): void;
  /** A partial ACK during fast recovery (acknowledged some, not all, of the data before recovery). */
  onPartialAck(ackedBytes: number): void;
  /** The ACK covering the recovery point arrived. */
  onExitRecovery(flightSize: number): void;
  /** Retransmission timeout with `flightSize` bytes outstanding. */
  onTimeout(flightSize: number, now: number): void;
  /** The sender MSS changed (known after the handshake). */
  setMss(mss: number): void;
}

export type CongestionControlFactory = (mss: number) => CongestionControl;
