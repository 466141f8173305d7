import type { IpAddr } from "../netstack/types.ts";

/**
 * IP addresses as bytes (4 for IPv4, 16 for IPv6) and their text forms.
 * Formatting follows RFC 5952 (lowercase, longest zero run compressed, mapped IPv4 in dotted form).
 */

/** Parse a dotted-quad IPv4 literal into 4 bytes, or null. Leading zeros are rejected (ambiguous octal). */
export function parseIpv4(text: string): IpAddr | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parse an IPv6 literal (RFC 4291 §2.2, incl. "::" and a trailing dotted IPv4) into 16 bytes, or null. */
export function parseIpv6(text: string): IpAddr | null {
  if (text.length < 2 || text.length > 45) return null;
  const dbl = text.indexOf("::");
  if (dbl !== -1 && text.indexOf("::", dbl + 1) !== -1) return null;
  const head = dbl === -1 ? text : text.slice(0, dbl);
  const tail = dbl === -1 ? "" : text.slice(dbl + 2);
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === "" ? [] : tail.split(":");
  const words: number[] = [];
  const tailWords: number[] = [];
  const parseGroups = (groups: string[], into: number[], last: boolean): boolean => {
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i] as string;
      if (last && i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIpv4(g);
        if (!v4) return false;
        into.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
      into.push(Number.parseInt(g, 16));
    }
    return true;
  };
  if (!parseGroups(headGroups, words, dbl === -1)) return null;
  if (!parseGroups(tailGroups, tailWords, true)) return null;
  if (dbl === -1) {
    if (words.length !== 8) return null;
  } else {
    // "::" stands for at least one zero group.
    if (words.length + tailWords.length > 7) return null;
    while (words.length + tailWords.length < 8) words.push(0);
  }
  words.push(...tailWords);
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = (words[i] as number) >>> 8;
    out[i * 2 + 1] = (words[i] as number) & 0xff;
  }
  return out;
}

/** Parse an IPv4 or IPv6 literal, or null. */
export function parseIp(text: string): IpAddr | null {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

/** Text form of a 4- or 16-byte address (RFC 5952 for IPv6). */
export function formatIp(addr: IpAddr): string {
  if (addr.length === 4) return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
  const words = new Array<number>(8);
  for (let i = 0; i < 8; i++) words[i] = ((addr[i * 2] as number) << 8) | (addr[i * 2 + 1] as number);
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted suffix.
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    return `::ffff:${addr[12]}.${addr[13]}.${addr[14]}.${addr[15]}`;
  }
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    words
      .slice(from, to)
      .map((w) => w.toString(16))
      .join(":");
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/** Byte equality of two addresses (different families are never equal). */
export function ipEquals(a: IpAddr, b: IpAddr): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A compact string key for Map lookups: one char per byte. IPv4 keys are 4 chars and IPv6 keys 16,
 * so the two families never collide.
 */
export function ipKey(addr: IpAddr): string {
  return addr.length === 4
    ? String.fromCharCode(addr[0] as number, addr[1] as number, addr[2] as number, addr[3] as number)
    : String.fromCharCode(...addr);
}

export function isIpv4(addr: IpAddr): boolean {
  return addr.length === 4;
}

/**
 * True for 224.0.0.0/4 (RFC 5771), 255.255.255.255 and ff00::/8 (RFC 4291 §2.7). `off`/`len` let
 * the receive path test an address in place inside a packet.
 */
export function isMulticastOrBroadcast(addr: Uint8Array, off = 0, len = addr.length): boolean {
  const b0 = addr[off] as number;
  if (len === 4) {
    return (
      (b0 & 0xf0) === 0xe0 || (b0 === 255 && addr[off + 1] === 255 && addr[off + 2] === 255 && addr[off + 3] === 255)
    );
  }
  return b0 === 0xff;
}

/** True for 0.0.0.0 and :: (optionally tested in place at buf[off, off+len)). */
export function isUnspecified(addr: Uint8Array, off = 0, len = addr.length): boolean {
  for (let i = off; i < off + len; i++) if (addr[i] !== 0) return false;
  return true;
}

/** Copy a 4/16-byte address out of a packet so it outlives the buffer. */
export function copyIp(buf: Uint8Array, off: number, len: 4 | 16): IpAddr {
  return buf.slice(off, off + len);
}
