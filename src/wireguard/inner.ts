/**
 * The length of the inner IP packet in a decrypted transport payload, read from its own header,
 * so the sender's zero padding is trimmed. -1 when the payload is not a plausible IPv4/IPv6
 * packet (wireguard-go drops those too).
 */
export function innerPacketLength(plain: Uint8Array): number {
  const n = plain.length;
  if (n === 0) return -1;
  const version = plain[0]! >>> 4;
  if (version === 4) {
    if (n < 20) return -1;
    const total = (plain[2]! << 8) | plain[3]!;
    return total >= 20 && total <= n ? total : -1;
  }
  if (version === 6) {
    if (n < 40) return -1;
    const total = 40 + ((plain[4]! << 8) | plain[5]!);
    return total <= n ? total : -1;
  }
  return -1;
}
