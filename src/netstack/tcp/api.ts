/** TCP connection states (RFC 9293 §3.3.2). */
export type TcpState =
  | "CLOSED"
  | "LISTEN"
  | "SYN-SENT"
  | "SYN-RECEIVED"
  | "ESTABLISHED"
  | "FIN-WAIT-1"
  | "FIN-WAIT-2"
  | "CLOSE-WAIT"
  | "CLOSING"
  | "LAST-ACK"
  | "TIME-WAIT";

export type TcpCloseReason = "closed" | "reset" | "timeout" | "aborted" | "refused";

/**
 * The application side of one TCP connection, as the gateway sees it. Both buffers are bounded by
 * the configured buffer size: that bound is the backpressure in each direction.
 */
export interface TcpConnectionApi {
  readonly state: TcpState;
  /** Passive open: the host-side connect succeeded, send the SYN-ACK now. */
  accept(): void;
  /** Passive open: the host-side connect failed, answer the SYN with a RST. */
  refuse(): void;
  /**
   * Passive open: forget the connection without sending anything (the gateway answered the SYN
   * with an ICMP error instead, and a RST would contradict it). Otherwise the same as abort().
   */
  dropSilently(): void;
  /** The sequence number of the peer's SYN (0 until one was seen): quoted in ICMP errors. */
  readonly initialPeerSeq: number;

  /** In-order received bytes not yet consumed (a view; empty when none). */
  peek(): Uint8Array;
  /** Release n bytes from the front of the receive buffer (the window opens again). */
  consume(n: number): void;
  /** True once the peer's FIN arrived and every byte before it has been consumed. */
  readonly readEof: boolean;
  /** Bytes waiting in the receive buffer. */
  readonly receiveBuffered: number;

  /**
   * Queue bytes to send; returns how many were accepted (copied). 0 when the send buffer is full.
   * `fin`: when all are accepted, shutdown() too, so the FIN can ride in the last data segment.
   */
  write(data: Uint8Array, fin?: boolean): number;
  /** Bytes written but not yet acknowledged by the peer. */
  readonly sendBuffered: number;
  /** Send FIN after everything written so far. */
  shutdown(): void;
  /** Send RST and close at once. */
  abort(): void;

  onEstablished: () => void;
  /** New in-order data, or the peer's FIN. */
  onReadable: () => void;
  /** Send-buffer space was freed (after write() accepted less than offered). */
  onWritable: () => void;
  /** The connection is gone (fully closed, reset, timed out or aborted); fired once. */
  onClosed: (reason: TcpCloseReason) => void;
}
