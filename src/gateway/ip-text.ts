import type { IpAddr } from "../netstack/types.ts";
import { formatIp, parseIp as parseIpLiteral } from "../wire/ipaddr.ts";

/** IpAddr <-> text for OS socket APIs and logs (RFC 5952 for IPv6, from the wire layer). */
export { formatIp, ipEquals } from "../wire/ipaddr.ts";

/**
 * Parse an IPv4 or IPv6 literal as OS socket APIs report them: a "%zone" suffix (link-local
 * peers, e.g. "fe80::1%eth0") is ignored. Returns null when it is not one.
 */
export function parseIp(text: string): IpAddr | null {
  const zone = text.indexOf("%");
  return parseIpLiteral(zone >= 0 ? text.slice(0, zone) : text);
}

/** "1.2.3.4:5" / "[::1]:5", the form the seed's logs use for endpoints. */
export function formatIpPort(addr: IpAddr, port: number): string {
  return addr.length === 4 ? `${formatIp(addr)}:${port}` : `[${formatIp(addr)}]:${port}`;
}
