/**
 * wgslirpy as a library: startGateway() wires the layers together
 *   transport (outer UDP) -> WireGuard | GUE (IpLink) -> Netstack (+ TcpLayer) -> Gateway (OS sockets)
 * and returns a handle whose close() (or the AbortSignal) stops every socket and timer.
 */
import type { Gateway } from "./gateway/gateway.ts";
import {
  DestinationPolicy,
  hostInterfaceAddresses,
  type OwnListener,
  policyRulesFrom,
  watchHostAddresses,
} from "./gateway/policy.ts";
import type { TcpStats } from "./netstack/tcp/stats.ts";
import { LABELLED, toPrometheus } from "./observe/metrics.ts";
import { peerMetricLabels, RejectionReporter } from "./observe/peer-log.ts";
import { startStatsServer } from "./observe/stats-server.ts";
import { StatsSummary } from "./observe/summary.ts";
import type { GatewayOptions } from "./options.ts";
import { PcapWriter } from "./pcap/writer.ts";
import { buildStack } from "./start/stack.ts";
import { openTunnelLink } from "./start/tunnel.ts";
import { openUdpTransport, type UdpTransportStats } from "./transport/udp.ts";
import { attachUapi } from "./uapi/attach.ts";
import { type Clock, RealClock, realClock } from "./util/clock.ts";
import { type Endpoint, formatEndpoint } from "./util/endpoint.ts";
import { createLogger, type Logger } from "./util/log.ts";
import { cryptoRandom, type Random } from "./util/random.ts";
import { StartupScope } from "./util/startup.ts";
import { VERSION } from "./version.ts";
import type { WireGuardDevice } from "./wireguard/device.ts";
import { keyToBase64 } from "./wireguard/keys.ts";

export type { ForwardSpec, GatewayOptions, PeerConfig, PolicyRuleSpec } from "./options.ts";
export { DEFAULTS } from "./options.ts";
export type { Endpoint } from "./util/endpoint.ts";
export { StartupError } from "./util/startup.ts";
export { VERSION } from "./version.ts";
export { generatePrivateKey, keyToBase64, parseKey, publicKeyOf } from "./wireguard/keys.ts";

export interface GatewayStats {
  /** The outer UDP socket (datagrams, send errors, UDP GSO). */
  transport: UdpTransportStats;
  tunnel: unknown;
  netstack: unknown;
  /** The TCP layer's counters (segments, retransmissions, TIME-WAIT entries, drops by reason). */
  tcp: TcpStats;
  gateway: ReturnType<Gateway["stats"]>;
  liveTcp: number;
  liveUdp: number;
  /** setTimeout/clearTimeout calls so far (real clock only). */
  osTimers?: { scheduled: number; cancelled: number };
}

export interface GatewayHandle {
  /** The bound outer UDP socket. */
  readonly local: Endpoint;
  /** The reverse forwards' bound host sockets, in option order (ports filled in when given as 0). */
  readonly forwards: { tcp: Endpoint[]; udp: Endpoint[] };
  /** The WireGuard device (peers, AllowedIPs, per-peer stats); undefined in GUE mode. */
  readonly device: WireGuardDevice | undefined;
  /** The stats HTTP server's address, when `statsListen` was given. */
  readonly statsLocal: Endpoint | undefined;
  stats(): GatewayStats;
  /**
   * Ready to carry traffic (`/readyz`): the socket is bound and, when a peer endpoint was given
   * (`-p`), the peer is up (WireGuard: a session is established).
   */
  ready(): boolean;
  /** Resolves once the gateway has stopped (close() or the AbortSignal). */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

export interface GatewayContext {
  signal?: AbortSignal;
  log?: Logger;
  clock?: Clock;
  random?: Random;
}

export async function startGateway(options: GatewayOptions, ctx: GatewayContext = {}): Promise<GatewayHandle> {
  const log = ctx.log ?? createLogger(options.logLevel);
  const clock = ctx.clock ?? realClock;
  const random = ctx.random ?? cryptoRandom;
  if (ctx.signal?.aborted) throw new Error("aborted before start");
  // Bad rules fail here, before any socket is opened (the CLI has already checked them).
  const policy = new DestinationPolicy(policyRulesFrom(options), {
    hostAddresses: hostInterfaceAddresses(),
    ownInnerAddresses: [options.dns?.address, options.pingable].filter((a): a is string => a !== undefined),
  });
  // All-or-nothing: a failure below closes what was opened and throws one StartupError line.
  const scope = new StartupScope();

  let transport = await scope.bind("the UDP socket (-b)", options.bind, () => openUdpTransport(options.bind, { log }));
  scope.add(() => transport.close());
  const pcapPath = options.pcap;
  const pcap = pcapPath
    ? await scope.open(`cannot create the pcap file "${pcapPath}"`, () => new PcapWriter(pcapPath, clock))
    : undefined;
  if (pcap) scope.add(() => pcap.close());

  const rejections = new RejectionReporter(log, clock);
  scope.add(() => rejections.close());
  const tunnel = await openTunnelLink(options, { transport, scope, rejections, clock, random, log });
  const { link, device } = tunnel;
  scope.add(() => link.close());
  const { gateway, netstack, tcp } = buildStack(options, { tunnel, policy, pcap, clock, random, log });
  scope.add(() => {
    gateway.close();
    tcp.close();
    netstack.close();
  });
  await scope.open("cannot start the forwards", () => gateway.startForwards());

  let handle!: GatewayHandle;
  const statsBind = options.statsListen;
  const statsServer = statsBind
    ? await scope.bind("the stats server (--stats-listen)", statsBind, () =>
        startStatsServer(statsBind, {
          stats: () => handle.stats(),
          ready: () => handle.ready(),
          // One name per figure: the top-level liveTcp/liveUdp aliases of stats() are left out.
          metrics: () =>
            toPrometheus({
              ready: handle.ready(),
              transport: transport.stats,
              tunnel: link.stats,
              // Per-peer series (`wgslirpy_peer_…{peer="<public key>"}`); the tunnel's are the totals.
              peer: {
                [LABELLED]: device
                  ? [...device.peers].map((p) => ({ labels: peerMetricLabels(p), stats: p.stats }))
                  : [],
              },
              netstack: netstack.stats,
              tcp: tcp.stats,
              gateway: gateway.stats(),
            }),
        }),
      )
    : undefined;

  const uapiOptions = options.uapi;
  const uapi =
    uapiOptions && device
      ? await scope.open(`cannot serve the UAPI socket ${uapiOptions.path}`, () =>
          attachUapi(uapiOptions, device as WireGuardDevice, log, async (port) => {
            // `wg set NAME listen-port N`: bind the new socket first, then let go of the old one.
            const next = await openUdpTransport({ address: options.bind.address, port }, { log });
            device?.setTransport(next);
            const old = transport;
            transport = next;
            old.close();
            next.inheritStats(old.stats);
            policy.setListeners(ownListeners());
          }),
        )
      : undefined;
  if (uapi) scope.add(() => uapi.close());

  // The gateway's own sockets are denied to the peer (on the addresses they answer on).
  // Recomputed when `wg set … listen-port` rebinds the UDP socket.
  function ownListeners(): OwnListener[] {
    const fwd = gateway.forwardsLocal();
    const own: OwnListener[] = [
      { what: "UDP port", ...transport.local },
      ...fwd.tcp.map((e) => ({ what: "TCP forward", ...e })),
      ...fwd.udp.map((e) => ({ what: "UDP forward", ...e })),
    ];
    if (statsServer) own.push({ what: "stats server", ...statsServer.local });
    return own;
  }
  policy.setListeners(ownListeners());
  const hostAddressWatch = watchHostAddresses(policy, clock, log);

  link.start();
  log.info(
    `wgslirpy ${VERSION} started: ${options.mode === "gue" ? "GUE" : "WireGuard"} mode on UDP ${formatEndpoint(transport.local)}` +
      (tunnel.aeadName ? `, AEAD ${tunnel.aeadName}` : ", unencrypted") +
      `, ${describePeer(options)}`,
  );
  if (statsServer)
    log.info(`stats on http://${formatEndpoint(statsServer.local)}/metrics (also /stats, /healthz, /readyz)`);
  const summary =
    options.statsInterval && options.statsInterval > 0
      ? new StatsSummary(log, clock, options.statsInterval * 1000, () => {
          const g = gateway.stats();
          return {
            peers: tunnel.peerCount(),
            peersUp: tunnel.peersUp(),
            liveTcp: g.liveTcp,
            liveUdp: g.liveUdp,
            bytesIn: transport.stats.bytesIn,
            bytesOut: transport.stats.bytesOut,
          };
        })
      : undefined;

  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let closing = false;
  const close = async (): Promise<void> => {
    if (closing) return closed;
    closing = true;
    ctx.signal?.removeEventListener("abort", onAbort);
    hostAddressWatch.clear();
    summary?.close();
    rejections.close();
    gateway.close();
    tcp.close();
    netstack.close();
    link.close();
    transport.close();
    uapi?.close();
    statsServer?.close();
    await pcap?.close();
    resolveClosed();
    return closed;
  };
  const onAbort = () => void close();
  ctx.signal?.addEventListener("abort", onAbort, { once: true });

  handle = {
    get local() {
      return transport.local;
    },
    forwards: gateway.forwardsLocal(),
    statsLocal: statsServer?.local,
    closed,
    close,
    ready: () => !closing && tunnel.peerUp(),
    device,
    stats() {
      const g = gateway.stats();
      return {
        transport: transport.stats,
        tunnel: link.stats,
        netstack: netstack.stats,
        tcp: tcp.stats,
        gateway: g,
        liveTcp: g.liveTcp,
        liveUdp: g.liveUdp,
        osTimers: clock instanceof RealClock ? clock.osTimers : undefined,
      };
    },
  };
  return handle;
}

/** The start line's peer part: its key (public, shortened) and where we expect it. */
function describePeer(options: GatewayOptions): string {
  const where = options.peerEndpoint
    ? `at ${formatEndpoint(options.peerEndpoint)}`
    : "endpoint learned when it connects";
  if (options.mode === "gue") return `peer ${where}`;
  if (options.peers) return `${options.peers.length} peer${options.peers.length === 1 ? "" : "s"}`;
  const key = options.peerPublicKey ? keyToBase64(options.peerPublicKey) : "?";
  return `peer ${key.slice(0, 8)}… ${where}`;
}
