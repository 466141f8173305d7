/**
 * Test harness for the TCP layer: a fake IpOutput that captures and parses every emitted segment,
 * a builder for the peer's segments (checksummed), and a TcpLayer set up with a VirtualClock.
 * Two TcpLayers over an impaired link: tcp-transfer.ts.
 */
import type { TcpConnectionApi } from "../../src/netstack/tcp/api.ts";
import { TcpLayer } from "../../src/netstack/tcp/layer.ts";
import type { FlowAddrs, IpAddr, IpOutput } from "../../src/netstack/types.ts";
import { ipHeaderLength } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { SeededRandom } from "../../src/util/random.ts";
import {
  emitTcpHeader,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TcpHeaderFields,
  TcpOptions,
  TcpView,
  tcpChecksumValid,
  tcpHeaderLength,
  writeTcpChecksum,
} from "../../src/wire/tcp.ts";

export const PEER = new Uint8Array([10, 0, 0, 2]);
export const REMOTE = new Uint8Array([93, 184, 216, 34]);
export const PEER_PORT = 40000;
export const REMOTE_PORT = 80;

export interface Captured {
  src: IpAddr;
  dst: IpAddr;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options: TcpOptions;
  payload: Uint8Array;
  /** The raw TCP segment. */
  tcp: Uint8Array;
}

export function flagNames(flags: number): string {
  const n: string[] = [];
  if (flags & TCP_SYN) n.push("SYN");
  if (flags & TCP_FIN) n.push("FIN");
  if (flags & TCP_RST) n.push("RST");
  if (flags & TCP_PSH) n.push("PSH");
  if (flags & TCP_ACK) n.push("ACK");
  return n.join("|");
}

/** Captures emitted packets; each is parsed and its checksum verified. */
export class FakeOutput implements IpOutput {
  readonly sent: Captured[] = [];
  private readonly addrs = new WeakMap<Uint8Array, { src: IpAddr; dst: IpAddr }>();

  allocate(src: IpAddr, dst: IpAddr, protocol: number, payloadLength: number): Uint8Array {
    if (protocol !== 6) throw new Error(`unexpected protocol ${protocol}`);
    const buf = new Uint8Array(ipHeaderLength(src) + payloadLength);
    this.addrs.set(buf, { src, dst });
    return buf;
  }

  send(packet: Uint8Array): void {
    const a = this.addrs.get(packet)!;
    const tcp = packet.subarray(ipHeaderLength(a.src));
    if (TcpView.check(tcp) !== null) throw new Error("emitted a malformed segment");
    if (!tcpChecksumValid(a.src, a.dst, tcp)) throw new Error("emitted a segment with a bad checksum");
    this.sent.push(parseSegment(a.src, a.dst, tcp.slice()));
  }

  /** Remove and return everything captured so far. */
  take(): Captured[] {
    return this.sent.splice(0);
  }

  /** Remove and return the single captured segment (fails when there are 0 or several). */
  one(): Captured {
    const all = this.take();
    if (all.length !== 1) throw new Error(`expected one segment, got ${all.length}: ${all.map(describe).join(", ")}`);
    return all[0]!;
  }
}

/** The fields of a TCP segment (payload and options are views into `tcp`); throws on bad options. */
export function parseSegment(src: IpAddr, dst: IpAddr, tcp: Uint8Array): Captured {
  const v = new TcpView(tcp);
  const options = new TcpOptions();
  const err = v.options(options);
  if (err) throw new Error(`emitted bad options: ${err}`);
  return {
    src,
    dst,
    srcPort: v.srcPort,
    dstPort: v.dstPort,
    seq: v.seq,
    ack: v.ack,
    flags: v.flags,
    window: v.window,
    options,
    payload: v.payload,
    tcp,
  };
}

export function describe(c: Captured): string {
  return `${flagNames(c.flags)} seq=${c.seq} ack=${c.ack} win=${c.window} len=${c.payload.length}`;
}

export interface PeerSegment {
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  ts?: [number, number];
  sack?: [number, number][];
  payload?: Uint8Array;
  srcPort?: number;
  dstPort?: number;
}

const fields = new TcpHeaderFields();

/** Build a checksummed TCP segment from src to dst. */
export function buildSegment(src: IpAddr, dst: IpAddr, s: PeerSegment): Uint8Array {
  fields.resetOptions();
  fields.srcPort = s.srcPort ?? PEER_PORT;
  fields.dstPort = s.dstPort ?? REMOTE_PORT;
  fields.seq = s.seq >>> 0;
  fields.ack = (s.ack ?? 0) >>> 0;
  fields.flags = s.flags;
  fields.window = s.window ?? 65535;
  if (s.mss !== undefined) fields.mss = s.mss;
  if (s.windowScale !== undefined) fields.windowScale = s.windowScale;
  fields.sackPermitted = s.sackPermitted ?? false;
  if (s.ts) {
    fields.hasTimestamp = true;
    fields.tsVal = s.ts[0];
    fields.tsEcr = s.ts[1];
  }
  if (s.sack) {
    fields.sackCount = s.sack.length;
    s.sack.forEach(([l, r], i) => {
      fields.sackBlocks[2 * i] = l;
      fields.sackBlocks[2 * i + 1] = r;
    });
  }
  const payload = s.payload ?? new Uint8Array(0);
  const hl = tcpHeaderLength(fields);
  const buf = new Uint8Array(hl + payload.length);
  emitTcpHeader(buf, 0, fields);
  buf.set(payload, hl);
  writeTcpChecksum(buf, 0, buf.length, src, dst);
  return buf;
}

export function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  // The state stays an int32 (| 0, not >>> 0): the same bytes, without a double per step.
  let x = seed | 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    b[i] = x >>> 24;
  }
  return b;
}

export interface Recorder {
  established: number;
  readable: number;
  writable: number;
  closed: string[];
}

/** Attach counting handlers to a connection. */
export function record(conn: TcpConnectionApi): Recorder {
  const r: Recorder = { established: 0, readable: 0, writable: 0, closed: [] };
  conn.onEstablished = () => r.established++;
  conn.onReadable = () => r.readable++;
  conn.onWritable = () => r.writable++;
  conn.onClosed = (reason) => r.closed.push(reason);
  return r;
}

export interface Harness {
  clock: VirtualClock;
  out: FakeOutput;
  layer: TcpLayer;
  connects: { flow: FlowAddrs; conn: TcpConnectionApi }[];
  /** Deliver a segment from the peer (PEER:PEER_PORT -> REMOTE:REMOTE_PORT by default). */
  peer(s: PeerSegment): void;
}

export function harness(
  opts: {
    bufferSize?: number;
    mss?: number;
    seed?: number;
    synTimeoutMs?: number;
    congestionControl?: "cubic" | "bbr" | "newreno";
    maxConnections?: number;
    finWait2TimeoutMs?: number;
    autotuneMaxBufferSize?: number;
    autotuneBudgetBytes?: number;
    /** Pacing (default off here: scripted tests place every segment by hand). */
    pacing?: boolean;
    /** Delayed ACK (default off here: scripted tests expect each turn's ACK at its end). */
    delayedAckMs?: number;
  } = {},
): Harness {
  const clock = new VirtualClock();
  const out = new FakeOutput();
  const connects: Harness["connects"] = [];
  const layer = new TcpLayer({
    output: out,
    clock,
    random: new SeededRandom(opts.seed ?? 7),
    log: silentLogger,
    mss4: opts.mss ?? 1420,
    mss6: (opts.mss ?? 1420) - 20,
    bufferSize: opts.bufferSize ?? 65536,
    onConnect: (flow, conn) => connects.push({ flow, conn }),
    synTimeoutMs: opts.synTimeoutMs,
    congestionControl: opts.congestionControl,
    maxConnections: opts.maxConnections,
    finWait2TimeoutMs: opts.finWait2TimeoutMs,
    autotuneMaxBufferSize: opts.autotuneMaxBufferSize,
    autotuneBudgetBytes: opts.autotuneBudgetBytes,
    pacing: opts.pacing ?? false,
    delayedAckMs: opts.delayedAckMs ?? 0,
  });
  return {
    clock,
    out,
    layer,
    connects,
    // Each delivered segment is one event-loop turn (tests that batch call layer.input and endTurn).
    peer: (s) => {
      layer.input(PEER, REMOTE, buildSegment(PEER, REMOTE, s));
      clock.endTurn();
    },
  };
}

export const PEER_ISS = 1000;

/**
 * Passive handshake: the peer's SYN (with the given options), accept(), the final ACK.
 * Returns the connection, our ISS and the SYN-ACK.
 */
export function establish(
  h: Harness,
  syn: Partial<PeerSegment> = { mss: 1460, windowScale: 7, sackPermitted: true },
): { conn: TcpConnectionApi; iss: number; synAck: Captured; rec: Recorder } {
  h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 65535, ...syn });
  const { conn } = h.connects[h.connects.length - 1]!;
  const rec = record(conn);
  conn.accept();
  const synAck = h.out.one();
  const iss = synAck.seq;
  const ackTs = syn.ts ? { ts: [syn.ts[0] + 1, synAck.options.tsVal] as [number, number] } : {};
  h.peer({ seq: PEER_ISS + 1, ack: iss + 1, flags: TCP_ACK, window: syn.window ?? 65535, ...ackTs });
  return { conn, iss, synAck, rec };
}

/**
 * A connection with SACK and window scale whose handshake took 20 ms (SRTT 20 ms, RTO 220 ms, PTO
 * 40 ms, min_RTT/4 = 5 ms), for loss-recovery tests: seg(i) is where full-size segment i starts,
 * ack(n, sack) the peer's ACK up to segment n with SACK blocks.
 */
export function sackConnection(cc?: "cubic" | "bbr") {
  const h = harness(cc ? { congestionControl: cc } : {});
  h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 65535, mss: 1460, windowScale: 7, sackPermitted: true });
  const { conn } = h.connects[0]!;
  conn.accept();
  const iss = h.out.one().seq;
  h.clock.advance(20);
  h.peer({ seq: PEER_ISS + 1, ack: iss + 1, flags: TCP_ACK, window: 65535 });
  const mss = 1420;
  const seg = (i: number) => (iss + 1 + i * mss) >>> 0;
  const ack = (n: number, sack?: [number, number][]) =>
    h.peer({ seq: PEER_ISS + 1, ack: seg(n), flags: TCP_ACK, window: 65535, ...(sack ? { sack } : {}) });
  const debug = () => (conn as unknown as { debug: { cwnd: number; rto: number; inRecovery: boolean } }).debug;
  return { h, conn, seg, ack, mss, debug };
}
