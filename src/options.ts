import type { UapiChoice } from "./cli/uapi-path.ts";
import type { PolicyRuleSpec } from "./gateway/policy.ts";
import type { UapiOptions } from "./uapi/attach.ts";
import type { Endpoint } from "./util/endpoint.ts";
import type { LogFormat, LogLevelName } from "./util/log.ts";
import type { PeerConfig } from "./wireguard/device.ts";

export type { PeerConfig } from "./wireguard/device.ts";

/** A reverse forward: host socket -> a flow inside the tunnel (seed syntax `HOST,[SRC],DST`). */
export interface ForwardSpec {
  host: Endpoint;
  /** Source inside the tunnel; undefined = use the real client's address. Port 0 = round-robin. */
  source: Endpoint | undefined;
  destination: Endpoint;
}

/** Everything a gateway needs, already validated (the CLI turns flags into this). */
export interface GatewayOptions {
  /** WireGuard mode: 32-byte keys. GUE mode: `mode: "gue"` and no keys. */
  mode: "wireguard" | "gue";
  privateKey?: Uint8Array;
  /**
   * WireGuard peers, each with its AllowedIPs (cryptokey routing both ways). Without this list,
   * `peerPublicKey` (with `presharedKey`, `peerEndpoint`, `keepaliveInterval`) is the one peer,
   * with AllowedIPs 0.0.0.0/0 and ::/0.
   */
  peers?: PeerConfig[];
  peerPublicKey?: Uint8Array;
  presharedKey?: Uint8Array;
  /** Where to send handshakes/keepalives before the peer contacts us (`-p`). */
  peerEndpoint?: Endpoint;
  /** Persistent keepalive in seconds (`-a`); 0 = off. */
  keepaliveInterval: number;
  /** Outer UDP socket (`-b`). */
  bind: Endpoint;
  /** DNS server inside the tunnel (`-D`). */
  dns?: Endpoint;
  /** Pingable address inside the tunnel (`-P`). */
  pingable?: string;
  /** Inner MTU (`--mtu`, default 1420): TCP MSS derives from it. */
  mtu: number;
  /** Per-direction per-flow TCP buffer (`--tcp-buffer-size`, default 65535): the starting size. */
  tcpBufferSize: number;
  /**
   * `--tcp-buffer-size` was given: the buffers keep that size. Otherwise they grow with the path
   * (bandwidth-delay product) up to 8 MiB per flow and direction, within a global budget.
   */
  tcpBufferFixed?: boolean;
  /** Outgoing packets queued toward the peer before a handshake completes (`--transmit-queue-capacity`). */
  transmitQueueCapacity: number;
  /** UDP NAT idle timeout in seconds (default 92, like the seed). */
  udpIdleTimeout: number;
  incomingTcp: ForwardSpec[];
  incomingUdp: ForwardSpec[];
  logLevel: LogLevelName;
  /** `--log-format`: "text" (default; timestamped lines when stderr is not a TTY) or "json". */
  logFormat?: LogFormat;
  /** `--stats-interval`: log a one-line summary every this many seconds (0 or absent = off). */
  statsInterval?: number;
  /** Serve the UAPI unix socket (`wg show` / `wg set`) at this path (WireGuard mode). */
  uapi?: UapiOptions;
  /** The CLI's --uapi / --name / --no-uapi, resolved into `uapi` when the gateway is served. */
  uapiChoice?: UapiChoice;
  /** Write every inner packet, both directions, to this pcap file (LINKTYPE_RAW). */
  pcap?: string;
  /** Serve /stats, /metrics and /healthz over HTTP here (bind it to loopback). */
  statsListen?: Endpoint;
  /**
   * Destination policy (`--allow` / `--deny CIDR[:PORTS]`, in command-line order): first match
   * wins; after these rules the gateway host's loopback, link-local and unspecified addresses are
   * denied, everything else allowed. Rules look like "10.0.0.0/8", "127.0.0.1/32:8080,9000-9100",
   * "[::1]:53".
   */
  policy?: PolicyRuleSpec[];
  /** Library convenience: deny rules checked after `policy`, before `allow`. */
  deny?: string[];
  /** Library convenience: allow rules checked after `policy` and `deny`. */
  allow?: string[];
  /**
   * Host sockets the flows may hold at once (`--max-flows`): TCP flows plus UDP mappings. Default:
   * the RLIMIT_NOFILE soft limit minus a reserve; a quarter of it for connects under way, half for
   * UDP mappings (see src/gateway/budget.ts).
   */
  maxFlows?: number;
  /** How long a host-side TCP connect may take before the peer gets ICMP host unreachable (default 10000). */
  tcpConnectTimeoutMs?: number;
}

export type { PolicyRuleSpec } from "./gateway/policy.ts";

export const DEFAULTS = {
  mtu: 1420,
  tcpBufferSize: 65535,
  transmitQueueCapacity: 256,
  udpIdleTimeout: 92,
  keepaliveInterval: 0,
} as const;
