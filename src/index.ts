/**
 * wgslirpy as a library: startGateway() wires the layers together
 *   transport (outer UDP) -> WireGuard | GUE (IpLink) -> Netstack (+ TcpLayer) -> Gateway (OS sockets)
 * and returns a handle whose close() (or the AbortSignal) stops every socket and timer.
 */
import { deriveFlowLimits } from "./gateway/budget.ts";
import { Gateway } from "./gateway/gateway.ts";
import { readFdLimit } from "./gateway/host-fds.ts";
import { DestinationPolicy, policyRulesFrom } from "./gateway/policy.ts";
import { GueTunnel } from "./gue/tunnel.ts";
import type { IpLink } from "./link.ts";
import { Netstack } from "./netstack/stack.ts";
import { TcpLayer } from "./netstack/tcp/layer.ts";
import { type StatsServer, startStatsServer } from "./observe/stats-server.ts";
import type { GatewayOptions } from "./options.ts";
import { PcapWriter, tapLink } from "./pcap/writer.ts";
import { openUdpTransport } from "./transport/udp.ts";
import { type Clock, realClock } from "./util/clock.ts";
import type { Endpoint } from "./util/endpoint.ts";
import { createLogger, type Logger } from "./util/log.ts";
import { cryptoRandom, type Random } from "./util/random.ts";
import { WireGuardTunnel } from "./wireguard/tunnel.ts";

export type { ForwardSpec, GatewayOptions, PolicyRuleSpec } from "./options.ts";
export { DEFAULTS } from "./options.ts";
export type { Endpoint } from "./util/endpoint.ts";
export { generatePrivateKey, keyToBase64, parseKey, publicKeyOf } from "./wireguard/keys.ts";

export interface GatewayStats {
  tunnel: unknown;
  netstack: unknown;
  tcp: unknown;
  gateway: ReturnType<Gateway["stats"]>;
  liveTcp: number;
  liveUdp: number;
}

export interface GatewayHandle {
  /** The bound outer UDP socket. */
  readonly local: Endpoint;
  /** The reverse forwards' bound host sockets, in option order (ports filled in when given as 0). */
  readonly forwards: { tcp: Endpoint[]; udp: Endpoint[] };
  /** The stats HTTP server's address, when `statsListen` was given. */
  readonly statsLocal: Endpoint | undefined;
  stats(): GatewayStats;
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
  const policy = new DestinationPolicy(policyRulesFrom(options));

  const transport = await openUdpTransport(options.bind, { log });

  let link: IpLink & { start(): void; close(): void; stats: unknown };
  if (options.mode === "gue") {
    link = new GueTunnel({
      transport,
      peer: options.peerEndpoint,
      keepaliveIntervalS: options.keepaliveInterval,
      clock,
      log,
    });
  } else {
    if (!options.privateKey || !options.peerPublicKey)
      throw new Error("WireGuard mode needs a private key and a peer key");
    link = new WireGuardTunnel({
      privateKey: options.privateKey,
      peerPublicKey: options.peerPublicKey,
      presharedKey: options.presharedKey,
      endpoint: options.peerEndpoint,
      persistentKeepalive: options.keepaliveInterval,
      transmitQueueCapacity: options.transmitQueueCapacity,
      transport,
      clock,
      random,
      log,
    });
  }

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
  const pcap = options.pcap ? new PcapWriter(options.pcap, clock) : undefined;
  const stackLink = pcap ? tapLink(link, pcap) : link;
  const netstack = new Netstack({ link: stackLink, mtu: options.mtu, clock, log, handlers: gateway });
  const tcp = new TcpLayer({
    output: netstack.output,
    clock,
    random,
    log,
    mss4: options.mtu - 40,
    mss6: options.mtu - 60,
    bufferSize: options.tcpBufferSize,
    onConnect: (flow, conn) => gateway.onTcpConnect(flow, conn),
  });
  netstack.setTcp(tcp);
  gateway.attach(netstack);
  try {
    await gateway.startForwards();
  } catch (e) {
    gateway.close();
    tcp.close();
    netstack.close();
    link.close();
    transport.close();
    await pcap?.close();
    throw e;
  }
  link.start();
  log.info(`wgslirpy listening on ${transport.local.address}:${transport.local.port} (${options.mode} mode)`);

  let statsServer: StatsServer | undefined;

  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let closing = false;
  const close = async (): Promise<void> => {
    if (closing) return closed;
    closing = true;
    ctx.signal?.removeEventListener("abort", onAbort);
    gateway.close();
    tcp.close();
    netstack.close();
    link.close();
    transport.close();
    statsServer?.close();
    await pcap?.close();
    resolveClosed();
    return closed;
  };
  const onAbort = () => void close();
  ctx.signal?.addEventListener("abort", onAbort, { once: true });

  const handle: GatewayHandle = {
    local: transport.local,
    forwards: gateway.forwardsLocal(),
    get statsLocal() {
      return statsServer?.local;
    },
    closed,
    close,
    stats() {
      const g = gateway.stats();
      return {
        tunnel: link.stats,
        netstack: netstack.stats,
        tcp: tcp.stats,
        gateway: g,
        liveTcp: g.liveTcp,
        liveUdp: g.liveUdp,
      };
    },
  };
  if (options.statsListen) {
    statsServer = startStatsServer(options.statsListen, () => handle.stats());
    log.info(`stats on http://${options.statsListen.address}:${statsServer.local.port}/stats and /metrics`);
  }
  return handle;
}
