import type { FlowAddrs } from "../netstack/types.ts";
import { IPPROTO_TCP } from "../netstack/types.ts";
import { emitIpv4Header } from "../wire/ipv4.ts";
import { emitIpv6Header } from "../wire/ipv6.ts";
import { emitTcpHeader, TCP_HEADER_MIN, TCP_SYN, TcpHeaderFields, writeTcpChecksum } from "../wire/tcp.ts";

/**
 * The peer's SYN as an ICMP error must quote it: the TCP layer hands the gateway the flow, not the
 * packet, so rebuild a minimal one — IP header plus a 20-byte TCP header with the ports and the
 * SYN's sequence number (what a peer's stack checks to match the error to its socket; Linux ignores
 * an error whose quoted sequence is outside its send window). The netstack trims and rate-limits.
 */
export function synQuote(flow: FlowAddrs, seq: number): Uint8Array {
  const v4 = flow.src.length === 4;
  const ipLen = v4 ? 20 : 40;
  const buf = new Uint8Array(ipLen + TCP_HEADER_MIN);
  if (v4) emitIpv4Header(buf, 0, flow.src, flow.dst, IPPROTO_TCP, buf.length, 0, 0x4000, 64);
  else emitIpv6Header(buf, 0, flow.src, flow.dst, IPPROTO_TCP, TCP_HEADER_MIN, 64);
  const h = new TcpHeaderFields();
  h.srcPort = flow.srcPort;
  h.dstPort = flow.dstPort;
  h.seq = seq >>> 0;
  h.flags = TCP_SYN;
  h.window = 65535;
  emitTcpHeader(buf, ipLen, h);
  writeTcpChecksum(buf, ipLen, TCP_HEADER_MIN, flow.src, flow.dst);
  return buf;
}
