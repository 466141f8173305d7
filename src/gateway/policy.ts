import { isIP } from "node:net";
import type { IpAddr } from "../netstack/types.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import { parseIp } from "./ip-text.ts";

/**
 * Destination policy: which addresses and ports the peer may reach through the gateway.
 *
 * Rules are `--allow CIDR[:PORTS]` / `--deny CIDR[:PORTS]`, checked in the order given, first match
 * wins. After the user's rules come the built-in denials — the gateway host's loopback
 * (127.0.0.0/8, ::1), link-local (169.254.0.0/16 incl. cloud metadata, fe80::/10) and the
 * unspecified addresses (0.0.0.0/8, ::), which a connect() on Linux turns into loopback — so a VPN
 * peer cannot reach services bound to the gateway host's loopback unless a rule allows it.
 * Everything else is allowed. An IPv4-mapped IPv6 destination (::ffff:a.b.c.d) is matched as the
 * IPv4 address it maps to, since the OS socket reaches exactly that address.
 */

export type PolicyAction = "allow" | "deny";

/** A rule as given (CLI order preserved): `{ action: "allow", rule: "127.0.0.1/32:8080" }`. */
export interface PolicyRuleSpec {
  action: PolicyAction;
  rule: string;
}

export interface PolicyRule {
  action: PolicyAction;
  /** Network address bytes (4 or 16), masked to the prefix. */
  network: Uint8Array;
  prefix: number;
  /** Inclusive port ranges; empty = every port. */
  ports: [number, number][];
  /** The rule as written, for logs ("allow 127.0.0.1/32", "deny 127.0.0.0/8 (default)"). */
  text: string;
  builtIn: boolean;
}

export class PolicyParseError extends Error {}

export const DEFAULT_DENY = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128"];

/**
 * Parse "10.0.0.0/8", "10.0.0.1", "::1/128:53", "0.0.0.0/0:80,443,8000-8100", "1.2.3.4:80",
 * "[::1]:53". An IPv6 address with ports and no prefix needs brackets.
 */
export function parseRule(action: PolicyAction, text: string): PolicyRule {
  const t = text.trim();
  const fail = (why: string): never => {
    throw new PolicyParseError(`invalid --${action} "${text}": ${why}`);
  };
  const slash = t.indexOf("/");
  let addrPart: string;
  let prefixPart: string | undefined;
  let portsPart: string | undefined;
  if (slash >= 0) {
    addrPart = t.slice(0, slash);
    if (addrPart.startsWith("[") && addrPart.endsWith("]")) addrPart = addrPart.slice(1, -1);
    const rest = t.slice(slash + 1);
    const colon = rest.indexOf(":");
    prefixPart = colon >= 0 ? rest.slice(0, colon) : rest;
    portsPart = colon >= 0 ? rest.slice(colon + 1) : undefined;
  } else if (isIP(t)) {
    addrPart = t;
  } else {
    // A bare address with ports: "1.2.3.4:80" or "[::1]:80".
    const m = /^\[([^\]]+)\]:(.+)$/.exec(t) ?? /^([^:[\]]+):(.+)$/.exec(t) ?? /^\[([^\]]+)\]$/.exec(t);
    if (!m) return fail("expected CIDR[:PORTS], e.g. 10.0.0.0/8, 127.0.0.1/32:8080 or [::1]:53");
    addrPart = m[1] as string;
    portsPart = m[2];
  }
  const family = isIP(addrPart);
  if (family === 0) fail(`"${addrPart}" is not an IP address`);
  const bits = family === 4 ? 32 : 128;
  if (prefixPart !== undefined && !/^\d{1,3}$/.test(prefixPart)) fail(`prefix length must be 0..${bits}`);
  const prefix = prefixPart === undefined ? bits : Number(prefixPart);
  if (prefix > bits) fail(`prefix length must be 0..${bits}`);
  const network = parseIp(addrPart) as Uint8Array;
  maskInPlace(network, prefix);
  const ports: [number, number][] = [];
  if (portsPart !== undefined) {
    for (const piece of portsPart.split(",")) {
      const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(piece.trim());
      const lo = m ? Number(m[1]) : Number.NaN;
      const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
      if (!m || lo > 65535 || hi > 65535 || lo > hi)
        fail(`bad port or range "${piece}" (expected PORT or LO-HI, 0-65535)`);
      ports.push([lo, hi]);
    }
  }
  return { action, network, prefix, ports, text: `${action} ${t}`, builtIn: false };
}

/** Rules in order from the library's inputs: `policy` first, then `deny`, then `allow`. */
export function policyRulesFrom(input: {
  policy?: readonly PolicyRuleSpec[];
  allow?: readonly string[];
  deny?: readonly string[];
}): PolicyRule[] {
  const rules: PolicyRule[] = [];
  for (const s of input.policy ?? []) rules.push(parseRule(s.action, s.rule));
  for (const d of input.deny ?? []) rules.push(parseRule("deny", d));
  for (const a of input.allow ?? []) rules.push(parseRule("allow", a));
  return rules;
}

export class DestinationPolicy {
  readonly rules: readonly PolicyRule[];
  private readonly mapped = new Uint8Array(4);

  constructor(userRules: readonly PolicyRule[] = []) {
    const defaults = DEFAULT_DENY.map((c) => {
      const r = parseRule("deny", c);
      return { ...r, text: `${r.text} (default)`, builtIn: true };
    });
    this.rules = [...userRules, ...defaults];
  }

  /** The rule deciding (addr, port), or undefined when none matches (allowed). */
  match(addr: IpAddr, port: number): PolicyRule | undefined {
    const a = this.unmapped(addr);
    for (const r of this.rules) {
      if (r.network.length !== a.length) continue;
      if (!prefixMatches(r.network, a, r.prefix)) continue;
      if (r.ports.length > 0 && !r.ports.some(([lo, hi]) => port >= lo && port <= hi)) continue;
      return r;
    }
    return undefined;
  }

  allows(addr: IpAddr, port: number): boolean {
    return this.match(addr, port)?.action !== "deny";
  }

  /** ::ffff:a.b.c.d -> a.b.c.d (a view into a scratch buffer, valid until the next call). */
  private unmapped(addr: IpAddr): IpAddr {
    if (addr.length !== 16) return addr;
    for (let i = 0; i < 10; i++) if (addr[i] !== 0) return addr;
    if (addr[10] !== 0xff || addr[11] !== 0xff) return addr;
    this.mapped.set(addr.subarray(12, 16));
    return this.mapped;
  }
}

/**
 * One info line per rule per interval (default 1 s); denials in between are counted and reported
 * in the next line, so a flood of blocked packets cannot flood the log.
 */
export class DenialLog {
  private readonly perRule = new Map<PolicyRule, { last: number; suppressed: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {}

  /** `what` is only called when a line is actually printed. */
  denied(rule: PolicyRule, what: () => string): void {
    const now = this.clock.now();
    const s = this.perRule.get(rule);
    if (s && now - s.last < this.intervalMs) {
      s.suppressed++;
      return;
    }
    const more = s && s.suppressed > 0 ? ` (+${s.suppressed} more denied since the last report)` : "";
    this.log.info(`Denied by policy rule "${rule.text}": ${what()}${more}`);
    if (s) {
      s.last = now;
      s.suppressed = 0;
    } else this.perRule.set(rule, { last: now, suppressed: 0 });
  }
}

function prefixMatches(net: Uint8Array, addr: Uint8Array, prefix: number): boolean {
  const full = prefix >>> 3;
  for (let i = 0; i < full; i++) if (net[i] !== addr[i]) return false;
  const rem = prefix & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((net[full] as number) & mask) === ((addr[full] as number) & mask);
}

function maskInPlace(a: Uint8Array, prefix: number): void {
  for (let i = 0; i < a.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    a[i] = (a[i] as number) & ((0xff << (8 - keep)) & 0xff);
  }
}
