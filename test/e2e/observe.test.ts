/** --pcap and --stats-listen through a real gateway, driven by the in-process client. */
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway } from "../../src/index.ts";
import { readPcap } from "../../src/pcap/writer.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { TestClient, until } from "./client.ts";
import { testGatewayOptions } from "./options.ts";

test("pcap records the peer's echo request and our reply; /stats and /metrics report the tunnel", async () => {
  const gwKey = generatePrivateKey();
  const clientKey = generatePrivateKey();
  const pcapPath = join(mkdtempSync(join(tmpdir(), "wgslirpy-obs-")), "cap.pcap");
  const options = testGatewayOptions(gwKey, clientKey, {
    dns: undefined,
    pcap: pcapPath,
    statsListen: { address: "127.0.0.1", port: 0 },
  });
  const ac = new AbortController();
  const gw = await startGateway(options, { signal: ac.signal });
  const client = await TestClient.connect({
    privateKey: clientKey,
    gatewayPublicKey: publicKeyOf(gwKey),
    gateway: gw.local,
  });
  try {
    await client.handshake();
    client.ping("10.0.2.1", 7, 1, new TextEncoder().encode("pcap me"));
    await until(() => client.rawReceived.length > 0, 3000, "echo reply");
    const stats = gw.stats() as { tunnel: { handshakesCompleted: number; rxPackets: number } };
    expect(stats.tunnel.handshakesCompleted).toBe(1);
  } finally {
    client.close();
    ac.abort();
    await gw.closed;
  }
  const { linktype, records } = readPcap(new Uint8Array(readFileSync(pcapPath)));
  expect(linktype).toBe(101);
  // Request (type 8) from 10.0.2.15, then the reply (type 0) from 10.0.2.1, both carrying the data.
  const icmp = records.filter((r) => r.packet[9] === 1);
  expect(icmp.map((r) => [r.packet[15], r.packet[19], r.packet[20]])).toEqual([
    [15, 1, 8],
    [1, 15, 0],
  ]);
  expect(new TextDecoder().decode(icmp[1]!.packet.subarray(28))).toBe("pcap me");
  // Wireshark's reader agrees (CI installs tshark; elsewhere this check is skipped).
  const tshark = Bun.which("tshark");
  if (tshark) {
    const p = Bun.spawnSync([tshark, "-r", pcapPath, "-Y", "icmp", "-T", "fields", "-e", "ip.src", "-e", "icmp.type"]);
    expect(p.exitCode).toBe(0);
    expect(p.stdout.toString().trim().split("\n")).toEqual(["10.0.2.15\t8", "10.0.2.1\t0"]);
  } else console.log("tshark not installed: skipped the tshark -r check");
});

test("/stats and /metrics over HTTP", async () => {
  const gw = await startGateway(
    testGatewayOptions(generatePrivateKey(), generatePrivateKey(), { statsListen: { address: "127.0.0.1", port: 0 } }),
  );
  try {
    const port = gw.statsLocal?.port;
    expect(port).toBeGreaterThan(0);
    const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { liveTcp: number };
    expect(stats.liveTcp).toBe(0);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain("wgslirpy_live_tcp 0\n");
    expect(metrics).toMatch(/wgslirpy_tunnel_drops\{reason="[a-zA-Z]+"\} 0/);
  } finally {
    await gw.close();
  }
});
