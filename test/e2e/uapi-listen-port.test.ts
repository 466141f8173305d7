// `wg set NAME listen-port N` through the UAPI socket: the gateway rebinds its UDP socket, the old
// port goes quiet and a client handshakes on the new one.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway } from "../../src/index.ts";
import { answerErrno, parseUapiGet, uapiRequest } from "../../src/uapi/client.ts";
import { createLogger } from "../../src/util/log.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { TestClient } from "./client.ts";
import { testGatewayOptions } from "./options.ts";

test("listen_port rebinds the UDP socket; get reports the new port; a client handshakes there", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wgslirpy-uapi-port-"));
  const gwKey = generatePrivateKey();
  const clientKey = generatePrivateKey();
  const sock = join(dir, "gw.sock");
  const lines: string[] = [];
  const log = createLogger("info", { format: "text", write: (l) => lines.push(l), tty: false });
  const gw = await startGateway(
    { ...testGatewayOptions(gwKey, clientKey), uapi: { path: sock, required: true } },
    { log },
  );
  const clients: TestClient[] = [];
  try {
    const oldPort = gw.local.port;
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const freePort = probe.port; // a TCP port number that is very likely free for UDP too
    probe.stop(true);
    expect(answerErrno(await uapiRequest(sock, `set=1\nlisten_port=${freePort}\n\n`))).toBe(0);
    expect(gw.local.port).toBe(freePort);
    expect(parseUapiGet(await uapiRequest(sock, "get=1\n\n")).device.get("listen_port")).toBe(String(freePort));
    const stale = await TestClient.connect({
      privateKey: clientKey,
      gatewayPublicKey: publicKeyOf(gwKey),
      gateway: { address: "127.0.0.1", port: oldPort },
    });
    clients.push(stale);
    await expect(stale.handshake(800)).rejects.toThrow();
    const fresh = await TestClient.connect({
      privateKey: clientKey,
      gatewayPublicKey: publicKeyOf(gwKey),
      gateway: { address: "127.0.0.1", port: freePort },
    });
    clients.push(fresh);
    await fresh.handshake();
    // The policy follows the rebind: the new port is the gateway's own UDP port, denied to the peer.
    fresh.udpSend("127.0.0.1", freePort, new Uint8Array([1, 2, 3]));
    const deadline = Date.now() + 2000;
    const ownPortDenied = () => lines.some((l) => l.includes(`127.0.0.1:${freePort}`) && l.includes("Denied"));
    while (!ownPortDenied() && Date.now() < deadline) await Bun.sleep(20);
    expect(lines.filter((l) => l.includes("Denied"))).toContainEqual(
      expect.stringContaining(`deny 127.0.0.1:${freePort} (default: the gateway's own UDP port)`),
    );
    // A port another socket holds: EADDRINUSE, and the gateway stays where it was.
    const holder = await (await import("../../src/transport/udp.ts")).openUdpTransport({
      address: "127.0.0.1",
      port: 0,
    });
    const errno = answerErrno(await uapiRequest(sock, `set=1\nlisten_port=${holder.local.port}\n\n`));
    holder.close();
    expect(errno).toBe(-98);
    expect(gw.local.port).toBe(freePort);
  } finally {
    for (const c of clients) c.close();
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("listen_port rebind keeps the UDP socket's counters cumulative (/metrics never goes back)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wgslirpy-uapi-port-"));
  const gwKey = generatePrivateKey();
  const clientKey = generatePrivateKey();
  const sock = join(dir, "gw.sock");
  const gw = await startGateway({
    ...testGatewayOptions(gwKey, clientKey, { statsListen: { address: "127.0.0.1", port: 0 } }),
    uapi: { path: sock, required: true },
  });
  const bytesIn = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${gw.statsLocal?.port}/metrics`)).text();
    const m = /\nwgslirpy_transport_bytes_in(?:_total)? (\d+)\n/.exec(text);
    if (!m) throw new Error("no wgslirpy_transport_bytes_in in /metrics");
    return Number(m[1]);
  };
  const client = await TestClient.connect({
    privateKey: clientKey,
    gatewayPublicKey: publicKeyOf(gwKey),
    gateway: gw.local,
  });
  try {
    await client.handshake();
    const before = await bytesIn();
    expect(before).toBeGreaterThanOrEqual(148); // at least the handshake initiation
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const freePort = probe.port;
    probe.stop(true);
    expect(answerErrno(await uapiRequest(sock, `set=1\nlisten_port=${freePort}\n\n`))).toBe(0);
    expect(gw.local.port).toBe(freePort);
    expect(await bytesIn()).toBeGreaterThanOrEqual(before);
  } finally {
    client.close();
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
