import type { Socket, SocketHandler } from "bun";
import type { TcpCloseReason, TcpConnectionApi } from "../netstack/tcp/api.ts";
import type { Clock } from "../util/clock.ts";
import { LOG_LEVELS, type Logger } from "../util/log.ts";
import type { FlowTicket } from "./budget.ts";
import type { DropCounter } from "./drops.ts";
import { finQueued } from "./host-fds.ts";
import type { NatEntry } from "./nat-table.ts";
/**
 * A TCP flow between the peer and a host socket, in either direction (see TcpRelay).
 *
 * Backpressure both ways without copying in the common case:
 * - peer -> host: bytes stay in the TCP receive buffer until the host socket takes them
 *   (peek / write / consume); a short write waits for drain, and the unread receive buffer closes
 *   the peer's window.
 * - host -> peer: each chunk Bun reads goes straight into conn.write(); what does not fit is kept
 *   as `pending` and the host socket is paused until conn.onWritable drains it. `pending` is at most
 *   one socket read (Bun reads up to 512 KiB at a time, plus one already under way when we paused),
 *   because reads stop at once. It holds views of Bun's read buffers, not copies: Bun hands every
 *   read in an ArrayBuffer of its own and never reuses it (measured on Bun 1.4.4; a test in
 *   gateway-tcp-pending.test.ts fails if that changes), so host bytes are copied once, into the TCP
 *   send buffer.
 *
 * Half-close both ways: the peer's FIN becomes shutdown() on the host socket once every byte before
 * it was written; the host's FIN becomes conn.shutdown() once `pending` is empty. Either side keeps
 * relaying the other direction meanwhile.
 */

/** The largest chunk one Bun socket read delivers: the bound on `pending`, measured on Bun 1.4.4. */
export const MAX_SOCKET_READ = 512 * 1024;

export interface TcpRelayDeps {
  clock: Clock;
  log: Logger;
  drops: DropCounter;
  /** Called once when the flow is completely over (both sides closed). */
  onFinished(relay: TcpRelay): void;
}

export type HostSocket = Socket<TcpRelay>;

/**
 * The first host reads of a flow peek for a FIN behind them (request-response exchanges end
 * within a few reads); a bulk download, read after read, would pay a syscall each (measured +8 %
 * CPU-s/GiB when every read peeked).
 */
const FIN_PEEK_READS = 4;

/**
 * The relay between one TCP connection with the peer and one host socket, shared by both
 * directions of flow: TcpBridge (the peer connects out, we Bun.connect) and ReverseTcpBridge (a host
 * client connects to a -t listener, we connect into the tunnel). Subclasses only differ in how the
 * two ends come to exist; everything after (data, backpressure, half-close, teardown) is here.
 */
export abstract class TcpRelay implements NatEntry {
  readonly kind = "tcp";
  protected sock: HostSocket | undefined;
  /** The host socket's descriptor when known (-1: not): lets hostData see a FIN queued behind it. */
  protected hostFd = -1;
  /** Host reads left that may peek for a FIN (short exchanges gain; bulk reads must not pay). */
  private finPeeks = FIN_PEEK_READS;
  /** Host bytes the peer's send buffer did not take yet, oldest first: views of Bun's reads. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Outgoing only: the host connect is under way (the peer waits in SYN-RECEIVED). */
  protected connecting = false;
  private established = false;
  /** The host socket waits for drain before taking more peer bytes. */
  private awaitingDrain = false;
  /** We sent FIN to the host (the peer's FIN was relayed). */
  private hostWriteShut = false;
  /** The host sent FIN; relay it to the peer after `pending`. */
  private hostEof = false;
  /** We called conn.shutdown() (FIN to the peer). */
  private peerWriteShut = false;
  protected hostClosed = false;
  protected connClosed = false;
  private finished = false;
  /** The flow's claim on the descriptor budget, released when the host socket is closed. */
  protected ticket: FlowTicket | undefined;

  constructor(
    readonly key: string,
    protected readonly conn: TcpConnectionApi,
    protected readonly deps: TcpRelayDeps,
  ) {
    conn.onEstablished = () => this.onEstablished();
    conn.onReadable = () => this.pumpToHost();
    conn.onWritable = () => this.flushToPeer();
    conn.onClosed = (reason) => this.onConnClosed(reason);
  }

  bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Tear the flow down now (gateway shutdown): RST to the peer, abortive close of the host socket. */
  close(): void {
    if (this.finished) return;
    // Mark first: the reset we send must not be counted as the peer's in onConnClosed.
    const wasClosed = this.connClosed;
    this.connClosed = true;
    if (this.connecting) {
      this.connecting = false;
      this.conn.refuse();
    } else if (!wasClosed) this.conn.abort();
    this.terminateHost();
    this.finish();
  }

  /** Bun closed the host socket (its close event): the descriptor is free. */
  hostFdClosed(): void {
    this.ticket?.release();
  }

  // ---- host socket events (called through the socket handlers) ----

  hostData(chunk: Uint8Array): void {
    if (this.connClosed) return;
    let rest = chunk;
    if (this.pendingBytes === 0 && this.established) {
      // A FIN right behind these bytes leaves in their segment, not one Bun poll (and packet) later.
      const fin = this.hostFd >= 0 && this.finPeeks-- > 0 && !this.hostEof && finQueued(this.hostFd);
      const n = this.conn.write(chunk, fin);
      if (n >= chunk.length) {
        if (fin) this.hostEnded();
        return;
      }
      rest = chunk.subarray(n);
    }
    // A view, not a copy: Bun never reuses a read's buffer (see the top of the file). A read
    // already under way when we paused lands here too, queued behind the earlier bytes.
    this.pending.push(rest);
    this.pendingBytes += rest.length;
    this.sock?.pause();
  }

  hostDrained(): void {
    this.awaitingDrain = false;
    this.pumpToHost();
  }

  hostEnded(): void {
    // Seen early by hostData's peek: Bun's own report of the same EOF follows.
    if (this.hostEof) return;
    if (this.deps.log.level >= LOG_LEVELS.debug) this.deps.log.debug(`EOF from host for ${this.key}`);
    this.hostEof = true;
    this.flushToPeer();
  }

  hostSocketClosed(error: Error | undefined): void {
    if (this.hostClosed) return;
    this.hostClosed = true;
    this.sock = undefined;
    if (this.connClosed) {
      this.finish();
      return;
    }
    if (error) {
      this.deps.log.debug(`Host TCP socket for ${this.key} failed: ${error.message}`);
      this.deps.drops.count("tcp_host_reset");
      this.connClosed = true;
      this.conn.abort();
      this.finish();
      return;
    }
    // Closed without error: treat it as the host's FIN; what the peer still sends cannot be
    // delivered anymore, so pumpToHost resets the peer if more arrives.
    this.hostEof = true;
    this.flushToPeer();
    this.pumpToHost();
  }

  // ---- connection events ----

  private onEstablished(): void {
    this.established = true;
    this.connectionEstablished();
    if (this.pendingBytes === 0 && !this.hostEof) this.sock?.resume();
    this.flushToPeer();
    this.pumpToHost();
  }

  /** Hook for subclasses (logging). */
  protected connectionEstablished(): void {}

  /** The host socket arrived after the peer was accepted: move what the peer sent meanwhile. */
  protected hostSocketReady(): void {
    if (this.established) this.pumpToHost();
  }

  /** Peer -> host: hand the TCP receive buffer to the host socket until it is empty or full. */
  private pumpToHost(): void {
    if (this.connClosed || this.hostWriteShut || this.connecting) return;
    const sock = this.sock;
    if (!sock) {
      if (this.conn.peek().length > 0) {
        // The host socket is gone; acknowledging more would lose the bytes. Reset instead.
        this.deps.drops.count("tcp_host_closed");
        this.connClosed = true;
        this.conn.abort();
        this.finish();
      }
      return;
    }
    if (this.awaitingDrain) return;
    for (;;) {
      const chunk = this.conn.peek();
      if (chunk.length === 0) break;
      const n = sock.write(chunk, 0, chunk.length);
      if (n > 0) this.conn.consume(n);
      if (n < chunk.length) {
        this.awaitingDrain = true;
        return;
      }
    }
    if (this.conn.readEof) {
      if (this.deps.log.level >= LOG_LEVELS.debug) this.deps.log.debug(`EOF from client for ${this.key}`);
      this.hostWriteShut = true;
      sock.shutdown();
      this.maybeCloseHost();
    }
  }

  /** Host -> peer: move `pending` into the send buffer; then resume reads or relay the host's FIN. */
  private flushToPeer(): void {
    if (this.connClosed || !this.established) return;
    const pending = this.pending;
    while (pending.length > 0) {
      const head = pending[0]!;
      const n = this.conn.write(head);
      this.pendingBytes -= n;
      if (n < head.length) {
        if (n > 0) pending[0] = head.subarray(n);
        return;
      }
      pending.shift();
    }
    if (this.hostEof) {
      if (!this.peerWriteShut) {
        this.peerWriteShut = true;
        this.conn.shutdown();
        this.maybeCloseHost();
      }
      return;
    }
    this.sock?.resume();
  }

  /** Both FINs relayed: the host socket has nothing more to do; close it fully. */
  private maybeCloseHost(): void {
    if (this.hostWriteShut && this.peerWriteShut && this.sock) this.sock.end();
  }

  private onConnClosed(reason: TcpCloseReason): void {
    if (this.connClosed) {
      this.finish();
      return;
    }
    this.connClosed = true;
    if (this.deps.log.level >= LOG_LEVELS.debug)
      this.deps.log.debug(`Client TCP connection ${this.key} closed: ${reason}`);
    if (reason === "closed") {
      // Graceful: both FINs went through; let the host socket close normally.
      this.sock?.end();
    } else {
      if (reason !== "refused") this.deps.drops.count(`tcp_peer_${reason}`);
      this.terminateHost();
    }
    this.finish();
  }

  protected terminateHost(): void {
    const sock = this.sock;
    this.sock = undefined;
    this.hostClosed = true;
    sock?.terminate();
  }

  /** Hook for subclasses: release their own timers. */
  protected releaseTimers(): void {}

  protected finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.releaseTimers();
    this.pending = [];
    this.pendingBytes = 0;
    // The host socket closes on its own after end(); its close event is then ignored.
    this.deps.onFinished(this);
  }
}

/**
 * Shared by every relay: Bun passes the relay as socket.data, so no closures per connection.
 * open/connectError are the outgoing connect's; a listener supplies its own open.
 */
export const relayHandlers: SocketHandler<TcpRelay, "uint8array"> = {
  binaryType: "uint8array",
  data: (s, d) => s.data.hostData(d),
  drain: (s) => s.data.hostDrained(),
  end: (s) => s.data.hostEnded(),
  close: (s, e) => {
    s.data.hostFdClosed();
    s.data.hostSocketClosed(e);
  },
  // Called when a handler threw: the flow's state is unknown, so close it abortively.
  error: (s, e) => {
    s.terminate();
    s.data.hostFdClosed();
    s.data.hostSocketClosed(e);
  },
};
