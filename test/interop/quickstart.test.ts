// Issue 3 (quick start): `wgslirpy up` in the gw namespace prints a wg-quick config; a wireguard-go
// peer configured from nothing but that config gets ping, DNS and HTTP by name through it; a restart
// with the same state directory prints the same config (same keys) and the peer reconnects.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { describeOrSkip } from "../../harness/gate.ts";
import { REPO_ROOT } from "../../harness/gateway.ts";
import { type BgProcess, exec, interopSkipReason, killAll, sleep, spawnBg, tempDir } from "../../harness/netns.ts";
import { curlSha256, type InetServers, PORTS, startInetServers } from "../../harness/servers.ts";
import { ADDR, createTopology, HOSTS, type Topology } from "../../harness/topology.ts";
import { sweepWgSockets, WireGuardGo } from "../../harness/wireguard-go.ts";

const skip = interopSkipReason([
  "wireguard-go",
  "wg",
  "ip",
  "ss",
  "python3",
  "ping",
  "curl",
  "dig",
  "bash",
  "sha256sum",
]);

const PREFIX = "wgsiqs-";
const IFNAME = "wgsiqsp";
const PORT = 51820;
const MiB = 1 << 20;

/** A wg-quick config: section name → key → values (repeated keys and comma lists flattened). */
type WgQuick = Record<string, Record<string, string[]>>;

function parseWgQuick(text: string): WgQuick {
  const out: WgQuick = {};
  let section: Record<string, string[]> | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    const sec = line.match(/^\[(\w+)\]$/);
    if (sec) {
      section = out[sec[1]!] ??= {};
      continue;
    }
    const kv = line.match(/^(\w+)\s*=\s*(.*)$/);
    if (!kv || !section) throw new Error(`bad wg-quick line: ${raw}`);
    const values = kv[2]!
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    (section[kv[1]!] ??= []).push(...values);
  }
  return out;
}

/** The config block `up` printed (from its first line to PersistentKeepalive), out of mixed output. */
function configBlock(output: string): string | null {
  const lines = output.split("\n");
  const start = lines.findIndex((l) => l.startsWith("# wgslirpy quick start"));
  if (start < 0) return null;
  const end = lines.findIndex((l, i) => i > start && l.startsWith("PersistentKeepalive"));
  return end < 0 ? null : `${lines.slice(start, end + 1).join("\n")}\n`;
}

describeOrSkip(skip, "quick start: `wgslirpy up` + a peer configured from its printed config", () => {
  let t: Topology;
  let servers: InetServers;
  let stateDir: string;
  let up: BgProcess | null = null;
  let peer: WireGuardGo | null = null;
  let firstConfig = "";
  let cfg: WgQuick;

  const upArgv = () => [
    process.execPath,
    "src/cli.ts",
    "up",
    "--state-dir",
    stateDir,
    "-b",
    `${ADDR.gwOuter4}:${PORT}`,
    "--public-endpoint",
    `${ADDR.gwOuter4}:${PORT}`,
    "--log-level",
    "debug",
  ];

  /**
   * Start `up` in gw; wait for it to start and for the UDP port; returns the printed config (with
   * --show-config; without, the keys already exist and `up` must print no config at all).
   */
  async function startUp(extra: string[] = []): Promise<string> {
    up = spawnBg(t.gw, "wgslirpy up", [...upArgv(), ...extra], {
      cwd: REPO_ROOT,
      env: { ...process.env, WGSLIRPY_LOG: undefined, WGSLIRPY_STATE_DIR: undefined, NO_COLOR: "1" },
    });
    await up.waitFor(/ started: WireGuard mode on UDP /, 15_000);
    for (let i = 0; i < 150; i++) {
      if (!up.running()) throw new Error(`up exited:\n${up.output()}`);
      const r = await exec(t.gw, ["ss", "-Hlun", `sport = :${PORT}`], { timeoutMs: 3000 });
      if (r.stdout.includes(`:${PORT}`)) break;
      await sleep(100);
    }
    const block = configBlock(up.output());
    if (!extra.includes("--show-config")) {
      if (block !== null || up.output().includes("PrivateKey")) throw new Error(`up printed a config:\n${up.output()}`);
      return "";
    }
    if (!block) throw new Error(`no config in up's output:\n${up.output()}`);
    return block;
  }

  const upLog = () => `\n--- up output (tail) ---\n${up?.output().slice(-3000) ?? ""}`;

  beforeAll(async () => {
    await sweepWgSockets(IFNAME);
    t = await createTopology(PREFIX);
    try {
      servers = await startInetServers(t.inet, { files: { "4m.bin": 4 * MiB } });
      stateDir = tempDir("wgsiqs-state");
    } catch (e) {
      await t.destroy();
      throw e;
    }
  }, 60_000);

  afterAll(async () => {
    await peer?.dispose().catch(() => {});
    await up?.stop(3000).catch(() => {});
    await servers?.stop().catch(() => {});
    await t?.destroy();
    await killAll();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  }, 30_000);

  test("--print-config-only creates the keys and prints a complete wg-quick config", async () => {
    const r = await exec(t.gw, [...upArgv(), "--print-config-only"], { timeoutMs: 20_000, cwd: REPO_ROOT });
    expect(r.code, r.stderr).toBe(0);
    firstConfig = r.stdout;
    cfg = parseWgQuick(r.stdout);
    expect(cfg.Interface?.PrivateKey?.[0]).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(cfg.Interface?.Address).toEqual(["10.0.2.15/32", "fd00::15/128"]);
    expect(cfg.Interface?.DNS).toEqual(["10.0.2.1"]);
    expect(cfg.Peer?.PublicKey?.[0]).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(cfg.Peer?.Endpoint).toEqual([`${ADDR.gwOuter4}:${PORT}`]);
    expect(cfg.Peer?.AllowedIPs).toEqual(["0.0.0.0/0", "::/0"]);
    const files = (await exec(t.gw, ["ls", stateDir])).stdout.split(/\s+/).filter(Boolean).sort();
    expect(files).toEqual(["gateway.key", "peer.key"]);
  }, 30_000);

  test("`up --show-config` serves and prints the same config; wireguard-go configured from it gets ping, DNS, HTTP", async () => {
    const printed = await startUp(["--show-config"]);
    expect(printed, upLog()).toBe(firstConfig);
    const c = parseWgQuick(printed);
    const dns = c.Interface!.DNS![0]!;
    peer = new WireGuardGo({
      ns: t.peer,
      ifname: IFNAME,
      privateKey: c.Interface!.PrivateKey![0]!,
      listenPort: 51821,
      peerPublicKey: c.Peer!.PublicKey![0]!,
      endpoint: c.Peer!.Endpoint![0]!,
      allowedIps: c.Peer!.AllowedIPs!,
      addresses: c.Interface!.Address!,
      mtu: c.Interface!.MTU ? Number(c.Interface!.MTU[0]) : undefined,
      persistentKeepalive: c.Peer!.PersistentKeepalive ? Number(c.Peer!.PersistentKeepalive[0]) : undefined,
      nameserver: dns,
    });
    await peer.start();

    const ping = await exec(t.peer, ["ping", "-c", "3", "-i", "0.3", "-W", "2", dns], { timeoutMs: 20_000 });
    expect(ping.stdout, ping.stderr + upLog()).toMatch(/3 received/);

    const dig = await exec(t.peer, ["dig", `@${dns}`, "+time=2", "+tries=2", "+short", HOSTS.web, "A"], {
      timeoutMs: 15_000,
    });
    expect(dig.stdout.trim(), dig.stderr + upLog()).toBe(ADDR.inet4);
    const dig6 = await exec(t.peer, ["dig", `@${dns}`, "+time=2", "+tries=2", "+short", HOSTS.web, "AAAA"], {
      timeoutMs: 15_000,
    });
    expect(dig6.stdout.trim(), dig6.stderr + upLog()).toBe(ADDR.inet6);

    // By name: curl resolves web.test through the peer's resolv.conf (DNS = from the config).
    const f = servers.files["4m.bin"]!;
    for (const fam of ["-4", "-6"]) {
      const r = await curlSha256(t.peer, `http://${HOSTS.web}:${PORTS.http}/${f.name}`, [fam], 60_000);
      expect(r.sha256, `${fam}: ${r.result.stderr}${upLog()}`).toBe(f.sha256);
    }
  }, 90_000);

  test("restart with the same state dir: no private key printed, same keys, the running peer reconnects", async () => {
    expect(peer, "previous test did not start the peer").not.toBeNull();
    const before = (await peer!.show()).peers[0]?.latestHandshake ?? 0;
    await up!.stop(3000);
    await startUp();
    expect(up!.output(), upLog()).toContain(`peer keys kept in ${stateDir}; "wgslirpy up --print-config-only"`);
    // The peer keeps its old session until it notices no replies; traffic makes it re-handshake.
    const t0 = performance.now();
    let ok = false;
    for (let i = 0; i < 20 && !ok; i++) {
      const r = await exec(t.peer, ["ping", "-c", "1", "-W", "2", "10.0.2.1"], { timeoutMs: 10_000 });
      ok = /1 received/.test(r.stdout);
    }
    const s = (performance.now() - t0) / 1000;
    console.log(`quickstart: peer reconnected ${s.toFixed(1)} s after the restart`);
    expect(ok, upLog()).toBe(true);
    expect((await peer!.show()).peers[0]?.latestHandshake ?? 0).toBeGreaterThan(before);
    const f = servers.files["4m.bin"]!;
    const r = await curlSha256(t.peer, `http://${HOSTS.web}:${PORTS.http}/${f.name}`, [], 60_000);
    expect(r.sha256, r.result.stderr + upLog()).toBe(f.sha256);
  }, 120_000);
});
