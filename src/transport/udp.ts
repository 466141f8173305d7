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
 * - UDP GSO (Linux UDP_SEGMENT, gso.ts): runs of equal-size datagrams to one endpoint leave as one
 *   super-datagram each, which the kernel splits back. Where the kernel has no UDP_SEGMENT, or
 *   refuses a GSO send (EINVAL/EIO) that then goes through without it, the socket goes on without
 *   GSO; nothing is lost. No GRO on receive: Bun's data callback does not pass the UDP_GRO control
 *   message (the segment size), so a coalesced receive could not be split back.
 */
import { type Endpoint, formatEndpoint, unmapV4 } from "../util/endpoint.ts";
import { LOG_LEVELS, type Logger, silentLogger } from "../util/log.ts";
import { GsoBatcher, GsoControl, type SendArgs } from "./gso.ts";
import { getSocketBuffer, setSocketBuffer, setUdpSegment, socketFd } from "./sockopt.ts";
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
  /**
   * UDP GSO where the kernel offers it (default on; the environment variable WGSLIRPY_GSO=0 makes
   * the default off).
   */
  gso?: boolean;
  /** @internal tests: stands in for setsockopt(fd, SOL_UDP, UDP_SEGMENT, size). */
  setSegmentSize?: (fd: number, size: number) => boolean;
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
  /** 1 while UDP GSO may be used: asked for, offered by the kernel, not refused since. */
  gsoEnabled: number;
  /** The socket's UDP_SEGMENT now (0 = none). */
  gsoSegmentSize: number;
  /** Super-datagrams sent (each carried 2 or more datagrams). */
  gsoBatches: number;
  /** Datagrams sent inside super-datagrams (also in datagramsOut). */
  gsoSegments: number;
  /** The kernel refused GSO sends that went through without it, so GSO was turned off (0 or 1). */
  gsoRefused: number;
  /** The reusable buffer super-datagrams are built in (at most 4 MiB). */
  gsoBufferBytes: number;
}

/** Stats that describe the socket now rather than count: not summed by inheritStats. */
const STATE_KEYS: ReadonlySet<keyof UdpTransportStats> = new Set(["gsoEnabled", "gsoSegmentSize", "gsoBufferBytes"]);

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
    gsoEnabled: 0,
    gsoSegmentSize: 0,
    gsoBatches: 0,
    gsoSegments: 0,
    gsoRefused: 0,
    gsoBufferBytes: 0,
  };

  /** Flat sendMany argument list: data, port, address, data, port, address, ... */
  private queue: SendArgs = [];
  private queued = 0;
  private scheduled = false;
  private congested = false;
  private closedFlag = false;
  private readonly maxQueued: number;
  private readonly flushBound = () => this.flush();
  private readonly gso: GsoControl;
  private readonly batch = new GsoBatcher();

  /** @internal use openUdpTransport */
  constructor(
    private readonly socket: BunUdpSocket,
    private readonly log: Logger,
    buffers: { rcv: number; snd: number },
    maxQueued: number,
    gso?: { fd: number; available: boolean; set: (fd: number, size: number) => boolean },
  ) {
    this.local = { address: socket.address.address, port: socket.address.port };
    this.receiveBufferBytes = buffers.rcv;
    this.sendBufferBytes = buffers.snd;
    this.maxQueued = maxQueued;
    this.gso = new GsoControl(gso?.fd ?? -1, gso?.available ?? false, gso?.set ?? (() => false), this.stats, log);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Take over the counters of the socket this one replaces (wg set listen-port): they stay cumulative. */
  inheritStats(from: UdpTransportStats): void {
    for (const k of Object.keys(this.stats) as (keyof UdpTransportStats)[]) {
      if (!STATE_KEYS.has(k)) this.stats[k] += from[k];
    }
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
    const total = this.queued;
    const regrouped = this.gso.enabled ? this.batch.regroup(this.queue, total) : null;
    if (regrouped) this.queue = regrouped;
    const q = this.queue;
    this.gso.beginFlush(q, total);
    let head = 0;
    // After sendMany throws (it validates every argument before sending anything, so one bad
    // port rejects the whole batch) the rest of this flush goes one message at a time.
    let single = false;
    // Bounded: every iteration advances head or breaks, except one that turns GSO off (at most
    // once per flush: the segment size only becomes non-zero at the start of a flush).
    while (head < total) {
      const g = this.gso.segmentSize;
      // This round's messages: the queue itself, or with GSO super-datagrams built from it.
      let args: SendArgs;
      let k: number;
      if (!single) {
        let count: number;
        if (g === 0) {
          args = head === 0 ? q : q.slice(head * 3);
          count = total - head;
        } else {
          count = this.batch.build(q, head, total, g, total);
          args = this.batch.args;
        }
        try {
          const n = this.socket.sendMany(args);
          this.stats.flushes++;
          head += this.countSent(q, head, n, g);
          if (n >= count) continue;
          // The next message failed or the socket would block: try it alone.
          k = n;
        } catch {
          single = true;
          k = 0;
        }
      } else if (g === 0) {
        args = q;
        k = head;
      } else {
        this.batch.build(q, head, total, g, 1);
        args = this.batch.args;
        k = 0;
      }
      const carried = g === 0 ? 1 : (this.batch.segments[k] as number);
      let ok: boolean;
      try {
        ok = this.socket.send(args[k * 3] as Uint8Array, args[k * 3 + 1] as number, args[k * 3 + 2] as string);
      } catch (e) {
        if (this.gso.failed(e, g)) {
          // UDP_SEGMENT is cleared: the same datagrams get one more chance (sendMany again).
          single = false;
          continue;
        }
        for (let i = 0; i < carried; i++) this.sendFailed(q, head + i, e);
        head += carried;
        continue;
      }
      if (!ok) {
        // Kernel send buffer full: keep the rest for the drain event.
        this.congested = true;
        break;
      }
      head += this.countSent(q, head, 1, g, k);
    }
    this.batch.clear();
    this.stats.gsoBufferBytes = this.batch.bufferBytes;
    if (head >= total) {
      q.length = 0;
      this.queued = 0;
    } else {
      this.queue = q.slice(head * 3);
      this.queued = total - head;
    }
  }

  /**
   * Count `n` messages sent, from message `first` of the last build (with GSO) or one datagram each
   * (without), the first carrying q[from]. Returns the datagrams they carried.
   */
  private countSent(q: SendArgs, from: number, n: number, g: number, first = 0): number {
    let datagrams = n;
    if (g !== 0) {
      datagrams = 0;
      const segs = this.batch.segments;
      for (let m = first; m < first + n; m++) {
        const c = segs[m] as number;
        datagrams += c;
        if (c > 1) {
          this.stats.gsoBatches++;
          this.stats.gsoSegments += c;
        }
      }
    }
    if (datagrams > 0) this.gso.sent(g);
    this.stats.datagramsOut += datagrams;
    let bytes = 0;
    for (let i = from; i < from + datagrams; i++) bytes += (q[i * 3] as Uint8Array).byteLength;
    this.stats.bytesOut += bytes;
    return datagrams;
  }

  private sendFailed(q: SendArgs, i: number, e: unknown): void {
    this.stats.sendErrors++;
    if (this.stats.sendErrors <= 10 || this.log.level >= LOG_LEVELS.debug) {
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
    if (this.log.level >= LOG_LEVELS.debug)
      this.log.debug(`udp socket error: ${e instanceof Error ? e.message : String(e)}`);
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
  // Probe UDP_SEGMENT (0 = off) so /stats says from the start whether GSO can be used.
  const setSegment = opts.setSegmentSize ?? setUdpSegment;
  const gsoWanted = opts.gso ?? process.env.WGSLIRPY_GSO !== "0";
  const gsoAvailable = gsoWanted && fd >= 0 && setSegment(fd, 0);
  transport = new UdpTransport(socket, log, { rcv, snd }, opts.maxQueued ?? DEFAULT_MAX_QUEUED, {
    fd,
    available: gsoAvailable,
    set: setSegment,
  });
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
    `udp transport bound ${formatEndpoint(t.local)} fd=${fd} SO_RCVBUF=${rcv} (asked ${wantRcv}) SO_SNDBUF=${snd} (asked ${wantSnd}) GSO=${gsoAvailable ? "on" : gsoWanted ? "unavailable" : "off"}`,
  );
  return t;
}
