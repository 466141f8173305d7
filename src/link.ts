/**
 * An IP link to the peer: the boundary between the tunnel layers (WireGuard or GUE over the
 * outer UDP transport) and the netstack. One inner IP packet per call, both ways.
 */
export interface IpLink {
  /**
   * Send one inner IPv4/IPv6 packet to the peer. The link must not keep `packet` after it returns
   * (copy if it queues), so callers may reuse their buffer.
   */
  send(packet: Uint8Array): void;
  /** Set by the netstack: called for every inner IP packet received from the peer. */
  onPacket: (packet: Uint8Array) => void;
}
