/**
 * A client for in-process end-to-end tests: our own WireGuard initiator (or a GUE link) over real
 * loopback UDP plus our own netstack/TCP as the "peer" side, talking to a gateway started with
 * startGateway(). Its stack also accepts TCP connections inside the tunnel (reverse forwards).
 * (Real Linux peers are exercised by test/interop; this one needs no root.)
 */
import { GueTunnel } from "../../src/gue/tunnel.ts";
import type { IpLink } from "../../src/link.ts";
import { Netstack } from "../../src/netstack/stack.ts";
import type { TcpConnectionApi } from "../../src/netstack/tcp/api.ts";
import { TcpLayer } from "../../src/netstack/tcp/layer.ts";
import type { FlowAddrs } from "../../src/netstack/types.ts";
import { openUdpTransport, type UdpTransport } from "../../src/transport/udp.ts";
import { realClock } from "../../src/util/clock.ts";
import type { Endpoint } from "../../src/util/endpoint.ts";
import { silentLogger } from "../../src/util/log.ts";
import { cryptoRandom } from "../../src/util/random.ts";
import { checksum } from "../../src/wire/checksum.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { WireGuardTunnel } from "../../src/wireguard/tunnel.ts";

export const CLIENT_V4 = "10.0.2.15";
export const CLIENT_V6 = "fd00::15";

export interface UdpReceived {
  flow: FlowAddrs;
  payload: Uint8Array;
}

export interface Accepted {
  flow: FlowAddrs;
  conn: TcpConnectionApi;
}

export class TestClient {
  readonly udpReceived: UdpReceived[] = [];
  /** Every packet received from the gateway, and every packet the client's stack sent (copies). */
  readonly rawReceived: Uint8Array[] = [];
  readonly rawSent: Uint8Array[] = [];
  /** TCP connections the gateway opened toward the client (reverse forwards). */
  readonly accepted: Accepted[] = [];
  /** Decides each incoming SYN: return true to accept. Default: accept everything. */
  acceptFilter: (flow: FlowAddrs) => boolean = () => true;
  /** Called with each accepted connection before its handshake completes (set handlers here). */
  onAccept: (a: Accepted) => void = () => {};
  /** The client's inner addresses (an enrolled peer has its own pair). */
  source = { v4: CLIENT_V4, v6: CLIENT_V6 };
  private nextPort = 40000;

  private constructor(
    readonly transport: UdpTransport,
    readonly tunnel: WireGuardTunnel | GueTunnel,
    readonly stack: Netstack,
    readonly tcp: TcpLayer,
  ) {}

  /** WireGuard when keys are given, else a GUE (raw IP over UDP) client. */
  static async connect(opts: {
    privateKey?: Uint8Array;
    gatewayPublicKey?: Uint8Array;
    gateway: Endpoint;
    mtu?: number;
    bufferSize?: number;
  }): Promise<TestClient> {
    const transport = await openUdpTransport({ address: "127.0.0.1", port: 0 });
    const tunnel =
      opts.privateKey && opts.gatewayPublicKey
        ? new WireGuardTunnel({
            privateKey: opts.privateKey,
            peerPublicKey: opts.gatewayPublicKey,
            endpoint: opts.gateway,
            transport,
            clock: realClock,
            random: cryptoRandom,
            log: silentLogger,
          })
        : new GueTunnel({ transport, peer: opts.gateway, clock: realClock, log: silentLogger });
    const mtu = opts.mtu ?? 1420;
    // Tap the link so tests see raw packets (ICMP replies and errors) as well.
    const tap: IpLink = {
      send: (p) => {
        client?.rawSent.push(p.slice());
        tunnel.send(p);
      },
      onPacket: () => {},
    };
    let client: TestClient | undefined;
    tunnel.onPacket = (p) => {
      client?.rawReceived.push(p.slice());
      tap.onPacket(p);
    };
    const stack = new Netstack({
      link: tap,
      mtu,
      clock: realClock,
      log: silentLogger,
      handlers: {
        onTcpConnect: (_flow, conn) => conn.refuse(),
        onUdp: (flow, payload) =>
          client?.udpReceived.push({
            flow: { src: flow.src.slice(), srcPort: flow.srcPort, dst: flow.dst.slice(), dstPort: flow.dstPort },
            payload: payload.slice(),
          }),
        onEchoRequest: () => false,
      },
    });
    const tcp = new TcpLayer({
      output: stack.output,
      clock: realClock,
      random: cryptoRandom,
      log: silentLogger,
      mss4: mtu - 40,
      mss6: mtu - 60,
      bufferSize: opts.bufferSize ?? 1 << 20,
      onConnect: (flow, conn) => {
        if (!client?.acceptFilter(flow)) {
          conn.refuse();
          return;
        }
        const a = { flow, conn };
        client.accepted.push(a);
        client.onAccept(a);
        conn.accept();
      },
    });
    stack.setTcp(tcp);
    client = new TestClient(transport, tunnel, stack, tcp);
    tunnel.start();
    return client;
  }

  /** Wait for the WireGuard handshake to complete. */
  async handshake(timeoutMs = 5000): Promise<void> {
    const t = this.tunnel;
    if (t instanceof GueTunnel) return;
    await until(() => t.stats.handshakesCompleted > 0, timeoutMs, "handshake");
  }

  private srcFor(dst: string): Uint8Array {
    return parseIp(dst.includes(":") ? this.source.v6 : this.source.v4)!;
  }

  /** Open a TCP connection through the gateway; resolves when established or rejects on close. */
  tcpConnect(dst: string, port: number, timeoutMs = 5000): Promise<TcpConnectionApi> {
    const conn = this.tcp.connect({
      src: this.srcFor(dst),
      srcPort: this.nextPort++,
      dst: parseIp(dst)!,
      dstPort: port,
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcp connect ${dst}:${port} timed out`)), timeoutMs);
      conn.onEstablished = () => {
        clearTimeout(timer);
        resolve(conn);
      };
      conn.onClosed = (reason) => {
        clearTimeout(timer);
        reject(new Error(`tcp connect ${dst}:${port} closed: ${reason}`));
      };
    });
  }

  udpSend(dst: string, port: number, payload: Uint8Array, srcPort = 50000): void {
    this.stack.sendUdp({ src: this.srcFor(dst), srcPort, dst: parseIp(dst)!, dstPort: port }, payload);
  }

  /** A datagram with explicit addresses (e.g. a reply from inside the tunnel). */
  udpSendFlow(flow: FlowAddrs, payload: Uint8Array): void {
    this.stack.sendUdp(flow, payload);
  }

  /** Send an ICMPv4 echo request (IPv4 only here; v6 pings are covered by interop tests). */
  ping(dst: string, id: number, seq: number, data: Uint8Array): void {
    const src = this.srcFor(dst);
    const d = parseIp(dst)!;
    const len = 8 + data.length;
    const buf = this.stack.output.allocate(src, d, 1, len);
    const off = 20;
    buf[off] = 8;
    buf[off + 1] = 0;
    buf[off + 4] = id >> 8;
    buf[off + 5] = id & 0xff;
    buf[off + 6] = seq >> 8;
    buf[off + 7] = seq & 0xff;
    buf.set(data, off + 8);
    const c = checksum(buf, off, len);
    buf[off + 2] = c >> 8;
    buf[off + 3] = c & 0xff;
    this.stack.output.send(buf);
  }

  close(): void {
    this.tcp.close();
    this.stack.close();
    this.tunnel.close();
    this.transport.close();
  }
}

/** Drive a connection: write all of `data` (respecting backpressure), then shut down the write side. */
export async function writeAll(conn: TcpConnectionApi, data: Uint8Array, shutdown = true): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const n = conn.write(data.subarray(off));
    off += n;
    if (off < data.length) {
      await new Promise<void>((resolve) => {
        conn.onWritable = () => resolve();
      });
    }
  }
  if (shutdown) conn.shutdown();
}

/** Read until the peer's FIN; returns everything received. */
export function readAll(conn: TcpConnectionApi, timeoutMs = 20000): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`readAll timed out after ${total} bytes`)), timeoutMs);
    const drain = () => {
      for (;;) {
        const v = conn.peek();
        if (v.length === 0) break;
        chunks.push(v.slice());
        total += v.length;
        conn.consume(v.length);
      }
      if (conn.readEof) {
        clearTimeout(timer);
        const out = new Uint8Array(total);
        let o = 0;
        for (const c of chunks) {
          out.set(c, o);
          o += c.length;
        }
        resolve(out);
      }
    };
    conn.onReadable = drain;
    const prevClosed = conn.onClosed;
    conn.onClosed = (reason) => {
      prevClosed(reason);
      if (!conn.readEof) {
        clearTimeout(timer);
        reject(new Error(`connection closed (${reason}) after ${total} bytes`));
      }
    };
    drain();
  });
}

export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}
