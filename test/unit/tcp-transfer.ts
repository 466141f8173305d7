/**
 * Two TcpLayers over an impaired link (delay, rate, loss, duplication, reordering; one VirtualClock),
 * each side's app writing and reading a bulk transfer: transfer() runs it to the end.
 */
import type { TcpConnectionApi } from "../../src/netstack/tcp/api.ts";
import { TcpLayer } from "../../src/netstack/tcp/layer.ts";
import type { IpAddr, IpOutput } from "../../src/netstack/types.ts";
import { ipHeaderLength } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { type Captured, PEER, parseSegment, REMOTE } from "./tcp-harness.ts";

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
    if (imp.drop?.(parseSegment(src, dst, tcp), index, this.clock.now())) {
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
    let holdFor = imp.hold ? imp.hold(parseSegment(src, dst, tcp), index) : 0;
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
