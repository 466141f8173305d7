import type { SocketHandler } from "bun";
import type { TcpConnectionApi } from "../netstack/tcp/api.ts";
import type { FlowAddrs, UnreachableKind } from "../netstack/types.ts";
import type { Timer } from "../util/clock.ts";
import { LOG_LEVELS } from "../util/log.ts";
import type { FlowTicket } from "./budget.ts";
import { cancelPendingConnect, nextFd, type PendingConnectFd, probeConnect } from "./host-fds.ts";
import { synQuote } from "./icmp-quote.ts";
import { formatIp } from "./ip-text.ts";
import { type HostSocket, relayHandlers, TcpRelay, type TcpRelayDeps } from "./tcp-relay.ts";

export interface TcpBridgeDeps extends TcpRelayDeps {
  connectTimeoutMs: number;
  /** netstack.sendUnreachable: an ICMP error to the peer quoting (a rebuilt copy of) its SYN. */
  sendUnreachable?(original: Uint8Array, kind: UnreachableKind): void;
  /**
   * Whether the process is out of file descriptors now (Bun reports a connect that failed for
   * EMFILE as ECONNREFUSED; this tells them apart).
   */
  fdsExhausted?(): boolean;
  /** A rate-limited warning (the key groups lines). */
  warn?(key: string, line: () => string): void;
}

/** Host connect errors answered with an ICMP unreachable (quoting the SYN) instead of a RST. */
const CONNECT_UNREACHABLE: Record<string, UnreachableKind> = {
  EHOSTUNREACH: "host",
  ENETUNREACH: "net",
  ETIMEDOUT: "host",
  EHOSTDOWN: "host",
};

/** One TCP flow from the peer, bridged to a host socket made with Bun.connect. */
export class TcpBridge extends TcpRelay {
  private readonly connectTimer: Timer;
  private flow: FlowAddrs | undefined;
  /** The connecting socket's descriptor, so a connect we give up on can be cancelled. */
  private pendingFd: PendingConnectFd | undefined;
  /**
   * The kernel finished the host handshake inside connect(2), so the peer got its SYN-ACK at once;
   * Bun's open (the socket to write to) follows at its next poll.
   */
  private acceptedEarly = false;

  constructor(
    key: string,
    conn: TcpConnectionApi,
    private readonly bridgeDeps: TcpBridgeDeps,
  ) {
    super(key, conn, bridgeDeps);
    this.connectTimer = bridgeDeps.clock.timer(() => this.connectTimedOut());
  }

  /**
   * Start the host-side connect; the peer gets its SYN-ACK (or RST / ICMP unreachable) when it
   * resolves.
   */
  start(flow: FlowAddrs, ticket?: FlowTicket): void {
    this.flow = flow;
    this.ticket = ticket;
    this.connecting = true;
    this.connectTimer.set(this.bridgeDeps.connectTimeoutMs);
    let connecting: Promise<HostSocket>;
    const fd = nextFd();
    try {
      connecting = Bun.connect<TcpRelay>({
        hostname: formatIp(flow.dst),
        port: flow.dstPort,
        allowHalfOpen: true,
        data: this,
        // The types only know the default "buffer" binary type; the handlers take plain Uint8Arrays.
        socket: connectHandlers as unknown as SocketHandler<TcpRelay>,
      });
    } catch (e) {
      this.ticket?.release();
      this.connectFailed(e);
      return;
    }
    // Failures are handled in connectError; this only keeps the rejection from being unhandled.
    connecting.catch(() => {});
    const probe = probeConnect(fd);
    if (probe !== undefined) this.hostFd = fd;
    if (probe === "established") this.acceptEarly();
    else this.pendingFd = probe;
  }

  /**
   * The host accepted already: SYN-ACK the peer in this turn instead of one poll later. Until Bun's
   * open hands over the socket, `connecting` stays set, so the peer's bytes wait in the receive
   * buffer; a failure Bun reports meanwhile resets the peer like any host reset.
   */
  private acceptEarly(): void {
    this.acceptedEarly = true;
    this.ticket?.settled();
    this.connectTimer.clear();
    this.conn.accept();
  }

  /**
   * Refuse before any host connect: the descriptor budget is spent. ICMP administratively
   * prohibited quoting the SYN (not a RST: nothing refused the connection).
   */
  refuseOverBudget(flow: FlowAddrs): void {
    this.flow = flow;
    this.connecting = true;
    this.giveUp("admin");
  }

  /** The budget needs this pending connect's slot for a newer one: give it up. */
  evict(): void {
    if (!this.connecting || this.acceptedEarly) return;
    this.deps.drops.count("tcp_connect_evicted");
    this.deps.log.debug(`Gave up connecting upstream TCP for ${this.key} to make room for newer connects`);
    this.giveUp("admin");
  }

  /** Bun closed the connecting socket without opening it: the descriptor is free. */
  hostConnectSettled(): void {
    this.pendingFd = undefined;
    this.ticket?.release();
  }

  hostOpened(sock: HostSocket): void {
    this.pendingFd = undefined;
    this.ticket?.settled();
    if (!this.connecting || this.connClosed) {
      // The connect timed out, the peer went away or the gateway closed meanwhile.
      sock.terminate();
      return;
    }
    this.connecting = false;
    this.connectTimer.clear();
    this.sock = sock;
    // Reads stay on: a host that speaks before the peer completes the handshake has its first read
    // kept in `pending` and the socket paused then (hostData). Pausing every flow up front cost two
    // epoll_ctl calls, a spurious writable wake-up and a TCP_CORK per connection.
    if (this.deps.log.level >= LOG_LEVELS.debug) this.deps.log.debug(`Connected to upstream TCP for ${this.key}`);
    if (this.acceptedEarly) this.hostSocketReady();
    else this.conn.accept();
  }

  hostConnectError(error: Error): void {
    this.hostConnectSettled();
    if (!this.connecting || this.connClosed) return;
    if (this.acceptedEarly) {
      // The peer has its SYN-ACK: this is a host reset now, not a refusal.
      this.connecting = false;
      this.hostSocketClosed(error);
      return;
    }
    this.connectFailed(error);
  }

  protected override releaseTimers(): void {
    this.connectTimer.cancel();
  }

  /** Gateway shutdown: a connect under way is cancelled too. */
  override close(): void {
    this.cancelHostConnect();
    super.close();
  }

  /**
   * Close the descriptor of a connect we no longer wait for, instead of leaving it in SYN-SENT for
   * the kernel's whole retry time. Bun then reports a connect error (ignored: not connecting).
   */
  private cancelHostConnect(): void {
    const p = this.pendingFd;
    if (!this.connecting || !p) return;
    this.pendingFd = undefined;
    if (cancelPendingConnect(p)) this.deps.drops.count("tcp_connect_cancelled");
  }

  /** The host never answered: ICMP host unreachable to the peer, then forget the flow. */
  private connectTimedOut(): void {
    if (!this.connecting) return;
    this.deps.log.debug(`Failed to connect to upstream TCP for ${this.key}: timed out`);
    this.deps.drops.count("tcp_connect_timeout");
    this.giveUp("host");
  }

  private connectFailed(error: unknown): void {
    let code = (error as { code?: string })?.code ?? String(error);
    // Bun reports a connect that failed for lack of descriptors as ECONNREFUSED.
    if (code === "ECONNREFUSED" && this.bridgeDeps.fdsExhausted?.()) code = "EMFILE";
    this.deps.log.debug(`Failed to connect to upstream TCP for ${this.key}: ${code}`);
    if (code === "EMFILE" || code === "ENFILE") {
      // Our own shortage, not the destination's answer: never report it as "refused".
      this.deps.drops.count(`tcp_connect_${code}`);
      this.bridgeDeps.warn?.(
        "tcp-emfile",
        () => `Out of file descriptors (${code}): TCP ${this.key} answered "administratively prohibited"`,
      );
      this.giveUp("admin");
      return;
    }
    const kind = CONNECT_UNREACHABLE[code];
    this.deps.drops.count(
      code === "ECONNREFUSED" ? "tcp_connect_refused" : kind ? "tcp_connect_unreachable" : "tcp_connect_failed",
    );
    this.giveUp(kind);
  }

  /**
   * End a connect that failed. Refused (or an unknown error): RST. Unreachable or timed out: an ICMP
   * unreachable quoting the SYN, and the half-open connection is forgotten without a RST (which
   * would turn "no route to host" into "connection refused" at a peer that ignores ICMP).
   */
  private giveUp(kind: UnreachableKind | undefined): void {
    this.cancelHostConnect();
    this.ticket?.settled();
    this.connecting = false;
    this.connectTimer.clear();
    this.connClosed = true;
    if (kind && this.flow && this.bridgeDeps.sendUnreachable) {
      this.bridgeDeps.sendUnreachable(synQuote(this.flow, this.conn.initialPeerSeq), kind);
      this.conn.dropSilently();
    } else this.conn.refuse();
    this.finish();
  }
}

const connectHandlers: SocketHandler<TcpRelay, "uint8array"> = {
  ...relayHandlers,
  open: (s) => (s.data as TcpBridge).hostOpened(s as HostSocket),
  connectError: (s, e) => (s.data as TcpBridge).hostConnectError(e),
};
