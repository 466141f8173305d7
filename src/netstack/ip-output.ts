import type { IpLink } from "../link.ts";
import { emitIpv4Header, IPV4_DF, IPV4_MF, writeIpv4HeaderChecksum } from "../wire/ipv4.ts";
import {
  emitIpv6FragmentHeader,
  emitIpv6Header,
  IPV6_FRAGMENT_HEADER,
  IPV6_HEADER,
  NH_FRAGMENT,
} from "../wire/ipv6.ts";
import { countDrop, type NetstackStats } from "./stats.ts";
import type { IpAddr, IpOutput } from "./types.ts";

/** Bytes per slab that allocate() carves packets from. */
const SLAB_SIZE = 64 * 1024;

/** TTL / hop limit of every packet we originate (RFC 1700 default, as Linux). */
export const DEFAULT_TTL = 64;

/**
 * The IP layer toward the peer. allocate() returns a new buffer with a complete IP header: for
 * IPv4 the header checksum is filled in at allocate() (every header field is known by then, the
 * upper layer only writes after the header), so send() has nothing left to do for packets that fit.
 * The packet is a view with the link's headroom before it and tailroom after it, and send() gives
 * that region to the link (IpLink.send owned): a WireGuard link seals it in place, so the same
 * bytes go from the upper layer to the socket.
 *
 * Packets larger than the MTU:
 * - IPv4: allocate() sets DF only when the packet fits the MTU (so TCP, which sizes segments by
 *   MSS, always gets DF). Oversized packets are sent without DF and send() fragments them
 *   (RFC 791 §3.2); an oversized packet with DF set is dropped ("tx-too-big-df").
 * - IPv6: send() fragments with a fragment header (RFC 8200 §4.5), as the source node may.
 * Fragments are written into one reusable scratch buffer, sent as not owned (the link copies them).
 */
export class LinkIpOutput implements IpOutput {
  private ipv4Id = 0;
  private ipv6FragmentId = 0;
  private readonly scratch: Uint8Array;
  private readonly headroom: number;
  private readonly tailroom: number;
  private slab = new ArrayBuffer(0);
  private slabUsed = 0;

  constructor(
    private readonly link: IpLink,
    readonly mtu: number,
    private readonly stats: NetstackStats,
  ) {
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new RangeError(`invalid MTU ${mtu}`);
    this.scratch = new Uint8Array(mtu);
    this.headroom = link.headroom ?? 0;
    this.tailroom = link.tailroom ?? 0;
  }

  /**
   * `length` zero bytes with the link's room around them. Carved from a slab (one ArrayBuffer per
   * ~40 full-size packets: a view costs a quarter of a new ArrayBuffer each); every region is used
   * once, so it is zero, and the slab is freed when the last of its packets has been sent. Large
   * packets get a buffer of their own.
   */
  private buffer(length: number): Uint8Array {
    const head = this.headroom;
    const need = head + length + this.tailroom;
    if (need > SLAB_SIZE / 4) return new Uint8Array(new ArrayBuffer(need), head, length);
    if (this.slabUsed + need > this.slab.byteLength) {
      this.slab = new ArrayBuffer(SLAB_SIZE);
      this.slabUsed = 0;
    }
    const packet = new Uint8Array(this.slab, this.slabUsed + head, length);
    this.slabUsed += (need + 7) & ~7;
    return packet;
  }

  allocate(src: IpAddr, dst: IpAddr, protocol: number, payloadLength: number): Uint8Array {
    if (src.length === 4) {
      const total = 20 + payloadLength;
      if (total > 65535) throw new RangeError(`IPv4 packet of ${total} bytes`);
      const packet = this.buffer(total);
      const id = this.ipv4Id;
      this.ipv4Id = (id + 1) & 0xffff;
      emitIpv4Header(packet, 0, src, dst, protocol, total, id, total <= this.mtu ? IPV4_DF : 0, DEFAULT_TTL);
      return packet;
    }
    if (payloadLength > 65535) throw new RangeError(`IPv6 payload of ${payloadLength} bytes`);
    const packet = this.buffer(IPV6_HEADER + payloadLength);
    emitIpv6Header(packet, 0, src, dst, protocol, payloadLength, DEFAULT_TTL);
    return packet;
  }

  /** Takes ownership of `packet` (from allocate()): the caller must not touch it afterwards. */
  send(packet: Uint8Array): void {
    if (packet.length <= this.mtu) {
      this.emit(packet, true);
      return;
    }
    if ((packet[0] as number) >> 4 === 4) this.fragmentV4(packet);
    else this.fragmentV6(packet);
  }

  private emit(packet: Uint8Array, owned: boolean): void {
    this.stats.packetsOut++;
    this.stats.bytesOut += packet.length;
    this.link.send(packet, owned);
  }

  private fragmentV4(packet: Uint8Array): void {
    const flags = ((packet[6] as number) << 8) | (packet[7] as number);
    if (flags & IPV4_DF) {
      countDrop(this.stats, "tx-too-big-df");
      return;
    }
    const hl = ((packet[0] as number) & 0x0f) * 4;
    const dataLength = packet.length - hl;
    // Every fragment but the last carries a multiple of 8 data bytes.
    const chunk = ((this.mtu - hl) >> 3) << 3;
    const out = this.scratch;
    for (let off = 0; off < dataLength; off += chunk) {
      const len = Math.min(chunk, dataLength - off);
      const more = off + len < dataLength;
      out.set(packet.subarray(0, hl), 0);
      out.set(packet.subarray(hl + off, hl + off + len), hl);
      const total = hl + len;
      out[2] = total >>> 8;
      out[3] = total & 0xff;
      const fo = (more ? IPV4_MF : 0) | (off >> 3);
      out[6] = fo >>> 8;
      out[7] = fo & 0xff;
      writeIpv4HeaderChecksum(out, 0);
      this.emit(out.subarray(0, total), false);
    }
  }

  /** Our packets carry no extension headers, so the unfragmentable part is the 40-byte header. */
  private fragmentV6(packet: Uint8Array): void {
    const nextHeader = packet[6] as number;
    const dataLength = packet.length - IPV6_HEADER;
    const chunk = ((this.mtu - IPV6_HEADER - IPV6_FRAGMENT_HEADER) >> 3) << 3;
    const id = this.ipv6FragmentId;
    this.ipv6FragmentId = (id + 1) >>> 0;
    const out = this.scratch;
    const dataStart = IPV6_HEADER + IPV6_FRAGMENT_HEADER;
    for (let off = 0; off < dataLength; off += chunk) {
      const len = Math.min(chunk, dataLength - off);
      const more = off + len < dataLength;
      out.set(packet.subarray(0, IPV6_HEADER), 0);
      const plen = IPV6_FRAGMENT_HEADER + len;
      out[4] = plen >>> 8;
      out[5] = plen & 0xff;
      out[6] = NH_FRAGMENT;
      emitIpv6FragmentHeader(out, IPV6_HEADER, nextHeader, off, more, id);
      out.set(packet.subarray(IPV6_HEADER + off, IPV6_HEADER + off + len), dataStart);
      this.emit(out.subarray(0, dataStart + len), false);
    }
  }
}
