/**
 * An IP link to the peer: the boundary between the tunnel layers (WireGuard or GUE over the
 * outer UDP transport) and the netstack. One inner IP packet per call, both ways.
 *
 * Zero-copy sending: a link that wraps packets (WireGuard: a 16-byte transport header before, the
 * padding and the 16-byte tag after) says how much room it wants around them (`headroom`,
 * `tailroom`). A producer that builds each packet in a buffer of its own with that room around it
 * hands it over with `owned = true`; the link may then write around it, encrypt it in place and keep
 * the buffer until the transport has sent it, so one buffer goes from the producer to the socket.
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
   * - `owned` true: the caller gives the whole underlying ArrayBuffer away and never touches it
   *   again; the link may write to it anywhere (headroom, packet, tailroom) and keep it. A link that
   *   finds less room than it asked for (`packet.byteOffset < headroom`, or fewer than `tailroom`
   *   bytes after the end) must still send the packet (by copying).
   */
  send(packet: Uint8Array, owned?: boolean): void;
  /** Set by the netstack: called for every inner IP packet received from the peer. */
  onPacket: (packet: Uint8Array) => void;
}
