// Issue 11: two different WireGuard implementations as peers of one gateway at the same time — the
// Linux kernel's (a Debian kernel in qemu, behind a tap in the peer namespace) and wireguard-go (in
// the peer namespace itself). The gateway runs from `-c FILE` with one [Peer] each, limited to
// that peer's addresses; both download and ping while the other is active.
//
//   qemu guest wg0 192.168.76.1 ── tap 10.204.0.0/24 ── peer ns ── gw ns [gateway] ── inet ns
//   wireguard-go (peer ns) 192.168.76.12, policy table 112 ──┘
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { describeOrSkip } from "../../harness/gate.ts";
import { REPO_ROOT } from "../../harness/gateway.ts";
import { type CommandOutcome, kernelWireGuardPeer } from "../../harness/kernel/peers.ts";
import { kernelSkipReason } from "../../harness/kernel/vm.ts";
import {
  addRoute,
  type BgProcess,
  exec,
  execCheck,
  interopSkipReason,
  sleep,
  spawnBg,
  sysctl,
  tempDir,
} from "../../harness/netns.ts";
import { curlSha256, type InetServers, PORTS, startInetServers } from "../../harness/servers.ts";
import { ADDR, createTopology, type Topology } from "../../harness/topology.ts";
import { genKeyPair, type KeyPair, sweepWgSockets, WireGuardGo } from "../../harness/wireguard-go.ts";

const skip =
  kernelSkipReason() ?? interopSkipReason(["wireguard-go", "wg", "ip", "ss", "ping", "curl", "bash", "sha256sum"]);

const PREFIX = "wgsimk-";
const IFP = "wgsimk";
const NAME = "wgsimkgw";
const GW_PORT = 51820;
const TAP = { ifname: "wgsimktap", host4: "10.204.0.1", guest4: "10.204.0.2", cidr: "10.204.0.0/24" } as const;
const GO_ADDR4 = "192.168.76.12";
const GO_ADDR6 = "fc00::12";
const FILE = "1m.bin";

describeOrSkip(skip, "kernel WireGuard guest and a wireguard-go peer through one gateway at once", () => {
  let t: Topology | null = null;
  let servers: InetServers | null = null;
  let gw: BgProcess | null = null;
  let goPeer: WireGuardGo | null = null;
  let gwKeys: KeyPair;
  let guestKeys: KeyPair;
  let goKeys: KeyPair;
  const tmp = tempDir("wgs-mk");
  const gwLog = () => `\n--- gateway log (tail) ---\n${gw?.output().slice(-3000) ?? ""}`;

  beforeAll(async () => {
    await sweepWgSockets(IFP);
    t = await createTopology(PREFIX);
    servers = await startInetServers(t.inet, { files: { [FILE]: 1 << 20 } });
    await sysctl(t.peer, "net.ipv4.ip_forward", 1);
    await addRoute(t.gw, [TAP.cidr, "via", ADDR.peerOuter4]);
    [gwKeys, guestKeys, goKeys] = await Promise.all([genKeyPair(), genKeyPair(), genKeyPair()]);
    const conf = `${tmp}/gw.conf`;
    writeFileSync(
      conf,
      [
        "[Interface]",
        `PrivateKey = ${gwKeys.privateKey}`,
        `ListenPort = ${GW_PORT}`,
        `Address = ${ADDR.tunGw4}/32`,
        "[Gateway]",
        `BindAddress = ${ADDR.gwOuter4}`,
        "[Peer]",
        `PublicKey = ${guestKeys.publicKey}`,
        `AllowedIPs = ${ADDR.tunPeer4}/32, ${ADDR.tunPeer6}/128`,
        "[Peer]",
        `PublicKey = ${goKeys.publicKey}`,
        `AllowedIPs = ${GO_ADDR4}/32, ${GO_ADDR6}/128`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    gw = spawnBg(
      t.gw,
      "gateway",
      [process.execPath, "src/cli.ts", "-c", conf, "--name", NAME, "--log-level", "debug"],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, WGSLIRPY_LOG: undefined, NO_COLOR: "1" },
      },
    );
    await gw.waitFor(/started: WireGuard mode/, 20_000);
    goPeer = new WireGuardGo({
      ns: t.peer,
      ifname: `${IFP}g`,
      privateKey: goKeys.privateKey,
      listenPort: 51832,
      peerPublicKey: gwKeys.publicKey,
      endpoint: `${ADDR.gwOuter4}:${GW_PORT}`,
      addresses: [`${GO_ADDR4}/32`, `${GO_ADDR6}/128`],
      routes: [],
    });
    await goPeer.start();
    for (const [fam, addr] of [
      ["-4", GO_ADDR4],
      ["-6", GO_ADDR6],
    ] as const) {
      await execCheck(t.peer, ["ip", fam, "rule", "add", "from", addr, "lookup", "112"]);
      await execCheck(t.peer, ["ip", fam, "route", "add", "default", "dev", goPeer.ifname, "table", "112"]);
    }
  }, 90_000);

  afterAll(async () => {
    await goPeer?.dispose().catch(() => {});
    await gw?.stop(3000);
    await servers?.stop().catch(() => {});
    await t?.destroy();
  }, 30_000);

  test("both download and ping while the other is active; wg show lists both with handshakes and transfer", async () => {
    const f = servers!.files[FILE]!;
    const url = `http://${ADDR.inet4}:${PORTS.http}/${FILE}`;
    let vmDone = false;
    const vm = kernelWireGuardPeer({
      netns: t!.peer,
      net: {
        mode: "tap",
        ifname: TAP.ifname,
        hostCidrs: [`${TAP.host4}/24`],
        guestCidrs: [`${TAP.guest4}/24`],
        guestRoutes: [`10.201.0.0/24 via ${TAP.host4}`],
      },
      privateKey: guestKeys.privateKey,
      peerPublicKey: gwKeys.publicKey,
      endpoint: `${ADDR.gwOuter4}:${GW_PORT}`,
      commands: [
        `ping -c 3 -i 0.3 -W 3 ${ADDR.tunGw4}`,
        { cmd: `curl -4 -sS --fail --max-time 60 -o /tmp/dl ${url} && sha256sum /tmp/dl`, timeoutS: 70 },
        // The wireguard-go peer has been busy meanwhile; a second download checks the guest's session still works.
        {
          cmd: `curl -6 -sS --fail --max-time 60 -o /tmp/dl6 -g http://[${ADDR.inet6}]:${PORTS.http}/${FILE} && sha256sum /tmp/dl6`,
          timeoutS: 70,
        },
      ],
      timeoutMs: 170_000,
    }).finally(() => {
      vmDone = true;
    });
    // wireguard-go downloads and pings over and over until the guest is done (bounded).
    const goRuns: { sha: string; pings: number }[] = [];
    for (let i = 0; i < 40 && !vmDone; i++) {
      const [c, p] = await Promise.all([
        curlSha256(t!.peer, url, ["--interface", GO_ADDR4], 60_000),
        exec(t!.peer, ["ping", "-c", "2", "-i", "0.3", "-W", "2", "-I", GO_ADDR4, ADDR.tunGw4], { timeoutMs: 15_000 }),
      ]);
      goRuns.push({ sha: c.sha256, pings: Number(p.stdout.match(/(\d+) received/)?.[1] ?? 0) });
      if (!vmDone) await sleep(500);
    }
    const r = await vm;
    const [ping, c4, c6] = r.commands as [CommandOutcome, CommandOutcome, CommandOutcome];
    const sha = (c: CommandOutcome) => c.output.match(/\b([0-9a-f]{64})\b/)?.[1] ?? `no sha256 (exit ${c.exitCode})`;
    expect(r.vm.exitReason, r.vm.output.slice(-3000)).toBe("done");
    expect(ping.output, gwLog()).toMatch(/3 packets transmitted, 3 received/);
    expect(sha(c4), c4.output + gwLog()).toBe(f.sha256);
    expect(sha(c6), c6.output + gwLog()).toBe(f.sha256);
    expect(goRuns.length).toBeGreaterThan(1);
    for (const run of goRuns) expect(run, gwLog()).toEqual({ sha: f.sha256, pings: 2 });
    const dump = (await execCheck(t!.gw, ["wg", "show", NAME, "dump"])).stdout.trim().split("\n").slice(1);
    const byKey = new Map(dump.map((l) => [l.split("\t")[0], l.split("\t")]));
    const guest = byKey.get(guestKeys.publicKey)!;
    const go = byKey.get(goKeys.publicKey)!;
    expect(guest[2]).toMatch(new RegExp(`^${TAP.guest4.replaceAll(".", "\\.")}:\\d+$`));
    expect(go[2]).toBe(`${ADDR.peerOuter4}:51832`);
    for (const p of [guest, go]) {
      expect(Number(p[4])).toBeGreaterThan(0);
      expect(Number(p[6])).toBeGreaterThan(1 << 20);
    }
  }, 200_000);
});
