/**
 * Test harness for the TCP layer: a fake IpOutput that captures and parses every emitted segment,
 * a builder for the peer's segments (checksummed), and a TcpLayer set up with a VirtualClock.
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
    const v = new TcpView(tcp);
    const options = new TcpOptions();
    const err = v.options(options);
    if (err) throw new Error(`emitted bad options: ${err}`);
    this.sent.push({
      src: a.src,
      dst: a.dst,
      srcPort: v.srcPort,
      dstPort: v.dstPort,
      seq: v.seq,
      ack: v.ack,
      flags: v.flags,
      window: v.window,
      options,
      payload: v.payload.slice(),
      tcp: tcp.slice(),
    });
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

// ---------------------------------------------------------------- two layers over an impaired link

export interface Impairment {
  /** Probability a packet is lost. */
  loss?: number;
  /** Probability a packet is delivered twice. */
  duplicate?: number;
  /** Probability a packet is held back behind 1..reorderDepth later packets. */
  reorder?: number;
  reorderDepth?: number;
  /** One-way delay (ms). */
  delayMs?: number;
  /** Bottleneck rate (bytes per ms); packets queue behind it. Infinite when absent. */
  rateBytesPerMs?: number;
  /** Drop-tail bound of the bottleneck queue in bytes (default 64 KiB). */
  queueBytes?: number;
  /** Scripted loss: return true to drop this packet (index = packets sent on this link so far). */
  drop?: (seg: Captured, index: number, now: number) => boolean;
  /** Deliver in batches: arrival times rounded up to a multiple of this (interrupt coalescing, GRO). */
  batchMs?: number;
  /** Scripted reordering: how many later packets overtake this one (0 = none). */
  hold?: (seg: Captured, index: number) => number;
}

interface Queued {
  at: number;
  src: IpAddr;
  dst: IpAddr;
  tcp: Uint8Array;
}

/** One direction of a link: a FIFO with delay, rate, loss, duplication and reordering, one timer. */
export class ImpairedLink implements IpOutput {
  target!: TcpLayer;
  sent = 0;
  delivered = 0;
  dropped = 0;
  duplicated = 0;
  reordered = 0;
  queueDrops = 0;
  private allocated: Uint8Array | undefined;
  private allocatedSrc: IpAddr = PEER;
  private allocatedDst: IpAddr = PEER;
  private readonly q: Queued[] = [];
  private readonly held: { left: number; p: Queued }[] = [];
  private lastDepart = 0;
  private readonly timer;
  private readonly flushTimer;

  constructor(
    private readonly clock: VirtualClock,
    private readonly rng: SeededRandom,
    private readonly imp: Impairment = {},
  ) {
    this.timer = clock.timer(() => this.run());
    this.flushTimer = clock.timer(() => {
      for (const h of this.held.splice(0)) this.deliver(h.p);
    });
  }

  // The layer sends each packet right after allocating it (emitSegment), so the addresses of the
  // one allocated packet are kept in fields: a WeakMap entry per packet cost more than the TCP.
  allocate(src: IpAddr, dst: IpAddr, _protocol: number, payloadLength: number): Uint8Array {
    const buf = new Uint8Array(ipHeaderLength(src) + payloadLength);
    this.allocated = buf;
    this.allocatedSrc = src;
    this.allocatedDst = dst;
    return buf;
  }

  send(packet: Uint8Array): void {
    if (packet !== this.allocated) throw new Error("sent a packet other than the one just allocated");
    this.allocated = undefined;
    const src = this.allocatedSrc;
    const dst = this.allocatedDst;
    const tcp = packet.subarray(ipHeaderLength(src));
    const index = this.sent++;
    const imp = this.imp;
    if (imp.drop?.(parse(src, dst, tcp), index, this.clock.now())) {
      this.dropped++;
      return;
    }
    if (imp.loss && this.rng.float() < imp.loss) {
      this.dropped++;
      return;
    }
    const now = this.clock.now();
    let at = now;
    if (imp.rateBytesPerMs) {
      if ((this.lastDepart - now) * imp.rateBytesPerMs > (imp.queueBytes ?? 65536)) {
        this.dropped++;
        this.queueDrops++;
        return;
      }
      at = Math.max(now, this.lastDepart) + packet.length / imp.rateBytesPerMs;
      this.lastDepart = at;
    }
    at += imp.delayMs ?? 0;
    if (imp.batchMs) at = Math.ceil(at / imp.batchMs) * imp.batchMs;
    let holdFor = imp.hold ? imp.hold(parse(src, dst, tcp), index) : 0;
    if (holdFor === 0 && imp.reorder && this.rng.float() < imp.reorder)
      holdFor = 1 + Math.floor(this.rng.float() * (imp.reorderDepth ?? 2));
    const p = { at, src, dst, tcp };
    if (holdFor > 0) {
      this.reordered++;
      (p as Queued & { hold?: number }).hold = holdFor;
    }
    this.q.push(p);
    if (imp.duplicate && this.rng.float() < imp.duplicate) {
      this.duplicated++;
      this.q.push({ at, src, dst, tcp });
    }
    if (this.timer.deadline < 0) this.timer.setAt(this.q[0]!.at);
  }

  private run(): void {
    const now = this.clock.now();
    let n = 0;
    while (n < this.q.length && this.q[n]!.at <= now) {
      const p = this.q[n++]! as Queued & { hold?: number };
      if (p.hold) {
        this.held.push({ left: p.hold, p });
        // Released behind later packets, or after 20 ms if nothing follows.
        this.flushTimer.set(20);
        continue;
      }
      this.deliver(p);
      for (let i = 0; i < this.held.length; i++) {
        const h = this.held[i]!;
        if (--h.left === 0) {
          this.held.splice(i--, 1);
          this.deliver(h.p);
        }
      }
    }
    this.q.splice(0, n);
    if (this.held.length === 0) this.flushTimer.clear();
    if (this.q.length > 0) this.timer.setAt(this.q[0]!.at);
  }

  private deliver(p: Queued): void {
    this.delivered++;
    this.target.input(p.src, p.dst, p.tcp);
  }
}

function parse(src: IpAddr, dst: IpAddr, tcp: Uint8Array): Captured {
  const v = new TcpView(tcp);
  const options = new TcpOptions();
  v.options(options);
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

export interface TransferSide {
  conn?: TcpConnectionApi;
  toSend: Uint8Array;
  sent: number;
  received: Uint8Array;
  receivedLen: number;
  eof: boolean;
  closed: string[];
  /** Virtual time the last byte arrived. */
  doneAt: number;
}

/** Pseudo-random bulk data, four bytes per step of the generator (bytes() takes one step a byte). */
function bulkBytes(n: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = seed | 0;
  for (let i = 0; i < words.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, n);
}

function side(sendSize: number, receiveSize: number, seed: number): TransferSide {
  return {
    toSend: bulkBytes(sendSize, seed),
    sent: 0,
    received: new Uint8Array(receiveSize),
    receivedLen: 0,
    eof: false,
    closed: [],
    doneAt: -1,
  };
}

/** App logic: write as the buffer allows, read everything, shut down after the last byte. */
function drive(e: TransferSide, conn: TcpConnectionApi, clock: VirtualClock): void {
  e.conn = conn;
  const pump = () => {
    while (e.sent < e.toSend.length) {
      const n = conn.write(e.toSend.subarray(e.sent));
      e.sent += n;
      if (n === 0) return;
    }
    conn.shutdown();
  };
  conn.onEstablished = pump;
  conn.onWritable = pump;
  conn.onReadable = () => {
    for (let chunk = conn.peek(); chunk.length > 0; chunk = conn.peek()) {
      e.received.set(chunk, e.receivedLen);
      e.receivedLen += chunk.length;
      conn.consume(chunk.length);
    }
    if (e.receivedLen === e.received.length && e.doneAt < 0) e.doneAt = clock.now();
    if (conn.readEof) e.eof = true;
  };
  conn.onClosed = (r) => e.closed.push(r);
}

/** Byte-wise equality without copying (Buffer.from of a Uint8Array copies it). */
export function sameBytes(x: Uint8Array, y: Uint8Array): boolean {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
}

export interface TransferOptions {
  /** Bytes A sends to B and B sends to A. */
  sizeAtoB: number;
  sizeBtoA: number;
  seed: number;
  aToB?: Impairment;
  bToA?: Impairment;
  bufferSize?: number;
  mss?: number;
  congestionControl?: "cubic" | "bbr" | "newreno";
  /** SACK offered by A and B (default true). */
  sack?: boolean;
  /** Stop after this much virtual time (ms). */
  limitMs?: number;
  /** Autotune both layers' buffers from bufferSize up to this (0/absent: fixed). */
  autotuneMaxBufferSize?: number;
  autotuneBudgetBytes?: number;
  /** Pacing in both layers (default on, as in the gateway). */
  pacing?: boolean;
}

export function transfer(o: TransferOptions) {
  const clock = new VirtualClock();
  const rng = new SeededRandom(o.seed);
  const aToB = new ImpairedLink(clock, rng, o.aToB);
  const bToA = new ImpairedLink(clock, rng, o.bToA);
  const a = side(o.sizeAtoB, o.sizeBtoA, o.seed * 3 + 1);
  const b = side(o.sizeBtoA, o.sizeAtoB, o.seed * 5 + 2);
  const common = {
    clock,
    log: silentLogger,
    mss4: o.mss ?? 1420,
    mss6: (o.mss ?? 1420) - 20,
    bufferSize: o.bufferSize ?? 1 << 20,
    congestionControl: o.congestionControl,
    sack: o.sack,
    autotuneMaxBufferSize: o.autotuneMaxBufferSize,
    autotuneBudgetBytes: o.autotuneBudgetBytes,
    pacing: o.pacing,
  };
  const layerA = new TcpLayer({
    ...common,
    output: aToB,
    random: new SeededRandom(o.seed + 1),
    onConnect: () => {
      throw new Error("A never accepts");
    },
  });
  const layerB = new TcpLayer({
    ...common,
    output: bToA,
    random: new SeededRandom(o.seed + 2),
    onConnect: (_flow, conn) => {
      drive(b, conn, clock);
      conn.accept();
    },
  });
  aToB.target = layerB;
  bToA.target = layerA;
  drive(a, layerA.connect({ src: REMOTE, srcPort: 8080, dst: PEER, dstPort: 50000 }), clock);
  const limit = o.limitMs ?? 600_000;
  for (let steps = 0; steps < 5_000_000; steps++) {
    const t = clock.nextDeadline();
    if (t < 0 || t > limit) break;
    clock.runUntil(t);
  }
  const intact =
    a.receivedLen === o.sizeBtoA &&
    b.receivedLen === o.sizeAtoB &&
    sameBytes(a.received, b.toSend) &&
    sameBytes(b.received, a.toSend);
  /** Virtual time until both directions had every byte. */
  const doneAt = Math.max(a.doneAt, b.doneAt);
  return { a, b, layerA, layerB, clock, aToB, bToA, intact, doneAt };
}
