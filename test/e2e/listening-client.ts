/**
 * A TestClient variant whose stack can accept TCP connections inside the tunnel (reverse forwards
 * connect *to* the peer), plus gateway options for the e2e tests of forwards, policy and ICMP.
 * The setup mirrors TestClient.connect; only the TCP layer's onConnect differs.
 */
import type { IpLink } from "../../src/link.ts";
import { Netstack } from "../../src/netstack/stack.ts";
import type { TcpConnectionApi } from "../../src/netstack/tcp/api.ts";
import { TcpLayer } from "../../src/netstack/tcp/layer.ts";
import type { FlowAddrs } from "../../src/netstack/types.ts";
import { DEFAULTS, type GatewayOptions } from "../../src/options.ts";
import { openUdpTransport, type UdpTransport } from "../../src/transport/udp.ts";
import { realClock } from "../../src/util/clock.ts";
import type { Endpoint } from "../../src/util/endpoint.ts";
import { silentLogger } from "../../src/util/log.ts";
import { cryptoRandom } from "../../src/util/random.ts";
import { parseIp } from "../../src/wire/ipaddr.ts";
import { publicKeyOf } from "../../src/wireguard/keys.ts";
import { WireGuardTunnel } from "../../src/wireguard/tunnel.ts";
import { CLIENT_V4, CLIENT_V6, type UdpReceived, until } from "./client.ts";

export interface Accepted {
  flow: FlowAddrs;
  conn: TcpConnectionApi;
}

export class ListeningClient {
  readonly udpReceived: UdpReceived[] = [];
  readonly rawReceived: Uint8Array[] = [];
  /** Every packet the client's stack sent (copies). */
  readonly rawSent: Uint8Array[] = [];
  readonly accepted: Accepted[] = [];
  /** Decides each incoming SYN: return true to accept. Default: accept everything. */
  acceptFilter: (flow: FlowAddrs) => boolean = () => true;
  /** Called with each accepted connection before its handshake completes (set handlers here). */
  onAccept: (a: Accepted) => void = () => {};
  private nextPort = 41000;

  private constructor(
    readonly transport: UdpTransport,
    readonly tunnel: WireGuardTunnel,
    readonly stack: Netstack,
    readonly tcp: TcpLayer,
  ) {}

  static async connect(opts: {
    privateKey: Uint8Array;
    gatewayPublicKey: Uint8Array;
    gateway: Endpoint;
  }): Promise<ListeningClient> {
    const transport = await openUdpTransport({ address: "127.0.0.1", port: 0 });
    const tunnel = new WireGuardTunnel({
      privateKey: opts.privateKey,
      peerPublicKey: opts.gatewayPublicKey,
      endpoint: opts.gateway,
      transport,
      clock: realClock,
      random: cryptoRandom,
      log: silentLogger,
    });
    const mtu = 1420;
    const tap: IpLink = {
      send: (p) => {
        client?.rawSent.push(p.slice());
        tunnel.send(p);
      },
      onPacket: () => {},
    };
    let client: ListeningClient | undefined;
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
      bufferSize: 1 << 20,
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
    client = new ListeningClient(transport, tunnel, stack, tcp);
    tunnel.start();
    return client;
  }

  async handshake(timeoutMs = 5000): Promise<void> {
    await until(() => this.tunnel.stats.handshakesCompleted > 0, timeoutMs, "handshake");
  }

  /** An outgoing connection (through the gateway to the host), like TestClient.tcpConnect. */
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

  udpSend(flow: FlowAddrs, payload: Uint8Array): void {
    this.stack.sendUdp(flow, payload);
  }

  udpSendTo(dst: string, port: number, payload: Uint8Array, srcPort = 50000): void {
    this.stack.sendUdp({ src: this.srcFor(dst), srcPort, dst: parseIp(dst)!, dstPort: port }, payload);
  }

  private srcFor(dst: string): Uint8Array {
    return parseIp(dst.includes(":") ? CLIENT_V6 : CLIENT_V4)!;
  }

  close(): void {
    this.tcp.close();
    this.stack.close();
    this.tunnel.close();
    this.transport.close();
  }
}

/** Gateway options for these tests (no `allow` unless given: the default policy applies). */
export function testGatewayOptions(
  gwKey: Uint8Array,
  clientKey: Uint8Array,
  extra: Partial<GatewayOptions> = {},
): GatewayOptions {
  return {
    mode: "wireguard",
    privateKey: gwKey,
    peerPublicKey: publicKeyOf(clientKey),
    bind: { address: "127.0.0.1", port: 0 },
    dns: { address: "10.0.2.1", port: 53 },
    pingable: "10.0.2.1",
    keepaliveInterval: 0,
    mtu: DEFAULTS.mtu,
    tcpBufferSize: DEFAULTS.tcpBufferSize,
    transmitQueueCapacity: DEFAULTS.transmitQueueCapacity,
    udpIdleTimeout: DEFAULTS.udpIdleTimeout,
    incomingTcp: [],
    incomingUdp: [],
    logLevel: "silent",
    ...extra,
  };
}

/** A TCP client on the host side: connect, collect everything until the server's FIN. */
export interface HostClient {
  socket: import("bun").Socket<undefined>;
  received: () => Uint8Array;
  ended: Promise<void>;
  closed: Promise<void>;
  localPort: number;
}

export async function hostConnect(port: number, hostname = "127.0.0.1"): Promise<HostClient> {
  const chunks: Uint8Array[] = [];
  let endResolve!: () => void;
  let closeResolve!: () => void;
  const ended = new Promise<void>((r) => (endResolve = r));
  const closed = new Promise<void>((r) => (closeResolve = r));
  const socket = await Bun.connect({
    hostname,
    port,
    allowHalfOpen: true,
    socket: {
      binaryType: "uint8array",
      data: (_s, d) => {
        chunks.push(new Uint8Array(d));
      },
      end: () => endResolve(),
      close: () => {
        endResolve();
        closeResolve();
      },
    },
  });
  return {
    socket,
    ended,
    closed,
    localPort: socket.localPort,
    received: () => {
      const n = chunks.reduce((a, c) => a + c.length, 0);
      const out = new Uint8Array(n);
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      return out;
    },
  };
}
