/**
 * DNS over TCP on the -D address through the whole stack (our WireGuard client and client-side
 * TCP, the gateway's netstack TCP, DnsTcpSession), no root: two pipelined queries in one write,
 * both answers framed on the stream, then FIN once everything is answered.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { lookup } from "node:dns/promises";
import { type GatewayHandle, startGateway } from "../../src/index.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { readAll, TestClient, writeAll } from "./client.ts";
import { testGatewayOptions } from "./options.ts";

const gwKey = generatePrivateKey();
const clientKey = generatePrivateKey();
let gw: GatewayHandle;
let client: TestClient;

beforeAll(async () => {
  gw = await startGateway(testGatewayOptions(gwKey, clientKey));
  client = await TestClient.connect({ privateKey: clientKey, gatewayPublicKey: publicKeyOf(gwKey), gateway: gw.local });
  await client.handshake();
});

afterAll(async () => {
  client?.close();
  await gw?.close();
});

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const qname = (name: string) => [...name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]), 0];
const query = (id: number, name: string, type: number) => [
  ...u16(id),
  1,
  0,
  0,
  1,
  0,
  0,
  0,
  0,
  0,
  0,
  ...qname(name),
  ...u16(type),
  0,
  1,
];
const framed = (m: number[]) => [...u16(m.length), ...m];
const rr = (type: number, rdata: number[]) => [
  0xc0,
  0x0c,
  ...u16(type),
  0,
  1,
  0,
  0,
  0,
  60,
  ...u16(rdata.length),
  ...rdata,
];

test("two pipelined queries over one TCP connection: A of localhost and PTR of the gateway's own address", async () => {
  const localhost4 = (await lookup("localhost", { all: true, family: 4 })).map((a) => a.address.split(".").map(Number));
  const qa = query(0x0a0a, "localhost", 1);
  const qp = query(0x0b0b, "1.2.0.10.in-addr.arpa", 12);
  const conn = await client.tcpConnect("10.0.2.1", 53);
  const reading = readAll(conn, 10_000);
  await writeAll(conn, Uint8Array.from([...framed(qa), ...framed(qp)]));
  const stream = [...(await reading)];
  const ra = [0x0a, 0x0a, 0x81, 0x80, 0, 1, ...u16(localhost4.length), 0, 0, 0, 0, ...qa.slice(12)];
  for (const a of localhost4) ra.push(...rr(1, a));
  const rp = [
    0x0b,
    0x0b,
    0x81,
    0x80,
    0,
    1,
    0,
    1,
    0,
    0,
    0,
    0,
    ...qp.slice(12),
    ...rr(12, qname("gateway.wgslirpy.internal")),
  ];
  // Answered as they complete: the local PTR may come first.
  const expected = [
    [...framed(ra), ...framed(rp)],
    [...framed(rp), ...framed(ra)],
  ];
  expect(expected).toContainEqual(stream);
  expect(gw.stats().gateway.dns).toMatchObject({ tcpQueries: 2, local: 1, resolved: 1 });
});
