import { isIP } from "node:net";
import type { IpAddr } from "../netstack/types.ts";

/**
 * IpAddr <-> text for OS socket APIs and logs. Kept local to the gateway so it has no dependency on
 * the wire layer's helpers; IPv6 text follows RFC 5952 (lowercase, longest zero run compressed).
 */

export function formatIp(addr: IpAddr): string {
  if (addr.length === 4) return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((addr[i]! << 8) | addr[i + 1]!);
  // Longest run of at least two zero groups (first one wins on ties) becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number) => g.toString(16);
  if (bestStart < 0) return groups.map(hex).join(":");
  const head = groups.slice(0, bestStart).map(hex).join(":");
  const tail = groups
    .slice(bestStart + bestLen)
    .map(hex)
    .join(":");
  return `${head}::${tail}`;
}

/** Parse an IPv4 or IPv6 literal (a "%zone" suffix is ignored). Returns null when it is not one. */
export function parseIp(text: string): IpAddr | null {
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const family = isIP(text);
  if (family === 4) return parseV4(text, new Uint8Array(4), 0);
  if (family !== 6) return null;
  const out = new Uint8Array(16);
  const halves = text.split("::");
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length > 1 && halves[1] ? halves[1].split(":") : [];
  const headBytes = groupsToBytes(head);
  const tailBytes = groupsToBytes(tail);
  if (!headBytes || !tailBytes) return null;
  out.set(headBytes, 0);
  out.set(tailBytes, 16 - tailBytes.length);
  return out;
}

function groupsToBytes(groups: string[]): Uint8Array | null {
  const bytes: number[] = [];
  for (const g of groups) {
    if (g.includes(".")) {
      const v4 = parseV4(g, new Uint8Array(4), 0);
      if (!v4) return null;
      bytes.push(...v4);
    } else {
      const v = Number.parseInt(g, 16);
      bytes.push(v >> 8, v & 0xff);
    }
  }
  return Uint8Array.from(bytes);
}

function parseV4(text: string, out: Uint8Array, at: number): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i]);
  return out;
}

export function ipEquals(a: IpAddr, b: IpAddr): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** "1.2.3.4:5" / "[::1]:5", the form the seed's logs use for endpoints. */
export function formatIpPort(addr: IpAddr, port: number): string {
  return addr.length === 4 ? `${formatIp(addr)}:${port}` : `[${formatIp(addr)}]:${port}`;
}
