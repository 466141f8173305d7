/**
 * Segments in and out of the TCP layer. `TcpSegmentIn` is one reusable parse result the layer fills
 * per incoming segment (no per-segment objects); `emitSegment` writes one outgoing segment through
 * the IP output with a shared scratch header.
 */
import { emitTcpHeader, TcpHeaderFields, TcpOptions, tcpHeaderLength, writeTcpChecksum } from "../../wire/tcp.ts";
import { IPPROTO_TCP, type IpAddr, type IpOutput, ipHeaderLength } from "../types.ts";
import { seqAdd, seqInRange, seqLe } from "./seq.ts";

export class TcpSegmentIn {
  srcPort = 0;
  dstPort = 0;
  seq = 0;
  ack = 0;
  flags = 0;
  /** The raw 16-bit window field (unscaled). */
  window = 0;
  readonly options = new TcpOptions();
  /** The whole TCP segment; payload is buf[payloadOffset, payloadOffset + payloadLength). */
  buf: Uint8Array = new Uint8Array(0);
  payloadOffset = 0;
  payloadLength = 0;
}

/** Scratch header for every segment we emit (single-threaded: filled and consumed synchronously). */
export const scratchHeader = new TcpHeaderFields();

/** Copies `len` payload bytes into dst[dstOff]. */
export type PayloadWriter = (dst: Uint8Array, dstOff: number, len: number) => void;

/** Emit scratchHeader (+ `payloadLength` bytes from `payload`) from `local` to `remote`. */
export function emitSegment(
  output: IpOutput,
  local: IpAddr,
  remote: IpAddr,
  payloadLength: number,
  payload: PayloadWriter | null,
): void {
  const h = scratchHeader;
  const hl = tcpHeaderLength(h);
  const tcpLen = hl + payloadLength;
  const pkt = output.allocate(local, remote, IPPROTO_TCP, tcpLen);
  const off = ipHeaderLength(local);
  emitTcpHeader(pkt, off, h);
  if (payloadLength > 0 && payload) payload(pkt, off + hl, payloadLength);
  writeTcpChecksum(pkt, off, tcpLen, local, remote);
  output.send(pkt);
}

/**
 * A reset with no connection behind it (RFC 9293 §3.10.7.1, "If the state is CLOSED"): for a
 * segment with ACK, <SEQ=SEG.ACK><CTL=RST>; otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
 */
export function emitReset(
  output: IpOutput,
  local: IpAddr,
  localPort: number,
  remote: IpAddr,
  remotePort: number,
  seq: number,
  ack: number,
  flags: number,
): void {
  const h = scratchHeader;
  h.resetOptions();
  h.srcPort = localPort;
  h.dstPort = remotePort;
  h.seq = seq >>> 0;
  h.ack = ack >>> 0;
  h.flags = flags;
  h.window = 0;
  emitSegment(output, local, remote, 0, null);
}

/**
 * RFC 9293 §3.10.7.4, first check: may a segment of `segLen` (data + SYN + FIN) at `seq` be
 * processed with RCV.NXT = `rcvNxt` and `wnd` bytes of window? A zero window still takes a segment
 * at RCV.NXT (its data is trimmed by the caller), per the "special allowance". A segment without
 * data exactly at the right edge is accepted too (as Linux does): a peer that filled our window
 * sends its pure ACKs with SEQ = that edge, and refusing them (each side answering the other's
 * "unacceptable" ACK with its own) is an endless ACK ping-pong.
 */
export function segmentAcceptable(seq: number, segLen: number, rcvNxt: number, wnd: number): boolean {
  const rcvEnd = seqAdd(rcvNxt, wnd);
  if (segLen === 0) return seqLe(rcvNxt, seq) && seqLe(seq, rcvEnd);
  if (wnd === 0) return seq === rcvNxt;
  return seqInRange(seq, rcvNxt, rcvEnd) || seqInRange(seqAdd(seq, segLen - 1), rcvNxt, rcvEnd);
}
