/** --pcap and --stats-listen through a real gateway, driven by the in-process client. */
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { optionalTool } from "../../harness/gate.ts";
import { startGateway } from "../../src/index.ts";
import { readPcap } from "../../src/pcap/writer.ts";
import { generatePrivateKey, keyToBase64, publicKeyOf } from "../../src/wireguard/keys.ts";
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
  // Wireshark's reader agrees (CI installs tshark and requires it; elsewhere this check is left out).
  const tshark = optionalTool("tshark");
  if (tshark) {
    const p = Bun.spawnSync([tshark, "-r", pcapPath, "-Y", "icmp", "-T", "fields", "-e", "ip.src", "-e", "icmp.type"]);
    expect(p.exitCode).toBe(0);
    expect(p.stdout.toString().trim().split("\n")).toEqual(["10.0.2.15\t8", "10.0.2.1\t0"]);
  } else console.log("tshark not installed: skipped the tshark -r check");
});

test("/stats, /readyz and /metrics over HTTP: ready once a session is up; promtool accepts the exposition", async () => {
  const gwKey = generatePrivateKey();
  const clientKey = generatePrivateKey();
  // -p toward a port where nothing answers: the gateway is not ready until a peer handshakes.
  const gw = await startGateway(
    testGatewayOptions(gwKey, clientKey, {
      statsListen: { address: "127.0.0.1", port: 0 },
      peerEndpoint: { address: "127.0.0.1", port: 9 },
    }),
  );
  const base = `http://127.0.0.1:${gw.statsLocal?.port}`;
  let client: TestClient | undefined;
  try {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    client = await TestClient.connect({
      privateKey: clientKey,
      gatewayPublicKey: publicKeyOf(gwKey),
      gateway: gw.local,
    });
    await client.handshake();
    client.ping("10.0.2.1", 7, 1, new TextEncoder().encode("metrics"));
    await until(() => (client?.rawReceived.length ?? 0) > 0, 3000, "echo reply");
    await until(() => gw.ready(), 3000, "ready");
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const stats = (await (await fetch(`${base}/stats`)).json()) as {
      liveTcp: number;
      transport: { datagramsOut: number; gsoEnabled: number; gsoBatches: number };
    };
    expect(stats.liveTcp).toBe(0);
    // The outer socket's figures, with whether UDP GSO is in use (Linux has UDP_SEGMENT).
    expect(stats.transport.datagramsOut).toBeGreaterThanOrEqual(2);
    expect(stats.transport.gsoEnabled).toBe(process.platform === "linux" ? 1 : 0);
    expect(stats.transport.gsoBatches).toBe(0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain("\n# TYPE wgslirpy_transport_gso_enabled gauge\n");
    expect(metrics).toContain("\n# TYPE wgslirpy_transport_gso_segment_size gauge\n");
    expect(metrics).toContain("\n# TYPE wgslirpy_transport_gso_batches_total counter\n");
    expect(metrics).toContain("\nwgslirpy_ready 1\n");
    expect(metrics).toContain("\nwgslirpy_tunnel_handshakes_completed_total 1\n");
    // The same figure per peer, labelled with its public key.
    expect(metrics).toContain(
      `\nwgslirpy_peer_handshakes_completed_total{peer="${keyToBase64(publicKeyOf(clientKey))}"} 1\n`,
    );
    expect(metrics).toMatch(/\nwgslirpy_tunnel_drops_total\{reason="[a-zA-Z]+"\} 0\n/);
    expect(metrics).not.toContain("wgslirpy_live_tcp"); // one name per figure: only wgslirpy_gateway_live_tcp
    // Every family has HELP then TYPE before its samples, and no name appears in two families.
    const seen = new Set<string>();
    let current = "";
    const lines = metrics.trimEnd().split("\n");
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i] as string;
      const help = l.match(/^# HELP (\S+) \S/);
      if (help) {
        current = help[1] as string;
        expect(seen.has(current), current).toBe(false);
        seen.add(current);
        expect(lines[i + 1]).toMatch(new RegExp(`^# TYPE ${current} (counter|gauge)$`));
        i++;
        continue;
      }
      expect(l.match(/^([a-z0-9_]+)[{ ]/)?.[1], l).toBe(current);
    }
    expect(seen.size).toBeGreaterThan(30);
    // Prometheus's own parser and linter (Debian package prometheus): HELP, TYPE, _total, names.
    const promtool = optionalTool("promtool"); // Debian package prometheus (.ci/run installs it)
    if (promtool) {
      const p = Bun.spawnSync([promtool, "check", "metrics"], { stdin: new TextEncoder().encode(metrics) });
      expect(`${p.stdout}${p.stderr}`).toBe("");
      expect(p.exitCode).toBe(0);
    } else console.log("promtool not installed: skipped promtool check metrics");
  } finally {
    client?.close();
    await gw.close();
  }
});
