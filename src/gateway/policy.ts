import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import type { IpAddr } from "../netstack/types.ts";
import type { Clock, Timer } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import { maskInPlace, prefixMatches } from "../wire/prefix.ts";
import { formatIp, formatIpPort, parseIp } from "./ip-text.ts";

/**
 * Destination policy: which addresses and ports the peer may reach through the gateway.
 *
 * Rules are `--allow CIDR[:PORTS]` / `--deny CIDR[:PORTS]`, checked in the order given, first match
 * wins. After the user's rules come the built-in denials: the gateway's own listening ports (its
 * UDP port, stats server, forwards), its own addresses inside the tunnel (DNS, pingable: only their
 * own services), every address of the gateway host's interfaces (read at start and refreshed), the
 * cloud metadata addresses, the host's loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16,
 * fe80::/10) and the unspecified addresses (0.0.0.0/8, ::), which a connect() on Linux turns into
 * loopback — so a VPN peer cannot reach services of the gateway host unless a rule allows it.
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
  /** How a denied UDP datagram is answered: ICMP "administratively prohibited" (default) or "port unreachable". */
  udpReply?: "admin" | "port";
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

/** A listening socket of the gateway itself, denied to the peer on every address it answers on. */
export interface OwnListener {
  /** For the rule's text: "UDP port", "stats server", "TCP forward". */
  what: string;
  address: string;
  port: number;
}

/** What the built-in denials are made of, besides the fixed ranges (see DestinationPolicy). */
export interface BuiltInDenials {
  /** The gateway host's own interface addresses (hostInterfaceAddresses()); refresh with setHostAddresses(). */
  hostAddresses?: readonly string[];
  /** The gateway's own listening sockets; set with setListeners() once they are bound. */
  listeners?: readonly OwnListener[];
  /**
   * Addresses inside the tunnel served by the gateway itself (`-D`, `-P`): their own services are
   * answered before the policy; any other port is denied, TCP with a RST, UDP with ICMP port
   * unreachable (there is no such service), and never forwarded to the real network.
   */
  ownInnerAddresses?: readonly string[];
}

/** Cloud instance metadata services (AWS, GCP, Azure, … on 169.254.169.254; AWS IPv6 fd00:ec2::254). */
export const CLOUD_METADATA = ["169.254.169.254/32", "fd00:ec2::254/128"];

/** Every address of the host's interfaces (os.networkInterfaces()), loopback included. */
export function hostInterfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.push(a.address);
  return out;
}

/** How often the host's addresses are read again (an address added later is denied from then on). */
export const HOST_ADDRESS_REFRESH_MS = 10_000;

/** Re-read the host's addresses every HOST_ADDRESS_REFRESH_MS; clear() the returned timer to stop. */
export function watchHostAddresses(
  policy: DestinationPolicy,
  clock: Clock,
  log: Logger,
  read: () => string[] = hostInterfaceAddresses,
): Timer {
  const timer = clock.timer(() => {
    if (policy.setHostAddresses(read())) log.info("the host's addresses changed: the policy denies the new set");
    timer.set(HOST_ADDRESS_REFRESH_MS);
  });
  timer.set(HOST_ADDRESS_REFRESH_MS);
  return timer;
}

export class DestinationPolicy {
  private readonly userRules: readonly PolicyRule[];
  private readonly fixed: PolicyRule[];
  private hostAddresses: readonly string[];
  private listeners: readonly OwnListener[];
  private readonly ownInner: readonly string[];
  /** Built-in rules for single addresses, by address (IPv4 as a number, IPv6 as a string), in rule order. */
  private exact4 = new Map<number, PolicyRule[]>();
  private exact6 = new Map<string, PolicyRule[]>();
  private builtInExact: PolicyRule[] = [];
  private readonly mapped = new Uint8Array(4);

  constructor(userRules: readonly PolicyRule[] = [], builtIn: BuiltInDenials = {}) {
    this.userRules = userRules;
    this.hostAddresses = builtIn.hostAddresses ?? [];
    this.listeners = builtIn.listeners ?? [];
    this.ownInner = builtIn.ownInnerAddresses ?? [];
    this.fixed = [
      ...CLOUD_METADATA.map((c) => defaultRule(c, "cloud metadata")),
      ...DEFAULT_DENY.map((c) => defaultRule(c, undefined)),
    ];
    this.rebuild();
  }

  /**
   * Every rule in the order they are checked: the user's, then the built-in ones — the gateway's
   * own listening ports, its own inner addresses, the host's addresses, cloud metadata, loopback,
   * link-local, unspecified.
   */
  get rules(): readonly PolicyRule[] {
    return [...this.userRules, ...this.builtInExact, ...this.fixed];
  }

  /** The host's addresses changed (or were read again): returns whether the rules changed. */
  setHostAddresses(addresses: readonly string[]): boolean {
    const next = [...new Set(addresses)].sort();
    if (next.join(" ") === [...this.hostAddresses].sort().join(" ")) return false;
    this.hostAddresses = next;
    this.rebuild();
    return true;
  }

  setListeners(listeners: readonly OwnListener[]): void {
    this.listeners = listeners;
    this.rebuild();
  }

  /** The rule deciding (addr, port), or undefined when none matches (allowed). */
  match(addr: IpAddr, port: number): PolicyRule | undefined {
    const a = this.unmapped(addr);
    const user = firstMatch(this.userRules, a, port);
    if (user) return user;
    const exact = a.length === 4 ? this.exact4.get(v4Key(a)) : this.exact6.get(v6Key(a));
    if (exact) for (const r of exact) if (portMatches(r, port)) return r;
    return firstMatch(this.fixed, a, port);
  }

  allows(addr: IpAddr, port: number): boolean {
    return this.match(addr, port)?.action !== "deny";
  }

  private rebuild(): void {
    const rules: PolicyRule[] = [];
    const hostV4 = this.hostAddresses.filter((a) => isIP(a) === 4);
    const hostV6 = this.hostAddresses.filter((a) => isIP(a) === 6);
    for (const l of this.listeners) {
      const family = isIP(l.address);
      // A socket bound to the unspecified address answers on every address of the host ("::" also
      // on the IPv4 ones, dual-stack), and on the unspecified address itself.
      let on: string[];
      if (l.address === "0.0.0.0") on = ["0.0.0.0", ...hostV4];
      else if (l.address === "::") on = ["::", "0.0.0.0", ...hostV6, ...hostV4];
      else on = family === 0 ? [] : [l.address];
      for (const a of on)
        rules.push(builtInRule(`${a.includes(":") ? `[${a}]` : a}:${l.port}`, `the gateway's own ${l.what}`));
    }
    for (const a of this.ownInner) {
      const r = builtInRule(a, "served by the gateway itself: only its own services");
      rules.push({ ...r, udpReply: "port" });
    }
    for (const a of this.hostAddresses) if (isIP(a)) rules.push(builtInRule(a, "an address of the gateway host"));
    const exact4 = new Map<number, PolicyRule[]>();
    const exact6 = new Map<string, PolicyRule[]>();
    for (const r of rules) {
      if (r.network.length === 4) push(exact4, v4Key(r.network), r);
      else push(exact6, v6Key(r.network), r);
    }
    this.builtInExact = rules;
    this.exact4 = exact4;
    this.exact6 = exact6;
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

function defaultRule(cidr: string, why: string | undefined): PolicyRule {
  const r = parseRule("deny", cidr);
  return { ...r, text: `${r.text} (default${why ? `: ${why}` : ""})`, builtIn: true };
}

/** A single-address built-in denial ("10.0.0.1" or "10.0.0.1:53" / "[fd00::1]:53"). */
function builtInRule(text: string, why: string): PolicyRule {
  return defaultRule(text, why);
}

function firstMatch(rules: readonly PolicyRule[], a: IpAddr, port: number): PolicyRule | undefined {
  for (const r of rules) {
    if (r.network.length !== a.length) continue;
    if (!prefixMatches(r.network, a, 0, r.prefix)) continue;
    if (!portMatches(r, port)) continue;
    return r;
  }
  return undefined;
}

function portMatches(r: PolicyRule, port: number): boolean {
  if (r.ports.length === 0) return true;
  for (const [lo, hi] of r.ports) if (port >= lo && port <= hi) return true;
  return false;
}

function v4Key(a: Uint8Array): number {
  return (((a[0] as number) << 24) | ((a[1] as number) << 16) | ((a[2] as number) << 8) | (a[3] as number)) >>> 0;
}

function v6Key(a: Uint8Array): string {
  let k = "";
  for (let i = 0; i < 16; i += 2) k += String.fromCharCode(((a[i] as number) << 8) | (a[i + 1] as number));
  return k;
}

function push<K>(m: Map<K, PolicyRule[]>, k: K, r: PolicyRule): void {
  const list = m.get(k);
  if (list) list.push(r);
  else m.set(k, [r]);
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

  /**
   * One denied packet of `proto` ("TCP", "UDP", "ICMP echo") from src to dst; a port < 0 is not
   * printed. Takes the flow's parts rather than a message or closure so the deny path allocates
   * nothing per packet: the text is built only when a line is printed.
   */
  denied(rule: PolicyRule, proto: string, src: IpAddr, srcPort: number, dst: IpAddr, dstPort: number): void {
    const now = this.clock.now();
    const s = this.perRule.get(rule);
    if (s && now - s.last < this.intervalMs) {
      s.suppressed++;
      return;
    }
    const more = s && s.suppressed > 0 ? ` (+${s.suppressed} more denied since the last report)` : "";
    this.log.info(
      `Denied by policy rule "${rule.text}": ${proto} ${endpointText(src, srcPort)} -> ${endpointText(dst, dstPort)}${more}`,
    );
    if (s) {
      s.last = now;
      s.suppressed = 0;
    } else this.perRule.set(rule, { last: now, suppressed: 0 });
  }
}

function endpointText(addr: IpAddr, port: number): string {
  return port < 0 ? formatIp(addr) : formatIpPort(addr, port);
}
