/**
 * The outer UDP socket: one Bun.udpSocket carrying the tunnel's datagrams.
 *
 * - SO_RCVBUF/SO_SNDBUF are raised through bun:ffi on the socket's fd (Bun has no option for it;
 *   see sockopt.ts). When that is impossible (no fd, no libc) the transport still works with the
 *   kernel defaults and says so in a warning: bursts beyond ~90 full-size datagrams then drop.
 * - send() queues; the queue is flushed once per event-loop poll with sendMany (setImmediate), so a
 *   burst produced while handling one poll's input leaves in one syscall batch.
 * - A socket bound to "::" is dual-stack: IPv4 senders appear as ::ffff:a.b.c.d and are reported
 *   as plain a.b.c.d, so the same peer has one spelling whichever way the socket was bound.
 * - Send errors are counted, never thrown; on EAGAIN the rest waits for the socket's drain event.
 */
import { type Endpoint, formatEndpoint, unmapV4 } from "../util/endpoint.ts";
import { type Logger, silentLogger } from "../util/log.ts";
import { getSocketBuffer, setSocketBuffer, socketFd } from "./sockopt.ts";
import type { DatagramTransport } from "./types.ts";

export const DEFAULT_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Datagrams held while the socket is congested (waiting for drain) before new sends drop. */
export const DEFAULT_MAX_QUEUED = 8192;

export interface UdpTransportOptions {
  /** SO_RCVBUF to request (default 4 MiB). */
  receiveBufferBytes?: number;
  /** SO_SNDBUF to request (default 4 MiB). */
  sendBufferBytes?: number;
  /** Queue bound while waiting for drain (default 8192 datagrams). */
  maxQueued?: number;
  log?: Logger;
}

export interface UdpTransportStats {
  datagramsIn: number;
  bytesIn: number;
  datagramsOut: number;
  bytesOut: number;
  /** Datagrams the OS refused (bad address, EMSGSIZE, unreachable, ...). */
  sendErrors: number;
  /** Datagrams dropped because the queue was full while the socket was congested. */
  queueDrops: number;
  /** ICMP unreachable reports (ECONNREFUSED) for earlier sends, as the socket's error queue gives them. */
  unreachable: number;
  /** Other asynchronous socket errors. */
  socketErrors: number;
  /** Datagrams received truncated (larger than Bun's receive buffer). */
  truncated: number;
  /** sendMany batches issued. */
  flushes: number;
}

type BunUdpSocket = Bun.udp.Socket<"uint8array">;

export class UdpTransport implements DatagramTransport {
  onDatagram: (data: Uint8Array, from: Endpoint) => void = () => {};
  readonly local: Endpoint;
  /** Effective SO_RCVBUF / SO_SNDBUF as the kernel reports them (-1 = could not be read). */
  readonly receiveBufferBytes: number;
  readonly sendBufferBytes: number;
  readonly stats: UdpTransportStats = {
    datagramsIn: 0,
    bytesIn: 0,
    datagramsOut: 0,
    bytesOut: 0,
    sendErrors: 0,
    queueDrops: 0,
    unreachable: 0,
    socketErrors: 0,
    truncated: 0,
    flushes: 0,
  };

  /** Flat sendMany argument list: data, port, address, data, port, address, ... */
  private queue: (Uint8Array | number | string)[] = [];
  private queued = 0;
  private scheduled = false;
  private congested = false;
  private closedFlag = false;
  private readonly maxQueued: number;
  private readonly flushBound = () => this.flush();

  /** @internal use openUdpTransport */
  constructor(
    private readonly socket: BunUdpSocket,
    private readonly log: Logger,
    buffers: { rcv: number; snd: number },
    maxQueued: number,
  ) {
    this.local = { address: socket.address.address, port: socket.address.port };
    this.receiveBufferBytes = buffers.rcv;
    this.sendBufferBytes = buffers.snd;
    this.maxQueued = maxQueued;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Take over the counters of the socket this one replaces (wg set listen-port): they stay cumulative. */
  inheritStats(from: UdpTransportStats): void {
    for (const k of Object.keys(this.stats) as (keyof UdpTransportStats)[]) this.stats[k] += from[k];
  }

  /** Datagrams waiting for the next flush. */
  get pending(): number {
    return this.queued;
  }

  send(data: Uint8Array, to: Endpoint): void {
    if (this.closedFlag) return;
    if (this.queued >= this.maxQueued) {
      this.stats.queueDrops++;
      return;
    }
    this.queue.push(data, to.port, to.address);
    this.queued++;
    if (!this.scheduled && !this.congested) {
      this.scheduled = true;
      setImmediate(this.flushBound);
    }
  }

  /** Send everything queued now (normally called once per poll by setImmediate). */
  flush(): void {
    this.scheduled = false;
    if (this.closedFlag || this.queued === 0) return;
    const q = this.queue;
    const total = this.queued;
    let head = 0;
    // After sendMany throws (it validates every argument before sending anything, so one bad
    // port rejects the whole batch) the rest of this flush goes one datagram at a time.
    let single = false;
    // Bounded: every iteration advances head or breaks.
    while (head < total) {
      if (!single) {
        try {
          const n = this.socket.sendMany(head === 0 ? q : q.slice(head * 3));
          this.stats.flushes++;
          this.countSent(q, head, n);
          head += n;
          if (head >= total) break;
        } catch {
          single = true;
        }
      }
      // A short count or a throw: the next datagram failed or the socket would block. Try it alone.
      let ok: boolean;
      try {
        ok = this.socket.send(q[head * 3] as Uint8Array, q[head * 3 + 1] as number, q[head * 3 + 2] as string);
      } catch (e) {
        this.sendFailed(q, head, e);
        head++;
        continue;
      }
      if (!ok) {
        // Kernel send buffer full: keep the rest for the drain event.
        this.congested = true;
        break;
      }
      this.countSent(q, head, 1);
      head++;
    }
    if (head >= total) {
      q.length = 0;
      this.queued = 0;
    } else {
      this.queue = q.slice(head * 3);
      this.queued = total - head;
    }
  }

  private countSent(q: (Uint8Array | number | string)[], from: number, n: number): void {
    this.stats.datagramsOut += n;
    let bytes = 0;
    for (let i = from; i < from + n; i++) bytes += (q[i * 3] as Uint8Array).byteLength;
    this.stats.bytesOut += bytes;
  }

  private sendFailed(q: (Uint8Array | number | string)[], i: number, e: unknown): void {
    this.stats.sendErrors++;
    if (this.stats.sendErrors <= 10 || this.log.level >= 4) {
      const to = { address: q[i * 3 + 2] as string, port: q[i * 3 + 1] as number };
      this.log.debug(`udp send to ${safeFormat(to)} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** @internal socket handler */
  onDrain(): void {
    if (!this.congested) return;
    this.congested = false;
    this.flush();
  }

  /** @internal socket handler */
  onError(e: unknown): void {
    const code = (e as { code?: unknown } | undefined)?.code;
    if (code === "ECONNREFUSED") this.stats.unreachable++;
    else this.stats.socketErrors++;
    if (this.log.level >= 4) this.log.debug(`udp socket error: ${e instanceof Error ? e.message : String(e)}`);
  }

  close(): void {
    if (this.closedFlag) return;
    // Last chance for anything queued this poll (e.g. a final keepalive).
    if (!this.congested) this.flush();
    this.closedFlag = true;
    this.queue = [];
    this.queued = 0;
    this.socket.close();
  }
}

function safeFormat(e: Endpoint): string {
  return typeof e.address === "string" && typeof e.port === "number" ? formatEndpoint(e) : String(e.address);
}

/**
 * Bind the outer UDP socket. `bind.address` must be an IP literal ("0.0.0.0", "::" for dual-stack).
 * Rejects with the OS error (e.g. EADDRINUSE) when binding fails.
 */
export async function openUdpTransport(bind: Endpoint, opts: UdpTransportOptions = {}): Promise<UdpTransport> {
  const log = opts.log ?? silentLogger;
  let transport: UdpTransport | undefined;
  // Set before the socket can deliver anything: data() runs only from a later poll.
  let deliver: (data: Uint8Array, port: number, address: string, truncated: boolean) => void = () => {};
  const socket = await Bun.udpSocket({
    hostname: bind.address,
    port: bind.port,
    binaryType: "uint8array",
    socket: {
      data(_s, data, port, address, flags) {
        deliver(data, port, address, flags.truncated);
      },
      drain() {
        transport?.onDrain();
      },
      // Bun 1.4.4 calls error(err) with `this` = the socket, although its types say (socket, err).
      error(a: unknown, b?: unknown) {
        transport?.onError(a instanceof Error ? a : b);
      },
    },
  });
  const fd = socketFd(socket);
  const wantRcv = opts.receiveBufferBytes ?? DEFAULT_SOCKET_BUFFER_BYTES;
  const wantSnd = opts.sendBufferBytes ?? DEFAULT_SOCKET_BUFFER_BYTES;
  let rcv = -1;
  let snd = -1;
  if (fd >= 0) {
    rcv = setSocketBuffer(fd, "rcv", wantRcv);
    snd = setSocketBuffer(fd, "snd", wantSnd);
    if (rcv < 0) rcv = getSocketBuffer(fd, "rcv");
    if (snd < 0) snd = getSocketBuffer(fd, "snd");
  }
  if (rcv < 0) {
    log.warn("could not raise the UDP receive buffer (no socket fd or libc via bun:ffi); bursts may drop");
  } else if (rcv < wantRcv) {
    // Linux reports twice what it grants; anything below the request means a sysctl cap.
    log.warn(`UDP receive buffer is ${rcv} bytes (asked ${wantRcv}); raise net.core.rmem_max for bursty peers`);
  }
  transport = new UdpTransport(socket, log, { rcv, snd }, opts.maxQueued ?? DEFAULT_MAX_QUEUED);
  const t = transport;
  const dualStack = t.local.address.includes(":");
  const stats = t.stats;
  deliver = (data, port, address, truncated) => {
    if (t.closed) return;
    stats.datagramsIn++;
    stats.bytesIn += data.byteLength;
    if (truncated) {
      stats.truncated++;
      return;
    }
    t.onDatagram(data, { address: dualStack ? unmapV4(address) : address, port });
  };
  log.debug(
    `udp transport bound ${formatEndpoint(t.local)} fd=${fd} SO_RCVBUF=${rcv} (asked ${wantRcv}) SO_SNDBUF=${snd} (asked ${wantSnd})`,
  );
  return t;
}
