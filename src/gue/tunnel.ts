/**
 * Wireguardless mode (`-k INSECURE -K GUE`): inner IP packets travel as plain UDP payloads, so a
 * Linux kernel's FOU/GUE tunnel (`ip fou add ... gue`, `ipip|sit ... encap gue|fou`) can be the
 * peer. No crypto, no authentication.
 *
 * Receive, by the first byte of a datagram:
 * - empty datagram: a keepalive, ignored (counted);
 * - top bits 01 (GUE variant 1 = direct IP): first nibble 4 is raw IPv4, 6 is raw IPv6 (FOU);
 * - top bits 00 (GUE variant 0): `|ver=0:2|C:1|hlen:5|proto:8|flags:16|` then hlen*4 bytes of
 *   optional fields, then the inner packet. proto 4 = IPv4, 41 = IPv6. C set = a control message,
 *   dropped. Exactly what a kernel sends: `00 04 00 00` + IPv4, `00 29 00 00` + IPv6;
 * - anything else is dropped and counted.
 *
 * Send: the bare inner packet. A kernel GUE port accepts raw IPv4/IPv6 (variant 1) as well as
 * variant 0, and a FOU port accepts only raw packets, so raw is the one form both understand.
 *
 * Reply endpoint, as in the seed tool: the configured peer (`-p`) when given, otherwise the
 * source of the last datagram received. A configured peer is never replaced by a datagram's
 * source: a kernel with `encap-sport auto` sends from per-flow hashed ports where nothing listens,
 * and an unauthenticated source must not be able to steal the return path.
 */
import type { IpLink } from "../link.ts";
import type { DatagramTransport } from "../transport/types.ts";
import type { Clock, Timer } from "../util/clock.ts";
import { type Endpoint, formatEndpoint } from "../util/endpoint.ts";
import type { Logger } from "../util/log.ts";

export const GUE_PROTO_IPV4 = 4;
export const GUE_PROTO_IPV6 = 41;

export interface GueTunnelOptions {
  transport: DatagramTransport;
  /** Fixed peer (`-p`): replies and keepalives always go here. */
  peer?: Endpoint;
  /** Send an empty datagram to the peer every this many seconds (`-a`); 0/undefined = off. */
  keepaliveIntervalS?: number;
  clock: Clock;
  log: Logger;
}

export interface GueDrops {
  /** GUE control messages (C bit set). */
  control: number;
  /** First two bits 10 or 11: neither GUE variant 0 nor variant 1 (direct IP). */
  unknownVariant: number;
  /** Raw variant-1 packet whose first nibble is neither 4 nor 6. */
  badIpVersion: number;
  /** GUE proto other than 4/41, or an inner packet that does not match the proto. */
  badProto: number;
  /** Datagram shorter than its GUE header (or nothing after the header). */
  truncated: number;
  /** Outgoing packet with no peer endpoint known yet. */
  noPeer: number;
}

export interface GueStats {
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
  keepalivesIn: number;
  keepalivesOut: number;
  drops: GueDrops;
}

const EMPTY = new Uint8Array(0);

export class GueTunnel implements IpLink {
  onPacket: (packet: Uint8Array) => void = () => {};
  readonly stats: GueStats = {
    packetsIn: 0,
    bytesIn: 0,
    packetsOut: 0,
    bytesOut: 0,
    keepalivesIn: 0,
    keepalivesOut: 0,
    drops: { control: 0, unknownVariant: 0, badIpVersion: 0, badProto: 0, truncated: 0, noPeer: 0 },
  };

  private readonly transport: DatagramTransport;
  private readonly fixedPeer: Endpoint | undefined;
  private current: Endpoint | undefined;
  private readonly keepaliveMs: number;
  private readonly keepaliveTimer: Timer;
  private readonly log: Logger;
  private running = false;
  private warnedNoPeer = false;

  constructor(opts: GueTunnelOptions) {
    this.transport = opts.transport;
    this.fixedPeer = opts.peer ? { address: opts.peer.address, port: opts.peer.port } : undefined;
    this.current = this.fixedPeer;
    this.keepaliveMs = Math.max(0, opts.keepaliveIntervalS ?? 0) * 1000;
    this.log = opts.log;
    this.keepaliveTimer = opts.clock.timer(() => this.keepaliveTick());
  }

  /** Where packets go now: the fixed peer, else the last source seen; undefined before either. */
  get peer(): Endpoint | undefined {
    return this.current;
  }

  /** Attach to the transport and start keepalives (the first one goes out immediately). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.transport.onDatagram = (data, from) => this.receive(data, from);
    if (this.keepaliveMs > 0) this.keepaliveTick();
  }

  /** Stop keepalives and detach from the transport. The transport belongs to the caller. */
  close(): void {
    if (!this.running) return;
    this.running = false;
    this.keepaliveTimer.cancel();
    this.transport.onDatagram = () => {};
  }

  /** An owned packet goes to the transport as it is; any other is copied (the transport queues). */
  send(packet: Uint8Array, owned = false): void {
    if (!this.running) return;
    const to = this.current;
    if (!to) {
      this.stats.drops.noPeer++;
      if (!this.warnedNoPeer) {
        this.warnedNoPeer = true;
        this.log.warn("GUE: dropping outgoing packets: no peer endpoint yet (use -p or wait for the peer)");
      }
      return;
    }
    this.stats.packetsOut++;
    this.stats.bytesOut += packet.byteLength;
    // The transport queues until the poll's flush and the caller may reuse a packet it still owns.
    this.transport.send(owned ? packet : packet.slice(), to);
  }

  /** Handle one outer datagram (also the transport's onDatagram after start()). */
  receive(data: Uint8Array, from: Endpoint): void {
    if (!this.fixedPeer) {
      const cur = this.current;
      if (!cur || cur.port !== from.port || cur.address !== from.address) {
        this.current = from;
        this.log.debug(`GUE: peer endpoint is now ${formatEndpoint(from)}`);
      }
    }
    const len = data.byteLength;
    if (len === 0) {
      this.stats.keepalivesIn++;
      return;
    }
    const b0 = data[0] as number;
    const variant = b0 >> 6;
    if (variant === 1) {
      const v = b0 >> 4;
      if (v !== 4 && v !== 6) {
        this.drop("badIpVersion", from);
        return;
      }
      this.deliver(data);
      return;
    }
    if (variant !== 0) {
      this.drop("unknownVariant", from);
      return;
    }
    if (len < 4) {
      this.drop("truncated", from);
      return;
    }
    if (b0 & 0x20) {
      this.drop("control", from);
      return;
    }
    const off = 4 + (b0 & 0x1f) * 4;
    if (off >= len) {
      this.drop("truncated", from);
      return;
    }
    const proto = data[1] as number;
    const inner = (data[off] as number) >> 4;
    if (!((proto === GUE_PROTO_IPV4 && inner === 4) || (proto === GUE_PROTO_IPV6 && inner === 6))) {
      this.drop("badProto", from);
      return;
    }
    this.deliver(data.subarray(off));
  }

  private deliver(packet: Uint8Array): void {
    this.stats.packetsIn++;
    this.stats.bytesIn += packet.byteLength;
    this.onPacket(packet);
  }

  private drop(reason: keyof GueDrops, from: Endpoint): void {
    this.stats.drops[reason]++;
    if (this.log.level >= 5) this.log.trace(`GUE: dropped datagram from ${formatEndpoint(from)}: ${reason}`);
  }

  private keepaliveTick(): void {
    if (!this.running) return;
    const to = this.current;
    if (to) {
      this.stats.keepalivesOut++;
      this.transport.send(EMPTY, to);
    }
    this.keepaliveTimer.set(this.keepaliveMs);
  }
}
