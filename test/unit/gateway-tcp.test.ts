import { afterEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import type { Socket, TCPSocketListener } from "bun";
import { Gateway } from "../../src/gateway/gateway.ts";
import { MAX_SOCKET_READ } from "../../src/gateway/tcp-relay.ts";
import { type Clock, realClock, VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { blackhole } from "./blackhole.ts";
import { FakeConn, FakeNetstack, until, v4 } from "./gateway-fakes.ts";

const CLIENT = v4(10, 0, 0, 2);
const LOOPBACK = v4(127, 0, 0, 1);
const enc = new TextEncoder();
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Per accepted connection on the test server: what arrived, what to send, how it ended. */
interface ServerConn {
  socket: Socket<ServerConn>;
  received: Uint8Array[];
  receivedBytes: number;
  eof: boolean;
  closed: boolean;
  shortWrites: number;
  outQueue: Uint8Array[];
  endAfterQueue: boolean;
  /** Queue bytes to the gateway, honouring backpressure (drain). */
  send(data: Uint8Array, thenEnd?: boolean): void;
  concat(): Uint8Array;
}

function flush(c: ServerConn): void {
  while (c.outQueue.length > 0) {
    const head = c.outQueue[0]!;
    const n = c.socket.write(head, 0, head.length);
    if (n < head.length) {
      c.shortWrites++;
      c.outQueue[0] = head.subarray(Math.max(0, n));
      return;
    }
    c.outQueue.shift();
  }
  if (c.endAfterQueue) {
    c.endAfterQueue = false;
    c.socket.shutdown();
  }
}

function listen(onOpen: (c: ServerConn) => void = () => {}, onEof: (c: ServerConn) => void = () => {}) {
  const conns: ServerConn[] = [];
  const server: TCPSocketListener<ServerConn> = Bun.listen<ServerConn>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(socket) {
        const c: ServerConn = {
          socket,
          received: [],
          receivedBytes: 0,
          eof: false,
          closed: false,
          shortWrites: 0,
          outQueue: [],
          endAfterQueue: false,
          send(data, thenEnd = false) {
            c.outQueue.push(data);
            c.endAfterQueue ||= thenEnd;
            flush(c);
          },
          concat() {
            return Buffer.concat(c.received);
          },
        };
        socket.data = c;
        conns.push(c);
        onOpen(c);
      },
      data(socket, chunk) {
        socket.data.received.push(new Uint8Array(chunk));
        socket.data.receivedBytes += chunk.length;
      },
      drain(socket) {
        flush(socket.data);
      },
      end(socket) {
        socket.data.eof = true;
        onEof(socket.data);
      },
      close(socket, error) {
        // After our own shutdown(), Bun reports the other side's FIN as close, not end.
        if (!error) socket.data.eof = true;
        socket.data.closed = true;
      },
      error() {},
    },
  });
  return { server, conns };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanups.splice(0)) f();
});

function makeGateway(clock: Clock = realClock) {
  const gw = new Gateway({ netstack: new FakeNetstack(), clock, log: silentLogger, tcpBufferSize: 65535 });
  cleanups.push(() => gw.close());
  return gw;
}

function connect(gw: Gateway, port: number, conn: FakeConn, srcPort = 40000) {
  gw.onTcpConnect({ src: CLIENT, srcPort, dst: LOOPBACK, dstPort: port }, conn);
}

/** Push `data` into the fake connection as the gateway consumes it; FIN after the last byte. */
function peerStream(conn: FakeConn, data: Uint8Array, fin: boolean): void {
  let at = 0;
  const fill = () => {
    while (at < data.length) {
      const n = conn.peerSend(data.subarray(at, Math.min(data.length, at + 16384)));
      if (n === 0) return;
      at += n;
    }
    if (fin && at === data.length) {
      fin = false;
      conn.peerFin();
    }
  };
  conn.onConsumed = () => queueMicrotask(fill);
  fill();
}

describe("TCP bridge", () => {
  test("connection refused -> refuse() within 1 s, entry gone", async () => {
    const { server } = listen();
    const port = server.port;
    server.stop(true);
    const gw = makeGateway();
    const conn = new FakeConn();
    const t0 = performance.now();
    connect(gw, port, conn);
    expect(gw.stats().liveTcp).toBe(1);
    await until(() => conn.refused, 1000, "refuse()");
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(conn.accepted).toBe(false);
    expect(gw.stats()).toMatchObject({ liveTcp: 0, natEntriesCreated: 1, drops: { tcp_connect_refused: 1 } });
  });

  test("connect timeout -> the flow is dropped without a RST (ICMP instead); the connect is cancelled", async () => {
    const h = await blackhole();
    cleanups.push(() => h.close());
    const clock = new VirtualClock();
    const gw = makeGateway(clock);
    const conn = new FakeConn();
    connect(gw, h.port, conn);
    expect(conn.accepted).toBe(false);
    clock.advance(10_000);
    expect(conn.dropped).toBe(true);
    expect(conn.refused).toBe(false);
    expect(gw.stats()).toMatchObject({ liveTcp: 0, drops: { tcp_connect_timeout: 1, tcp_connect_cancelled: 1 } });
    await Bun.sleep(50);
    expect(conn.accepted).toBe(false);
  });

  test("a host that accepts inside connect(2): SYN-ACK in the same turn; what the peer sends before Bun's open reaches the host", async () => {
    const { server, conns } = listen();
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    // A loopback handshake completes inside connect(2) (the SYN-ACK is processed before the call
    // returns); a busy machine may defer it to ksoftirqd now and then, so allow a few tries.
    let conn: FakeConn | undefined;
    for (let i = 0; i < 20 && !conn; i++) {
      const c = new FakeConn();
      connect(gw, server.port, c, 41000 + i);
      if (c.accepted) conn = c;
    }
    if (!conn) throw new Error("no connect finished inside connect(2) in 20 tries");
    // Still in the same turn: Bun has not reported the open yet, the peer completes the handshake
    // and sends a request and its FIN at once.
    conn.state = "ESTABLISHED";
    conn.onEstablished();
    conn.peerSend(enc.encode("early bytes"));
    conn.peerFin();
    expect(gw.stats().drops).toEqual({});
    await until(() => conns.some((c) => c.eof && c.receivedBytes === 11), 3000, "bytes and FIN at the host");
    const at = conns.find((c) => c.eof && c.receivedBytes === 11)!;
    expect(new TextDecoder().decode(at.concat())).toBe("early bytes");
    at.send(enc.encode("reply"), true);
    await until(() => conn.shutdownCalled, 3000, "FIN to the peer");
    expect(new TextDecoder().decode(conn.deliveredConcat())).toBe("reply");
    expect(conn.aborted).toBe(false);
  });

  test("the peer resets before Bun reports an early-accepted connect open: the late host socket is closed", async () => {
    const { server, conns } = listen();
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    let conn: FakeConn | undefined;
    let tries = 0;
    while (tries < 20 && !conn) {
      const c = new FakeConn();
      connect(gw, server.port, c, 41100 + tries++);
      if (c.accepted) conn = c;
    }
    if (!conn) throw new Error("no connect finished inside connect(2) in 20 tries");
    conn.close("reset");
    await until(() => conns.length === tries && conns.at(-1)!.closed, 3000, "the late host socket closed");
    expect(gw.stats().drops).toMatchObject({ tcp_peer_reset: 1 });
    expect(gw.stats().liveTcp).toBe(tries - 1);
  });

  test("1 MiB each way byte-exact, peer FIN reaches the host, the host's reply after EOF reaches the peer", async () => {
    const fromPeer = new Uint8Array(randomBytes(1 << 20));
    const fromHost = new Uint8Array(randomBytes(1 << 20));
    const { server, conns } = listen(
      (c) => c.send(fromHost),
      (c) => c.send(enc.encode(`after-eof:${sha256(c.concat())}`), true),
    );
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    const conn = new FakeConn();
    conn.afterEstablished = () => peerStream(conn, fromPeer, true);
    connect(gw, server.port, conn);
    await until(() => conn.shutdownCalled, 10_000, "FIN to the peer");
    await until(() => conns[0]!.eof, 2000, "EOF at the host");
    const host = conns[0]!;
    expect(host.eof).toBe(true);
    expect(host.receivedBytes).toBe(fromPeer.length);
    expect(sha256(host.concat())).toBe(sha256(fromPeer));
    const tail = enc.encode(`after-eof:${sha256(fromPeer)}`);
    const delivered = conn.deliveredConcat();
    expect(delivered.length).toBe(fromHost.length + tail.length);
    expect(sha256(delivered.subarray(0, fromHost.length))).toBe(sha256(fromHost));
    expect(delivered.subarray(fromHost.length)).toEqual(tail);
    // The TCP layer reports the orderly close; everything is released.
    conn.close("closed");
    expect(gw.stats()).toMatchObject({ liveTcp: 0, bufferedBytes: 0 });
    await until(() => host.closed, 2000, "host socket closed");
    expect(conn.aborted).toBe(false);
  }, 20_000);

  test("request/response: the host socket is never paused (a pause costs epoll_ctl calls and a spurious wake-up)", async () => {
    const { server, conns } = listen();
    cleanups.push(() => server.stop(true));
    // Bun's TCP sockets share one prototype: count pause() on every socket but the server's.
    const probe = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data() {} } });
    const proto = Object.getPrototypeOf(probe) as { pause(): void };
    probe.end();
    let pauses = 0;
    const { pause } = proto;
    proto.pause = function (this: unknown) {
      if (!conns.some((c) => c.socket === this)) pauses++;
      pause.call(this);
    };
    cleanups.push(() => Object.assign(proto, { pause }));
    const gw = makeGateway();
    const conn = new FakeConn();
    conn.afterEstablished = () => conn.peerSend(enc.encode("GET / HTTP/1.0\r\n\r\n"));
    connect(gw, server.port, conn);
    await until(() => conns.length === 2 && conns[1]!.receivedBytes === 18, 3000, "request at the host");
    conns[1]!.send(enc.encode("HTTP/1.0 200 OK\r\n\r\nhello"), true);
    await until(() => conn.shutdownCalled, 3000, "FIN to the peer");
    expect(new TextDecoder().decode(conn.deliveredConcat())).toBe("HTTP/1.0 200 OK\r\n\r\nhello");
    // The host's FIN was queued behind the response when the gateway read it: it rides along.
    expect(conn.finWithData).toBe(process.platform === "linux");
    conn.peerFin();
    await until(() => conns[1]!.eof, 3000, "EOF at the host");
    expect(pauses).toBe(0);
  });

  test("only a flow's first host reads peek for a FIN: a long exchange's FIN comes on its own", async () => {
    const { server, conns } = listen();
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    const conn = new FakeConn();
    connect(gw, server.port, conn);
    await until(() => conn.state === "ESTABLISHED" && conns.length === 1, 3000, "established");
    const host = conns[0]!;
    // Six reads (20 ms apart), the FIN queued behind the last: past the peeking reads.
    for (let i = 0; i < 5; i++) {
      host.send(enc.encode(`part ${i};`));
      await until(() => conn.deliveredBytes === 7 * (i + 1), 3000, `part ${i}`);
      await Bun.sleep(20);
    }
    host.send(enc.encode("end"), true);
    await until(() => conn.shutdownCalled, 3000, "FIN to the peer");
    expect(new TextDecoder().decode(conn.deliveredConcat())).toBe("part 0;part 1;part 2;part 3;part 4;end");
    expect(conn.finWithData).toBe(false);
  });

  test("a host that speaks before the peer completes the handshake: its bytes wait, then arrive in order", async () => {
    const greeting = randomBytes(200_000);
    const { server } = listen((c) => c.send(greeting, true));
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    const conn = new FakeConn(16384);
    conn.autoAck = false;
    // The peer's ACK of the SYN-ACK comes late (FakeConn.accept), while the host already sent.
    connect(gw, server.port, conn);
    await until(() => conn.state === "ESTABLISHED", 3000, "established");
    for (let i = 0; i < 500 && conn.deliveredBytes < greeting.length; i++) {
      await Bun.sleep(2);
      conn.ack();
    }
    expect(conn.deliveredBytes).toBe(greeting.length);
    expect(sha256(conn.deliveredConcat())).toBe(sha256(greeting));
    await until(() => conn.shutdownCalled, 3000, "FIN to the peer");
  });

  test("host FIN first: the peer gets FIN, then its later data still reaches the host", async () => {
    const { server, conns } = listen((c) => c.send(enc.encode("bye"), true));
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    const conn = new FakeConn();
    connect(gw, server.port, conn);
    await until(() => conn.shutdownCalled, 3000, "FIN to the peer");
    expect(conn.deliveredConcat()).toEqual(enc.encode("bye"));
    conn.peerSend(enc.encode("still talking"));
    conn.peerFin();
    const host = conns[0]!;
    await until(() => host.eof, 3000, "EOF at the host");
    expect(host.concat()).toEqual(enc.encode("still talking"));
    conn.close("closed");
    expect(gw.stats().liveTcp).toBe(0);
    await until(() => host.closed, 2000, "host socket closed");
  });

  test("backpressure: a slow peer pauses the host socket; the gateway holds at most one read; all data arrives", async () => {
    const fromHost = new Uint8Array(randomBytes(8 << 20));
    const { server, conns } = listen((c) => c.send(fromHost, true));
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    const conn = new FakeConn(16384);
    conn.writeChunkLimit = 4096;
    let maxBuffered = 0;
    conn.onWrite = () => {
      maxBuffered = Math.max(maxBuffered, gw.stats().bufferedBytes);
    };
    connect(gw, server.port, conn);
    await until(() => conn.shutdownCalled, 30_000, "all data and FIN");
    expect(conn.deliveredBytes).toBe(fromHost.length);
    expect(sha256(conn.deliveredConcat())).toBe(sha256(fromHost));
    if (process.env.GATEWAY_TEST_DEBUG) console.log({ maxBuffered, shortWrites: conns[0]!.shortWrites });
    expect(maxBuffered).toBeGreaterThan(0);
    expect(maxBuffered).toBeLessThanOrEqual(MAX_SOCKET_READ);
    // The host's writes stalled: the gateway stopped reading instead of buffering 8 MiB.
    expect(conns[0]!.shortWrites).toBeGreaterThan(0);
    conn.close("closed");
    expect(gw.stats()).toMatchObject({ liveTcp: 0, bufferedBytes: 0 });
  }, 40_000);

  test("backpressure toward the host: a host that stops reading stops the gateway consuming", async () => {
    const fromPeer = new Uint8Array(randomBytes(16 << 20));
    const { server, conns } = listen((c) => c.socket.pause());
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    const conn = new FakeConn();
    let consumed = 0;
    conn.afterEstablished = () => {
      peerStream(conn, fromPeer, true);
      const refill = conn.onConsumed;
      conn.onConsumed = () => {
        consumed = fromPeer.length - conn.receiveBuffered;
        refill();
      };
    };
    connect(gw, server.port, conn);
    await until(() => conn.receiveBuffered === conn.bufferSize, 5000, "receive buffer full");
    await Bun.sleep(50);
    // Only what the kernel socket buffers hold left the receive buffer; nothing piles up in the gateway.
    const stalledAt = conn.receiveBuffered;
    expect(stalledAt).toBe(conn.bufferSize);
    expect(conns[0]!.receivedBytes).toBe(0);
    expect(gw.stats().bufferedBytes).toBe(0);
    conns[0]!.socket.resume();
    await until(() => conns[0]!.eof, 20_000, "all data at the host");
    expect(sha256(conns[0]!.concat())).toBe(sha256(fromPeer));
    expect(consumed).toBeGreaterThan(0);
    conn.close("closed");
  }, 30_000);

  test("host reset -> conn.abort(); peer reset -> host socket closed; counts back to 0", async () => {
    const { server, conns } = listen();
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    const a = new FakeConn();
    const b = new FakeConn();
    connect(gw, server.port, a, 40001);
    connect(gw, server.port, b, 40002);
    await until(() => conns.length === 2 && a.state === "ESTABLISHED" && b.state === "ESTABLISHED");
    expect(gw.stats().liveTcp).toBe(2);
    const [hostA, hostB] = [conns[0]!, conns[1]!];
    hostA.socket.terminate();
    await until(() => a.aborted || b.aborted, 3000, "abort after host reset");
    const [resetOne, otherOne] = a.aborted ? [a, b] : [b, a];
    expect(resetOne.aborted).toBe(true);
    expect(gw.stats().liveTcp).toBe(1);
    otherOne.close("reset");
    expect(gw.stats().liveTcp).toBe(0);
    await until(() => hostB.closed || hostA.closed, 3000, "host socket closed after peer reset");
    await until(() => conns.every((c) => c.closed), 3000, "all host sockets closed");
    expect(gw.stats().drops).toMatchObject({ tcp_peer_reset: 1 });
  });

  test("gateway.close() aborts live connections and closes their host sockets", async () => {
    const { server, conns } = listen();
    cleanups.push(() => server.stop(true));
    const gw = makeGateway();
    const conn = new FakeConn();
    connect(gw, server.port, conn);
    await until(() => conn.state === "ESTABLISHED" && conns.length === 1);
    gw.close();
    expect(conn.aborted).toBe(true);
    expect(gw.stats().liveTcp).toBe(0);
    await until(() => conns[0]!.closed, 3000, "host socket closed");
    const late = new FakeConn();
    connect(gw, server.port, late);
    expect(late.refused).toBe(true);
  });
});
