import type { udp } from "bun";
import type { FlowAddrs, IpAddr, UnreachableKind } from "../netstack/types.ts";
import type { Clock, Timer } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import type { FlowBudget, FlowTicket } from "./budget.ts";
import type { DropCounter } from "./drops.ts";
import { formatIp, ipEquals, parseIp } from "./ip-text.ts";
import { type NatEntry, type NatTable, udpNatKey } from "./nat-table.ts";

/**
 * UDP NAT like the seed: one unconnected host socket per client endpoint (the client's address and
 * port; an IP packet's source and destination share a family, so that fixes the socket's family).
 * Mapping and filtering are endpoint-independent: the client's datagrams to any destination leave
 * through that socket, and a datagram from any remote to the socket goes back to the client with the
 * remote as its source, which is what hole punching needs.
 *
 * ICMP errors come back: Bun reads the socket's error queue (IP_RECVERR) and reports e.g.
 * ECONNREFUSED through the error handler, without saying which datagram caused it. The flow keeps a
 * copy of the client's last packet in a reusable buffer (the netstack validates the quoted header's
 * lengths, so the whole packet; it trims the quote itself) and quotes that in the ICMP unreachable
 * it sends to the client, which is exact for the usual one-destination flow.
 */

const UNREACHABLE_BY_CODE: Record<string, UnreachableKind> = {
  ECONNREFUSED: "port",
  EHOSTUNREACH: "host",
  ENETUNREACH: "net",
  EACCES: "admin",
  EPERM: "admin",
  // Out of descriptors: our own shortage, reported as a policy-like refusal, never as "refused".
  EMFILE: "admin",
  ENFILE: "admin",
};

/** While the host socket is being bound, datagrams wait here, bounded in count and bytes. */
const MAX_QUEUED_DATAGRAMS = 64;
const MAX_QUEUED_BYTES = 256 * 1024;

export interface UdpNatDeps {
  clock: Clock;
  log: Logger;
  drops: DropCounter;
  idleTimeoutMs: number;
  /** netstack.sendUdp: flow.src/srcPort is the remote the client sees. */
  sendToPeer(flow: FlowAddrs, payload: Uint8Array): void;
  /** netstack.sendUnreachable: an ICMP error to the client quoting its packet. */
  sendUnreachable(original: Uint8Array, kind: UnreachableKind): void;
  /** Opens a host socket (default Bun.udpSocket; tests inject failures such as EMFILE). */
  openSocket?: (options: udp.SocketOptions<"uint8array">) => Promise<HostUdpSocket>;
  /** The descriptor budget (one socket per mapping) and who a client address belongs to. */
  budget?: FlowBudget;
  peerOf?: (client: IpAddr) => string;
  /** A rate-limited warning (the key groups lines). */
  warn?(key: string, line: () => string): void;
}

type HostUdpSocket = udp.Socket<"uint8array">;

const openBunUdpSocket = (options: udp.SocketOptions<"uint8array">) => Bun.udpSocket(options);

interface QueuedDatagram {
  payload: Uint8Array;
  host: string;
  port: number;
}

export class UdpFlow implements NatEntry {
  readonly kind = "udp";
  private socket: HostUdpSocket | undefined;
  private queue: QueuedDatagram[] = [];
  private queuedBytes = 0;
  private readonly idleTimer: Timer;
  /** Reused for every datagram to the client: only src/srcPort change. */
  private readonly toPeer: FlowAddrs;
  /** The last destination's text form, so a flow talking to one server converts it once. */
  private lastDst: IpAddr = new Uint8Array(0);
  private lastDstText = "";
  /** The last remote's bytes, so replies from one server parse its address once. */
  private lastRemoteText = "";
  private lastRemote: IpAddr = new Uint8Array(0);
  private closed = false;
  /** The start of the client's last packet, for the quote in an ICMP unreachable. */
  private lastPacket: Uint8Array | undefined;
  private lastPacketLength = 0;
  /** The mapping's claim on the descriptor budget. */
  ticket: FlowTicket | undefined;

  constructor(
    readonly key: string,
    client: IpAddr,
    clientPort: number,
    private readonly table: NatTable,
    private readonly deps: UdpNatDeps,
  ) {
    this.idleTimer = deps.clock.timer(() => {
      deps.log.debug(`Timed out a UDP connection ${key}`);
      this.close();
    });
    this.toPeer = { src: client, srcPort: 0, dst: client, dstPort: clientPort };
  }

  /**
   * Bind the host socket. Called once the flow is in the table: a bind that fails at once (EMFILE)
   * closes the flow, which removes it again, so the table never holds a flow without a socket.
   */
  start(): void {
    this.idleTimer.set(this.deps.idleTimeoutMs);
    void this.bind(this.toPeer.dst.length === 4 ? "0.0.0.0" : "::");
  }

  bufferedBytes(): number {
    return this.queuedBytes;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  isClient(addr: IpAddr, port: number): boolean {
    return port === this.toPeer.dstPort && ipEquals(addr, this.toPeer.dst);
  }

  /** A datagram from the client to dst:dstPort (payload and packet valid only during the call). */
  sendFromPeer(dst: IpAddr, dstPort: number, payload: Uint8Array, packet: Uint8Array): void {
    if (this.closed) return;
    this.idleTimer.set(this.deps.idleTimeoutMs);
    this.keepForQuote(packet);
    const host = this.dstText(dst);
    const socket = this.socket;
    if (!socket) {
      if (this.queue.length >= MAX_QUEUED_DATAGRAMS || this.queuedBytes + payload.length > MAX_QUEUED_BYTES) {
        this.deps.drops.count("udp_bind_queue_full");
        return;
      }
      this.queue.push({ payload: payload.slice(), host, port: dstPort });
      this.queuedBytes += payload.length;
      return;
    }
    this.sendNow(socket, payload, host, dstPort);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.idleTimer.cancel();
    this.queue = [];
    this.queuedBytes = 0;
    this.socket?.close();
    this.socket = undefined;
    this.ticket?.release();
    this.table.remove(this);
  }

  private async bind(hostname: string): Promise<void> {
    let socket: HostUdpSocket;
    try {
      socket = await (this.deps.openSocket ?? openBunUdpSocket)({
        hostname,
        port: 0,
        binaryType: "uint8array",
        socket: {
          data: (_s, data, port, address) => this.fromRemote(data, port, address),
          // Bun 1.4.4 calls this with the error as the only argument (the types say (socket, error)).
          error: (...args: unknown[]) => this.socketError(args.find((a) => a instanceof Error) as Error | undefined),
        },
      });
    } catch (e) {
      const code = (e as { code?: string }).code ?? "unknown";
      const line = () =>
        `Cannot bind a UDP socket for ${this.key}: ${(e as Error).message}; answered "administratively prohibited"`;
      if (this.deps.warn) this.deps.warn(`udp-bind-${code}`, line);
      else this.deps.log.warn(line());
      this.deps.drops.count(`udp_bind_${code}`, Math.max(1, this.queue.length));
      this.reportUnreachable(code === "EMFILE" || code === "ENFILE" ? code : "EACCES");
      this.close();
      return;
    }
    if (this.closed) {
      socket.close();
      return;
    }
    this.socket = socket;
    const queue = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    for (const d of queue) this.sendNow(socket, d.payload, d.host, d.port);
  }

  private keepForQuote(packet: Uint8Array): void {
    const n = packet.length;
    if (n === 0) return;
    // Grows to the largest packet seen, then is reused: one copy per datagram, no allocation.
    if (!this.lastPacket || this.lastPacket.length < n) this.lastPacket = new Uint8Array(Math.max(n, 1500));
    this.lastPacket.set(packet);
    this.lastPacketLength = n;
  }

  private socketError(error: Error | undefined): void {
    const code = (error as { code?: string } | undefined)?.code ?? "unknown";
    this.deps.log.debug(`UDP socket error for ${this.key}: ${error?.message ?? code}`);
    this.deps.drops.count(`udp_socket_${code}`);
    this.reportUnreachable(code);
  }

  /** ICMP unreachable to the peer, quoting its last datagram, for an error code that means one. */
  private reportUnreachable(code: string): void {
    const kind = UNREACHABLE_BY_CODE[code];
    if (kind && this.lastPacket && this.lastPacketLength > 0 && !this.closed)
      this.deps.sendUnreachable(this.lastPacket.subarray(0, this.lastPacketLength), kind);
  }

  private sendNow(socket: HostUdpSocket, payload: Uint8Array, host: string, port: number): void {
    try {
      if (!socket.send(payload, port, host)) this.deps.drops.count("udp_send_blocked");
    } catch (e) {
      // The kernel can refuse a send at once (a local route says unreachable): same ICMP as an
      // error reported later through the socket.
      const code = (e as { code?: string }).code ?? "unknown";
      this.deps.log.debug(`UDP send from ${this.key} to ${host}:${port} failed: ${(e as Error).message}`);
      this.deps.drops.count("udp_send_failed");
      this.reportUnreachable(code);
    }
  }

  private fromRemote(data: Uint8Array, port: number, address: string): void {
    if (this.closed) return;
    if (address !== this.lastRemoteText) {
      const parsed = parseIp(address);
      if (!parsed || parsed.length !== this.toPeer.dst.length) {
        this.deps.drops.count("udp_bad_remote");
        return;
      }
      this.lastRemoteText = address;
      this.lastRemote = parsed;
    }
    this.idleTimer.set(this.deps.idleTimeoutMs);
    this.toPeer.src = this.lastRemote;
    this.toPeer.srcPort = port;
    this.deps.sendToPeer(this.toPeer, data);
  }

  private dstText(dst: IpAddr): string {
    if (ipEquals(dst, this.lastDst)) return this.lastDstText;
    this.lastDst = dst.slice();
    this.lastDstText = formatIp(dst);
    return this.lastDstText;
  }
}

/** Finds or creates the client endpoint's UdpFlow and forwards the datagram. */
export class UdpNat {
  /** The flow of the previous datagram: bulk traffic skips building the key text per packet. */
  private last: UdpFlow | undefined;

  constructor(
    private readonly table: NatTable,
    private readonly deps: UdpNatDeps,
  ) {}

  forward(flow: FlowAddrs, payload: Uint8Array, packet: Uint8Array): void {
    let target = this.last;
    if (!target || target.isClosed || !target.isClient(flow.src, flow.srcPort)) {
      const key = udpNatKey(flow.src, flow.srcPort);
      const entry = this.table.get(key);
      if (entry instanceof UdpFlow && !entry.isClosed) target = entry;
      else {
        const ticket = this.deps.budget?.tryUdp(this.deps.peerOf?.(flow.src) ?? "");
        if (typeof ticket === "string") {
          this.overBudget(flow, packet);
          return;
        }
        // Copy the client address: the netstack's flow may point into the packet buffer.
        target = new UdpFlow(key, flow.src.slice(), flow.srcPort, this.table, this.deps);
        target.ticket = ticket;
        if (!this.table.add(target)) {
          ticket?.release();
          return;
        }
        // Queued (and kept for an ICMP quote) before the bind, which may fail at once.
        target.sendFromPeer(flow.dst, flow.dstPort, payload, packet);
        target.start();
        this.last = target;
        return;
      }
      this.last = target;
    }
    target.sendFromPeer(flow.dst, flow.dstPort, payload, packet);
  }

  /** No budget for another mapping: "administratively prohibited" to the client, a throttled warning. */
  private overBudget(flow: FlowAddrs, packet: Uint8Array): void {
    this.deps.drops.count("udp_over_budget");
    if (packet.length > 0) this.deps.sendUnreachable(packet, "admin");
    this.deps.warn?.("udp-budget", () => {
      const b = this.deps.budget?.stats();
      return `UDP mapping budget spent (${b?.udpMappings} of ${b?.maxUdpMappings} mappings, ${b?.hostSockets} of ${b?.maxFlows} host sockets): ${udpNatKey(flow.src, flow.srcPort)} answered "administratively prohibited"`;
    });
  }
}
