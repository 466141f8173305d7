// Datagrams for the GSO tests (transport-gso.test.ts on loopback, transport-gso-batch.test.ts pure).

/** A full-size WireGuard data message for MTU 1420: 32 + 1424. */
export const FULL = 1456;

/** Datagram `i` of `size` bytes: its number in the first 4 bytes, then a pattern that depends on i. */
export function numbered(i: number, size: number): Uint8Array {
  const d = new Uint8Array(size);
  for (let k = 0; k < size; k++) d[k] = (i * 31 + k * 7) & 0xff;
  if (size >= 4) new DataView(d.buffer).setUint32(0, i);
  return d;
}
