import type { TcpCloseReason, TcpConnectionApi, TcpState } from "../../src/netstack/tcp/api.ts";
import type { FlowAddrs, IpAddr, NetstackApi, UnreachableKind } from "../../src/netstack/types.ts";

/** Test doubles for the gateway's unit tests: a netstack that records, a TCP connection with knobs. */

export interface SentUdp {
  flow: FlowAddrs;
  payload: Uint8Array;
}

export class FakeNetstack implements NetstackApi {
  readonly udp: SentUdp[] = [];
  readonly unreachable: { original: Uint8Array; kind: UnreachableKind }[] = [];
  private wake: (() => void) | undefined;

  sendUdp(flow: FlowAddrs, payload: Uint8Array): void {
    this.udp.push({
      flow: { src: flow.src.slice(), srcPort: flow.srcPort, dst: flow.dst.slice(), dstPort: flow.dstPort },
      payload: payload.slice(),
    });
    this.wake?.();
  }
  connectTcp(_flow: FlowAddrs): TcpConnectionApi {
    throw new Error("FakeNetstack.connectTcp is not used by these tests");
  }
  sendUnreachable(original: Uint8Array, kind: UnreachableKind): void {
    this.unreachable.push({ original: original.slice(), kind });
  }
  readonly echoReplies: { from: IpAddr; to: IpAddr; id: number; seq: number; data: Uint8Array }[] = [];
  sendEchoReply(from: IpAddr, to: IpAddr, id: number, seq: number, data: Uint8Array): void {
    this.echoReplies.push({ from: from.slice(), to: to.slice(), id, seq, data: data.slice() });
  }
  readonly icmpErrors: { original: Uint8Array; from: IpAddr; type: number; code: number }[] = [];
  forwardIcmpError(original: Uint8Array, from: IpAddr, type: number, code: number): void {
    this.icmpErrors.push({ original: original.slice(), from: from.slice(), type, code });
  }

  /** Wait until at least `count` datagrams were sent to the peer (rejects after timeoutMs). */
  async waitUdp(count: number, timeoutMs = 2000): Promise<SentUdp[]> {
    const deadline = performance.now() + timeoutMs;
    while (this.udp.length < count) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for ${count} datagrams (got ${this.udp.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.udp;
  }
}

/**
 * The application side of a TCP connection with the peer simulated by the test:
 * - peer -> app: peerSend() fills a receive buffer bounded by `bufferSize`; peerFin() ends it.
 * - app -> peer: write() accepts up to `writeChunkLimit` per call and up to `bufferSize` unacked;
 *   ack() frees it and calls onWritable; with autoAck the peer acks on the next macrotask.
 */
export class FakeConn implements TcpConnectionApi {
  state: TcpState = "SYN-RECEIVED";
  accepted = false;
  refused = false;
  /** Forgotten without a RST (dropSilently). */
  dropped = false;
  aborted = false;
  /** The peer's SYN sequence number, as the TCP layer reports it. */
  initialPeerSeq = 0;
  shutdownCalled = false;
  /** The FIN came with a write (write(data, true)), not from a later shutdown(). */
  finWithData = false;
  closedReason: TcpCloseReason | undefined;
  autoAck = true;
  writeChunkLimit = Number.POSITIVE_INFINITY;
  /** Everything written by the gateway (what the peer receives). */
  readonly delivered: Uint8Array[] = [];
  deliveredBytes = 0;
  /** Called after each write, e.g. to sample gateway stats. */
  onWrite: () => void = () => {};
  /** Test hook after the app's onEstablished (which the gateway owns). */
  afterEstablished: () => void = () => {};
  /** Called after consume() freed receive space (the test's sender refills). */
  onConsumed: () => void = () => {};

  private recv: Uint8Array[] = [];
  private recvBytes = 0;
  private recvFin = false;
  private unacked = 0;
  private wantWritable = false;
  private ackScheduled = false;

  onEstablished: () => void = () => {};
  onReadable: () => void = () => {};
  onWritable: () => void = () => {};
  onClosed: (reason: TcpCloseReason) => void = () => {};

  constructor(readonly bufferSize = 65536) {}

  accept(): void {
    this.accepted = true;
    // The peer's ACK of the SYN-ACK arrives later, as a separate event.
    setTimeout(() => {
      if (this.closedReason) return;
      this.state = "ESTABLISHED";
      this.onEstablished();
      this.afterEstablished();
    }, 1);
  }
  refuse(): void {
    this.refused = true;
    this.close("refused");
  }
  dropSilently(): void {
    this.dropped = true;
    this.close("refused");
  }

  peek(): Uint8Array {
    return this.recv[0] ?? new Uint8Array(0);
  }
  consume(n: number): void {
    while (n > 0) {
      const head = this.recv[0]!;
      const take = Math.min(n, head.length);
      if (take === head.length) this.recv.shift();
      else this.recv[0] = head.subarray(take);
      n -= take;
      this.recvBytes -= take;
    }
    this.onConsumed();
  }
  get readEof(): boolean {
    return this.recvFin && this.recvBytes === 0;
  }
  get receiveBuffered(): number {
    return this.recvBytes;
  }

  write(data: Uint8Array, fin = false): number {
    if (this.state !== "ESTABLISHED" && this.state !== "CLOSE-WAIT") return 0;
    if (this.shutdownCalled) throw new Error("write after shutdown");
    const n = Math.min(data.length, this.writeChunkLimit, this.bufferSize - this.unacked);
    if (n > 0) {
      this.delivered.push(data.slice(0, n));
      this.deliveredBytes += n;
      this.unacked += n;
    }
    if (fin && n === data.length) {
      this.finWithData = true;
      this.shutdownCalled = true;
    }
    if (n < data.length) this.wantWritable = true;
    if (this.autoAck) this.scheduleAck();
    this.onWrite();
    return n;
  }
  get sendBuffered(): number {
    return this.unacked;
  }
  shutdown(): void {
    this.shutdownCalled = true;
  }
  abort(): void {
    this.aborted = true;
    this.close("aborted");
  }

  // ---- the simulated peer ----

  /** Bytes from the peer; returns how many fit in the receive buffer. */
  peerSend(data: Uint8Array): number {
    const n = Math.min(data.length, this.bufferSize - this.recvBytes);
    if (n > 0) {
      this.recv.push(data.slice(0, n));
      this.recvBytes += n;
      this.onReadable();
    }
    return n;
  }
  peerFin(): void {
    this.recvFin = true;
    this.onReadable();
  }
  /** The peer acknowledged everything delivered so far. */
  ack(): void {
    this.unacked = 0;
    if (this.wantWritable) {
      this.wantWritable = false;
      this.onWritable();
    }
  }
  /** The whole connection finished the way the TCP layer reports it. */
  close(reason: TcpCloseReason): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    this.state = "CLOSED";
    this.onClosed(reason);
  }

  deliveredConcat(): Uint8Array {
    const out = new Uint8Array(this.deliveredBytes);
    let at = 0;
    for (const c of this.delivered) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  private scheduleAck(): void {
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => {
      this.ackScheduled = false;
      if (!this.closedReason) this.ack();
    });
  }
}

/** Resolve when `cond` holds, polling every few ms; reject after timeoutMs. */
export async function until(cond: () => boolean, timeoutMs = 3000, what = "condition"): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

export function v4(a: number, b: number, c: number, d: number): Uint8Array {
  return Uint8Array.of(a, b, c, d);
}
