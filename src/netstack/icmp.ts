import type { Clock } from "../util/clock.ts";
import {
  emitIcmpv4,
  ICMPV4_DEST_UNREACHABLE,
  ICMPV4_ECHO_REPLY,
  ICMPV4_ECHO_REQUEST,
  ICMPV4_TIME_EXCEEDED,
  ICMPV4_UNREACH_ADMIN,
  ICMPV4_UNREACH_HOST,
  ICMPV4_UNREACH_NET,
  ICMPV4_UNREACH_PORT,
  Icmpv4View,
  isIcmpv4Error,
  writeIcmpv4Checksum,
} from "../wire/icmpv4.ts";
import {
  emitIcmpv6,
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_TIME_EXCEEDED,
  ICMPV6_UNREACH_ADDRESS,
  ICMPV6_UNREACH_ADMIN,
  ICMPV6_UNREACH_PORT,
  Icmpv6View,
  isIcmpv6Error,
  writeIcmpv6Checksum,
} from "../wire/icmpv6.ts";
import { isMulticastOrBroadcast, isUnspecified } from "../wire/ipaddr.ts";
import { Ipv4View } from "../wire/ipv4.ts";
import { Ipv6View } from "../wire/ipv6.ts";
import { TokenBucket } from "./rate-limit.ts";
import {
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  type IpAddr,
  type IpOutput,
  type NetstackHandlers,
  type UnreachableKind,
} from "./types.ts";

/** ICMP errors: at most 100 per second with a burst of 50 (RFC 4443 §2.4(f) asks for a limit). */
export const ICMP_ERROR_RATE = 100;
export const ICMP_ERROR_BURST = 50;
/** RFC 1812 §4.3.2.3: an ICMPv4 error is at most 576 bytes. RFC 4443 §2.4(c): ICMPv6 at most 1280. */
const ICMPV4_ERROR_MAX = 576;
const ICMPV6_ERROR_MAX = 1280;

const V4_UNREACH_CODE: Record<UnreachableKind, number> = {
  port: ICMPV4_UNREACH_PORT,
  host: ICMPV4_UNREACH_HOST,
  net: ICMPV4_UNREACH_NET,
  admin: ICMPV4_UNREACH_ADMIN,
};
/** RFC 4443 §3.1: "host" maps to address unreachable (3), "net" to no route (0). */
const V6_UNREACH_CODE: Record<UnreachableKind, number> = {
  port: ICMPV6_UNREACH_PORT,
  host: ICMPV6_UNREACH_ADDRESS,
  net: 0,
  admin: ICMPV6_UNREACH_ADMIN,
};

/** ICMPv4 / ICMPv6: answers echo requests and originates rate-limited errors. */
export class IcmpLayer {
  private readonly errorBucket: TokenBucket;

  constructor(
    private readonly output: IpOutput,
    private readonly mtu: number,
    clock: Clock,
    private readonly handlers: NetstackHandlers,
    private readonly countDrop: (reason: string) => void,
  ) {
    this.errorBucket = new TokenBucket(clock, ICMP_ERROR_RATE, ICMP_ERROR_BURST);
  }

  /** An ICMPv4 message from the peer (`msg` is the IP payload). */
  inputV4(src: IpAddr, dst: IpAddr, msg: Uint8Array, packet: Uint8Array): void {
    const reason = Icmpv4View.check(msg);
    if (reason) {
      this.countDrop(reason);
      return;
    }
    if (msg[0] !== ICMPV4_ECHO_REQUEST) {
      this.countDrop(`icmpv4-type-${msg[0]}`);
      return;
    }
    if (msg[1] !== 0) {
      this.countDrop("icmpv4-bad-code");
      return;
    }
    if (!this.handlers.onEchoRequest(src, dst)) {
      if (!this.handlers.onEchoForward?.(src, dst, msg, packet)) this.countDrop("echo-refused");
      return;
    }
    // Echo reply: same identifier, sequence and data (RFC 792), from the address that was pinged.
    const reply = this.output.allocate(dst, src, IPPROTO_ICMP, msg.length);
    reply.set(msg, 20);
    reply[20] = ICMPV4_ECHO_REPLY;
    writeIcmpv4Checksum(reply, 20, msg.length);
    this.output.send(reply);
  }

  /** An ICMPv6 message from the peer (`msg` is the upper-layer part after the extension headers). */
  inputV6(src: IpAddr, dst: IpAddr, msg: Uint8Array, packet: Uint8Array): void {
    const reason = Icmpv6View.check(src, dst, msg);
    if (reason) {
      this.countDrop(reason);
      return;
    }
    if (msg[0] !== ICMPV6_ECHO_REQUEST) {
      this.countDrop(`icmpv6-type-${msg[0]}`);
      return;
    }
    if (msg[1] !== 0) {
      this.countDrop("icmpv6-bad-code");
      return;
    }
    if (!this.handlers.onEchoRequest(src, dst)) {
      if (!this.handlers.onEchoForward?.(src, dst, msg, packet)) this.countDrop("echo-refused");
      return;
    }
    const reply = this.output.allocate(dst, src, IPPROTO_ICMPV6, msg.length);
    reply.set(msg, 40);
    reply[40] = ICMPV6_ECHO_REPLY;
    writeIcmpv6Checksum(reply, 40, msg.length, dst, src);
    this.output.send(reply);
  }

  /** An echo reply built from parts (the answer to a request forwarded to the real network). */
  sendEchoReply(from: IpAddr, to: IpAddr, id: number, seq: number, data: Uint8Array): void {
    const v4 = from.length === 4;
    const hl = v4 ? 20 : 40;
    const length = 8 + data.length;
    const reply = this.output.allocate(from, to, v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6, length);
    reply.set(data, hl + 8);
    const idSeq = ((id << 16) | seq) >>> 0;
    if (v4) emitIcmpv4(reply, hl, length, ICMPV4_ECHO_REPLY, 0, idSeq);
    else emitIcmpv6(reply, hl, length, from, to, ICMPV6_ECHO_REPLY, 0, idSeq);
    this.output.send(reply);
  }

  /** A router's ICMP error about a forwarded packet, from that router (see NetstackApi). */
  forwardError(original: Uint8Array, from: IpAddr, type: number, code: number): void {
    if ((original[0] as number) >> 4 === 4) this.sendErrorV4(original, type, code, from);
    else this.sendErrorV6(original, type, code, from);
  }

  /** Destination unreachable quoting `original` (an IP packet from the peer). */
  sendUnreachable(original: Uint8Array, kind: UnreachableKind): void {
    if ((original[0] as number) >> 4 === 4) this.sendErrorV4(original, ICMPV4_DEST_UNREACHABLE, V4_UNREACH_CODE[kind]);
    else this.sendErrorV6(original, ICMPV6_DEST_UNREACHABLE, V6_UNREACH_CODE[kind]);
  }

  /** Time exceeded in transit (code 0), for packets whose TTL / hop limit ran out at us. */
  sendTimeExceeded(original: Uint8Array, from?: IpAddr): void {
    if ((original[0] as number) >> 4 === 4) this.sendErrorV4(original, ICMPV4_TIME_EXCEEDED, 0, from, true);
    else this.sendErrorV6(original, ICMPV6_TIME_EXCEEDED, 0, from, true);
  }

  /**
   * RFC 1122 §3.2.2 / RFC 1812 §4.3.2.7: no error about an ICMP error, a non-initial fragment, a
   * packet to a broadcast/multicast address, or from an address that does not name one host.
   * `from`: the source (default: the original's destination); `limited`: take from the error bucket.
   */
  private sendErrorV4(original: Uint8Array, type: number, code: number, from?: IpAddr, limited = !from): void {
    if (Ipv4View.check(original) !== null) {
      this.countDrop("icmp-error-bad-original");
      return;
    }
    const ip = new Ipv4View(original);
    if (ip.fragmentOffset !== 0) {
      this.countDrop("icmp-error-suppressed");
      return;
    }
    const src = ip.src;
    const dst = ip.dst;
    if (isMulticastOrBroadcast(dst) || isMulticastOrBroadcast(src) || isUnspecified(src)) {
      this.countDrop("icmp-error-suppressed");
      return;
    }
    if (ip.protocol === IPPROTO_ICMP) {
      const hl = ip.headerLength;
      if (ip.totalLength <= hl || isIcmpv4Error(original[hl] as number)) {
        this.countDrop("icmp-error-suppressed");
        return;
      }
    }
    if (limited && !this.errorBucket.take()) {
      this.countDrop("icmp-rate-limited");
      return;
    }
    const quote = Math.min(ip.totalLength, Math.min(ICMPV4_ERROR_MAX, this.mtu) - 28);
    const msgLength = 8 + quote;
    // src/dst are views into `original`; allocate copies them into the new header first.
    const packet = this.output.allocate(from ?? dst, src, IPPROTO_ICMP, msgLength);
    packet.set(original.subarray(0, quote), 28);
    emitIcmpv4(packet, 20, msgLength, type, code, 0);
    this.output.send(packet);
  }

  /** RFC 4443 §2.4(e): the same suppression rules for IPv6. */
  private sendErrorV6(original: Uint8Array, type: number, code: number, from?: IpAddr, limited = !from): void {
    if (Ipv6View.check(original) !== null) {
      this.countDrop("icmp-error-bad-original");
      return;
    }
    const ip = new Ipv6View(original);
    if (ip.walk() !== null) {
      this.countDrop("icmp-error-bad-original");
      return;
    }
    if (ip.fragmentHeaderOffset >= 0 && ip.fragmentOffset !== 0) {
      this.countDrop("icmp-error-suppressed");
      return;
    }
    const src = ip.src;
    const dst = ip.dst;
    if (isMulticastOrBroadcast(dst) || isMulticastOrBroadcast(src) || isUnspecified(src)) {
      this.countDrop("icmp-error-suppressed");
      return;
    }
    if (ip.upperProtocol === IPPROTO_ICMPV6) {
      const end = ip.packetLength;
      if (ip.upperOffset >= end || isIcmpv6Error(original[ip.upperOffset] as number)) {
        this.countDrop("icmp-error-suppressed");
        return;
      }
    }
    if (limited && !this.errorBucket.take()) {
      this.countDrop("icmp-rate-limited");
      return;
    }
    const quote = Math.min(ip.packetLength, Math.min(ICMPV6_ERROR_MAX, this.mtu) - 48);
    const msgLength = 8 + quote;
    const source = from ?? dst;
    const packet = this.output.allocate(source, src, IPPROTO_ICMPV6, msgLength);
    packet.set(original.subarray(0, quote), 48);
    emitIcmpv6(packet, 40, msgLength, source, src, type, code, 0);
    this.output.send(packet);
  }
}
