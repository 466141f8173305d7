// The container-peer harness on its own (no gateway): a locally built image with wireguard-go,
// started through testcontainers, handshakes (a) with wireguard-go in a test namespace over a veth
// (the container has network mode "none": nothing but that veth), and (b) with a second container on
// a docker --internal network. Cleanup removes every container this run created.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dockerSkipReason, ensurePeerImage } from "../../harness/containers/image.ts";
import {
  createInternalNetwork,
  installContainerExitHook,
  listTestContainers,
  type PeerContainer,
  removeTestContainers,
  startPeerContainer,
} from "../../harness/containers/peer.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { wgGenKey } from "../../harness/kernel/peers.ts";
import {
  addAddr,
  type BgProcess,
  createNs,
  deleteNs,
  exec,
  execCheck,
  have,
  run,
  spawnBg,
  tempDir,
  waitUntil,
} from "../../harness/netns.ts";

const skip = (await dockerSkipReason()) ?? (have("wireguard-go") ? null : "wireguard-go missing");
const NS = "csm-host";
const WG_IF = "cswg0";

describeOrSkip(skip, "wireguard-go peer containers", () => {
  const procs: BgProcess[] = [];
  const started: PeerContainer[] = [];
  let work = "";

  beforeAll(async () => {
    installContainerExitHook();
    const img = await ensurePeerImage();
    console.log(`container-smoke: image ${img.tag} from ${img.source} in ${Math.round(img.ms)} ms`);
    await createNs(NS);
    work = tempDir("csm");
  }, 900_000);

  afterAll(async () => {
    for (const p of procs) await p.stop(1000);
    rmSync(`/var/run/wireguard/${WG_IF}.sock`, { force: true });
    await removeTestContainers();
    await deleteNs(NS);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("container wireguard-go <-> wireguard-go in a test namespace over a veth", async () => {
    const t0 = performance.now();
    const c = await startPeerContainer();
    started.push(c);
    console.log(`container-smoke: container started in ${Math.round(performance.now() - t0)} ms`);
    await c.connectToNetns({ ns: NS, hostIf: "csm-c0", hostCidrs: ["10.91.0.1/24"], containerCidrs: ["10.91.0.2/24"] });
    // Network mode none + one veth: the container has no other route anywhere.
    expect((await c.execCheck(["ip", "route"])).stdout.trim()).toBe(
      "10.91.0.0/24 dev eth0 proto kernel scope link src 10.91.0.2",
    );

    const host = await wgGenKey();
    const peer = await wgGenKey();
    const keyFile = join(work, "host.key");
    writeFileSync(keyFile, `${host.privateKey}\n`, { mode: 0o600 });
    rmSync(`/var/run/wireguard/${WG_IF}.sock`, { force: true });
    const wgGo = spawnBg(NS, "wireguard-go", ["wireguard-go", "-f", WG_IF]);
    procs.push(wgGo);
    await waitUntil("wireguard-go UAPI socket", () => existsSync(`/var/run/wireguard/${WG_IF}.sock`), 10_000);
    await execCheck(NS, [
      "wg",
      "set",
      WG_IF,
      "listen-port",
      "51820",
      "private-key",
      keyFile,
      "peer",
      peer.publicKey,
      "allowed-ips",
      "10.92.0.2/32,fd92::2/128",
    ]);
    await addAddr(NS, WG_IF, "10.92.0.1/24");
    await addAddr(NS, WG_IF, "fd92::1/64");
    await execCheck(NS, ["ip", "link", "set", WG_IF, "up"]);

    const pub = await c.wireguardUp({
      privateKey: peer.privateKey,
      peerPublicKey: host.publicKey,
      endpoint: "10.91.0.1:51820",
      allowedIps: ["10.92.0.1/32", "fd92::1/128"],
      addresses: ["10.92.0.2/24", "fd92::2/64"],
    });
    expect(pub).toBe(peer.publicKey);
    const p4 = await c.exec(["ping", "-c", "3", "-i", "0.2", "-W", "3", "10.92.0.1"], 30_000);
    const p6 = await c.exec(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "3", "fd92::1"], 30_000);
    console.log(`container-smoke: ${p4.output}\n${p6.output}`);
    expect(p4.exitCode).toBe(0);
    expect(p4.stdout).toMatch(/3 packets transmitted, 3 received/);
    expect(p6.exitCode).toBe(0);
    // And the other direction, from the namespace into the container's tunnel address.
    const back = await exec(NS, ["ping", "-c", "2", "-i", "0.2", "-W", "3", "10.92.0.2"], { timeoutMs: 20_000 });
    expect(back.stdout).toMatch(/2 packets transmitted, 2 received/);
    const peers = await c.wgPeers();
    expect(peers).toHaveLength(1);
    expect(peers[0]!.publicKey).toBe(host.publicKey);
    expect(peers[0]!.latestHandshake).toBeGreaterThan(0);
    expect(peers[0]!.rx).toBeGreaterThan(0);
    await wgGo.stop(1000);
  }, 120_000);

  test("two containers handshake over a docker --internal network", async () => {
    const net = await createInternalNetwork();
    const a = await startPeerContainer({ networkMode: net });
    const b = await startPeerContainer({ networkMode: net });
    started.push(a, b);
    const ipOf = async (c: PeerContainer) =>
      (
        await run(["docker", "inspect", "--format", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c.id])
      ).stdout.trim();
    const [ipA, ipB] = [await ipOf(a), await ipOf(b)];
    expect(ipA).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    // --internal: no default route out of the container.
    expect((await a.exec(["ip", "route", "show", "default"])).stdout.trim()).toBe("");
    const ka = await wgGenKey();
    const kb = await wgGenKey();
    await a.wireguardUp({
      privateKey: ka.privateKey,
      listenPort: 51820,
      peerPublicKey: kb.publicKey,
      allowedIps: ["10.93.0.2/32"],
      addresses: ["10.93.0.1/24"],
    });
    await b.wireguardUp({
      privateKey: kb.privateKey,
      peerPublicKey: ka.publicKey,
      endpoint: `${ipA}:51820`,
      allowedIps: ["10.93.0.1/32"],
      addresses: ["10.93.0.2/24"],
    });
    const p = await b.exec(["ping", "-c", "3", "-i", "0.2", "-W", "3", "10.93.0.1"], 30_000);
    expect(p.stdout).toMatch(/3 packets transmitted, 3 received/);
    const seen = await a.wgPeers();
    expect(seen[0]!.endpoint.startsWith(`${ipB}:`)).toBe(true);
    expect(seen[0]!.latestHandshake).toBeGreaterThan(0);
  }, 120_000);

  test("stop() and removeTestContainers() leave no container of this run behind", async () => {
    expect(started.length).toBe(3);
    const first = started[0]!;
    await first.stop();
    const gone = await run(["docker", "ps", "-aq", "--filter", `id=${first.id}`]);
    expect(gone.stdout.trim()).toBe("");
    expect((await listTestContainers()).length).toBe(2);
    const removed = await removeTestContainers();
    expect(removed.length).toBe(2);
    expect(await listTestContainers()).toEqual([]);
  }, 60_000);
});
