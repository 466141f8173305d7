/**
 * IP prefixes (CIDR): parsing, text form and matching, shared by cryptokey routing
 * (wireguard/allowed-ips.ts) and the gateway's destination policy (gateway/policy.ts).
 */
import { formatIp, parseIp } from "./ipaddr.ts";

export interface Prefix {
  /** The network's address bytes (4 or 16), zero past `cidr` bits. */
  address: Uint8Array;
  cidr: number;
}

/** Parse "10.0.0.0/8", "fd00::/64" or a bare address (a host prefix); the host bits are cleared. */
export function parsePrefix(text: string): Prefix | null {
  const slash = text.indexOf("/");
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!addr) return null;
  const max = addr.length * 8;
  let cidr = max;
  if (slash >= 0) {
    const bits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits)) return null;
    cidr = Number(bits);
    if (cidr > max) return null;
  }
  maskInPlace(addr, cidr);
  return { address: addr, cidr };
}

export function formatPrefix(p: Prefix): string {
  return `${formatIp(p.address)}/${p.cidr}`;
}

/** Clear every bit of `addr` past the first `cidr`. */
export function maskInPlace(addr: Uint8Array, cidr: number): void {
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, cidr - i * 8));
    addr[i] = (addr[i] as number) & ((0xff << (8 - keep)) & 0xff);
  }
}

/** A copy of `addr` with every bit past the first `cidr` cleared. */
export function masked(addr: Uint8Array, cidr: number): Uint8Array {
  const out = Uint8Array.from(addr);
  maskInPlace(out, cidr);
  return out;
}

/** Whether the first `bits` bits of `net` equal those of `buf` at `off` (an address inside a packet). */
export function prefixMatches(net: Uint8Array, buf: Uint8Array, off: number, bits: number): boolean {
  const whole = bits >>> 3;
  for (let i = 0; i < whole; i++) if (net[i] !== buf[off + i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((net[whole] as number) & mask) === ((buf[off + whole] as number) & mask);
}
