/**
 * wgslirpy as a library: startGateway() wires the layers together
 *   transport (outer UDP) -> WireGuard | GUE (IpLink) -> Netstack (+ TcpLayer) -> Gateway (OS sockets)
 * and returns a handle whose close() (or the AbortSignal) stops every socket and timer.
 */
import { deriveFlowLimits } from "./gateway/budget.ts";
import { Gateway } from "./gateway/gateway.ts";
import { readFdLimit } from "./gateway/host-fds.ts";
import {
  DestinationPolicy,
  hostInterfaceAddresses,
  type OwnListener,
  policyRulesFrom,
  watchHostAddresses,
} from "./gateway/policy.ts";
import { GueTunnel } from "./gue/tunnel.ts";
import type { IpLink } from "./link.ts";
import { Netstack } from "./netstack/stack.ts";
import { AUTOTUNE_MAX_BUFFER_SIZE } from "./netstack/tcp/constants.ts";
import { TcpLayer } from "./netstack/tcp/layer.ts";
import { LABELLED, toPrometheus } from "./observe/metrics.ts";
import { peerLabel, peerLogEvents, peerMetricLabels, RejectionReporter } from "./observe/peer-log.ts";
import { startStatsServer } from "./observe/stats-server.ts";
import { StatsSummary } from "./observe/summary.ts";
import type { GatewayOptions, PeerConfig } from "./options.ts";
import { PcapWriter, tapLink } from "./pcap/writer.ts";
import { openUdpTransport, type UdpTransportStats } from "./transport/udp.ts";
import { attachUapi } from "./uapi/attach.ts";
import { type Clock, RealClock, realClock } from "./util/clock.ts";
import { type Endpoint, formatEndpoint } from "./util/endpoint.ts";
import { createLogger, type Logger } from "./util/log.ts";
import { cryptoRandom, type Random } from "./util/random.ts";
import { StartupScope } from "./util/startup.ts";
import { KeyedThrottle } from "./util/throttle.ts";
import { VERSION } from "./version.ts";
import { aeadBackendName, selectAead } from "./wireguard/aead.ts";
import { sodiumChaCha20Poly1305, sodiumSource } from "./wireguard/aead-sodium.ts";
import { WireGuardDevice } from "./wireguard/device.ts";
import { keyToBase64 } from "./wireguard/keys.ts";
import type { Peer } from "./wireguard/peer.ts";

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
  tcp: unknown;
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

  let link: IpLink & { start(): void; close(): void; stats: unknown };
  let aeadName: string | undefined;
  /** Whether the peer is reachable now (WireGuard: a session; GUE: an endpoint to send to). */
  let peerUp: () => boolean;
  let peersUp: () => number;
  let peerCount = () => 1;
  let device: WireGuardDevice | undefined;
  /** A peer moved to a new endpoint (set once the TCP layer exists). */
  let peerRoamed: (peer: Peer) => void = () => {};
  const rejections = new RejectionReporter(log, clock);
  scope.add(() => rejections.close());
  if (options.mode === "gue") {
    const gue = new GueTunnel({
      transport,
      peer: options.peerEndpoint,
      keepaliveIntervalS: options.keepaliveInterval,
      clock,
      log,
    });
    peerUp = () => !options.peerEndpoint || gue.peer !== undefined;
    peersUp = () => (gue.peer !== undefined ? 1 : 0);
    link = gue;
  } else {
    if (!options.privateKey || (!options.peerPublicKey && !options.peers)) {
      await scope.closeAll();
      throw new Error("WireGuard mode needs a private key and a peer key");
    }
    const aead = selectAead(log);
    // "embedded": the compiled binary's own copy of the native addon (see aead-sodium.ts).
    aeadName =
      aeadBackendName(aead) + (aead === sodiumChaCha20Poly1305 && sodiumSource() === "embedded" ? " (embedded)" : "");
    const wg = new WireGuardDevice({
      privateKey: options.privateKey,
      transmitQueueCapacity: options.transmitQueueCapacity,
      transport,
      clock,
      random,
      log,
      aead,
      events: {
        peer: (p) => {
          const logged = peerLogEvents(log, peerLabel(p), rejections);
          return {
            ...logged,
            roamed: (from, to) => {
              logged.roamed?.(from, to);
              peerRoamed(p);
            },
          };
        },
        handshakeRejected: (reason, from) => rejections.add(reason, from),
      },
    });
    scope.add(() => wg.close());
    await scope.open("invalid peer configuration", () => {
      for (const peer of wireguardPeers(options)) wg.addPeer(peer);
    });
    // Ready once every peer we were told where to find has a session.
    const expected = [...wg.peers].filter((p) => p.endpoint !== undefined);
    peerUp = () => expected.every((p) => p.hasSession);
    peersUp = () => {
      let n = 0;
      for (const p of wg.peers) if (p.hasSession) n++;
      return n;
    };
    peerCount = () => wg.peerCount;
    device = wg;
    link = wg;
  }
  scope.add(() => link.close());

  // The listeners the options open come out of the descriptor budget's reserve.
  const fdLimit = readFdLimit();
  const listeners =
    options.incomingTcp.length + options.incomingUdp.length + (options.statsListen ? 1 : 0) + (options.pcap ? 1 : 0);
  const limits = deriveFlowLimits(fdLimit, listeners, options.maxFlows);
  log.info(
    `flow budget: ${limits.maxFlows} host sockets (open-files limit ${fdLimit ?? "unknown"}), ${limits.maxPendingConnects} TCP connects under way, ${limits.maxUdpMappings} UDP mappings`,
  );
  const gateway = new Gateway({
    clock,
    log,
    limits,
    fdLimit,
    // Budget shares per peer: the peer whose AllowedIPs hold the flow's inner address.
    peerOf: device
      ? (addr) => {
          const p = device?.allowedIps.lookup(addr);
          return p ? keyToBase64(p.publicKey) : "";
        }
      : undefined,
    dns: options.dns,
    pingable: options.pingable,
    udpIdleTimeoutMs: options.udpIdleTimeout * 1000,
    tcpBufferSize: options.tcpBufferSize,
    tcpConnectTimeoutMs: options.tcpConnectTimeoutMs,
    policy,
    incomingTcp: options.incomingTcp,
    incomingUdp: options.incomingUdp,
  });
  // With --pcap the netstack talks to a tap that records every inner packet, both directions.
  const stackLink = pcap ? tapLink(link, pcap) : link;
  const netstack = new Netstack({
    link: stackLink,
    mtu: options.mtu,
    clock,
    log,
    handlers: gateway,
    routerAddress: gateway.ownAddresses(),
  });
  const tcp = new TcpLayer({
    output: netstack.output,
    clock,
    random,
    log,
    mss4: options.mtu - 40,
    mss6: options.mtu - 60,
    bufferSize: options.tcpBufferSize,
    autotuneMaxBufferSize: options.tcpBufferFixed ? 0 : AUTOTUNE_MAX_BUFFER_SIZE,
    onConnect: (flow, conn) => gateway.onTcpConnect(flow, conn),
  });
  netstack.setTcp(tcp);
  // What was lost on the old path is resent at once, not after a backed-off timer (up to 60 s).
  const wgDevice = device;
  // At most once a second per peer: each kick scans every flow, and a peer may hop ports often.
  const kicks = new KeyedThrottle<Peer>(clock, 1000);
  if (wgDevice)
    peerRoamed = (p) => {
      if (kicks.allow(p)) tcp.kickRetransmissions((address) => wgDevice.allowedIps.lookup(address) === p);
    };
  gateway.attach(netstack);
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
      (aeadName ? `, AEAD ${aeadName}` : ", unencrypted") +
      `, ${describePeer(options)}`,
  );
  if (statsServer)
    log.info(`stats on http://${formatEndpoint(statsServer.local)}/metrics (also /stats, /healthz, /readyz)`);
  const summary =
    options.statsInterval && options.statsInterval > 0
      ? new StatsSummary(log, clock, options.statsInterval * 1000, () => {
          const g = gateway.stats();
          return {
            peers: peerCount(),
            peersUp: peersUp(),
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
    ready: () => !closing && peerUp(),
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

/** The configured peers, or the one `peerPublicKey` peer that takes every address. */
function wireguardPeers(options: GatewayOptions): PeerConfig[] {
  if (options.peers) return options.peers;
  if (!options.peerPublicKey) return [];
  return [
    {
      publicKey: options.peerPublicKey,
      presharedKey: options.presharedKey,
      endpoint: options.peerEndpoint,
      persistentKeepalive: options.keepaliveInterval,
      allowedIps: ["0.0.0.0/0", "::/0"],
    },
  ];
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
