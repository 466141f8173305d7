/**
 * The TCP layer: validates segments from the peer, demultiplexes them to connections by 4-tuple,
 * creates a connection for a SYN to any address:port (SLiRP-style termination), answers segments
 * of unknown flows with RST (RFC 9293 §3.10.7.1) and opens connections toward the peer.
 */
import type { Clock } from "../../util/clock.ts";
import type { Logger } from "../../util/log.ts";
import type { Random } from "../../util/random.ts";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TcpView, tcpChecksumValid } from "../../wire/tcp.ts";
import type { FlowAddrs, IpAddr, IpOutput } from "../types.ts";
import type { TcpConnectionApi } from "./api.ts";
import { Bbr } from "./congestion/bbr.ts";
import { Cubic } from "./congestion/cubic.ts";
import { NewReno } from "./congestion/newreno.ts";
import type { CongestionControlFactory } from "./congestion/types.ts";
import { TcpConnection, type TcpConnectionOptions } from "./connection.ts";
import {
  DEFAULT_AUTOTUNE_BUDGET,
  DEFAULT_DELAYED_ACK_MS,
  DEFAULT_FIN_WAIT_2_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_SYN_TIMEOUT_MS,
} from "./constants.ts";
import { DelayedAcks } from "./delayed-ack.ts";
import { FairShare } from "./fair-share.ts";
import { PeerPaths } from "./peer-path.ts";
import { emitReset, TcpSegmentIn } from "./segment.ts";
import { seqAdd } from "./seq.ts";
import { TcpStats } from "./stats.ts";
import type { TcpControlBlock } from "./tcb.ts";
import { TimeWaitTable } from "./time-wait.ts";

export interface TcpLayerOptions {
  output: IpOutput;
  clock: Clock;
  random: Random;
  log: Logger;
  /** MSS we advertise over IPv4 / IPv6: MTU - 40 and MTU - 60. */
  mss4: number;
  mss6: number;
  /** Bytes per direction per flow (the starting size when autotuning). */
  bufferSize: number;
  /** Grow each flow's buffers toward the path's BDP up to this size (autotune.ts); 0/absent: fixed. */
  autotuneMaxBufferSize?: number;
  /** Bound on the autotuned growth over all flows (bytes; default DEFAULT_AUTOTUNE_BUDGET). */
  autotuneBudgetBytes?: number;
  /** A SYN for an unknown flow: the connection waits in SYN-RECEIVED for accept()/refuse(). */
  onConnect: (flow: FlowAddrs, conn: TcpConnectionApi) => void;
  /** Bound on each handshake (including the wait for accept()); default 30 s. */
  synTimeoutMs?: number;
  /** Congestion control: "cubic" (default, RFC 9438), "bbr" (congestion/bbr.ts), "newreno" (RFC 5681/6582) or a factory. */
  congestionControl?: CongestionControlName | CongestionControlFactory;
  /** Most flows held at once (every state, TIME-WAIT included); excess SYNs get a RST. Default 65536. */
  maxConnections?: number;
  /** FIN-WAIT-2 idle bound (default 60 s). */
  finWait2TimeoutMs?: number;
  /** Offer and accept SACK (default true); false leaves loss recovery to NewReno-style fast recovery. */
  sack?: boolean;
  /** Pace data segments at ~1.2-2 x cwnd / SRTT (pacing.ts); default true. */
  pacing?: boolean;
  /**
   * How long the ACK of less than a full segment may wait for the host's answer to carry it
   * (delayed-ack.ts); default DEFAULT_DELAYED_ACK_MS, 0: ACK at the end of every turn.
   */
  delayedAckMs?: number;
}

/** Per-flow view for observability (TcpLayer.flows()). */
export interface TcpFlowInfo {
  local: IpAddr;
  localPort: number;
  remote: IpAddr;
  remotePort: number;
  state: string;
  sendBuffered: number;
  receiveBuffered: number;
  outOfOrderBuffered: number;
  cwnd: number;
}

export const newRenoFactory: CongestionControlFactory = (mss) => new NewReno(mss);
export const cubicFactory: CongestionControlFactory = (mss) => new Cubic(mss);
export const bbrFactory: CongestionControlFactory = (mss) => new Bbr(mss);
export type CongestionControlName = "cubic" | "bbr" | "newreno";
const CC_FACTORIES: Record<CongestionControlName, CongestionControlFactory> = {
  cubic: cubicFactory,
  bbr: bbrFactory,
  newreno: newRenoFactory,
};

/**
 * Demux key of a flow as seen from the peer: remote address, remote port, local address, local
 * port, packed as UTF-16 code units (6 units for IPv4, 18 for IPv6): short, exact and cheap.
 */
export function flowKey(remote: IpAddr, remotePort: number, local: IpAddr, localPort: number): string {
  let k = "";
  for (let i = 0; i < remote.length; i += 2)
    k += String.fromCharCode(((remote[i] as number) << 8) | (remote[i + 1] as number));
  k += String.fromCharCode(remotePort);
  for (let i = 0; i < local.length; i += 2)
    k += String.fromCharCode(((local[i] as number) << 8) | (local[i + 1] as number));
  return k + String.fromCharCode(localPort);
}

function sameAddr(a: IpAddr, b: IpAddr): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

export class TcpLayer {
  readonly stats = new TcpStats();
  private readonly table = new Map<string, TcpConnection>();
  /** 4-tuples in TIME-WAIT whose connections are gone (time-wait.ts); they count as flows. */
  private readonly timeWait: TimeWaitTable;
  /** Per remote address, what its flows share (peer-path.ts); entries live as long as their flows. */
  private readonly paths = new PeerPaths();
  /** Every flow's data segments take turns here (fair-share.ts); with pacing only. */
  private readonly fairShare: FairShare | undefined;
  private readonly seg = new TcpSegmentIn();
  private readonly synTimeoutMs: number;
  private readonly finWait2TimeoutMs: number;
  private readonly maxConnections: number;
  private readonly ccFactory: CongestionControlFactory;
  /** Connections with end-of-turn work (each at most once per turn: bounded by the table). */
  private turnWork: TcpConnection[] = [];
  /** The flow of the last segment (in the table): the demux fast path. */
  private lastFlow: TcpConnection | null = null;
  private turnScheduled = false;
  private readonly delayedAcks: DelayedAcks | null;
  private readonly delayAckBound = (c: TcpControlBlock) => this.delayedAcks?.add(c as TcpConnection);
  private readonly runTurnBound = () => this.runTurn();
  private readonly queueTurnBound = (c: TcpControlBlock) => {
    this.turnWork.push(c as TcpConnection);
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      this.opts.clock.afterTurn(this.runTurnBound);
    }
  };

  constructor(private readonly opts: TcpLayerOptions) {
    this.synTimeoutMs = opts.synTimeoutMs ?? DEFAULT_SYN_TIMEOUT_MS;
    this.finWait2TimeoutMs = opts.finWait2TimeoutMs ?? DEFAULT_FIN_WAIT_2_TIMEOUT_MS;
    this.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.stats.autotuneBudgetBytes = opts.autotuneBudgetBytes ?? DEFAULT_AUTOTUNE_BUDGET;
    this.fairShare = opts.pacing === false ? undefined : new FairShare(opts.clock, this.stats);
    const cc = opts.congestionControl ?? "cubic";
    this.ccFactory = typeof cc === "function" ? cc : CC_FACTORIES[cc];
    const delay = opts.delayedAckMs ?? DEFAULT_DELAYED_ACK_MS;
    this.delayedAcks = delay > 0 ? new DelayedAcks(opts.clock, delay) : null;
    this.timeWait = new TimeWaitTable(opts.clock, opts.output, this.stats);
  }

  /** Flows held: connections and 4-tuples in TIME-WAIT. */
  get liveConnections(): number {
    return this.table.size + this.timeWait.size;
  }

  /** Room for one more flow: below maxConnections, or a TIME-WAIT entry gives its place up. */
  private hasRoom(): boolean {
    return this.table.size + this.timeWait.size < this.maxConnections || this.timeWait.evictOldest();
  }

  /** Per-flow buffer occupancy (the global sums are in stats). */
  *flows(): IterableIterator<TcpFlowInfo> {
    for (const c of this.table.values()) {
      yield {
        local: c.local,
        localPort: c.localPort,
        remote: c.remote,
        remotePort: c.remotePort,
        state: c.state,
        sendBuffered: c.sendBuffered,
        receiveBuffered: c.receiveBuffered,
        outOfOrderBuffered: c.outOfOrderBuffered,
        cwnd: c.congestionWindow,
      };
    }
    for (const { tw } of this.timeWait.values()) {
      yield {
        local: tw.local,
        localPort: tw.localPort,
        remote: tw.remote,
        remotePort: tw.remotePort,
        state: "TIME-WAIT",
        sendBuffered: 0,
        receiveBuffered: 0,
        outOfOrderBuffered: 0,
        cwnd: 0,
      };
    }
  }

  /**
   * The peer moved to a new outer endpoint (WireGuard roaming): flows waiting on a backed-off
   * retransmission timer resend now instead of after up to a minute. `remote` selects the flows of
   * the peer that moved (by the peer's inner address); returns how many flows were kicked.
   */
  kickRetransmissions(remote?: (address: IpAddr) => boolean): number {
    let n = 0;
    for (const c of this.table.values()) if ((!remote || remote(c.remote)) && c.kickRetransmission()) n++;
    this.stats.roamKicks += n;
    return n;
  }

  /** One TCP segment (header + payload) from the peer, `src` the peer's address. */
  input(src: IpAddr, dst: IpAddr, segment: Uint8Array): void {
    const stats = this.stats;
    stats.segmentsIn++;
    const bad = TcpView.check(segment);
    if (bad) {
      stats.drop(bad);
      return;
    }
    if (!tcpChecksumValid(src, dst, segment)) {
      stats.drop("tcp-checksum");
      return;
    }
    const view = new TcpView(segment);
    const seg = this.seg;
    const optErr = view.options(seg.options);
    if (optErr) {
      stats.drop(optErr);
      return;
    }
    seg.srcPort = view.srcPort;
    seg.dstPort = view.dstPort;
    if (seg.srcPort === 0 || seg.dstPort === 0) {
      stats.drop("tcp-port-zero");
      return;
    }
    seg.seq = view.seq;
    seg.ack = view.ack;
    seg.flags = view.flags;
    seg.window = view.window;
    seg.buf = segment;
    seg.payloadOffset = view.headerLength;
    seg.payloadLength = segment.length - seg.payloadOffset;

    // A bulk flow's segments come in runs: the last flow is checked before building a key.
    const last = this.lastFlow;
    if (
      last !== null &&
      last.remotePort === seg.srcPort &&
      last.localPort === seg.dstPort &&
      sameAddr(last.remote, src) &&
      sameAddr(last.local, dst)
    ) {
      last.handleSegment(seg);
      return;
    }
    const key = flowKey(src, seg.srcPort, dst, seg.dstPort);
    const conn = this.table.get(key);
    if (conn) {
      this.lastFlow = conn;
      conn.handleSegment(seg);
      return;
    }
    const tw = this.timeWait.size > 0 ? this.timeWait.get(key) : undefined;
    if (tw) {
      const iss = this.timeWait.reopenIss(tw, seg);
      if (iss !== -1) this.openPassive(key, src, dst, seg, iss);
      else this.timeWait.input(tw, seg);
      return;
    }
    const f = seg.flags;
    if (f & TCP_RST) {
      // Never answer a RST (RFC 9293 §3.10.7.1).
      stats.drop("tcp-rst-unknown-flow");
      return;
    }
    if ((f & (TCP_SYN | TCP_ACK | TCP_FIN)) === TCP_SYN) {
      if (!this.hasRoom()) {
        stats.connectionsRejected++;
        stats.drop("tcp-max-connections");
        this.resetFor(src, dst, seg);
        return;
      }
      this.openPassive(key, src, dst, seg);
      return;
    }
    stats.drop("tcp-unknown-flow");
    this.resetFor(src, dst, seg);
  }

  /** Active open toward the peer: flow.src/srcPort is our side, flow.dst/dstPort the peer's. */
  connect(flow: FlowAddrs): TcpConnectionApi {
    const local = flow.src.slice();
    const remote = flow.dst.slice();
    const key = flowKey(remote, flow.dstPort, local, flow.srcPort);
    if (this.table.has(key) || this.timeWait.get(key))
      throw new Error("tcp connect: a connection for this 4-tuple already exists");
    if (!this.hasRoom()) {
      this.stats.connectionsRejected++;
      throw new Error("tcp connect: too many connections");
    }
    const conn = TcpConnection.active(this.connOptions(key, local, flow.srcPort, remote, flow.dstPort));
    // In the table before the SYN leaves: an answer may come back synchronously.
    this.table.set(key, conn);
    conn.sendInitialSyn();
    return conn;
  }

  private runTurn(): void {
    this.turnScheduled = false;
    const work = this.turnWork;
    this.turnWork = [];
    for (let i = 0; i < work.length; i++) (work[i] as TcpConnection).endTurn();
  }

  /** Abort every connection (RST to the peer) and stop their timers. */
  close(): void {
    for (const conn of [...this.table.values()]) conn.abort();
    this.table.clear();
    this.timeWait.clear();
    this.delayedAcks?.clear();
    this.lastFlow = null;
  }

  private openPassive(key: string, src: IpAddr, dst: IpAddr, seg: TcpSegmentIn, iss = -1): void {
    const remote = src.slice();
    const local = dst.slice();
    const conn = TcpConnection.passive(this.connOptions(key, local, seg.dstPort, remote, seg.srcPort), seg, iss);
    this.table.set(key, conn);
    this.opts.onConnect({ src: remote, srcPort: seg.srcPort, dst: local, dstPort: seg.dstPort }, conn);
  }

  private connOptions(
    key: string,
    local: IpAddr,
    localPort: number,
    remote: IpAddr,
    remotePort: number,
  ): TcpConnectionOptions {
    const o = this.opts;
    const path = this.paths.acquire(remote);
    return {
      output: o.output,
      clock: o.clock,
      random: o.random,
      log: o.log,
      stats: this.stats,
      local,
      localPort,
      remote,
      remotePort,
      mss: local.length === 4 ? o.mss4 : o.mss6,
      bufferSize: o.bufferSize,
      autotuneMaxBufferSize: o.autotuneMaxBufferSize,
      synTimeoutMs: this.synTimeoutMs,
      finWait2TimeoutMs: this.finWait2TimeoutMs,
      congestionControl: this.ccFactory,
      sack: o.sack,
      pacing: o.pacing,
      queueTurn: this.queueTurnBound,
      path,
      fairShare: this.fairShare,
      delayAck: this.delayedAcks ? this.delayAckBound : undefined,
      timeWait: { table: this.timeWait, key },
      onGone: (c) => {
        this.paths.release(remote, path);
        if (this.table.get(key) === c) this.table.delete(key);
        if (this.lastFlow === c) this.lastFlow = null;
      },
    };
  }

  /** RST for a segment of no connection (RFC 9293 §3.10.7.1). */
  private resetFor(src: IpAddr, dst: IpAddr, seg: TcpSegmentIn): void {
    if (seg.flags & TCP_ACK) {
      emitReset(this.opts.output, dst, seg.dstPort, src, seg.srcPort, seg.ack, 0, TCP_RST);
    } else {
      const segLen = seg.payloadLength + (seg.flags & TCP_SYN ? 1 : 0) + (seg.flags & TCP_FIN ? 1 : 0);
      emitReset(this.opts.output, dst, seg.dstPort, src, seg.srcPort, 0, seqAdd(seg.seq, segLen), TCP_RST | TCP_ACK);
    }
    this.stats.segmentsOut++;
  }
}
