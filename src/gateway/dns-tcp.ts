import type { TcpConnectionApi } from "../netstack/tcp/api.ts";
import type { IpAddr } from "../netstack/types.ts";
import type { Clock, Timer } from "../util/clock.ts";
import type { DnsServer } from "./dns-server.ts";
import type { DropCounter } from "./drops.ts";

/**
 * DNS over TCP on the `-D` address (RFC 7766 / RFC 1035 §4.2.2): each message has a 2-byte length
 * prefix; a connection carries any number of queries, answered as they complete (possibly out of
 * order, §6.2.1.1), at most `maxPipelined` at once (reading pauses beyond that, so the peer's
 * window closes). The connection closes after `idleTimeoutMs` with no query outstanding
 * (§6.2.3), after the peer's FIN once every answer is written, or at once on a bad length.
 */

export const DNS_TCP_IDLE_MS = 10_000;
const MAX_PIPELINED = 16;
/** Answers waiting for send-buffer space; beyond this the connection is aborted. */
const MAX_PENDING_BYTES = 256 * 1024;

export interface DnsTcpDeps {
  clock: Clock;
  drops: DropCounter;
  server: DnsServer;
  onClosed(session: DnsTcpSession): void;
  idleTimeoutMs?: number;
}

export class DnsTcpSession {
  private outstanding = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private readonly idle: Timer;
  private closed = false;
  private readonly idleTimeoutMs: number;

  constructor(
    private readonly conn: TcpConnectionApi,
    private readonly peer: IpAddr,
    private readonly deps: DnsTcpDeps,
  ) {
    this.idleTimeoutMs = deps.idleTimeoutMs ?? DNS_TCP_IDLE_MS;
    this.idle = deps.clock.timer(() => this.conn.shutdown());
    conn.onEstablished = () => this.idle.set(this.idleTimeoutMs);
    conn.onReadable = () => this.read();
    conn.onWritable = () => this.flush();
    conn.onClosed = () => this.finish();
    conn.accept();
  }

  /** Reset the connection (gateway shutdown). */
  close(): void {
    if (this.closed) return;
    this.conn.abort();
    this.finish();
  }

  private read(): void {
    if (this.closed) return;
    for (;;) {
      if (this.outstanding >= MAX_PIPELINED) return;
      const data = this.conn.peek();
      if (data.length < 2) break;
      const length = (data[0]! << 8) | data[1]!;
      if (length < 12) {
        // Not a DNS message: nothing sensible can follow on this stream.
        this.deps.drops.count("dns_tcp_bad_length");
        this.close();
        return;
      }
      // An incomplete message waits for more; the idle timer ends a stream that stalls here.
      if (data.length < 2 + length) break;
      const msg = data.slice(2, 2 + length);
      this.conn.consume(2 + length);
      this.outstanding++;
      this.idle.clear();
      let answered = false;
      this.deps.server.answer(this.peer, msg, true, (reply) => {
        if (answered) return;
        answered = true;
        this.outstanding--;
        this.write(reply);
        this.afterAnswer();
      });
      if (this.closed) return;
    }
    if (this.conn.readEof && this.outstanding === 0 && this.pendingBytes === 0) this.conn.shutdown();
  }

  private afterAnswer(): void {
    if (this.closed) return;
    // Reading may have paused at the pipelining limit; the peer may also have sent FIN meanwhile.
    this.read();
    if (this.outstanding === 0 && !this.conn.readEof) this.idle.set(this.idleTimeoutMs);
  }

  private write(reply: Uint8Array): void {
    if (this.closed) return;
    const framed = new Uint8Array(reply.length + 2);
    framed[0] = reply.length >> 8;
    framed[1] = reply.length & 0xff;
    framed.set(reply, 2);
    if (this.pendingBytes + framed.length > MAX_PENDING_BYTES) {
      this.deps.drops.count("dns_tcp_backlog");
      this.close();
      return;
    }
    this.pending.push(framed);
    this.pendingBytes += framed.length;
    this.flush();
  }

  private flush(): void {
    while (this.pending.length > 0 && !this.closed) {
      const head = this.pending[0]!;
      const n = this.conn.write(head);
      this.pendingBytes -= n;
      if (n < head.length) {
        this.pending[0] = head.subarray(n);
        return;
      }
      this.pending.shift();
    }
    if (this.conn.readEof && this.outstanding === 0 && this.pendingBytes === 0) this.conn.shutdown();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.idle.clear();
    this.pending = [];
    this.pendingBytes = 0;
    this.deps.onClosed(this);
  }
}
