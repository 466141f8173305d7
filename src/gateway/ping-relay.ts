import { TokenBucket } from "../netstack/rate-limit.ts";
import type { IpAddr, NetstackApi, UnreachableKind } from "../netstack/types.ts";
import type { Clock, Timer } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import type { DropCounter } from "./drops.ts";
import { formatIp } from "./ip-text.ts";
import type { EchoTransport } from "./ping-sockets.ts";
import { DenialLog, type DestinationPolicy } from "./policy.ts";

/**
 * ICMP echo to any destination (the `-P` address is answered by the netstack instead).
 *
 * An echo request from the peer goes out through the family's ICMP datagram socket with the hop
 * limit it arrived with minus one (we are a router hop, so `traceroute -I` sees the path), our own
 * sequence number and the peer's data; the kernel sets the identifier. The reply goes back to the
 * peer with its identifier and sequence number restored and the data as received. An ICMP error
 * about the echo (unreachable, time exceeded) reaches the peer from the router that sent it,
 * quoting the peer's own request, so `ping` and `traceroute` print what they would on a routed
 * network. Where ping sockets are not permitted (net.ipv4.ping_group_range), one info line says
 * so and echo requests to other addresses are dropped as before.
 *
 * Bounds: requests waiting for an answer in total and per peer address, a per-peer rate, and a
 * 10 s wait after which a request is forgotten (counted).
 */

export interface PingRelayLimits {
  maxInFlight: number;
  maxInFlightPerPeer: number;
  /** Echo requests per second per peer address (burst: ratePerPeer / 2). */
  ratePerPeer: number;
  timeoutMs: number;
}

export const DEFAULT_PING_LIMITS: PingRelayLimits = {
  maxInFlight: 1024,
  maxInFlightPerPeer: 128,
  ratePerPeer: 200,
  timeoutMs: 10_000,
};

export const PING_SYSCTL_HINT = 'sysctl -w net.ipv4.ping_group_range="0 2147483647"';

export interface PingRelayDeps {
  clock: Clock;
  log: Logger;
  drops: DropCounter;
  transport: EchoTransport;
  netstack: () => NetstackApi | undefined;
  policy?: DestinationPolicy;
  limits?: Partial<PingRelayLimits>;
}

interface Pending {
  key: number;
  peer: IpAddr;
  peerKey: string;
  dst: IpAddr;
  id: number;
  seq: number;
  /** The peer's whole request, quoted in an ICMP error about it. */
  packet: Uint8Array;
  expiresAt: number;
}

const SEND_ERROR_KIND: Record<string, UnreachableKind> = {
  EHOSTUNREACH: "host",
  ENETUNREACH: "net",
  EACCES: "admin",
  EPERM: "admin",
};

export class PingRelay {
  /** Echo requests sent out, replies and errors passed back to the peer. */
  sent = 0;
  replies = 0;
  errors = 0;
  private readonly limits: PingRelayLimits;
  private readonly state: Record<4 | 6, "unknown" | "open" | "refused"> = { 4: "unknown", 6: "unknown" };
  private readonly nextSeq: Record<4 | 6, number> = { 4: 1, 6: 1 };
  /** Insertion order is send order: the first entry expires first. */
  private readonly pending = new Map<number, Pending>();
  private readonly perPeer = new Map<string, number>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly sweeper: Timer;
  private readonly denials: DenialLog;
  private closed = false;

  constructor(private readonly deps: PingRelayDeps) {
    this.limits = { ...DEFAULT_PING_LIMITS, ...deps.limits };
    this.sweeper = deps.clock.timer(() => this.sweep());
    this.denials = new DenialLog(deps.clock, deps.log);
    deps.transport.onReply = (family, from, icmp) => this.onReply(family, from, icmp);
    deps.transport.onError = (family, type, code, offender, icmp) => this.onError(family, type, code, offender, icmp);
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * An echo request from the peer (`msg` the ICMP message, `packet` the whole IP packet; views valid
   * during the call). False when ping sockets are unavailable: the caller drops it as before.
   */
  forward(src: IpAddr, dst: IpAddr, msg: Uint8Array, packet: Uint8Array): boolean {
    if (this.closed) return false;
    const family = dst.length === 4 ? 4 : 6;
    if (!this.available(family)) return false;
    const netstack = this.deps.netstack();
    const rule = this.deps.policy?.match(dst, -1);
    if (rule?.action === "deny") {
      this.deps.drops.count("policy_denied_icmp");
      this.denials.denied(rule, "ICMP echo", src, -1, dst, -1);
      netstack?.sendUnreachable(packet, "admin");
      return true;
    }
    const peerKey = formatIp(src);
    let bucket = this.buckets.get(peerKey);
    if (!bucket) {
      if (this.buckets.size >= 4096) this.buckets.clear();
      bucket = new TokenBucket(this.deps.clock, this.limits.ratePerPeer, Math.max(1, this.limits.ratePerPeer / 2));
      this.buckets.set(peerKey, bucket);
    }
    const mine = this.perPeer.get(peerKey) ?? 0;
    if (this.pending.size >= this.limits.maxInFlight || mine >= this.limits.maxInFlightPerPeer) {
      this.deps.drops.count("ping_in_flight_full");
      return true;
    }
    if (!bucket.take()) {
      this.deps.drops.count("ping_rate_limited");
      return true;
    }
    const seq = this.allocateSeq(family);
    const key = family * 65536 + seq;
    const out = new Uint8Array(msg.length);
    out.set(msg);
    out[2] = 0;
    out[3] = 0;
    out[4] = 0;
    out[5] = 0;
    out[6] = seq >> 8;
    out[7] = seq & 0xff;
    const hopLimit = (family === 4 ? packet[8]! : packet[7]!) - 1;
    const error = this.deps.transport.send(family, dst, hopLimit, out);
    if (error) {
      this.deps.drops.count(`ping_send_${error}`);
      const kind = SEND_ERROR_KIND[error];
      if (kind) netstack?.sendUnreachable(packet, kind);
      return true;
    }
    this.sent++;
    const entry: Pending = {
      key,
      peer: src.slice(),
      peerKey,
      dst: dst.slice(),
      id: (msg[4]! << 8) | msg[5]!,
      seq: (msg[6]! << 8) | msg[7]!,
      packet: packet.slice(),
      expiresAt: this.deps.clock.now() + this.limits.timeoutMs,
    };
    this.pending.set(key, entry);
    this.perPeer.set(peerKey, mine + 1);
    if (this.sweeper.deadline < 0) this.sweeper.setAt(entry.expiresAt);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sweeper.clear();
    this.pending.clear();
    this.perPeer.clear();
    this.deps.transport.close();
  }

  private available(family: 4 | 6): boolean {
    if (this.state[family] === "open") return true;
    if (this.state[family] === "refused") return false;
    const error = this.deps.transport.open(family);
    if (!error) {
      this.state[family] = "open";
      return true;
    }
    this.state[family] = "refused";
    const other = family === 4 ? 6 : 4;
    if (this.state[other] !== "refused" || error !== "EACCES")
      this.deps.log.info(
        error === "EACCES"
          ? `ICMP echo is answered only on the pingable address: ping sockets are not permitted for this group (net.ipv4.ping_group_range); to forward pings, run: ${PING_SYSCTL_HINT}`
          : `ICMP echo over IPv${family} is answered only on the pingable address: cannot open a ping socket (${error})`,
      );
    return false;
  }

  private allocateSeq(family: 4 | 6): number {
    for (;;) {
      const seq = this.nextSeq[family];
      this.nextSeq[family] = (seq + 1) & 0xffff;
      if (!this.pending.has(family * 65536 + seq)) return seq;
    }
  }

  private take(family: 4 | 6, icmp: Uint8Array): Pending | undefined {
    if (icmp.length < 8) return undefined;
    const entry = this.pending.get(family * 65536 + ((icmp[6]! << 8) | icmp[7]!));
    if (entry) this.release(entry);
    return entry;
  }

  private release(entry: Pending): void {
    this.pending.delete(entry.key);
    const left = (this.perPeer.get(entry.peerKey) ?? 1) - 1;
    if (left > 0) this.perPeer.set(entry.peerKey, left);
    else this.perPeer.delete(entry.peerKey);
  }

  private onReply(family: 4 | 6, from: IpAddr, icmp: Uint8Array): void {
    if (this.closed) return;
    if (icmp[0] !== (family === 4 ? 0 : 129)) {
      this.deps.drops.count("ping_reply_not_echo");
      return;
    }
    const entry = this.take(family, icmp);
    if (!entry) {
      this.deps.drops.count("ping_reply_unmatched");
      return;
    }
    this.replies++;
    this.deps.netstack()?.sendEchoReply(from, entry.peer, entry.id, entry.seq, icmp.subarray(8));
  }

  private onError(family: 4 | 6, type: number, code: number, offender: IpAddr | null, icmp: Uint8Array): void {
    if (this.closed) return;
    const entry = this.take(family, icmp);
    if (!entry) {
      this.deps.drops.count("ping_error_unmatched");
      return;
    }
    this.errors++;
    this.deps.netstack()?.forwardIcmpError(entry.packet, offender ?? entry.dst, type, code);
  }

  private sweep(): void {
    const now = this.deps.clock.now();
    for (const entry of this.pending.values()) {
      if (entry.expiresAt > now) {
        this.sweeper.setAt(entry.expiresAt);
        return;
      }
      this.release(entry);
      this.deps.drops.count("ping_timeout");
    }
  }
}
