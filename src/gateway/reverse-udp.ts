/** `-u HOST,[SRC],DST`: datagrams from host senders into the tunnel, and DST's replies back (see reverse.ts). */
import type { udp } from "bun";
import type { FlowAddrs, IpAddr } from "../netstack/types.ts";
import type { ForwardSpec } from "../options.ts";
import type { Timer } from "../util/clock.ts";
import { type Endpoint, formatEndpoint, unmapV4 } from "../util/endpoint.ts";
import { formatIpPort, ipEquals, parseIp } from "./ip-text.ts";
import type { NatEntry } from "./nat-table.ts";
import { describe, MAX_PORT_TRIES, type ReverseDeps, RoundRobin, type TunnelSide, tunnelSide } from "./reverse.ts";

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
  return formatIpPort(addr, port);
}
