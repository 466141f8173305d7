import type { IpLink } from "../link.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import { isMulticastOrBroadcast, isUnspecified } from "../wire/ipaddr.ts";
import { Ipv4View } from "../wire/ipv4.ts";
import { Ipv6View, NH_NO_NEXT } from "../wire/ipv6.ts";
import { Reassembler, type ReassemblyLimits } from "../wire/reassembly.ts";
import { AddrInterner } from "./addr-intern.ts";
import { IcmpLayer } from "./icmp.ts";
import { LinkIpOutput } from "./ip-output.ts";
import { countDrop, type NetstackStats, newNetstackStats } from "./stats.ts";
import type { TcpConnectionApi } from "./tcp/api.ts";
import {
  type FlowAddrs,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type IpAddr,
  type IpOutput,
  type NetstackApi,
  type NetstackHandlers,
  type UnreachableKind,
} from "./types.ts";
import { UdpLayer } from "./udp.ts";

/** What the netstack needs of the TCP layer (src/netstack/tcp), injected so either side tests alone. */
export interface TcpInput {
  input(src: IpAddr, dst: IpAddr, segment: Uint8Array): void;
  connect(flow: FlowAddrs): TcpConnectionApi;
}

export interface NetstackOptions {
  link: IpLink;
  /** Largest inner IP packet toward the peer (the WireGuard interface MTU, e.g. 1420). */
  mtu: number;
  clock: Clock;
  log: Logger;
  handlers: NetstackHandlers;
  tcp?: TcpInput;
  reassembly?: Partial<ReassemblyLimits>;
  /**
   * The gateway's own inner address per family (e.g. the pingable one): the source of the time
   * exceeded it sends as a router hop, so traceroute's first hop is the gateway. Default: the
   * expired packet's destination.
   */
  routerAddress?: { v4?: IpAddr; v6?: IpAddr };
}

/**
 * The IP layer toward the peer: validates every packet from the link, reassembles fragments,
 * demultiplexes to TCP / UDP / ICMP, and originates packets through `output`.
 *
 * We act as the peer's router toward the Internet, so a packet arriving with TTL / hop limit ≤ 1
 * cannot be forwarded: it is dropped with an ICMP time exceeded (RFC 1812 §5.3.1, RFC 8200 §3),
 * which also makes traceroute show the gateway as the first hop.
 */
export class Netstack implements NetstackApi {
  readonly stats: NetstackStats = newNetstackStats();
  readonly output: IpOutput;
  private tcp: TcpInput | undefined;
  private readonly udp: UdpLayer;
  private readonly icmp: IcmpLayer;
  private readonly reassembler: Reassembler;
  private readonly srcAddrs = new AddrInterner(4);
  private readonly dstAddrs = new AddrInterner(16);
  private readonly log: Logger;
  private readonly link: IpLink;
  private readonly routerAddress: { v4?: IpAddr; v6?: IpAddr };
  private closed = false;
  private readonly drop = (reason: string): void => countDrop(this.stats, reason);

  constructor(opts: NetstackOptions) {
    this.link = opts.link;
    this.log = opts.log;
    this.tcp = opts.tcp;
    this.routerAddress = opts.routerAddress ?? {};
    this.output = new LinkIpOutput(opts.link, opts.mtu, this.stats);
    this.udp = new UdpLayer(this.output, opts.handlers, this.drop);
    this.icmp = new IcmpLayer(this.output, opts.mtu, opts.clock, opts.handlers, this.drop);
    this.reassembler = new Reassembler(opts.clock, this.drop, opts.reassembly);
    opts.link.onPacket = (packet) => this.receive(packet);
  }

  setTcp(tcp: TcpInput): void {
    this.tcp = tcp;
  }

  /** Datagrams waiting for more fragments. */
  get reassembliesInProgress(): number {
    return this.reassembler.inProgress;
  }

  /** One IP packet from the peer. Never throws: bad packets become counted drops. */
  receive(packet: Uint8Array): void {
    if (this.closed) return;
    this.stats.packetsIn++;
    this.stats.bytesIn += packet.length;
    if (packet.length === 0) {
      this.drop("empty");
      return;
    }
    const version = (packet[0] as number) >> 4;
    if (version === 4) this.receiveV4(packet, false);
    else if (version === 6) this.receiveV6(packet, false);
    else this.drop("bad-ip-version");
  }

  sendUdp(flow: FlowAddrs, payload: Uint8Array): void {
    if (this.closed) return;
    this.udp.send(flow, payload);
  }

  connectTcp(flow: FlowAddrs): TcpConnectionApi {
    if (!this.tcp) throw new Error("connectTcp: no TCP layer installed (call setTcp first)");
    return this.tcp.connect(flow);
  }

  sendUnreachable(original: Uint8Array, kind: UnreachableKind): void {
    if (this.closed || original.length === 0) return;
    this.icmp.sendUnreachable(original, kind);
  }

  sendEchoReply(from: IpAddr, to: IpAddr, id: number, seq: number, data: Uint8Array): void {
    if (this.closed) return;
    this.icmp.sendEchoReply(from, to, id, seq, data);
  }

  forwardIcmpError(original: Uint8Array, from: IpAddr, type: number, code: number): void {
    if (this.closed || original.length === 0) return;
    this.icmp.forwardError(original, from, type, code);
  }

  /** Stop receiving and abandon reassemblies (their timer is cleared). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reassembler.clear();
    this.link.onPacket = () => {};
  }

  private receiveV4(packet: Uint8Array, reassembled: boolean): void {
    const reason = Ipv4View.check(packet);
    if (reason) {
      this.drop(reason);
      return;
    }
    const ip = new Ipv4View(packet);
    const total = ip.totalLength;
    // Link padding after total length is not part of the datagram.
    if (total < packet.length) packet = packet.subarray(0, total);
    if (!reassembled && this.martian(packet, 12, 16, 4)) return;
    if (ip.isFragment) {
      const whole = this.reassembler.inputV4(ip);
      if (whole) this.receiveV4(whole, true);
      return;
    }
    if (ip.ttl <= 1) {
      this.drop("ttl-exceeded");
      this.icmp.sendTimeExceeded(packet, this.routerAddress.v4);
      return;
    }
    const src = this.srcAddrs.intern(packet, 12, 4);
    const dst = this.dstAddrs.intern(packet, 16, 4);
    this.deliver(ip.protocol, src, dst, packet.subarray(ip.headerLength, total), packet);
  }

  private receiveV6(packet: Uint8Array, reassembled: boolean): void {
    const reason = Ipv6View.check(packet);
    if (reason) {
      this.drop(reason);
      return;
    }
    const ip = new Ipv6View(packet);
    const end = ip.packetLength;
    if (end < packet.length) packet = packet.subarray(0, end);
    const walkError = ip.walk();
    if (walkError) {
      this.drop(walkError);
      return;
    }
    if (!reassembled && this.martian(packet, 8, 24, 16)) return;
    if (ip.fragmentHeaderOffset >= 0) {
      if (reassembled) {
        this.drop("ipv6-nested-fragment");
        return;
      }
      const whole = this.reassembler.inputV6(ip);
      if (whole) this.receiveV6(whole, true);
      return;
    }
    if (ip.hopLimit <= 1) {
      this.drop("hop-limit-exceeded");
      this.icmp.sendTimeExceeded(packet, this.routerAddress.v6);
      return;
    }
    if (ip.upperProtocol === NH_NO_NEXT) {
      this.drop("ipv6-no-next-header");
      return;
    }
    const src = this.srcAddrs.intern(packet, 8, 16);
    const dst = this.dstAddrs.intern(packet, 24, 16);
    this.deliver(ip.upperProtocol, src, dst, packet.subarray(ip.upperOffset, end), packet);
  }

  /** Source must name one host; destination must be unicast (nothing to forward multicast to). */
  private martian(packet: Uint8Array, srcOff: number, dstOff: number, len: number): boolean {
    if (isMulticastOrBroadcast(packet, srcOff, len) || isUnspecified(packet, srcOff, len)) {
      this.drop("martian-source");
      return true;
    }
    if (isMulticastOrBroadcast(packet, dstOff, len) || isUnspecified(packet, dstOff, len)) {
      this.drop("martian-destination");
      return true;
    }
    return false;
  }

  private deliver(protocol: number, src: IpAddr, dst: IpAddr, payload: Uint8Array, packet: Uint8Array): void {
    // Upper layers and gateway handlers are other people's code: contain their exceptions here so
    // one bad flow cannot break the receive loop of the tunnel.
    try {
      switch (protocol) {
        case IPPROTO_TCP:
          if (!this.tcp) {
            this.drop("tcp-no-layer");
            return;
          }
          this.tcp.input(src, dst, payload);
          return;
        case IPPROTO_UDP:
          this.udp.input(src, dst, payload, packet);
          return;
        case IPPROTO_ICMP:
          if (src.length !== 4) {
            this.drop("icmpv4-over-ipv6");
            return;
          }
          this.icmp.inputV4(src, dst, payload, packet);
          return;
        case IPPROTO_ICMPV6:
          if (src.length !== 16) {
            this.drop("icmpv6-over-ipv4");
            return;
          }
          this.icmp.inputV6(src, dst, payload, packet);
          return;
        default:
          this.drop("unknown-protocol");
      }
    } catch (err) {
      this.drop("handler-error");
      this.log.error("netstack: upper layer threw", err);
    }
  }
}
