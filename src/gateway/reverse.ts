import type { SocketHandler, TCPSocketListener } from "bun";
import type { TcpConnectionApi } from "../netstack/tcp/api.ts";
import type { FlowAddrs, IpAddr, NetstackApi } from "../netstack/types.ts";
import type { ForwardSpec } from "../options.ts";
import type { Clock } from "../util/clock.ts";
import { type Endpoint, formatEndpoint, unmapV4 } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";
import type { FlowBudget, FlowTicket } from "./budget.ts";
import type { DropCounter } from "./drops.ts";
import { formatIpPort, parseIp } from "./ip-text.ts";
import { type NatTable, tcpNatKey } from "./nat-table.ts";
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
export const MAX_PORT_TRIES = 256;

export class RoundRobin {
  private next = FIRST_ROUND_ROBIN_PORT;
  take(): number {
    const p = this.next;
    this.next = p >= 65535 ? FIRST_ROUND_ROBIN_PORT : p + 1;
    return p;
  }
}

export interface TunnelSide {
  spec: ForwardSpec;
  dst: IpAddr;
  /** SRC's address bytes, when SRC is given. */
  src: IpAddr | undefined;
}

export function tunnelSide(spec: ForwardSpec): TunnelSide {
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

export function describe(spec: ForwardSpec): string {
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
