/**
 * In-process end to end, no root: our WireGuard client + client-side netstack drive ICMP, DNS,
 * TCP and UDP through a real gateway (startGateway) to servers on loopback.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import dnsPacket from "dns-packet";
import { type GatewayHandle, startGateway } from "../../src/index.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { readAll, TestClient, until, writeAll } from "./client.ts";
import { testGatewayOptions } from "./options.ts";

const gwKey = generatePrivateKey();
const clientKey = generatePrivateKey();
let gw: GatewayHandle;
let client: TestClient;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

beforeAll(async () => {
  gw = await startGateway(testGatewayOptions(gwKey, clientKey, { allow: ["127.0.0.1/32", "::1/128"] }));
  client = await TestClient.connect({ privateKey: clientKey, gatewayPublicKey: publicKeyOf(gwKey), gateway: gw.local });
  await client.handshake();
});

afterAll(async () => {
  client?.close();
  await gw?.close();
});

test("the pingable address answers an ICMP echo with the same id, seq and data", async () => {
  const data = pattern(56, 7);
  client.ping("10.0.2.1", 0x1234, 1, data);
  await until(() => client.rawReceived.some((p) => p[9] === 1 && p[20] === 0), 3000, "echo reply");
  const reply = client.rawReceived.find((p) => p[9] === 1 && p[20] === 0)!;
  expect(Array.from(reply.subarray(12, 20))).toEqual([10, 0, 2, 1, 10, 0, 2, 15]);
  expect((reply[24]! << 8) | reply[25]!).toBe(0x1234);
  expect((reply[26]! << 8) | reply[27]!).toBe(1);
  expect(Buffer.from(reply.subarray(28)).equals(Buffer.from(data))).toBe(true);
});

test("DNS on -D answers A for localhost through the host resolver, NXDOMAIN for a bad name", async () => {
  const q = (id: number, name: string) =>
    new Uint8Array(
      dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name }] }),
    );
  client.udpSend("10.0.2.1", 53, q(0x4242, "localhost"), 53000);
  client.udpSend("10.0.2.1", 53, q(0x4343, "no-such-host.invalid"), 53000);
  await until(() => client.udpReceived.filter((r) => r.flow.srcPort === 53).length >= 2, 5000, "dns replies");
  const replies: (dnsPacket.DecodedPacket & { rcode?: string })[] = client.udpReceived
    .filter((r) => r.flow.srcPort === 53)
    .map((r) => dnsPacket.decode(Buffer.from(r.payload)));
  const a = replies.find((r) => r.id === 0x4242)!;
  expect(a.rcode).toBe("NOERROR");
  expect(a.answers?.map((x) => (x as { data: string }).data)).toContain("127.0.0.1");
  expect(replies.find((r) => r.id === 0x4343)!.rcode).toBe("NXDOMAIN");
});

test("TCP: 2 MiB upload, half-close, server replies with sha256 after EOF; 4 MiB download", async () => {
  const download = pattern(4 << 20, 99);
  const server = Bun.listen<{ chunks: Uint8Array[]; mode?: string }>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { chunks: [] };
      },
      data(s, d) {
        s.data.chunks.push(new Uint8Array(d));
        const first = s.data.chunks[0]!;
        if (s.data.mode === undefined && first.length > 0) {
          s.data.mode = first[0] === 0x44 /* D */ ? "download" : "upload";
          if (s.data.mode === "download") void sendAll(s, download).then(() => s.end());
        }
      },
      end(s) {
        if (s.data.mode === "upload") {
          const h = createHash("sha256");
          for (const c of s.data.chunks) h.update(c);
          s.write(h.digest("hex"));
          s.end();
        }
      },
      drain() {},
    },
  });
  try {
    // "U" + 2 MiB: the server hashes everything it got once our FIN arrives, and replies after it.
    const up = concat(Uint8Array.of(0x55), pattern(2 << 20, 5));
    const c1 = await client.tcpConnect("127.0.0.1", server.port);
    const reply = readAll(c1);
    await writeAll(c1, up);
    expect(new TextDecoder().decode(await reply)).toBe(sha256(up));

    const c2 = await client.tcpConnect("127.0.0.1", server.port);
    const got = readAll(c2, 30000);
    await writeAll(c2, Uint8Array.of(0x44), false);
    const body = await got;
    expect(body.length).toBe(download.length);
    expect(sha256(body)).toBe(sha256(download));
    // The download left in UDP GSO super-datagrams (Linux), split back by the kernel intact.
    if (process.platform === "linux") {
      expect(gw.stats().transport.gsoBatches).toBeGreaterThan(0);
      // Full-size datagrams: 16 + 1420 (padding stops at the MTU, as wireguard-go's) + 16 tag.
      expect(gw.stats().transport.gsoSegmentSize).toBe(1452);
    }
    c2.shutdown();
    await until(() => gw.stats().liveTcp === 0, 5000, "tcp flows to end");
    // The server closed c2 first, so the gateway's side of it waits out TIME-WAIT: as an entry of the
    // TCP layer's table (time-wait.ts), the connection and its relay already gone. c1's client closed
    // first, so the gateway ended it from LAST-ACK and keeps nothing.
    await until(() => gw.stats().tcp.timeWaitFlows === 1, 5000, "c2 in TIME-WAIT");
  } finally {
    server.stop(true);
  }
}, 60000);

test("TCP to a closed loopback port is reset quickly", async () => {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  const t0 = performance.now();
  await expect(client.tcpConnect("127.0.0.1", port)).rejects.toThrow(/closed: (reset|refused)/);
  expect(performance.now() - t0).toBeLessThan(1000);
});

test("UDP: echo through the NAT, and a reply from a different remote reaches the client (EIF)", async () => {
  const other = await Bun.udpSocket({ hostname: "127.0.0.1", binaryType: "uint8array" });
  let mapped: { port: number; address: string } | undefined;
  const echo = await Bun.udpSocket({
    hostname: "127.0.0.1",
    binaryType: "uint8array",
    socket: {
      data(s, buf, port, address) {
        mapped = { port, address };
        s.send(buf, port, address);
      },
    },
  });
  try {
    const before = client.udpReceived.length;
    client.udpSend("127.0.0.1", echo.port, new TextEncoder().encode("hello udp"), 51000);
    await until(() => mapped !== undefined && client.udpReceived.length > before, 3000, "udp echo");
    const r = client.udpReceived[client.udpReceived.length - 1]!;
    expect(new TextDecoder().decode(r.payload)).toBe("hello udp");
    expect(r.flow.srcPort).toBe(echo.port);
    expect(r.flow.dstPort).toBe(51000);
    // Hole punching: a third party sends to the gateway's mapped host port.
    other.send(new TextEncoder().encode("from elsewhere"), mapped!.port, "127.0.0.1");
    await until(() => client.udpReceived.some((x) => x.flow.srcPort === other.port), 3000, "EIF reply");
    const e = client.udpReceived.find((x) => x.flow.srcPort === other.port)!;
    expect(new TextDecoder().decode(e.payload)).toBe("from elsewhere");
    expect(e.flow.dstPort).toBe(51000);
  } finally {
    echo.close();
    other.close();
  }
});

test("IPv6: TCP through the gateway to ::1", async () => {
  const server = Bun.listen({
    hostname: "::1",
    port: 0,
    socket: {
      data(s, d) {
        s.write(new TextEncoder().encode(new TextDecoder().decode(d).toUpperCase()));
        s.end();
      },
    },
  });
  try {
    const c = await client.tcpConnect("::1", server.port);
    const got = readAll(c);
    await writeAll(c, new TextEncoder().encode("hello six"), false);
    expect(new TextDecoder().decode(await got)).toBe("HELLO SIX");
    c.shutdown();
  } finally {
    server.stop(true);
  }
});

async function sendAll(s: { write(d: Uint8Array): number }, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) {
    off += s.write(data.subarray(off, off + 65536));
    if (off < data.length) await Bun.sleep(1);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a, 0);
  o.set(b, a.length);
  return o;
}
