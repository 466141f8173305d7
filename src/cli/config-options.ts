/**
 * `wgslirpy --config FILE [flags]`: the file's settings, then the command line's. Single-valued
 * flags (-b, -D, -P, tuning, logging) override the file; forwards and policy rules from flags come
 * after the file's. The key and peer flags (-k, -f, -K, -p, --preshared-key-file) conflict with it.
 */
import { DEFAULTS, type GatewayOptions } from "../options.ts";
import { gatewayAddress, parseConfigFile } from "./config-file.ts";
import { CliError, dropUndefined, type FlagReader, type ParseContext, parseCommon, readKeyFile } from "./parse.ts";

const PEER_FLAGS = [
  "private-key",
  "private-key-file",
  "peer-key",
  "preshared-key-file",
  "peer-endpoint",
  "keepalive-interval",
];

export function gatewayOptionsFromConfig(r: FlagReader, ctx: ParseContext): GatewayOptions {
  const file = r.string("config") as string;
  for (const f of PEER_FLAGS) {
    if (r.has(f)) throw new CliError(`${r.name(f)} cannot be combined with ${r.name("config")} (set it in the file)`);
  }
  const cfg = parseConfigFile(readKeyFile(file, r.name("config"), ctx), file);
  const peers = cfg.peers.map((p) => ({ ...p }));
  for (const h of cfg.endpointHosts) {
    const address = ctx.hosts?.get(h.host);
    if (address === undefined) throw new CliError(`${file}:${h.line}: Endpoint host "${h.host}" was not resolved`);
    (peers[h.peer] as (typeof peers)[number]).endpoint = { address, port: h.port };
  }
  const common = parseCommon(r, ctx.env);
  const own = gatewayAddress(cfg);
  const dns = r.has("dns")
    ? r.endpoint("dns")
    : cfg.dns === null
      ? undefined
      : (cfg.dns ?? (own ? { address: own, port: 53 } : undefined));
  const pingable = r.has("pingable") ? r.ip("pingable") : cfg.pingable === null ? undefined : (cfg.pingable ?? own);
  const flagOr = <T>(flag: string, fromFile: T | undefined, fromFlags: T): T =>
    r.has(flag) || fromFile === undefined ? fromFlags : fromFile;
  const policy = [...cfg.policy, ...(common.policy ?? [])];
  return dropUndefined({
    ...common,
    mode: "wireguard" as const,
    privateKey: cfg.privateKey,
    peers,
    bind: r.endpoint("bind-ip-port", true) ?? { address: cfg.bindAddress ?? "0.0.0.0", port: cfg.listenPort },
    dns,
    pingable,
    mtu: flagOr("mtu", cfg.mtu, common.mtu),
    tcpBufferSize: flagOr("tcp-buffer-size", cfg.tcpBufferSize, common.tcpBufferSize),
    udpIdleTimeout: flagOr("udp-idle-timeout", cfg.udpIdleTimeout, common.udpIdleTimeout),
    transmitQueueCapacity: flagOr("transmit-queue-capacity", cfg.transmitQueueCapacity, common.transmitQueueCapacity),
    keepaliveInterval: DEFAULTS.keepaliveInterval,
    incomingTcp: [...cfg.incomingTcp, ...common.incomingTcp],
    incomingUdp: [...cfg.incomingUdp, ...common.incomingUdp],
    policy: policy.length > 0 ? policy : undefined,
  });
}
