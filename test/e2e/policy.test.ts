/**
 * Destination policy end to end: the default policy denies the gateway host's loopback (TCP: RST,
 * UDP: ICMP administratively prohibited quoting the datagram); --allow opens it; --deny closes more.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFdLimit } from "../../src/gateway/host-fds.ts";
import { type GatewayHandle, startGateway } from "../../src/index.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { readAll, TestClient, until, writeAll } from "./client.ts";
import { testGatewayOptions } from "./options.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Setup {
  gw: GatewayHandle;
  client: TestClient;
}

async function setup(extra: Parameters<typeof testGatewayOptions>[2]): Promise<Setup> {
  const gwKey = generatePrivateKey();
  const clientKey = generatePrivateKey();
  const gw = await startGateway(testGatewayOptions(gwKey, clientKey, extra));
  const client = await TestClient.connect({
    privateKey: clientKey,
    gatewayPublicKey: publicKeyOf(gwKey),
    gateway: gw.local,
  });
  await client.handshake();
  return { gw, client };
}

let byDefault: Setup;
let allowing: Setup;
let server: import("bun").TCPSocketListener<undefined>;
let accepted = 0;

beforeAll(async () => {
  byDefault = await setup({});
  allowing = await setup({
    policy: [
      { action: "deny", rule: "127.0.0.1/32:9" },
      { action: "allow", rule: "127.0.0.1/32" },
    ],
  });
  server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open: () => {
        accepted++;
      },
      data(s, d) {
        s.write(d);
        s.end();
      },
    },
  });
});

afterAll(async () => {
  server?.stop(true);
  for (const s of [byDefault, allowing]) {
    s?.client.close();
    await s?.gw.close();
  }
});

/** The first ICMP(v6) error received after index `from`. */
async function icmpError(c: TestClient, from: number, v6 = false): Promise<Uint8Array> {
  const isErr = (p: Uint8Array) =>
    v6 ? p[0]! >> 4 === 6 && p[6] === 58 && p[40]! < 128 : p[0] === 0x45 && p[9] === 1 && p[20] === 3;
  await until(() => c.rawReceived.slice(from).some(isErr), 3000, "ICMP error");
  return c.rawReceived.slice(from).find(isErr)!;
}

describe("default policy", () => {
  test("TCP to a server on the gateway host's 127.0.0.1 is reset; the server never sees a connection", async () => {
    const before = accepted;
    const t0 = performance.now();
    await expect(byDefault.client.tcpConnect("127.0.0.1", server.port)).rejects.toThrow(/closed: (reset|refused)/);
    expect(performance.now() - t0).toBeLessThan(1000);
    await Bun.sleep(20);
    expect(accepted).toBe(before);
    expect(byDefault.gw.stats().gateway.drops.policy_denied_tcp).toBeGreaterThanOrEqual(1);
  });

  test("UDP to 127.0.0.1 -> ICMP destination unreachable, administratively prohibited (3/13) quoting the datagram", async () => {
    const c = byDefault.client;
    const rx = c.rawReceived.length;
    const tx = c.rawSent.length;
    c.udpSend("127.0.0.1", 9999, enc.encode("not allowed"), 50123);
    const err = await icmpError(c, rx);
    const sent = c.rawSent[tx]!;
    expect(Array.from(err.subarray(12, 16))).toEqual([127, 0, 0, 1]); // from the denied destination
    expect(Array.from(err.subarray(16, 20))).toEqual([10, 0, 2, 15]);
    expect(err[20]).toBe(3);
    expect(err[21]).toBe(13);
    expect(Buffer.from(err.subarray(28)).equals(Buffer.from(sent))).toBe(true);
    expect(byDefault.gw.stats().gateway.drops.policy_denied_udp).toBeGreaterThanOrEqual(1);
    expect(byDefault.gw.stats().liveUdp).toBe(0);
  });

  test("IPv6: UDP to ::1 -> ICMPv6 destination unreachable, administratively prohibited (1/1)", async () => {
    const c = byDefault.client;
    const rx = c.rawReceived.length;
    const tx = c.rawSent.length;
    c.udpSend("::1", 9999, enc.encode("six"), 50124);
    const err = await icmpError(c, rx, true);
    expect(err[40]).toBe(1);
    expect(err[41]).toBe(1);
    expect(Buffer.from(err.subarray(48)).equals(Buffer.from(c.rawSent[tx]!))).toBe(true);
  });

  test("the pingable and DNS addresses inside the tunnel still answer", async () => {
    const c = byDefault.client;
    const before = c.udpReceived.length;
    // A minimal DNS query for "localhost" A.
    const q = Uint8Array.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, ...enc.encode("localhost"), 0, 0, 1, 0, 1]);
    c.udpSend("10.0.2.1", 53, q, 53001);
    await until(() => c.udpReceived.length > before, 5000, "dns reply");
    expect(c.udpReceived[before]!.flow.srcPort).toBe(53);
  });
});

describe("built-in denials (default policy)", () => {
  test("TCP to ::ffff:127.0.0.1 (the loopback as an IPv4-mapped IPv6 address) is reset", async () => {
    const before = accepted;
    await expect(byDefault.client.tcpConnect("::ffff:127.0.0.1", server.port)).rejects.toThrow(
      /closed: (reset|refused)/,
    );
    await Bun.sleep(20);
    expect(accepted).toBe(before);
  });

  test("the DNS/pingable address: TCP to another port is reset, UDP to another port gets port unreachable (3/3)", async () => {
    const c = byDefault.client;
    await expect(c.tcpConnect("10.0.2.1", 80)).rejects.toThrow(/closed: (reset|refused)/);
    const rx = c.rawReceived.length;
    const tx = c.rawSent.length;
    c.udpSend("10.0.2.1", 123, enc.encode("ntp?"), 50126);
    const err = await icmpError(c, rx);
    expect(Array.from(err.subarray(12, 16))).toEqual([10, 0, 2, 1]);
    expect([err[20], err[21]]).toEqual([3, 3]);
    expect(Buffer.from(err.subarray(28)).equals(Buffer.from(c.rawSent[tx]!))).toBe(true);
    expect(byDefault.gw.stats().liveUdp).toBe(0);
  });
});

describe("with rules", () => {
  test("--allow 127.0.0.1/32 also opens ::ffff:127.0.0.1 (matched as IPv4)", async () => {
    const conn = await allowing.client.tcpConnect("::ffff:127.0.0.1", server.port);
    const got = readAll(conn);
    await writeAll(conn, enc.encode("mapped"), false);
    expect(dec.decode(await got)).toBe("mapped");
    conn.shutdown();
  });

  test("--allow 127.0.0.1/32 lets TCP through", async () => {
    const conn = await allowing.client.tcpConnect("127.0.0.1", server.port);
    const got = readAll(conn);
    await writeAll(conn, enc.encode("allowed"), false);
    expect(dec.decode(await got)).toBe("allowed");
    conn.shutdown();
  });

  test("an earlier --deny with a port wins over the later --allow", async () => {
    const c = allowing.client;
    const rx = c.rawReceived.length;
    c.udpSend("127.0.0.1", 9, enc.encode("discard"), 50125);
    const err = await icmpError(c, rx);
    expect(err[21]).toBe(13);
  });
});

describe("flow budget", () => {
  test("maxFlows (--max-flows) sets the budget; without it, it comes from the open-files limit", async () => {
    const set = await setup({ maxFlows: 40 });
    try {
      expect(set.gw.stats().gateway.budget).toMatchObject({ maxFlows: 40, maxPendingConnects: 10, maxUdpMappings: 20 });
      const derived = byDefault.gw.stats().gateway.budget;
      expect(derived.maxFlows).toBeGreaterThan(0);
      expect(derived.maxFlows).toBeLessThan(readFdLimit() as number);
    } finally {
      set.client.close();
      await set.gw.close();
    }
  });
});
