/**
 * `wgslirpy up`: zero-configuration quick start. Keeps a gateway key pair and a generated peer key
 * pair in the state directory, and prints a wg-quick config for the peer:
 *
 * - peer addresses 10.0.2.15/32 and fd00::15/128 (SLiRP's classic guest address, mirrored into a
 *   ULA prefix; the gateway accepts any source address, these are only what the peer assigns itself);
 * - DNS and pingable 10.0.2.1 (SLiRP's gateway address), overridable with -D / -P;
 * - Endpoint: --public-endpoint, else the bind address; for a wildcard bind (0.0.0.0 / ::) the
 *   first non-loopback IPv4 address of this host (127.0.0.1 if none), marked as a guess.
 */
import type { GatewayOptions } from "../options.ts";
import type { QuickStartKeys } from "../state/keys.ts";
import { type Endpoint, formatEndpoint, splitHostPort } from "../util/endpoint.ts";
import { keyToBase64 } from "../wireguard/keys.ts";
import { UP_FLAGS } from "./flags.ts";
import { CliError, dropUndefined, FlagReader, parseCommon, parseFlags } from "./parse.ts";

export const UP_DEFAULTS = {
  bind: "0.0.0.0:51820",
  dns: "10.0.2.1:53",
  pingable: "10.0.2.1",
  peerAddresses: ["10.0.2.15/32", "fd00::15/128"],
  persistentKeepalive: 25,
} as const;

export interface UpArgs {
  /** Everything but the keys (filled from the state directory). */
  options: Omit<GatewayOptions, "privateKey" | "peerPublicKey">;
  /** Validated HOST:PORT for the peer config, when given. */
  publicEndpoint?: string;
  stateDir?: string;
  printConfigOnly: boolean;
  /** Print the config on start although the keys already exist (it holds the peer's private key). */
  showConfig: boolean;
  /** --add-peer / --remove-peer / --list / --show-config NAME: manage enrolled peers and exit. */
  peerCommand?: PeerCommand;
}

export type PeerCommand =
  | { kind: "add"; name: string; qr?: string }
  | { kind: "show"; name: string; qr?: string }
  | { kind: "remove"; name: string }
  | { kind: "list" };

function parsePeerCommand(r: FlagReader): PeerCommand | undefined {
  const show = r.string("show-config");
  const given = ["add-peer", "remove-peer", "list"].filter((f) => r.has(f));
  if (show !== undefined) given.push("show-config");
  if (given.length > 1) throw new CliError(`${given.map((f) => r.name(f)).join(" and ")} cannot be combined`);
  const qr = r.string("qr");
  if (qr === "") throw new CliError(`invalid ${r.name("qr")}: empty file name`);
  const cmd: PeerCommand | undefined = r.has("add-peer")
    ? { kind: "add", name: r.string("add-peer") as string, qr }
    : show !== undefined
      ? { kind: "show", name: show, qr }
      : r.has("remove-peer")
        ? { kind: "remove", name: r.string("remove-peer") as string }
        : r.has("list")
          ? { kind: "list" }
          : undefined;
  if (qr !== undefined && cmd?.kind !== "add" && cmd?.kind !== "show") {
    throw new CliError(`${r.name("qr")} needs ${r.name("add-peer")} or ${r.name("show-config")} NAME`);
  }
  return cmd ? dropUndefined(cmd) : undefined;
}

/** HOST:PORT where HOST is a DNS name, an IPv4 literal or a bracketed IPv6 literal. */
export function parsePublicEndpoint(text: string, what: string): string {
  const hp = splitHostPort(text);
  if (!hp || hp.port === 0) throw new CliError(`invalid ${what} "${text}": expected HOST:PORT or [IPv6]:PORT`);
  return text;
}

export function parseUpArgs(argv: readonly string[], env: Record<string, string | undefined>): UpArgs {
  const parsed = parseFlags(argv, UP_FLAGS);
  if (parsed.positionals.length > 0) {
    throw new CliError(`unexpected argument ${JSON.stringify(parsed.positionals[0])} for "up" (see up --help)`);
  }
  const r = new FlagReader(parsed, UP_FLAGS);
  if (!r.has("bind-ip-port")) parsed.values.set("bind-ip-port", [UP_DEFAULTS.bind]);
  if (!r.has("dns")) parsed.values.set("dns", [UP_DEFAULTS.dns]);
  if (!r.has("pingable")) parsed.values.set("pingable", [UP_DEFAULTS.pingable]);
  const publicEndpoint = r.string("public-endpoint");
  const stateDir = r.string("state-dir");
  if (stateDir === "") throw new CliError(`invalid ${r.name("state-dir")}: empty directory name`);
  const options = dropUndefined({
    mode: "wireguard" as const,
    bind: r.endpoint("bind-ip-port", true) as Endpoint,
    dns: r.endpoint("dns"),
    pingable: r.ip("pingable"),
    ...parseCommon(r, env),
  });
  return dropUndefined({
    options,
    publicEndpoint:
      publicEndpoint === undefined ? undefined : parsePublicEndpoint(publicEndpoint, r.name("public-endpoint")),
    stateDir,
    printConfigOnly: r.switch("print-config-only"),
    showConfig: r.switch("show-config"),
    peerCommand: parsePeerCommand(r),
  });
}

export type InterfaceList = Record<
  string,
  { address: string; family: string | number; internal: boolean }[] | undefined
>;

/** The Endpoint line's value, and whether it is a guess. */
export function peerEndpointFor(
  bind: Endpoint,
  publicEndpoint: string | undefined,
  interfaces: InterfaceList,
): { endpoint: string; guessed: boolean } {
  if (publicEndpoint !== undefined) return { endpoint: publicEndpoint, guessed: false };
  if (bind.address !== "0.0.0.0" && bind.address !== "::") return { endpoint: formatEndpoint(bind), guessed: false };
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) {
      if (!a.internal && (a.family === "IPv4" || a.family === 4)) {
        return { endpoint: formatEndpoint({ address: a.address, port: bind.port }), guessed: true };
      }
    }
  }
  return { endpoint: formatEndpoint({ address: "127.0.0.1", port: bind.port }), guessed: true };
}

/** The peer's wg-quick configuration. */
export function renderPeerConfig(
  keys: Pick<QuickStartKeys, "dir" | "peerPrivate" | "gatewayPublic">,
  options: Pick<GatewayOptions, "dns" | "mtu">,
  endpoint: { endpoint: string; guessed: boolean },
  /** An enrolled peer (up --add-peer) instead of the quick-start one. */
  enrolled?: { name: string; privateKey: Uint8Array; addresses: readonly string[] },
): string {
  const lines = [
    enrolled
      ? `# wgslirpy peer ${enrolled.name}: wg-quick config (kept in ${keys.dir})`
      : `# wgslirpy quick start: wg-quick config for the peer (keys kept in ${keys.dir})`,
    "[Interface]",
    `PrivateKey = ${keyToBase64(enrolled?.privateKey ?? keys.peerPrivate)}`,
    `Address = ${(enrolled?.addresses ?? UP_DEFAULTS.peerAddresses).join(", ")}`,
  ];
  if (options.dns) {
    if (options.dns.port === 53) lines.push(`DNS = ${options.dns.address}`);
    else lines.push(`# DNS is served on ${formatEndpoint(options.dns)}; wg-quick's DNS= can only use port 53`);
  }
  lines.push(`MTU = ${options.mtu}`, "", "[Peer]", `PublicKey = ${keyToBase64(keys.gatewayPublic)}`);
  if (endpoint.guessed) lines.push("# Endpoint guessed from this host's addresses; set it with --public-endpoint");
  lines.push(
    `Endpoint = ${endpoint.endpoint}`,
    "AllowedIPs = 0.0.0.0/0, ::/0",
    `PersistentKeepalive = ${UP_DEFAULTS.persistentKeepalive}`,
  );
  return `${lines.join("\n")}\n`;
}

/**
 * The full GatewayOptions for `up` once the keys are known: the quick-start peer (every address, as
 * before) and each enrolled peer with its own address pair.
 */
export function upGatewayOptions(
  args: UpArgs,
  keys: QuickStartKeys,
  enrolled: readonly { name: string; publicKey: Uint8Array; addresses: readonly string[] }[] = [],
): GatewayOptions {
  const base = { ...args.options, privateKey: keys.gatewayPrivate, peerPublicKey: keys.peerPublic };
  if (enrolled.length === 0) return base;
  return {
    ...base,
    peers: [
      { publicKey: keys.peerPublic, allowedIps: ["0.0.0.0/0", "::/0"], name: "quick-start" },
      ...enrolled.map((p) => ({ publicKey: p.publicKey, allowedIps: [...p.addresses], name: p.name })),
    ],
  };
}
