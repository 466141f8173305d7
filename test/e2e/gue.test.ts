/**
 * GUE/FOU mode (`-k INSECURE -K GUE`) end to end, no root: a client speaking raw IP and GUE
 * variant-0 over loopback UDP gets ping, DNS, TCP and UDP service exactly as in WireGuard mode.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import dnsPacket from "dns-packet";
import { type GatewayHandle, startGateway } from "../../src/index.ts";
import { checksum } from "../../src/wire/checksum.ts";
import { generatePrivateKey } from "../../src/wireguard/keys.ts";
import { readAll, TestClient, writeAll } from "./client.ts";
import { testGatewayOptions } from "./options.ts";

let gw: GatewayHandle;
const got: Uint8Array[] = [];
let sock: import("bun").udp.Socket<"uint8array">;

beforeAll(async () => {
  gw = await startGateway(
    testGatewayOptions(generatePrivateKey(), generatePrivateKey(), {
      mode: "gue",
      privateKey: undefined,
      peerPublicKey: undefined,
      allow: ["127.0.0.1/32"],
    }),
  );
  sock = await Bun.udpSocket({
    hostname: "127.0.0.1",
    binaryType: "uint8array",
    socket: { data: (_s, buf) => void got.push(buf) },
  });
});

afterAll(async () => {
  sock?.close();
  await gw?.close();
});

/** An IPv4 ICMP echo request 10.0.2.15 -> 10.0.2.1 with a valid header checksum. */
function echoRequest(id: number, data: Uint8Array): Uint8Array {
  const p = new Uint8Array(28 + data.length);
  p.set([0x45, 0, 0, p.length, 0, 1, 0x40, 0, 64, 1, 0, 0, 10, 0, 2, 15, 10, 0, 2, 1]);
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  let c = checksum(p, 0, 20);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set([8, 0, 0, 0, id >> 8, id & 0xff, 0, 1], 20);
  p.set(data, 28);
  c = checksum(p, 20, 8 + data.length);
  p[22] = c >> 8;
  p[23] = c & 0xff;
  return p;
}

async function waitFor(pred: (p: Uint8Array) => boolean): Promise<Uint8Array> {
  for (let i = 0; i < 400; i++) {
    const hit = got.find(pred);
    if (hit) return hit;
    await Bun.sleep(5);
  }
  throw new Error("no matching datagram from the gateway");
}

test("raw IPv4 ping is answered with a raw IPv4 echo reply", async () => {
  sock.send(echoRequest(0x0101, new TextEncoder().encode("raw")), gw.local.port, "127.0.0.1");
  const r = await waitFor((p) => p[0] === 0x45 && p[20] === 0 && p[24] === 1 && p[25] === 1);
  expect(Array.from(r.subarray(12, 20))).toEqual([10, 0, 2, 1, 10, 0, 2, 15]);
  expect(new TextDecoder().decode(r.subarray(28))).toBe("raw");
});

test("GUE variant-0 framed ping (00 04 00 00 + IPv4, as Linux sends) is answered", async () => {
  const inner = echoRequest(0x0202, new TextEncoder().encode("gue"));
  const framed = new Uint8Array(4 + inner.length);
  framed.set([0x00, 0x04, 0x00, 0x00]);
  framed.set(inner, 4);
  sock.send(framed, gw.local.port, "127.0.0.1");
  const r = await waitFor((p) => p[0] === 0x45 && p[20] === 0 && p[24] === 2 && p[25] === 2);
  expect(new TextDecoder().decode(r.subarray(28))).toBe("gue");
});

test("DNS over GUE: A query for localhost answered from the host resolver", async () => {
  const q = new Uint8Array(
    dnsPacket.encode({
      type: "query",
      id: 0x7777,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "A", name: "localhost" }],
    }),
  );
  const p = new Uint8Array(28 + q.length);
  p.set([0x45, 0, 0, 0, 0, 2, 0x40, 0, 64, 17, 0, 0, 10, 0, 2, 15, 10, 0, 2, 1]);
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  const c = checksum(p, 0, 20);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  // UDP 5353 -> 53 with checksum 0 (allowed over IPv4).
  p.set([0x14, 0xe9, 0, 53, (8 + q.length) >> 8, (8 + q.length) & 0xff, 0, 0], 20);
  p.set(q, 28);
  sock.send(p, gw.local.port, "127.0.0.1");
  const r = await waitFor((d) => d[0] === 0x45 && d[9] === 17 && d[20] === 0 && d[21] === 53);
  const answer = dnsPacket.decode(Buffer.from(r.subarray(28)));
  expect(answer.id).toBe(0x7777);
  expect(answer.answers?.map((a) => (a as { data: string }).data)).toContain("127.0.0.1");
  expect(Array.from(r.subarray(12, 20))).toEqual([10, 0, 2, 1, 10, 0, 2, 15]);
});

test("TCP over GUE: a client stack speaking raw IP gets a byte-exact echo from a loopback server", async () => {
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, d) {
        s.write(d);
        s.end();
      },
    },
  });
  const client = await TestClient.connect({ gateway: gw.local });
  try {
    const c = await client.tcpConnect("127.0.0.1", server.port);
    const reply = readAll(c);
    await writeAll(c, new TextEncoder().encode("over gue"), false);
    expect(new TextDecoder().decode(await reply)).toBe("over gue");
    c.shutdown();
  } finally {
    client.close();
    server.stop(true);
  }
});
