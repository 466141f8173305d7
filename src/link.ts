/**
 * An IP link to the peer: the boundary between the tunnel layers (WireGuard or GUE over the
 * outer UDP transport) and the netstack. One inner IP packet per call, both ways.
 *
 * Zero-copy sending: a link that wraps packets (WireGuard: a 16-byte transport header before, the
 * padding and the 16-byte tag after) says how much room it wants around them (`headroom`,
 * `tailroom`). A producer that builds each packet with that room around it, in memory nobody else
 * writes, hands it over with `owned = true`; the link may then write into the room, encrypt the
 * packet in place and keep it until the transport has sent it, so one buffer goes from the
 * producer to the socket.
 */
export interface IpLink {
  /** Bytes wanted in front of an owned packet (absent = 0). Constant for the link's lifetime. */
  readonly headroom?: number;
  /** Bytes wanted after an owned packet's end (absent = 0). Constant for the link's lifetime. */
  readonly tailroom?: number;
  /**
   * Send one inner IPv4/IPv6 packet to the peer.
   * - `owned` false/absent: the link must not keep `packet` after it returns, nor write to it (copy
   *   if it queues), so callers may reuse their buffer.
   * - `owned` true: the packet has at least `headroom` bytes before it and `tailroom` after it in
   *   its ArrayBuffer (which may hold other packets beyond that room); the caller never touches the
   *   packet or its room again, and the link may write to both and keep them. The link must not
   *   write outside them, nor keep them long (they may pin a larger buffer): copy to queue.
   */
  send(packet: Uint8Array, owned?: boolean): void;
  /** Set by the netstack: called for every inner IP packet received from the peer. */
  onPacket: (packet: Uint8Array) => void;
}
