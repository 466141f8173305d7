import type { TcpConnectionApi } from "./tcp/api.ts";

/** An IP address as bytes: 4 (IPv4) or 16 (IPv6). Never mutated after creation. */
export type IpAddr = Uint8Array;

/**
 * The addresses of a flow. For packets from the peer, `src` is the peer's side and `dst` the
 * destination it wants; for packets to the peer, `src` is the (remote) source the peer will see.
 */
export interface FlowAddrs {
  src: IpAddr;
  srcPort: number;
  dst: IpAddr;
  dstPort: number;
}

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

/** Length of the IP header the netstack emits for a source of this family (no options/extensions). */
export function ipHeaderLength(addr: IpAddr): number {
  return addr.length === 4 ? 20 : 40;
}

/**
 * Where upper layers (TCP, UDP, ICMP) write packets, zero-copy: allocate() returns a buffer with the
 * IP header already written; the caller writes its payload at ipHeaderLength(src) (including its own
 * checksum, see src/wire/checksum.ts pseudoHeaderSum) and hands the buffer to send(), which takes
 * it: the caller must not read or write it afterwards (the link may encrypt it in place and keep it).
 */
export interface IpOutput {
  allocate(src: IpAddr, dst: IpAddr, protocol: number, payloadLength: number): Uint8Array;
  send(packet: Uint8Array): void;
}

/** Why an ICMP destination-unreachable is sent (mapped to v4 / v6 codes by the netstack). */
export type UnreachableKind = "port" | "host" | "net" | "admin";

/** What the netstack asks of the gateway. */
export interface NetstackHandlers {
  /**
   * A SYN for a flow with no connection. The connection is registered already; call conn.accept()
   * once the host-side connect succeeds, conn.refuse() (RST) when it fails.
   */
  onTcpConnect(flow: FlowAddrs, conn: TcpConnectionApi): void;
  /** A UDP datagram from the peer. `payload` is a view valid only during the call (copy to keep). */
  onUdp(flow: FlowAddrs, payload: Uint8Array, packet: Uint8Array): void;
  /** An ICMP/ICMPv6 echo request to `dst`: return true to have the netstack answer it. */
  onEchoRequest(src: IpAddr, dst: IpAddr): boolean;
  /**
   * An echo request onEchoRequest declined: return true when the gateway took it (to forward it to
   * the real network); false drops it. `msg` is the ICMP message, `packet` the IP packet (views).
   */
  onEchoForward?(src: IpAddr, dst: IpAddr, msg: Uint8Array, packet: Uint8Array): boolean;
}

/** What the gateway asks of the netstack. */
export interface NetstackApi {
  /** Send a UDP datagram to the peer: flow.src/srcPort is the source the peer sees. */
  sendUdp(flow: FlowAddrs, payload: Uint8Array): void;
  /** Active open toward the peer (reverse forwards): flow.src is our side, flow.dst the peer's. */
  connectTcp(flow: FlowAddrs): TcpConnectionApi;
  /** ICMP / ICMPv6 destination unreachable to the peer, quoting `original` (an IP packet from it). */
  sendUnreachable(original: Uint8Array, kind: UnreachableKind): void;
  /** An echo reply to the peer from `from` with this identifier, sequence number and data. */
  sendEchoReply(from: IpAddr, to: IpAddr, id: number, seq: number, data: Uint8Array): void;
  /**
   * An ICMP error a router on the real network sent about a packet we forwarded for the peer,
   * passed on from `from` quoting the peer's packet `original`; type and code in its family's
   * numbering (ICMP for IPv4, ICMPv6 for IPv6). Not rate-limited: each forwarded packet yields one.
   */
  forwardIcmpError(original: Uint8Array, from: IpAddr, type: number, code: number): void;
}
