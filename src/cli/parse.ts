/**
 * argv -> GatewayOptions, pure (file reads injected) so every rule is unit-testable.
 * Any problem throws CliError with a one-line message; the CLI prints `wgslirpy: error: <message>`
 * and exits with status 2.
 */
import { isIP } from "node:net";
import { PolicyParseError, parseRule } from "../gateway/policy.ts";
import { DEFAULTS, type ForwardSpec, type GatewayOptions, type PolicyRuleSpec } from "../options.ts";
import { type Endpoint, EndpointParseError, parseEndpoint } from "../util/endpoint.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevelName } from "../util/log.ts";
import { KEY_LENGTH, KeyError, parseKey } from "../wireguard/keys.ts";
import { gatewayOptionsFromConfig } from "./config-options.ts";
import { type FlagSpec, MAIN_FLAGS } from "./flags.ts";
import { parseUapiFlags } from "./uapi-path.ts";

export class CliError extends Error {}

export interface ParsedFlags {
  /** Values by long name, in command-line order (one element unless repeatable). */
  values: Map<string, string[]>;
  /** Switches that were given, by long name. */
  switches: Set<string>;
  positionals: string[];
  /** Every value in command-line order across flags (for rules whose relative order matters). */
  ordered: { long: string; value: string }[];
}

/** How a flag is named in messages: `--bind-ip-port (-b)`. */
export function flagName(spec: FlagSpec): string {
  return spec.short ? `--${spec.long} (-${spec.short})` : `--${spec.long}`;
}

/**
 * Strict parse: unknown options, missing values, values on switches and repeated single-valued
 * options are errors. Accepts `--long value`, `--long=value`, `-s value`; `--` ends the options.
 */
export function parseFlags(argv: readonly string[], table: readonly FlagSpec[]): ParsedFlags {
  const byLong = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const f of table) {
    byLong.set(f.long, f);
    if (f.alias) byLong.set(f.alias, f);
    if (f.short) byShort.set(f.short, f);
  }
  const out: ParsedFlags = { values: new Map(), switches: new Set(), positionals: [], ordered: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      if (eq >= 0) inline = arg.slice(eq + 1);
      spec = byLong.get(name);
    } else if (arg.length === 2 && arg[0] === "-" && arg[1] !== "-") {
      spec = byShort.get(arg[1] as string);
    } else if (arg.startsWith("-") && arg.length > 1) {
      // "-kVALUE": say so without echoing the value (it may be a private key).
      const glued = byShort.get(arg[1] as string);
      if (glued?.takesValue) throw new CliError(`option -${glued.short} needs its value as a separate argument`);
      spec = undefined;
    } else {
      out.positionals.push(arg);
      continue;
    }
    if (!spec)
      throw new CliError(
        `unknown option ${JSON.stringify(arg.startsWith("--") ? arg.split("=")[0] : arg)} (see --help)`,
      );
    const next = argv[i + 1];
    const valueLeftOut = spec.optionalValue && inline === undefined && (next === undefined || next.startsWith("-"));
    if (!spec.takesValue || valueLeftOut) {
      if (inline !== undefined) throw new CliError(`option ${flagName(spec)} takes no value`);
      out.switches.add(spec.long);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new CliError(`option ${flagName(spec)} needs a value`);
      value = argv[++i] as string;
    }
    out.ordered.push({ long: spec.long, value });
    const prev = out.values.get(spec.long);
    if (prev) {
      if (!spec.repeatable) throw new CliError(`option ${flagName(spec)} given more than once`);
      prev.push(value);
    } else {
      out.values.set(spec.long, [value]);
    }
  }
  return out;
}

function specOf(table: readonly FlagSpec[], long: string): FlagSpec {
  const s = table.find((f) => f.long === long);
  if (!s) throw new Error(`internal: no flag ${long}`);
  return s;
}

/** Typed accessors over ParsedFlags that name the flag in every error. */
export class FlagReader {
  constructor(
    readonly parsed: ParsedFlags,
    private readonly table: readonly FlagSpec[],
  ) {}

  has(long: string): boolean {
    return this.parsed.values.has(long) || this.parsed.switches.has(long);
  }
  name(long: string): string {
    return flagName(specOf(this.table, long));
  }
  string(long: string): string | undefined {
    return this.parsed.values.get(long)?.[0];
  }
  all(long: string): string[] {
    return this.parsed.values.get(long) ?? [];
  }
  switch(long: string): boolean {
    return this.parsed.switches.has(long);
  }
  /** An IP:PORT; `anyPort` allows port 0 (binding an ephemeral port). */
  endpoint(long: string, anyPort = false): Endpoint | undefined {
    const v = this.string(long);
    if (v === undefined) return undefined;
    const e = parseEndpointFor(v, this.name(long));
    if (e.port === 0 && !anyPort) throw new CliError(`invalid ${this.name(long)} "${v}": port must not be 0`);
    return e;
  }
  ip(long: string): string | undefined {
    const v = this.string(long);
    if (v === undefined) return undefined;
    if (!isIP(v)) throw new CliError(`invalid ${this.name(long)} "${v}": not an IP address`);
    return v;
  }
  int(long: string, min: number, max: number, fallback: number): number {
    const v = this.string(long);
    if (v === undefined) return fallback;
    const n = /^\d{1,10}$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new CliError(`invalid ${this.name(long)} "${v}": expected an integer from ${min} to ${max}`);
    }
    return n;
  }
}

function parseEndpointFor(text: string, what: string): Endpoint {
  try {
    return parseEndpoint(text, what);
  } catch (e) {
    if (e instanceof EndpointParseError) throw new CliError(e.message);
    throw e;
  }
}

/**
 * A reverse-forward triplet `HOST,[SRC],DST` (seed syntax). HOST is the OS socket to bind; SRC
 * (optional; port 0 = round-robin) and DST are addresses inside the tunnel.
 */
export function parseForward(text: string, what: string): ForwardSpec {
  const chunks = text.split(",");
  if (chunks.length !== 3) {
    throw new CliError(`invalid ${what} "${text}": expected a comma-separated triplet HOST,[SRC],DST`);
  }
  const part = (s: string, role: string): Endpoint => {
    try {
      return parseEndpoint(s, role);
    } catch (e) {
      if (e instanceof EndpointParseError) {
        throw new CliError(
          `invalid ${what} "${text}": ${role} "${s}" is not a socket address (IP:PORT or [IPv6]:PORT)`,
        );
      }
      throw e;
    }
  };
  const host = part(chunks[0] as string, "HOST");
  const source = chunks[1] === "" ? undefined : part(chunks[1] as string, "SRC");
  const destination = part(chunks[2] as string, "DST");
  if (host.port === 0) throw new CliError(`invalid ${what} "${text}": HOST port must not be 0`);
  if (destination.port === 0) throw new CliError(`invalid ${what} "${text}": DST port must not be 0`);
  if (source && isIP(source.address) !== isIP(destination.address)) {
    throw new CliError(`invalid ${what} "${text}": SRC and DST must be the same IP family`);
  }
  return { host, source, destination };
}

/**
 * `--allow` / `--deny CIDR[:PORTS]` in command-line order across both flags (first match wins), each
 * checked now so a bad rule is a usage error. Undefined when there are none.
 */
export function parsePolicy(r: FlagReader): PolicyRuleSpec[] | undefined {
  const rules: PolicyRuleSpec[] = [];
  for (const { long, value } of r.parsed.ordered) {
    if (long !== "allow" && long !== "deny") continue;
    try {
      parseRule(long, value);
    } catch (e) {
      if (e instanceof PolicyParseError) throw new CliError(e.message);
      throw e;
    }
    rules.push({ action: long, rule: value.trim() });
  }
  return rules.length > 0 ? rules : undefined;
}

export function parseLogLevel(text: string, what: string): LogLevelName {
  const t = text.trim().toLowerCase();
  if (!Object.hasOwn(LOG_LEVELS, t)) {
    throw new CliError(`invalid ${what} "${text}": expected one of error, warn, info, debug, trace`);
  }
  return t as LogLevelName;
}

export type ReadTextFile = (path: string) => string;

export interface ParseContext {
  env: Record<string, string | undefined>;
  readFile: ReadTextFile;
  /** Addresses of the host names a --config file's Endpoint lines give (see config-hosts.ts). */
  hosts?: ReadonlyMap<string, string>;
}

export function readKeyFile(path: string, what: string, ctx: ParseContext): string {
  if (path === "") throw new CliError(`${what}: empty file name`);
  try {
    return ctx.readFile(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new CliError(`cannot read ${what} "${path}": ${code ?? (e instanceof Error ? e.message : String(e))}`);
  }
}

/**
 * A 32-byte base64 key. Secret keys are never echoed in messages; public keys are (truncated).
 */
export function parseKeyFor(text: string, what: string, secret: boolean): Uint8Array {
  try {
    return parseKey(text, what);
  } catch (e) {
    if (!(e instanceof KeyError)) throw e;
    if (!secret) throw new CliError(e.message);
    const t = text.trim();
    let detail: string;
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) detail = "not base64";
    else {
      const bytes = Buffer.from(t, "base64").length;
      detail = `${bytes} bytes instead of ${KEY_LENGTH}`;
    }
    throw new CliError(`invalid ${what}: expected a base64 ${KEY_LENGTH}-byte key (44 characters), got ${detail}`);
  }
}

/** Tuning, forwards and logging flags shared by the main command and `up`. */
export function parseCommon(r: FlagReader, env: Record<string, string | undefined>) {
  const envLevel = env.WGSLIRPY_LOG;
  const levelText = r.string("log-level");
  const logLevel =
    levelText !== undefined
      ? parseLogLevel(levelText, r.name("log-level"))
      : envLevel !== undefined && envLevel !== ""
        ? parseLogLevel(envLevel, "WGSLIRPY_LOG")
        : "info";
  const logFormat = r.string("log-format");
  if (logFormat !== undefined && !(LOG_FORMATS as readonly string[]).includes(logFormat)) {
    throw new CliError(`invalid ${r.name("log-format")} "${logFormat}": expected text or json`);
  }
  const pcap = r.string("pcap");
  if (pcap === "") throw new CliError(`invalid ${r.name("pcap")}: empty file name`);
  return {
    keepaliveInterval: r.int("keepalive-interval", 0, 65535, DEFAULTS.keepaliveInterval),
    mtu: r.int("mtu", 576, 65535, DEFAULTS.mtu),
    tcpBufferSize: r.int("tcp-buffer-size", 1024, 1 << 30, DEFAULTS.tcpBufferSize),
    ...(r.has("tcp-buffer-size") ? { tcpBufferFixed: true } : {}),
    transmitQueueCapacity: r.int("transmit-queue-capacity", 1, 1 << 20, DEFAULTS.transmitQueueCapacity),
    udpIdleTimeout: r.int("udp-idle-timeout", 1, 86400, DEFAULTS.udpIdleTimeout),
    maxFlows: r.has("max-flows") ? r.int("max-flows", 1, 1 << 20, 0) : undefined,
    incomingUdp: r.all("incoming-udp").map((t) => parseForward(t, r.name("incoming-udp"))),
    incomingTcp: r.all("incoming-tcp").map((t) => parseForward(t, r.name("incoming-tcp"))),
    logLevel,
    logFormat: logFormat as LogFormat | undefined,
    pcap,
    statsListen: r.endpoint("stats-listen", true),
    statsInterval: r.has("stats-interval") ? r.int("stats-interval", 0, 86400, 0) : undefined,
    policy: parsePolicy(r),
    uapiChoice: parseUapiFlags(r),
  };
}

/** The seed's command line (plus this port's extras) -> validated GatewayOptions. */
export function parseGatewayArgs(argv: readonly string[], ctx: ParseContext): GatewayOptions {
  const parsed = parseFlags(argv, MAIN_FLAGS);
  if (parsed.positionals.length > 0) {
    throw new CliError(`unexpected argument ${JSON.stringify(parsed.positionals[0])} (see --help)`);
  }
  const r = new FlagReader(parsed, MAIN_FLAGS);
  if (r.has("config")) return gatewayOptionsFromConfig(r, ctx);
  const peerKeyText = r.string("peer-key");
  if (peerKeyText === undefined) throw new CliError(`missing ${r.name("peer-key")}`);
  const bind = r.endpoint("bind-ip-port", true);
  if (!bind) throw new CliError(`missing ${r.name("bind-ip-port")}`);
  const privateKeyText = r.string("private-key");
  const common = parseCommon(r, ctx.env);
  const base = {
    peerEndpoint: r.endpoint("peer-endpoint"),
    bind,
    dns: r.endpoint("dns"),
    pingable: r.ip("pingable"),
    ...common,
  };

  if (privateKeyText === "INSECURE" && peerKeyText === "GUE") {
    for (const f of ["private-key-file", "preshared-key-file"]) {
      if (r.has(f)) throw new CliError(`${r.name(f)} cannot be used in GUE mode (-k INSECURE -K GUE)`);
    }
    return dropUndefined({ mode: "gue", ...base });
  }

  const keyFile = r.string("private-key-file");
  if ((privateKeyText === undefined) === (keyFile === undefined)) {
    throw new CliError(`set exactly one of ${r.name("private-key")} or ${r.name("private-key-file")}`);
  }
  const privateKey =
    privateKeyText !== undefined
      ? parseKeyFor(privateKeyText, r.name("private-key"), true)
      : parseKeyFor(
          readKeyFile(keyFile as string, r.name("private-key-file"), ctx),
          `key in ${r.name("private-key-file")} "${keyFile}"`,
          true,
        );
  const peerPublicKey = parseKeyFor(peerKeyText, r.name("peer-key"), false);
  const pskFile = r.string("preshared-key-file");
  const presharedKey =
    pskFile === undefined
      ? undefined
      : parseKeyFor(
          readKeyFile(pskFile, r.name("preshared-key-file"), ctx),
          `key in ${r.name("preshared-key-file")} "${pskFile}"`,
          true,
        );
  return dropUndefined({ mode: "wireguard", privateKey, peerPublicKey, presharedKey, ...base });
}

/** Optional fields are absent rather than present-and-undefined, so results compare exactly. */
export function dropUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
