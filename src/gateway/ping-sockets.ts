import type { IpAddr } from "../netstack/types.ts";
import { closeFd, openEventFd, openPingSocket, sendTo, setHopLimit, signalEventFd, sockaddr } from "./ping-sys.ts";
import { type PingWorkerIn, type PingWorkerOut, pingWorkerMain } from "./ping-worker.ts";

/**
 * How the gateway sends echo requests to the real network and hears back: one ICMP datagram
 * socket per family. Injected into PingRelay so its translation logic is tested without sockets.
 */
export interface EchoTransport {
  /** Open the family's socket (once); null when it works, else why not (errno name). */
  open(family: 4 | 6): string | null;
  /** Send an ICMP echo request (header + data; the kernel sets the identifier and checksum). */
  send(family: 4 | 6, dst: IpAddr, hopLimit: number, icmp: Uint8Array): string | null;
  /** Echo replies: the sender and the ICMP message (our identifier and sequence number). */
  onReply: (family: 4 | 6, from: IpAddr, icmp: Uint8Array) => void;
  /** An ICMP error about one of our echoes: type/code in the family's numbering, the router, our echo. */
  onError: (family: 4 | 6, icmpType: number, icmpCode: number, offender: IpAddr | null, icmp: Uint8Array) => void;
  close(): void;
}

/**
 * The real EchoTransport: sockets opened on the main thread (so a refusal is known at once) and
 * sent on without blocking; a worker (ping-worker.ts) waits in poll() and posts what arrives.
 */
export class PingSockets implements EchoTransport {
  onReply: EchoTransport["onReply"] = () => {};
  onError: EchoTransport["onError"] = () => {};
  private readonly fds: Record<4 | 6, number> = { 4: -1, 6: -1 };
  private readonly hops: Record<4 | 6, number> = { 4: -1, 6: -1 };
  private worker: Worker | undefined;
  /** Messages for the worker until it says it is ready (its handler is set after an await). */
  private queued: PingWorkerIn[] | undefined = [];
  private eventFd = -1;
  private closed = false;

  open(family: 4 | 6): string | null {
    if (this.closed) return "closed";
    if (this.fds[family] >= 0) return null;
    const s = openPingSocket(family);
    if ("error" in s) return s.error;
    if (!this.worker) {
      this.eventFd = openEventFd();
      if (this.eventFd < 0) {
        closeFd(s.fd);
        return "eventfd failed";
      }
      this.worker = new Worker(workerUrl());
      this.worker.onmessage = (e: MessageEvent<PingWorkerOut>) => this.fromWorker(e.data);
      this.worker.unref();
      this.toWorker({ type: "start", eventFd: this.eventFd });
    }
    this.fds[family] = s.fd;
    this.toWorker({ type: "watch", fd: s.fd, family });
    return null;
  }

  send(family: 4 | 6, dst: IpAddr, hopLimit: number, icmp: Uint8Array): string | null {
    const fd = this.fds[family];
    if (this.closed || fd < 0) return "closed";
    if (this.hops[family] !== hopLimit) {
      const e = setHopLimit(fd, family, hopLimit);
      if (e) return e;
      this.hops[family] = hopLimit;
    }
    return sendTo(fd, icmp, sockaddr(dst));
  }

  /** The worker closes the sockets (it may be reading them); nothing is sent from here on. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.worker) this.toWorker({ type: "stop" });
    else for (const f of [4, 6] as const) if (this.fds[f] >= 0) closeFd(this.fds[f]);
  }

  private toWorker(m: PingWorkerIn): void {
    if (this.queued) {
      this.queued.push(m);
      return;
    }
    this.worker!.postMessage(m);
    signalEventFd(this.eventFd);
  }

  private fromWorker(m: PingWorkerOut): void {
    if (m.type === "ready") {
      const queued = this.queued ?? [];
      this.queued = undefined;
      for (const q of queued) this.toWorker(q);
      return;
    }
    if (m.type === "stopped") {
      this.worker?.terminate();
      this.worker = undefined;
      return;
    }
    if (this.closed) return;
    if (m.type === "reply") this.onReply(m.family, m.from, m.data);
    else this.onError(m.family, m.icmpType, m.icmpCode, m.offender, m.data);
  }
}

let blobUrl: string | undefined;

/** The worker's code as a blob URL (see ping-worker.ts: a compiled binary has no file for it). */
function workerUrl(): string {
  blobUrl ??= URL.createObjectURL(new Blob([`(${pingWorkerMain.toString()})()`], { type: "text/javascript" }));
  return blobUrl;
}
