/**
 * Reverse forwards end to end, no root: a host client on loopback connects to the gateway's -t
 * listener (or sends to its -u socket); the TestClient's own stack accepts inside the tunnel.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { formatIp, parseIp } from "../../src/gateway/ip-text.ts";
import { type GatewayHandle, startGateway } from "../../src/index.ts";
import type { TcpConnectionApi } from "../../src/netstack/tcp/api.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { readAll, TestClient, until, writeAll } from "./client.ts";
import { hostConnect } from "./host-client.ts";
import { testGatewayOptions } from "./options.ts";

const gwKey = generatePrivateKey();
const clientKey = generatePrivateKey();
let gw: GatewayHandle;
let client: TestClient;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const enc = new TextEncoder();
const dec = new TextDecoder();

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

// Forwards (HOST port 0: the gateway picks; handle.forwards tells which):
//   tcp[0]: no SRC            -> 10.0.2.15:7000
//   tcp[1]: SRC 10.0.2.1:0    -> 10.0.2.15:7001 (round-robin source ports)
//   tcp[2]: SRC 10.0.2.1:5555 -> 10.0.2.15:7002
//   udp[0]: no SRC            -> 10.0.2.15:7100
//   udp[1]: SRC 10.0.2.1:0    -> 10.0.2.15:7101
const host = { address: "127.0.0.1", port: 0 };
const dst = (port: number) => ({ address: "10.0.2.15", port });

beforeAll(async () => {
  gw = await startGateway(
    testGatewayOptions(gwKey, clientKey, {
      incomingTcp: [
        { host, source: undefined, destination: dst(7000) },
        { host, source: { address: "10.0.2.1", port: 0 }, destination: dst(7001) },
        { host, source: { address: "10.0.2.1", port: 5555 }, destination: dst(7002) },
      ],
      incomingUdp: [
        { host, source: undefined, destination: dst(7100) },
        { host, source: { address: "10.0.2.1", port: 0 }, destination: dst(7101) },
      ],
    }),
  );
  client = await TestClient.connect({
    privateKey: clientKey,
    gatewayPublicKey: publicKeyOf(gwKey),
    gateway: gw.local,
  });
  await client.handshake();
});

afterAll(async () => {
  client?.close();
  await gw?.close();
});

/** Accept the next tunnel connection: echo everything back, then FIN after the peer's FIN. */
function nextEcho(): Promise<{ conn: TcpConnectionApi; srcPort: number; src: string; received: Promise<Uint8Array> }> {
  const before = client.accepted.length;
  return until(() => client.accepted.length > before, 5000, "tunnel connection").then(() => {
    const a = client.accepted[before]!;
    const received = new Promise<Uint8Array>((resolve, reject) => {
      const waitEstablished = () => {
        const got = readAll(a.conn, 20000);
        got.then(async (bytes) => {
          await writeAll(a.conn, bytes);
          resolve(bytes);
        }, reject);
      };
      if (a.conn.state === "ESTABLISHED" || a.conn.state === "CLOSE-WAIT") waitEstablished();
      else a.conn.onEstablished = waitEstablished;
    });
    return { conn: a.conn, srcPort: a.flow.srcPort, src: formatIp(a.flow.src), received };
  });
}

describe("reverse TCP (-t)", () => {
  test("listeners are bound and reported", () => {
    expect(gw.forwards.tcp.length).toBe(3);
    expect(gw.forwards.udp.length).toBe(2);
    for (const e of [...gw.forwards.tcp, ...gw.forwards.udp]) expect(e.port).toBeGreaterThan(0);
  });

  test("no SRC: the tunnel sees the host client's address and port; echo byte-exact both ways, half-close", async () => {
    const accepted = nextEcho();
    const hc = await hostConnect(gw.forwards.tcp[0]!.port);
    const a = await accepted;
    expect(a.src).toBe("127.0.0.1");
    expect(a.srcPort).toBe(hc.localPort);
    expect(client.accepted.at(-1)!.flow.dstPort).toBe(7000);
    const data = pattern(300_000, 1);
    let off = 0;
    while (off < data.length) {
      off += Math.max(0, hc.socket.write(data.subarray(off, off + 65536)));
      await Bun.sleep(1);
    }
    // Half-close from the host: the tunnel side reads EOF, then echoes and FINs back.
    hc.socket.shutdown();
    const echoed = await a.received;
    expect(sha256(echoed)).toBe(sha256(data));
    await hc.ended;
    expect(sha256(hc.received())).toBe(sha256(data));
    hc.socket.end();
    await until(() => gw.stats().liveTcp === 0, 5000, "reverse flow to finish");
  }, 30000);

  test("the tunnel side may finish first: its FIN reaches the host while the host keeps sending", async () => {
    const before = client.accepted.length;
    const hc = await hostConnect(gw.forwards.tcp[0]!.port);
    await until(() => client.accepted.length > before, 5000, "tunnel connection");
    const conn = client.accepted[before]!.conn;
    await until(() => conn.state === "ESTABLISHED", 5000, "established");
    const toHost = pattern(70_000, 2);
    const fromHost = readAll(conn);
    await writeAll(conn, toHost); // + FIN
    await hc.ended;
    expect(sha256(hc.received())).toBe(sha256(toHost));
    hc.socket.write(enc.encode("after your FIN"));
    hc.socket.shutdown();
    expect(dec.decode(await fromHost)).toBe("after your FIN");
    await until(() => gw.stats().liveTcp === 0, 5000, "reverse flow to finish");
  });

  test("SRC with port 0: consecutive round-robin source ports from 1024", async () => {
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const accepted = nextEcho();
      const hc = await hostConnect(gw.forwards.tcp[1]!.port);
      const a = await accepted;
      expect(a.src).toBe("10.0.2.1");
      ports.push(a.srcPort);
      hc.socket.write(enc.encode(`hello ${i}`));
      hc.socket.shutdown();
      expect(dec.decode(await a.received)).toBe(`hello ${i}`);
      await hc.ended;
      expect(dec.decode(hc.received())).toBe(`hello ${i}`);
      hc.socket.end();
    }
    expect(ports[0]).toBe(1024);
    expect(ports[1]).toBe(1025);
  });

  test("SRC with a fixed port is used as is", async () => {
    const accepted = nextEcho();
    const hc = await hostConnect(gw.forwards.tcp[2]!.port);
    const a = await accepted;
    expect(a.src).toBe("10.0.2.1");
    expect(a.srcPort).toBe(5555);
    hc.socket.write(enc.encode("fixed"));
    hc.socket.shutdown();
    expect(dec.decode(await a.received)).toBe("fixed");
    await hc.ended;
    hc.socket.end();
    await until(() => gw.stats().liveTcp === 0, 5000, "reverse flow to finish");
  });

  test("the tunnel refusing the connection closes the host client's socket", async () => {
    client.acceptFilter = () => false;
    try {
      const hc = await hostConnect(gw.forwards.tcp[2]!.port);
      await hc.closed;
      expect(hc.received().length).toBe(0);
      await until(() => gw.stats().liveTcp === 0, 5000, "flow gone");
    } finally {
      client.acceptFilter = () => true;
    }
  });
});

describe("reverse UDP (-u)", () => {
  test("no SRC: host sender -> DST inside the tunnel from the sender's endpoint; the reply returns to it", async () => {
    const got: { data: string; port: number }[] = [];
    const sender = await Bun.udpSocket({
      hostname: "127.0.0.1",
      binaryType: "uint8array",
      socket: {
        data: (_s, d, port) => {
          got.push({ data: dec.decode(d), port });
        },
      },
    });
    try {
      const before = client.udpReceived.length;
      sender.send(enc.encode("ping one"), gw.forwards.udp[0]!.port, "127.0.0.1");
      await until(() => client.udpReceived.length > before, 3000, "datagram in the tunnel");
      const r = client.udpReceived[before]!;
      expect(dec.decode(r.payload)).toBe("ping one");
      expect(formatIp(r.flow.src)).toBe("127.0.0.1");
      expect(r.flow.srcPort).toBe(sender.port);
      expect(formatIp(r.flow.dst)).toBe("10.0.2.15");
      expect(r.flow.dstPort).toBe(7100);
      // Reply from DST to the source it saw (loopback is denied by policy for NAT flows, but this
      // is the forward's mapping, matched first).
      client.udpSendFlow(
        { src: r.flow.dst, srcPort: 7100, dst: r.flow.src, dstPort: r.flow.srcPort },
        enc.encode("pong one"),
      );
      await until(() => got.length > 0, 3000, "reply at the host sender");
      expect(got[0]).toEqual({ data: "pong one", port: gw.forwards.udp[0]!.port });
    } finally {
      sender.close();
    }
  });

  test("SRC port 0: each host sender gets its own round-robin tunnel port; replies go to the right sender", async () => {
    const got: Record<string, string[]> = { a: [], b: [] };
    const mk = (name: "a" | "b") =>
      Bun.udpSocket({
        hostname: "127.0.0.1",
        binaryType: "uint8array",
        socket: {
          data: (_s, d) => {
            got[name]!.push(dec.decode(d));
          },
        },
      });
    const a = await mk("a");
    const b = await mk("b");
    try {
      const fwd = gw.forwards.udp[1]!.port;
      const before = client.udpReceived.length;
      a.send(enc.encode("from a"), fwd, "127.0.0.1");
      await until(() => client.udpReceived.length > before, 3000, "a in tunnel");
      b.send(enc.encode("from b"), fwd, "127.0.0.1");
      await until(() => client.udpReceived.length > before + 1, 3000, "b in tunnel");
      a.send(enc.encode("again a"), fwd, "127.0.0.1");
      await until(() => client.udpReceived.length > before + 2, 3000, "a again");
      const [ra, rb, ra2] = client.udpReceived.slice(before);
      expect(formatIp(ra!.flow.src)).toBe("10.0.2.1");
      expect(ra!.flow.srcPort).toBe(1024);
      expect(rb!.flow.srcPort).toBe(1025);
      expect(ra2!.flow.srcPort).toBe(1024);
      expect(dec.decode(ra2!.payload)).toBe("again a");
      const src = parseIp("10.0.2.15")!;
      client.udpSendFlow({ src, srcPort: 7101, dst: rb!.flow.src, dstPort: 1025 }, enc.encode("to b"));
      client.udpSendFlow({ src, srcPort: 7101, dst: ra!.flow.src, dstPort: 1024 }, enc.encode("to a"));
      await until(() => got.a!.length > 0 && got.b!.length > 0, 3000, "replies");
      expect(got).toEqual({ a: ["to a"], b: ["to b"] });
    } finally {
      a.close();
      b.close();
    }
  });
});

test("-u senders are bounded like UDP mappings: beyond the budget a new sender is dropped, counted", async () => {
  const k = generatePrivateKey();
  const ck = generatePrivateKey();
  // maxFlows 4 -> 2 UDP mappings.
  const g = await startGateway(
    testGatewayOptions(k, ck, { maxFlows: 4, incomingUdp: [{ host, source: undefined, destination: dst(7200) }] }),
  );
  const c = await TestClient.connect({ privateKey: ck, gatewayPublicKey: publicKeyOf(k), gateway: g.local });
  const senders = await Promise.all([1, 2, 3].map(() => Bun.udpSocket({ hostname: "127.0.0.1" })));
  try {
    await c.handshake();
    const fwd = g.forwards.udp[0]!.port;
    for (const [i, s] of senders.entries()) s.send(enc.encode(`sender ${i}`), fwd, "127.0.0.1");
    await until(() => g.stats().gateway.drops.reverse_udp_mappings_full === 1, 3000, "the third sender dropped");
    await until(() => c.udpReceived.length >= 2, 3000, "two datagrams in the tunnel");
    await Bun.sleep(50);
    expect(c.udpReceived.map((r) => dec.decode(r.payload)).sort()).toEqual(["sender 0", "sender 1"]);
  } finally {
    for (const s of senders) s.close();
    c.close();
    await g.close();
  }
});

test("gateway.close() closes the forward listeners", async () => {
  const g = await startGateway(
    testGatewayOptions(generatePrivateKey(), generatePrivateKey(), {
      incomingTcp: [{ host, source: undefined, destination: dst(1) }],
      incomingUdp: [{ host, source: undefined, destination: dst(2) }],
    }),
  );
  const tcpPort = g.forwards.tcp[0]!.port;
  const udpPort = g.forwards.udp[0]!.port;
  await g.close();
  await expect(hostConnect(tcpPort)).rejects.toThrow();
  // The UDP port can be bound again.
  const s = await Bun.udpSocket({ hostname: "127.0.0.1", port: udpPort });
  s.close();
});
