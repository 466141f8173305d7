import { emitUdpHeader, UDP_HEADER, UdpView, verifyUdpChecksum, writeUdpChecksum } from "../wire/udp.ts";
import {
  type FlowAddrs,
  IPPROTO_UDP,
  type IpAddr,
  type IpOutput,
  ipHeaderLength,
  type NetstackHandlers,
} from "./types.ts";

/** UDP over the netstack: checks datagrams from the peer and hands them to the gateway; builds replies. */
export class UdpLayer {
  constructor(
    private readonly output: IpOutput,
    private readonly handlers: NetstackHandlers,
    private readonly countDrop: (reason: string) => void,
  ) {}

  /**
   * A UDP datagram from the peer: `segment` is the IP payload, `packet` the whole IP packet (passed
   * on so the gateway can quote it in an ICMP error). src/dst must outlive the packet buffer.
   */
  input(src: IpAddr, dst: IpAddr, segment: Uint8Array, packet: Uint8Array): void {
    let reason = UdpView.check(segment);
    if (reason) {
      this.countDrop(reason);
      return;
    }
    reason = verifyUdpChecksum(src, dst, segment);
    if (reason) {
      this.countDrop(reason);
      return;
    }
    const udp = new UdpView(segment);
    const srcPort = udp.srcPort;
    const dstPort = udp.dstPort;
    // Port 0 is reserved (RFC 768 / IANA) and cannot be a socket's port on either side.
    if (srcPort === 0 || dstPort === 0) {
      this.countDrop("udp-port-zero");
      return;
    }
    this.handlers.onUdp({ src, srcPort, dst, dstPort }, udp.payload, packet);
  }

  /**
   * Send `payload` to the peer from flow.src:srcPort to flow.dst:dstPort. The payload is copied once,
   * into the packet buffer; the checksum is always computed (also over IPv4).
   */
  send(flow: FlowAddrs, payload: Uint8Array): void {
    if (flow.src.length !== flow.dst.length) {
      this.countDrop("udp-tx-family-mismatch");
      return;
    }
    const length = UDP_HEADER + payload.length;
    const hl = ipHeaderLength(flow.src);
    // IPv4 total length and IPv6 payload length are 16-bit fields.
    if (length > (hl === 20 ? 65535 - 20 : 65535)) {
      this.countDrop("udp-tx-too-big");
      return;
    }
    const packet = this.output.allocate(flow.src, flow.dst, IPPROTO_UDP, length);
    emitUdpHeader(packet, hl, flow.srcPort, flow.dstPort, length);
    packet.set(payload, hl + UDP_HEADER);
    writeUdpChecksum(packet, hl, flow.src, flow.dst, length);
    this.output.send(packet);
  }
}
