/**
 * Building transport data messages (whitepaper §5.4.6): 16-byte header (type 4, receiver index,
 * counter), then the inner packet zero-padded to a multiple of 16 but never past the MTU (as
 * wireguard-go's calculatePaddingSize and the kernel do), sealed, then the 16-byte tag.
 *
 * An inner packet built with SEND_HEADROOM bytes before it and SEND_TAILROOM after it (see IpLink)
 * becomes its own message in place: header into the headroom, padding and tag into the tailroom,
 * encrypted where it lies (both AEAD backends seal with output = input at the same offset). Any
 * other packet is copied into a new buffer first.
 */
import { PADDING_MULTIPLE, TAG_SIZE, TRANSPORT_HEADER_SIZE } from "./constants.ts";
import type { Keypair } from "./keypair.ts";
import { writeTransportHeader } from "./messages.ts";

/** Room a sender leaves in front of a packet: the transport header. */
export const SEND_HEADROOM = TRANSPORT_HEADER_SIZE;
/** Room a sender leaves after a packet: the most padding (15) plus the tag. */
export const SEND_TAILROOM = PADDING_MULTIPLE - 1 + TAG_SIZE;

/**
 * The plaintext length of an `n`-byte inner packet once padded (wireguard-go calculatePaddingSize):
 * up to a multiple of 16, but a full-MTU packet is not padded past the MTU — else every full-size
 * datagram grows by up to 15 bytes (1420 -> 1424 at the default MTU), which a 1500-byte outer path
 * over IPv6 would have to fragment. `mtu` 0 = no cap. A packet longer than the MTU (not ours: the
 * netstack fragments) pads its last MTU-sized unit the same way.
 */
export function paddedLength(n: number, mtu: number): number {
  if (mtu <= 0) return (n + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
  const lastUnit = n > mtu ? n % mtu : n;
  let padded = (lastUnit + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
  if (padded > mtu) padded = mtu;
  return n - lastUnit + Math.max(padded, lastUnit);
}

/**
 * A copy of `packet` in a buffer of its own with send headroom and tailroom around it (for packets
 * that wait: staged while there is no session), so sending it later seals in place.
 */
export function copyWithSendRoom(packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(SEND_HEADROOM + packet.length + SEND_TAILROOM).subarray(
    SEND_HEADROOM,
    SEND_HEADROOM + packet.length,
  );
  out.set(packet);
  return out;
}

/**
 * The transport message carrying `packet` under `kp`'s next send counter. With `inPlace` (the
 * caller gives `packet` away with SEND_HEADROOM / SEND_TAILROOM bytes of room around it, see IpLink
 * owned) the message is a view of that same memory and `packet` is overwritten by its ciphertext;
 * otherwise (or when the ArrayBuffer ends too soon) the message is a new buffer and `packet` is
 * left untouched.
 */
export function sealTransport(kp: Keypair, packet: Uint8Array, inPlace: boolean, mtu = 0): Uint8Array {
  const n = packet.length;
  const padded = paddedLength(n, mtu);
  const size = TRANSPORT_HEADER_SIZE + padded + TAG_SIZE;
  const start = packet.byteOffset - TRANSPORT_HEADER_SIZE;
  let out: Uint8Array;
  let plaintext: Uint8Array;
  if (inPlace && start >= 0 && start + size <= packet.buffer.byteLength) {
    out = new Uint8Array(packet.buffer, start, size);
    // The padding is part of the plaintext: whatever the tailroom held must not leak.
    if (padded > n) {
      out.fill(0, TRANSPORT_HEADER_SIZE + n, TRANSPORT_HEADER_SIZE + padded);
      plaintext = out.subarray(TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + padded);
    } else plaintext = packet; // full-size packets: no padding, no extra view
  } else {
    out = new Uint8Array(size);
    out.set(packet, TRANSPORT_HEADER_SIZE);
    plaintext = out.subarray(TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + padded);
  }
  const counter = kp.sendCounter++;
  writeTransportHeader(out, kp.remoteIndex, counter);
  kp.send.seal(counter, plaintext, out.subarray(TRANSPORT_HEADER_SIZE));
  return out;
}
