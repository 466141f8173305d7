/**
 * Memory per configured peer and handshake latency, through the gateway CLI on loopback:
 *  - RSS of `wgslirpy -c FILE` with 0 and with N configured peers (default 1,000), idle;
 *  - every peer then handshakes once (a WireGuardTunnel client per peer, one at a time, over its
 *    own UDP socket on 127.0.0.1): latency from start() to the completed handshake, and the RSS
 *    with N peers holding a session;
 *  - the JS heap per peer after a full GC, in-process (a device on an in-memory transport): what
 *    the peer objects themselves hold, without allocator slack and garbage.
 * Usage: bun bench/peers.ts [N, default 1000]
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { MemoryTransport } from "../src/transport/memory.ts";
import { openUdpTransport } from "../src/transport/udp.ts";
import { realClock, VirtualClock } from "../src/util/clock.ts";
import { silentLogger } from "../src/util/log.ts";
import { cryptoRandom, SeededRandom } from "../src/util/random.ts";
import { WireGuardDevice } from "../src/wireguard/device.ts";
import { generatePrivateKey, keyToBase64, publicKeyOf } from "../src/wireguard/keys.ts";
import { WireGuardTunnel } from "../src/wireguard/tunnel.ts";

const N = Number(process.argv[2] ?? 1000);
const CLI = resolve(import.meta.dir, "../src/cli.ts");
const dir = mkdtempSync(join(tmpdir(), "wgslirpy-bench-peers-"));

async function rssKiB(pid: number): Promise<number> {
  const s = await Bun.file(`/proc/${pid}/status`).text();
  return Number(s.match(/VmRSS:\s+(\d+) kB/)?.[1] ?? Number.NaN);
}

/** Start the gateway with `peers` peers; resolves with its process, UDP port and startup time. */
async function startGateway(gwKey: Uint8Array, peers: Uint8Array[]) {
  const conf = join(dir, `gw-${peers.length}.conf`);
  const lines = ["[Interface]", `PrivateKey = ${keyToBase64(gwKey)}`, "Address = 10.0.2.1/32", ""];
  peers.forEach((pub, i) => {
    const host = i + 2;
    lines.push(
      "[Peer]",
      `PublicKey = ${keyToBase64(pub)}`,
      `AllowedIPs = 10.${(host >> 16) & 255}.${(host >> 8) & 255}.${host & 255}/32`,
      "",
    );
  });
  writeFileSync(conf, lines.join("\n"), { mode: 0o600 });
  const t0 = performance.now();
  const p = Bun.spawn(["bun", CLI, "-c", conf, "-b", "127.0.0.1:0", "--no-uapi", "--log-level", "info"], {
    stdout: "ignore",
    stderr: "pipe",
  });
  const reader = p.stderr.getReader();
  let log = "";
  const deadline = performance.now() + 60_000;
  while (!/UDP 127\.0\.0\.1:(\d+)/.test(log)) {
    if (performance.now() > deadline) throw new Error(`gateway did not start:\n${log}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`gateway exited:\n${log}`);
    log += new TextDecoder().decode(value);
  }
  const startupMs = performance.now() - t0;
  void (async () => {
    for (;;) if ((await reader.read()).done) return;
  })();
  return { p, port: Number(log.match(/UDP 127\.0\.0\.1:(\d+)/)![1]), startupMs };
}

async function settledRss(pid: number): Promise<number> {
  await Bun.sleep(2000);
  return rssKiB(pid);
}

async function handshake(clientKey: Uint8Array, gwPublic: Uint8Array, port: number): Promise<number> {
  const transport = await openUdpTransport({ address: "127.0.0.1", port: 0 });
  const t = new WireGuardTunnel({
    privateKey: clientKey,
    peerPublicKey: gwPublic,
    endpoint: { address: "127.0.0.1", port },
    transport,
    clock: realClock,
    random: cryptoRandom,
    log: silentLogger,
  });
  const t0 = performance.now();
  t.start();
  try {
    while (t.stats.handshakesCompleted === 0) {
      if (performance.now() - t0 > 10_000) throw new Error("no handshake within 10 s");
      await Bun.sleep(0);
    }
    // The responder's session is confirmed by our first transport packet (a keepalive).
    return performance.now() - t0;
  } finally {
    await Bun.sleep(1);
    t.close();
    transport.close();
  }
}

/** Heap bytes per peer in-process: [idle, with a session]. */
function heapPerPeer(gwKey: Uint8Array, clientKeys: Uint8Array[]): [number, number] {
  const clock = new VirtualClock(0);
  const random = new SeededRandom(1);
  const heap = () => {
    Bun.gc(true);
    return process.memoryUsage().heapUsed;
  };
  const [ta, tb] = MemoryTransport.pair({ address: "127.0.0.1", port: 1 }, { address: "127.0.0.1", port: 2 });
  const h0 = heap();
  const dev = new WireGuardDevice({ privateKey: gwKey, transport: ta, clock, random, log: silentLogger });
  for (const [i, k] of clientKeys.entries()) {
    dev.addPeer({ publicKey: publicKeyOf(k), allowedIps: [`10.1.${i >> 8}.${i & 255}/32`] });
  }
  dev.start();
  const h1 = heap();
  for (const k of clientKeys) {
    const c = new WireGuardTunnel({
      privateKey: k,
      peerPublicKey: publicKeyOf(gwKey),
      endpoint: { address: "127.0.0.1", port: 1 },
      transport: tb,
      clock,
      random,
      log: silentLogger,
    });
    tb.onDatagram = (d, f) => c.onDatagram(d, f);
    c.start();
    clock.advance(2);
    c.close();
  }
  if (dev.stats.handshakesCompleted !== clientKeys.length) throw new Error("in-process handshakes incomplete");
  const h2 = heap();
  dev.close();
  return [(h1 - h0) / clientKeys.length, (h2 - h0) / clientKeys.length];
}

const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

try {
  const gwKey = generatePrivateKey();
  const gwPublic = publicKeyOf(gwKey);
  const clientKeys = Array.from({ length: N }, () => generatePrivateKey());
  const publics = clientKeys.map((k) => publicKeyOf(k));

  const empty = await startGateway(gwKey, []);
  const rss0 = await settledRss(empty.p.pid);
  empty.p.kill();
  await empty.p.exited;

  const full = await startGateway(gwKey, publics);
  const rssIdle = await settledRss(full.p.pid);
  const latencies: number[] = [];
  for (const k of clientKeys) latencies.push(await handshake(k, gwPublic, full.port));
  const rssSessions = await settledRss(full.p.pid);
  full.p.kill();
  await full.p.exited;

  latencies.sort((a, b) => a - b);
  const [heapIdle, heapSession] = heapPerPeer(gwKey, clientKeys);
  const perPeer = (kib: number) => `${((kib - rss0) / N).toFixed(1)} KiB per peer`;
  console.log(`wgslirpy -c with N configured peers (loopback, ${N} peers)`);
  console.log(
    `  RSS, 0 peers:                    ${(rss0 / 1024).toFixed(1)} MiB (startup ${empty.startupMs.toFixed(0)} ms)`,
  );
  console.log(
    `  RSS, ${N} idle peers:             ${(rssIdle / 1024).toFixed(1)} MiB  → ${perPeer(rssIdle)} (startup ${full.startupMs.toFixed(0)} ms)`,
  );
  console.log(`  RSS, ${N} peers after a handshake: ${(rssSessions / 1024).toFixed(1)} MiB  → ${perPeer(rssSessions)}`);
  console.log(
    `  JS heap per peer after GC (in-process): ${(heapIdle / 1024).toFixed(1)} KiB idle, ${(heapSession / 1024).toFixed(1)} KiB with a session`,
  );
  console.log(
    `  handshake latency (start → session, one at a time): median ${pct(latencies, 0.5).toFixed(2)} ms, p90 ${pct(latencies, 0.9).toFixed(2)} ms, p99 ${pct(latencies, 0.99).toFixed(2)} ms, max ${latencies[latencies.length - 1]!.toFixed(2)} ms`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
