import type { SocketHandler, TCPSocketListener, udp } from "bun";
import type { TcpConnectionApi } from "../netstack/tcp/api.ts";
import type { FlowAddrs, IpAddr, NetstackApi } from "../netstack/types.ts";
import type { ForwardSpec } from "../options.ts";
import type { Clock, Timer } from "../util/clock.ts";
import { type Endpoint, formatEndpoint, unmapV4 } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";
import type { FlowBudget, FlowTicket } from "./budget.ts";
import type { DropCounter } from "./drops.ts";
import { formatIpPort, ipEquals, parseIp } from "./ip-text.ts";
import { type NatEntry, type NatTable, tcpNatKey } from "./nat-table.ts";
import { type HostSocket, relayHandlers, TcpRelay } from "./tcp-relay.ts";

/**
 * Reverse forwards (`-t` / `-u HOST,[SRC],DST`, the seed's incoming_tcp / incoming_udp): a host
 * socket on HOST whose connections / datagrams go into the tunnel to DST, from SRC or — when SRC is
 * empty — from the real host client's address and port. SRC port 0 means a round-robin port from
 * 1024 up (per forward, wrapping), like the seed.
 */

export interface ReverseDeps {
  clock: Clock;
  log: Logger;
  drops: DropCounter;
  table: NatTable;
  netstack: () => NetstackApi | undefined;
  udpIdleTimeoutMs: number;
  /** The descriptor budget (an accepted connection holds a socket) and who a tunnel address belongs to. */
  budget?: FlowBudget;
  peerOf?: (addr: IpAddr) => string;
  warn?(key: string, line: () => string): void;
}

const FIRST_ROUND_ROBIN_PORT = 1024;
/** Bound on the search for a free round-robin port (ports taken by live flows are skipped). */
const MAX_PORT_TRIES = 256;

class RoundRobin {
  private next = FIRST_ROUND_ROBIN_PORT;
  take(): number {
    const p = this.next;
    this.next = p >= 65535 ? FIRST_ROUND_ROBIN_PORT : p + 1;
    return p;
  }
}

interface TunnelSide {
  spec: ForwardSpec;
  dst: IpAddr;
  /** SRC's address bytes, when SRC is given. */
  src: IpAddr | undefined;
}

function tunnelSide(spec: ForwardSpec): TunnelSide {
  const dst = parseIp(spec.destination.address);
  if (!dst) throw new Error(`reverse forward: DST "${spec.destination.address}" is not an IP address`);
  let src: IpAddr | undefined;
  if (spec.source) {
    src = parseIp(spec.source.address) ?? undefined;
    if (!src || src.length !== dst.length)
      throw new Error(`reverse forward: SRC "${formatEndpoint(spec.source)}" must be an IP of DST's family`);
  }
  return { spec, dst, src };
}

function describe(spec: ForwardSpec): string {
  return spec.source ? formatEndpoint(spec.source) : "*";
}

// ---------------------------------------------------------------- TCP

/** A host client's connection (accepted on a -t listener) relayed to a connection into the tunnel. */
export class ReverseTcpBridge extends TcpRelay {
  constructor(
    key: string,
    conn: TcpConnectionApi,
    deps: ReverseDeps,
    sock: HostSocket,
    from: string,
    ticket: FlowTicket | undefined,
  ) {
    super(key, conn, {
      ...deps,
      onFinished: (r) => {
        deps.table.remove(r);
        deps.log.debug(`  Finished serving ${from}`);
      },
    });
    this.sock = sock;
    this.ticket = ticket;
    // Nothing to put host bytes in until the tunnel side completes its handshake.
    sock.pause();
  }
}

export class ReverseTcpForward {
  private readonly side: TunnelSide;
  private readonly ports = new RoundRobin();
  private listener: TCPSocketListener<TcpRelay | undefined> | undefined;

  constructor(
    spec: ForwardSpec,
    private readonly deps: ReverseDeps,
  ) {
    this.side = tunnelSide(spec);
  }

  /** Bind the host listener (throws when HOST cannot be bound). */
  start(): void {
    const spec = this.side.spec;
    const handlers = {
      ...relayHandlers,
      open: (s: HostSocket) => {
        s.data = this.accepted(s) as TcpRelay;
      },
      data: (s: HostSocket, d: Uint8Array) => s.data?.hostData(d),
      drain: (s: HostSocket) => s.data?.hostDrained(),
      end: (s: HostSocket) => s.data?.hostEnded(),
      close: (s: HostSocket, e?: Error) => {
        s.data?.hostFdClosed();
        s.data?.hostSocketClosed(e);
      },
      error: (s: HostSocket, e: Error) => {
        s.terminate();
        s.data?.hostFdClosed();
        s.data?.hostSocketClosed(e);
      },
    };
    this.listener = Bun.listen<TcpRelay | undefined>({
      hostname: spec.host.address,
      port: spec.host.port,
      allowHalfOpen: true,
      data: undefined,
      socket: handlers as unknown as SocketHandler<TcpRelay | undefined>,
    });
    this.deps.log.info(
      `Permanent TCP forward from host ${formatEndpoint(this.local)}: would connect ${describe(spec)} -> ${formatEndpoint(spec.destination)}`,
    );
  }

  /** The bound host address (HOST with its port filled in when it was 0). */
  get local(): Endpoint {
    return { address: this.side.spec.host.address, port: this.listener?.port ?? this.side.spec.host.port };
  }

  close(): void {
    this.listener?.stop(false);
    this.listener = undefined;
  }

  private accepted(sock: HostSocket): ReverseTcpBridge | undefined {
    const { spec, dst } = this.side;
    const fromAddr = unmapV4(sock.remoteAddress);
    const from = formatEndpoint({ address: fromAddr, port: sock.remotePort });
    const netstack = this.deps.netstack();
    let src = this.side.src;
    if (!src) {
      src = parseIp(fromAddr) ?? undefined;
      if (!src || src.length !== dst.length) {
        this.deps.log.warn(
          `Incoming TCP connection from ${from} to ${formatEndpoint(this.local)}: its address family differs from ${formatEndpoint(spec.destination)}'s and no SRC is set; closing it`,
        );
        this.deps.drops.count("reverse_tcp_family_mismatch");
        sock.terminate();
        return undefined;
      }
    }
    if (!netstack) {
      sock.terminate();
      return undefined;
    }
    const ticket = this.deps.budget?.tryAccepted(this.deps.peerOf?.(dst) ?? "");
    if (typeof ticket === "string") {
      this.deps.drops.count("reverse_tcp_over_budget");
      this.deps.warn?.(
        "reverse-tcp-budget",
        () => `Incoming TCP connection from ${from} closed: the flow budget is spent (${ticket})`,
      );
      sock.terminate();
      return undefined;
    }
    const roundRobin = spec.source !== undefined && spec.source.port === 0;
    const fixedPort = spec.source ? spec.source.port : sock.remotePort;
    const flow: FlowAddrs = { src, srcPort: fixedPort, dst, dstPort: spec.destination.port };
    let conn: TcpConnectionApi | undefined;
    let key = "";
    for (let i = 0; i < (roundRobin ? MAX_PORT_TRIES : 1) && !conn; i++) {
      if (roundRobin) flow.srcPort = this.ports.take();
      key = tcpNatKey(dst, flow.dstPort, src, flow.srcPort);
      if (this.deps.table.get(key)) continue;
      try {
        conn = netstack.connectTcp(flow);
      } catch {
        // That 4-tuple is in use inside the tunnel: try the next port (round-robin) or give up.
      }
    }
    if (!conn) {
      this.deps.log.warn(
        `Incoming TCP connection from ${from}: no free source port toward ${formatEndpoint(spec.destination)}`,
      );
      this.deps.drops.count("reverse_tcp_no_port");
      ticket?.release();
      sock.terminate();
      return undefined;
    }
    this.deps.log.debug(
      `Incoming TCP connection from ${from} to ${formatEndpoint(this.local)} on host side. Connecting from ${formatIpPort(src, flow.srcPort)} to ${formatEndpoint(spec.destination)} within Wireguard.`,
    );
    const bridge = new ReverseTcpBridge(key, conn, this.deps, sock, from, ticket);
    this.deps.table.add(bridge);
    return bridge;
  }
}

// ---------------------------------------------------------------- UDP

type HostUdpSocket = udp.Socket<"uint8array">;

/** One host sender of a -u forward and the tunnel-side source its datagrams use. */
class ReverseUdpMapping implements NatEntry {
  readonly kind = "udp";
  private readonly timer: Timer;
  private closed = false;
  /** Reused for every datagram into the tunnel. */
  readonly flow: FlowAddrs;

  constructor(
    readonly key: string,
    readonly senderKey: string,
    readonly sender: Endpoint,
    src: IpAddr,
    srcPort: number,
    dst: IpAddr,
    dstPort: number,
    private readonly owner: ReverseUdpForward,
    private readonly deps: ReverseDeps,
  ) {
    this.flow = { src, srcPort, dst, dstPort };
    this.timer = deps.clock.timer(() => {
      deps.log.debug(`Timed out a UDP connection ${key}`);
      this.close();
    });
    this.touch();
  }

  touch(): void {
    this.timer.set(this.deps.udpIdleTimeoutMs);
  }

  bufferedBytes(): number {
    return 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timer.cancel();
    this.owner.forget(this);
    this.deps.table.remove(this);
  }
}

export class ReverseUdpForward {
  private readonly side: TunnelSide;
  private readonly ports = new RoundRobin();
  private socket: HostUdpSocket | undefined;
  private readonly bySender = new Map<string, ReverseUdpMapping>();
  /** By tunnel-side source "addr|port": where the peer's replies go. */
  private readonly bySource = new Map<string, ReverseUdpMapping>();
  private closed = false;

  constructor(
    spec: ForwardSpec,
    private readonly deps: ReverseDeps,
  ) {
    this.side = tunnelSide(spec);
  }

  async start(): Promise<void> {
    const spec = this.side.spec;
    const socket = await Bun.udpSocket({
      hostname: spec.host.address,
      port: spec.host.port,
      binaryType: "uint8array",
      socket: {
        data: (_s, data, port, address) => this.fromHost(data, port, address),
        error: (...args: unknown[]) => {
          const e = args.find((a) => a instanceof Error) as Error | undefined;
          this.deps.log.debug(`UDP forward socket ${formatEndpoint(spec.host)} error: ${e?.message ?? "unknown"}`);
          this.deps.drops.count("reverse_udp_socket_error");
        },
      },
    });
    if (this.closed) {
      socket.close();
      return;
    }
    this.socket = socket;
    this.deps.log.info(
      `Permanent UDP forward from host ${formatEndpoint(this.local)}: would send ${describe(spec)} -> ${formatEndpoint(spec.destination)}`,
    );
  }

  get local(): Endpoint {
    return { address: this.side.spec.host.address, port: this.socket?.port ?? this.side.spec.host.port };
  }

  /**
   * A datagram from the peer: if it is a reply from DST to one of our tunnel-side sources, send it
   * to that mapping's host sender and return true; otherwise false (not ours).
   */
  matchReply(flow: FlowAddrs, payload: Uint8Array): boolean {
    if (this.bySource.size === 0) return false;
    const { dst, spec } = this.side;
    if (flow.srcPort !== spec.destination.port || !ipEquals(flow.src, dst)) return false;
    const m = this.bySource.get(sourceKey(flow.dst, flow.dstPort));
    if (!m) return false;
    m.touch();
    try {
      if (!this.socket?.send(payload, m.sender.port, m.sender.address))
        this.deps.drops.count("reverse_udp_send_blocked");
    } catch (e) {
      this.deps.log.debug(`UDP forward reply to ${formatEndpoint(m.sender)} failed: ${(e as Error).message}`);
      this.deps.drops.count("reverse_udp_send_failed");
    }
    return true;
  }

  forget(m: ReverseUdpMapping): void {
    if (this.bySender.get(m.senderKey) === m) this.bySender.delete(m.senderKey);
    const sk = sourceKey(m.flow.src, m.flow.srcPort);
    if (this.bySource.get(sk) === m) this.bySource.delete(sk);
  }

  close(): void {
    this.closed = true;
    for (const m of [...this.bySender.values()]) m.close();
    this.socket?.close();
    this.socket = undefined;
  }

  private fromHost(data: Uint8Array, port: number, address: string): void {
    const netstack = this.deps.netstack();
    if (this.closed || !netstack) return;
    const senderAddr = unmapV4(address);
    const senderKey = `${senderAddr}|${port}`;
    let m = this.bySender.get(senderKey);
    if (!m) {
      m = this.newMapping({ address: senderAddr, port }, senderKey);
      if (!m) return;
    }
    m.touch();
    netstack.sendUdp(m.flow, data);
  }

  private newMapping(sender: Endpoint, senderKey: string): ReverseUdpMapping | undefined {
    const { spec, dst } = this.side;
    // The mappings share the listener's socket (no descriptor each), but the table is bounded like
    // the outgoing UDP mappings: a flood of host senders cannot grow it without limit.
    const max = this.deps.budget?.limits.maxUdpMappings ?? Number.POSITIVE_INFINITY;
    if (this.bySender.size >= max) {
      this.deps.drops.count("reverse_udp_mappings_full");
      this.deps.warn?.(
        "reverse-udp-full",
        () =>
          `UDP forward ${formatEndpoint(this.local)}: ${max} senders mapped already; ${formatEndpoint(sender)} dropped`,
      );
      return undefined;
    }
    let src = this.side.src;
    if (!src) {
      src = parseIp(sender.address) ?? undefined;
      if (!src || src.length !== dst.length) {
        this.deps.drops.count("reverse_udp_family_mismatch");
        this.deps.log.debug(`UDP forward: sender ${formatEndpoint(sender)} and DST differ in address family; dropped`);
        return undefined;
      }
    }
    const roundRobin = spec.source !== undefined && spec.source.port === 0;
    let srcPort = spec.source ? spec.source.port : sender.port;
    if (roundRobin) {
      let found = false;
      for (let i = 0; i < MAX_PORT_TRIES && !found; i++) {
        srcPort = this.ports.take();
        found = !this.bySource.has(sourceKey(src, srcPort));
      }
      if (!found) {
        this.deps.drops.count("reverse_udp_no_port");
        return undefined;
      }
    } else {
      // A fixed SRC is shared by every sender: the newest one takes over its replies.
      this.bySource.get(sourceKey(src, srcPort))?.close();
    }
    const key = `UDP ${formatIpPort(dst, spec.destination.port)} <- ${formatIpPort(src, srcPort)} (forward)`;
    const m = new ReverseUdpMapping(key, senderKey, sender, src, srcPort, dst, spec.destination.port, this, this.deps);
    this.deps.log.debug(
      `Incoming UDP from ${formatEndpoint(sender)} to ${formatEndpoint(this.local)} on host side. Sending from ${formatIpPort(src, srcPort)} to ${formatEndpoint(spec.destination)} within Wireguard.`,
    );
    this.bySender.set(senderKey, m);
    this.bySource.set(sourceKey(src, srcPort), m);
    this.deps.table.add(m);
    return m;
  }
}

function sourceKey(addr: IpAddr, port: number): string {
  return `${formatIpPort(addr, port)}`;
}
