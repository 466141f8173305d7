/** Timing and sizing choices of the TCP layer, in one place so they are documented once. */

/**
 * Maximum segment lifetime. RFC 9293 §3.4.2 suggests 2 minutes; a gateway holding one table entry
 * per flow wants TIME-WAIT short, and the only network it talks to is one WireGuard hop, so 5 s.
 */
export const MSL_MS = 5_000;
/** TIME-WAIT lasts 2*MSL (RFC 9293 §3.6.1). */
export const TIME_WAIT_MS = 2 * MSL_MS;
/**
 * Give up after this many consecutive retransmission timeouts of the same data (RFC 9293 §3.8.3
 * R2; with the 60 s cap the connection dies after roughly 5 minutes without progress).
 */
export const MAX_RETRANSMITS = 10;
/**
 * Linear timeouts for thin flows (as Linux's tcp_thin_linear_timeouts): a flow with fewer than
 * THIN_FLOW_SEGMENTS in flight when its retransmission timer expires resends at the un-backed-off
 * RTO, for the first THIN_LINEAR_TIMEOUTS expiries in a row; only then does the RTO double. Such a
 * flow has nothing to fast-retransmit with (too few segments for duplicate ACKs), so each lost
 * retransmission would cost it another doubling: with many flows behind one small buffer (200 echo
 * flows into the peer's UDP socket) the unlucky ones sat out 3-25 s of backoff while the others
 * moved. One segment per RTO per flow is no load worth backing off for; a dead path still gets the
 * exponential backoff after those few tries, and they do not count toward MAX_RETRANSMITS.
 */
export const THIN_FLOW_SEGMENTS = 4;
export const THIN_LINEAR_TIMEOUTS = 6;
/**
 * FIN-WAIT-2 without progress (our FIN acknowledged, the peer neither closes nor sends) ends the
 * flow after this long, like Linux's tcp_fin_timeout.
 */
export const DEFAULT_FIN_WAIT_2_TIMEOUT_MS = 60_000;
/**
 * Keepalive toward a peer that may have vanished (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): a
 * synchronized flow that hears nothing from the peer for one idle period (checked every
 * KEEPALIVE_IDLE_MS, so after 5 to 10 minutes of silence) gets a probe every KEEPALIVE_INTERVAL_MS;
 * after KEEPALIVE_PROBES unanswered intervals it is reset and closed ("timeout"), its host socket
 * with it. A live peer's kernel answers every probe, so idle flows of a live peer stay.
 */
export const KEEPALIVE_IDLE_MS = 300_000;
export const KEEPALIVE_INTERVAL_MS = 30_000;
export const KEEPALIVE_PROBES = 4;
/**
 * Buffers without --tcp-buffer-size start at DEFAULT_BUFFER_SIZE and autotune up to
 * AUTOTUNE_MAX_BUFFER_SIZE per flow and direction (8 MiB: a 100 ms path at ~300 Mbit/s with the
 * receive factor of 4, or ~650 Mbit/s for the send side), all flows together within
 * DEFAULT_AUTOTUNE_BUDGET of growth.
 */
export const DEFAULT_BUFFER_SIZE = 65535;
export const AUTOTUNE_MAX_BUFFER_SIZE = 8 * 1024 * 1024;
export const DEFAULT_AUTOTUNE_BUDGET = 256 * 1024 * 1024;
/** Default cap on flows in one TcpLayer (excess SYNs are refused with RST). */
export const DEFAULT_MAX_CONNECTIONS = 65_536;
/** Default bound on the whole handshake (SYN received or sent until ESTABLISHED). */
export const DEFAULT_SYN_TIMEOUT_MS = 30_000;
/** RFC 9293 §3.7.1: MSS to assume when the peer sends no MSS option. */
export const DEFAULT_MSS_V4 = 536;
export const DEFAULT_MSS_V6 = 1220;
/** RFC 7323 §2.3: the largest window scale shift. */
export const MAX_WINDOW_SCALE = 14;
/** Bytes of the timestamp option as we lay it out (NOP NOP TS), taken off the MSS (RFC 6691). */
export const TIMESTAMP_OPTION_BYTES = 12;
/** Tail loss probe (RFC 8985 §7.2): PTO = max(2 SRTT, this) ... */
export const TLP_MIN_PTO_MS = 10;
/** ...plus the peer's worst-case delayed ACK when a single segment is in flight. */
export const TLP_DELAYED_ACK_MS = 200;
/**
 * Delayed ACK (delayed-ack.ts): the ACK of a short segment waits at most this long for the host's
 * answer to carry it. Far below RFC 5681's 500 ms and Linux's 40 ms minimum, so a peer whose Nagle
 * waits on it stalls briefly; long enough for hosts on the local network (~0.1-2 ms) to answer.
 */
export const DEFAULT_DELAYED_ACK_MS = 5;
/** Lost retransmissions queued by RACK per flow (beyond it the RTO still recovers them). */
export const MAX_RACK_LOST = 256;
/** Duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2). */
export const DUPACK_THRESHOLD = 3;

/** Smallest window scale shift such that a window of `bufferSize` bytes fits in 16 bits. */
export function windowScaleFor(bufferSize: number): number {
  let shift = 0;
  while (shift < MAX_WINDOW_SCALE && 65535 * 2 ** shift < bufferSize) shift++;
  return shift;
}
