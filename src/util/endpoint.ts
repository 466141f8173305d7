import { isIP } from "node:net";

/** A UDP/TCP socket address as the OS socket APIs want it: an IP literal and a port. */
export interface Endpoint {
  address: string;
  port: number;
}

export class EndpointParseError extends Error {}

/** Parse "1.2.3.4:5" or "[::1]:5". Throws EndpointParseError with a message naming the input. */
export function parseEndpoint(text: string, what = "socket address"): Endpoint {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) throw new EndpointParseError(`invalid ${what} "${text}": expected IP:PORT or [IPv6]:PORT`);
  const address = m[1] as string;
  const port = Number(m[2]);
  if (!isIP(address)) throw new EndpointParseError(`invalid ${what} "${text}": "${address}" is not an IP address`);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new EndpointParseError(`invalid ${what} "${text}": port out of range`);
  return { address, port };
}

/**
 * Split "HOST:PORT", HOST being a DNS name, an IPv4 literal or a bracketed IPv6 literal (brackets
 * removed). Undefined when the text is not of that shape; the port may be 0 (callers decide).
 */
export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : -1;
  if (!m || port > 65535) return undefined;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? { host: m[1], port } : undefined;
  return { host: m[2] as string, port };
}

export function formatEndpoint(e: Endpoint): string {
  return e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** Bun's dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; normalise to a.b.c.d. */
export function unmapV4(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
