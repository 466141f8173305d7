import type { TcpConnectionApi } from "../netstack/tcp/api.ts";
import type { FlowAddrs, IpAddr, NetstackApi, NetstackHandlers } from "../netstack/types.ts";
import type { ForwardSpec } from "../options.ts";
import type { Clock } from "../util/clock.ts";
import type { Endpoint } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";
import { cryptoRandom } from "../util/random.ts";
import { StartupScope } from "../util/startup.ts";
import { deriveFlowLimits, FlowBudget, type FlowLimits } from "./budget.ts";
import { DnsCache } from "./dns-cache.ts";
import { DnsRelay } from "./dns-relay.ts";
import { type DnsCounters, DnsServer } from "./dns-server.ts";
import { DnsTcpSession } from "./dns-tcp.ts";
import { DropCounter } from "./drops.ts";
import { openFdCount, readFdLimit } from "./host-fds.ts";
import { ipEquals, parseIp } from "./ip-text.ts";
import { LogThrottle, moreSuffix } from "./log-throttle.ts";
import { NatTable, tcpNatKey } from "./nat-table.ts";
import { PingRelay } from "./ping-relay.ts";
import { type EchoTransport, PingSockets } from "./ping-sockets.ts";
import { PingTracker } from "./pingable.ts";
import { DenialLog, type DestinationPolicy } from "./policy.ts";
import { type Resolver, SystemResolver } from "./resolver.ts";
import { ReverseTcpForward } from "./reverse.ts";
import { ReverseUdpForward } from "./reverse-udp.ts";
import { TcpBridge, type TcpBridgeDeps } from "./tcp-bridge.ts";
import { UdpNat, type UdpNatDeps } from "./udp-nat.ts";

export interface GatewayConfig {
  /** May be given later with attach(): the netstack needs the gateway (its handlers) first. */
  netstack?: NetstackApi;
  clock: Clock;
  log: Logger;
  /** UDP to this address and port is answered by the built-in DNS server (`-D`). */
  dns?: Endpoint;
  /** Echo requests to this address are answered (`-P`). */
  pingable?: string;
  /** UDP NAT entries without traffic either way for this long are closed (default 92 s, the seed's). */
  udpIdleTimeoutMs?: number;
  /** How long a host-side TCP connect may take before the peer gets a RST (default 10 s). */
  tcpConnectTimeoutMs?: number;
  /** The TCP stack's per-direction buffer; the gateway holds at most one socket read on top of it. */
  tcpBufferSize?: number;
  resolver?: Resolver;
  /** Where the DNS server relays types other than A/AAAA (default: /etc/resolv.conf's nameservers). */
  dnsRelay?: DnsRelay;
  /**
   * Which destinations the peer may reach (TCP connects and UDP datagrams; the DNS and pingable
   * addresses are served locally and exempt). Undefined = everything (unit tests); startGateway
   * always passes one, with the built-in loopback/link-local denials.
   */
  policy?: DestinationPolicy;
  /**
   * Descriptor budget of the flows (see budget.ts). Default: derived from RLIMIT_NOFILE with the
   * standard reserve; startGateway() adds the listeners its options open.
   */
  limits?: FlowLimits;
  /** The RLIMIT_NOFILE soft limit (default: read from the process), to tell EMFILE from "refused". */
  fdLimit?: number;
  /**
   * Which peer an inner address belongs to, for the per-peer shares of the budget (default: one
   * peer). A multi-peer device passes its allowed-IPs lookup.
   */
  peerOf?: (addr: IpAddr) => string;
  /** Opens the UDP NAT's host sockets (default Bun.udpSocket): tests inject failures. */
  openUdpSocket?: UdpNatDeps["openSocket"];
  /**
   * How echo requests to addresses other than the pingable one reach the real network (default:
   * ICMP datagram sockets); null: they are dropped, as in the original tool.
   */
  echoTransport?: EchoTransport | null;
  /** Reverse forwards (`-t` / `-u`); bound by startForwards(). */
  incomingTcp?: readonly ForwardSpec[];
  incomingUdp?: readonly ForwardSpec[];
}

export interface GatewayStatsSnapshot {
  liveTcp: number;
  liveUdp: number;
  livePing: number;
  natEntriesCreated: number;
  /** Bytes held in the gateway's own buffers (TCP host->peer overflow, UDP datagrams awaiting a bind). */
  bufferedBytes: number;
  drops: Record<string, number>;
  dnsQueries: number;
  dns: DnsCounters;
  ping: { sent: number; replies: number; errors: number; pendingEchoes: number };
  budget: ReturnType<FlowBudget["stats"]>;
}

export const DEFAULT_UDP_IDLE_TIMEOUT_MS = 92_000;
export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 10_000;
/** DNS-over-TCP connections to the -D address at once; more are refused (RST). */
export const MAX_DNS_TCP_SESSIONS = 64;

/**
 * The NAT between the peer's flows (from the netstack) and the host's OS sockets, like the seed's
 * router: TCP flows become Bun.connect sockets, UDP flows share one host socket per client
 * endpoint, UDP to the DNS address is answered locally and echo requests to the pingable address
 * are answered by the netstack.
 */
export class Gateway implements NetstackHandlers {
  private netstack: NetstackApi | undefined;
  private readonly log: Logger;
  private readonly table: NatTable;
  private readonly drops = new DropCounter();
  private readonly udp: UdpNat;
  private readonly dnsServer: DnsServer | undefined;
  private readonly dnsAddr: IpAddr | undefined;
  private readonly dnsPort: number;
  private readonly dnsTcp = new Set<DnsTcpSession>();
  private readonly ping: PingTracker | undefined;
  private readonly pingRelay: PingRelay | undefined;
  /** Shared by every outgoing TCP flow (nothing in it is per flow: no closures per connect). */
  private readonly tcpBridgeDeps: TcpBridgeDeps;
  private readonly policy: DestinationPolicy | undefined;
  private readonly denials: DenialLog;
  private readonly reverseTcp: ReverseTcpForward[];
  private readonly reverseUdp: ReverseUdpForward[];
  private readonly budget: FlowBudget;
  private readonly peerOf: (addr: IpAddr) => string;
  private readonly throttle: LogThrottle;
  private readonly fdLimit: number | undefined;
  private fdCountAt = Number.NEGATIVE_INFINITY;
  private fdCount: number | undefined;
  private closed = false;

  constructor(private readonly config: GatewayConfig) {
    this.netstack = config.netstack;
    this.log = config.log;
    this.table = new NatTable(config.log);
    this.policy = config.policy;
    this.denials = new DenialLog(config.clock, config.log);
    this.fdLimit = config.fdLimit ?? readFdLimit();
    this.budget = new FlowBudget(config.limits ?? deriveFlowLimits(this.fdLimit, 0), config.clock);
    this.peerOf = config.peerOf ?? (() => "");
    this.throttle = new LogThrottle(config.clock);
    const warn = (key: string, line: () => string) => this.warn(key, line);
    this.tcpBridgeDeps = {
      clock: config.clock,
      log: this.log,
      drops: this.drops,
      connectTimeoutMs: config.tcpConnectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS,
      onFinished: (b) => this.table.remove(b),
      sendUnreachable: (original, kind) => this.netstack?.sendUnreachable(original, kind),
      fdsExhausted: () => this.fdsExhausted(),
      warn,
    };
    const reverseDeps = {
      clock: config.clock,
      log: config.log,
      drops: this.drops,
      table: this.table,
      netstack: () => this.netstack,
      udpIdleTimeoutMs: config.udpIdleTimeoutMs ?? DEFAULT_UDP_IDLE_TIMEOUT_MS,
      budget: this.budget,
      peerOf: this.peerOf,
      warn,
    };
    this.reverseTcp = (config.incomingTcp ?? []).map((f) => new ReverseTcpForward(f, reverseDeps));
    this.reverseUdp = (config.incomingUdp ?? []).map((f) => new ReverseUdpForward(f, reverseDeps));
    this.udp = new UdpNat(this.table, {
      clock: config.clock,
      log: config.log,
      drops: this.drops,
      idleTimeoutMs: config.udpIdleTimeoutMs ?? DEFAULT_UDP_IDLE_TIMEOUT_MS,
      sendToPeer: (flow, payload) => this.netstack?.sendUdp(flow, payload),
      sendUnreachable: (original, kind) => this.netstack?.sendUnreachable(original, kind),
      openSocket: config.openUdpSocket,
      budget: this.budget,
      peerOf: this.peerOf,
      warn,
    });
    this.dnsPort = config.dns?.port ?? -1;
    if (config.dns) {
      this.dnsAddr = requireIp(config.dns.address, "DNS address");
      const own = [this.dnsAddr];
      if (config.pingable !== undefined) own.push(requireIp(config.pingable, "pingable address"));
      this.dnsServer = new DnsServer({
        clock: config.clock,
        log: config.log,
        drops: this.drops,
        resolver: config.resolver ?? new SystemResolver(),
        relay: config.dnsRelay ?? new DnsRelay({ clock: config.clock, random: cryptoRandom, drops: this.drops }),
        cache: new DnsCache(config.clock),
        ownAddresses: own,
        maxInFlight: this.budget.limits.maxDnsInFlight,
        maxInFlightPerPeer:
          this.budget.limits.maxDnsInFlight === undefined ? undefined : Math.min(64, this.budget.limits.maxDnsInFlight),
        reply: (flow, payload) => this.netstack?.sendUdp(flow, payload),
      });
    }
    if (config.pingable !== undefined)
      this.ping = new PingTracker(requireIp(config.pingable, "pingable address"), this.table, config.clock);
    const transport = config.echoTransport === undefined ? new PingSockets() : config.echoTransport;
    if (transport)
      this.pingRelay = new PingRelay({
        clock: config.clock,
        log: config.log,
        drops: this.drops,
        transport,
        netstack: () => this.netstack,
        policy: config.policy,
      });
  }

  /** The gateway's own inner addresses per family (pingable first, then DNS): traceroute's first hop. */
  ownAddresses(): { v4?: IpAddr; v6?: IpAddr } {
    const out: { v4?: IpAddr; v6?: IpAddr } = {};
    const pingable = this.config.pingable !== undefined ? parseIp(this.config.pingable) : null;
    for (const a of [pingable, this.dnsAddr]) {
      if (a?.length === 4) out.v4 ??= a;
      else if (a?.length === 16) out.v6 ??= a;
    }
    return out;
  }

  attach(netstack: NetstackApi): void {
    this.netstack = netstack;
  }

  /** Bind the reverse forwards' host sockets (-t / -u). Rejects when one cannot be bound. */
  async startForwards(): Promise<void> {
    // One at a time so the error names the forward that failed (address and port).
    const scope = new StartupScope();
    scope.add(() => {
      for (const f of this.reverseTcp) f.close();
      for (const f of this.reverseUdp) f.close();
    });
    for (const f of this.reverseTcp) await scope.bind("TCP forward (-t)", f.local, () => f.start());
    for (const f of this.reverseUdp) await scope.bind("UDP forward (-u)", f.local, () => f.start());
  }

  /** The bound host addresses of the reverse forwards, in option order (ports filled in). */
  forwardsLocal(): { tcp: Endpoint[]; udp: Endpoint[] } {
    return { tcp: this.reverseTcp.map((f) => f.local), udp: this.reverseUdp.map((f) => f.local) };
  }

  onTcpConnect(flow: FlowAddrs, conn: TcpConnectionApi): void {
    if (this.closed) {
      conn.refuse();
      return;
    }
    if (this.dnsServer && flow.dstPort === this.dnsPort && ipEquals(flow.dst, this.dnsAddr!)) {
      this.acceptDnsTcp(flow, conn, this.dnsServer);
      return;
    }
    const rule = this.policy?.match(flow.dst, flow.dstPort);
    if (rule?.action === "deny") {
      this.drops.count("policy_denied_tcp");
      this.denials.denied(rule, "TCP", flow.src, flow.srcPort, flow.dst, flow.dstPort);
      conn.refuse();
      return;
    }
    const key = tcpNatKey(flow.src, flow.srcPort, flow.dst, flow.dstPort);
    const bridge = new TcpBridge(key, conn, this.tcpBridgeDeps);
    const ticket = this.budget.tryConnect(this.peerOf(flow.src), () => bridge.evict());
    if (typeof ticket === "string") {
      this.drops.count("tcp_over_budget");
      this.warn("tcp-budget", () => {
        const b = this.budget.stats();
        return `TCP flow budget spent (${ticket}: ${b.hostSockets} of ${b.maxFlows} host sockets, ${b.pendingConnects} of ${b.maxPendingConnects} connects under way): ${key} answered "administratively prohibited"`;
      });
      bridge.refuseOverBudget(flow);
      return;
    }
    if (!this.table.add(bridge)) {
      ticket.release();
      // The netstack has no connection for this flow, so an entry left here is stale: a bug.
      this.log.warn(`NAT entry for ${key} already exists; refusing the new connection`);
      this.drops.count("tcp_duplicate_flow");
      conn.refuse();
      return;
    }
    bridge.start(flow, ticket);
  }

  private acceptDnsTcp(flow: FlowAddrs, conn: TcpConnectionApi, server: DnsServer): void {
    if (this.dnsTcp.size >= MAX_DNS_TCP_SESSIONS) {
      this.drops.count("dns_tcp_sessions_full");
      conn.refuse();
      return;
    }
    const session = new DnsTcpSession(conn, flow.src.slice(), {
      clock: this.config.clock,
      drops: this.drops,
      server,
      onClosed: (s) => this.dnsTcp.delete(s),
    });
    this.dnsTcp.add(session);
  }

  onUdp(flow: FlowAddrs, payload: Uint8Array, packet: Uint8Array): void {
    if (this.closed) return;
    if (this.dnsServer && flow.dstPort === this.dnsPort && ipEquals(flow.dst, this.dnsAddr!)) {
      this.dnsServer.handle(flow, payload);
      return;
    }
    for (const f of this.reverseUdp) if (f.matchReply(flow, payload)) return;
    const rule = this.policy?.match(flow.dst, flow.dstPort);
    if (rule?.action === "deny") {
      this.drops.count("policy_denied_udp");
      this.denials.denied(rule, "UDP", flow.src, flow.srcPort, flow.dst, flow.dstPort);
      this.netstack?.sendUnreachable(packet, rule.udpReply ?? "admin");
      return;
    }
    this.udp.forward(flow, payload, packet);
  }

  onEchoRequest(src: IpAddr, dst: IpAddr): boolean {
    if (this.closed || !this.ping) return false;
    return this.ping.onEchoRequest(src, dst);
  }

  onEchoForward(src: IpAddr, dst: IpAddr, msg: Uint8Array, packet: Uint8Array): boolean {
    if (this.closed || !this.pingRelay) return false;
    return this.pingRelay.forward(src, dst, msg, packet);
  }

  stats(): GatewayStatsSnapshot {
    return {
      liveTcp: this.table.count("tcp"),
      liveUdp: this.table.count("udp"),
      livePing: this.table.count("ping"),
      natEntriesCreated: this.table.created,
      bufferedBytes: this.table.bufferedBytes(),
      drops: this.drops.snapshot(),
      dnsQueries: this.dnsServer?.queries ?? 0,
      dns: this.dnsServer?.counters() ?? DnsServer.noCounters(),
      ping: {
        sent: this.pingRelay?.sent ?? 0,
        replies: this.pingRelay?.replies ?? 0,
        errors: this.pingRelay?.errors ?? 0,
        pendingEchoes: this.pingRelay?.inFlight ?? 0,
      },
      budget: this.budget.stats(),
    };
  }

  /** One warning line per key per second; the ones in between are counted in the next. */
  private warn(key: string, line: () => string): void {
    const left = this.throttle.take(key);
    if (left >= 0) this.log.warn(`${line()}${moreSuffix(left)}`);
  }

  /** At the descriptor limit now? (/proc/self/fd, read at most every 50 ms.) */
  private fdsExhausted(): boolean {
    if (this.fdLimit === undefined) return false;
    const now = this.config.clock.now();
    if (now - this.fdCountAt >= 50) {
      this.fdCountAt = now;
      this.fdCount = openFdCount();
    }
    return this.fdCount !== undefined && this.fdCount >= this.fdLimit - 1;
  }

  /** Close every flow's OS sockets and timers; later packets are ignored (TCP SYNs refused). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dnsServer?.close();
    this.pingRelay?.close();
    for (const s of [...this.dnsTcp]) s.close();
    for (const f of this.reverseTcp) f.close();
    for (const f of this.reverseUdp) f.close();
    this.table.closeAll();
  }
}

function requireIp(text: string, what: string): IpAddr {
  const addr = parseIp(text);
  if (!addr) throw new Error(`invalid ${what} "${text}": not an IP address`);
  return addr;
}
