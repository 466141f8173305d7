/**
 * ICMP errors end to end: UDP to a closed (allowed) loopback port comes back as ICMP port
 * unreachable quoting the datagram byte for byte; TCP to a closed port is reset. (Connect timeouts
 * and unreachable hosts cannot happen on loopback: test/unit/gateway-icmp.test.ts covers them.)
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type GatewayHandle, startGateway } from "../../src/index.ts";
import { checksum } from "../../src/wire/checksum.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { TestClient, until } from "./client.ts";
import { testGatewayOptions } from "./options.ts";

const gwKey = generatePrivateKey();
const clientKey = generatePrivateKey();
let gw: GatewayHandle;
let client: TestClient;
const enc = new TextEncoder();

beforeAll(async () => {
  gw = await startGateway(testGatewayOptions(gwKey, clientKey, { allow: ["127.0.0.1/32", "::1/128"] }));
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

async function closedUdpPort(hostname: string): Promise<number> {
  const s = await Bun.udpSocket({ hostname });
  const port = s.port;
  s.close();
  return port;
}

test("UDP to a closed loopback port -> ICMP port unreachable (3/3) quoting the datagram byte for byte", async () => {
  const port = await closedUdpPort("127.0.0.1");
  const rx = client.rawReceived.length;
  const tx = client.rawSent.length;
  client.udpSend("127.0.0.1", port, enc.encode("is anybody there?"), 50200);
  const isErr = (p: Uint8Array) => p[0] === 0x45 && p[9] === 1 && p[20] === 3;
  await until(() => client.rawReceived.slice(rx).some(isErr), 3000, "ICMP port unreachable");
  const err = client.rawReceived.slice(rx).find(isErr)!;
  const sent = client.rawSent[tx]!;
  expect(err.length).toBe(28 + sent.length);
  expect(Array.from(err.subarray(12, 16))).toEqual([127, 0, 0, 1]);
  expect(Array.from(err.subarray(16, 20))).toEqual([10, 0, 2, 15]);
  expect(err[21]).toBe(3);
  expect(Array.from(err.subarray(24, 28))).toEqual([0, 0, 0, 0]); // unused
  expect(checksum(err, 20, err.length - 20)).toBe(0);
  expect(Buffer.from(err.subarray(28)).equals(Buffer.from(sent))).toBe(true);
  // The quoted UDP header names our ports.
  expect((err[48]! << 8) | err[49]!).toBe(50200);
  expect((err[50]! << 8) | err[51]!).toBe(port);
});

test("IPv6: UDP to a closed ::1 port -> ICMPv6 port unreachable (1/4) quoting the datagram", async () => {
  const port = await closedUdpPort("::1");
  const rx = client.rawReceived.length;
  const tx = client.rawSent.length;
  client.udpSend("::1", port, enc.encode("six?"), 50201);
  const isErr = (p: Uint8Array) => p[0]! >> 4 === 6 && p[6] === 58 && p[40] === 1;
  await until(() => client.rawReceived.slice(rx).some(isErr), 3000, "ICMPv6 port unreachable");
  const err = client.rawReceived.slice(rx).find(isErr)!;
  expect(err[41]).toBe(4);
  expect(Buffer.from(err.subarray(48)).equals(Buffer.from(client.rawSent[tx]!))).toBe(true);
});

test("TCP to a closed loopback port is reset (no ICMP)", async () => {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  const rx = client.rawReceived.length;
  await expect(client.tcpConnect("127.0.0.1", port)).rejects.toThrow(/closed: (reset|refused)/);
  expect(client.rawReceived.slice(rx).some((p) => p[9] === 1)).toBe(false);
});
