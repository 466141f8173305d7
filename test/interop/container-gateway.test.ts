// Issue 5: a peer container (wireguard-go in the locally built image, started through
// testcontainers) against the gateway CLI: curl by name (resolved through the gateway's DNS), dig,
// ping and UDP echo, all through the tunnel to the inet namespace's servers.
//
// Layout (everything inside the test's own namespaces and container; see test-network.md):
//
//   container (network mode none)   peer ns                gw ns                     inet ns
//   eth0 10.204.0.2 <---- veth ---> 10.204.0.1 10.201.0.1 <-> 10.201.0.2 [gateway] <-> servers
//   wg0 192.168.76.1, fc00::1       (forwarding on; only its two connected subnets)
//
// The container's resolv.conf names the gateway's DNS address (written before the tunnel is up, so
// no query can ever go anywhere else); its only routes are the veth subnet, 10.201.0.0/24 via the
// peer namespace, and the tunnel. The container is removed in afterAll (and at process exit).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { dockerSkipReason, ensurePeerImage } from "../../harness/containers/image.ts";
import {
  installContainerExitHook,
  listTestContainers,
  type PeerContainer,
  removeTestContainers,
  startPeerContainer,
} from "../../harness/containers/peer.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { Gateway } from "../../harness/gateway.ts";
import { addRoute, interopSkipReason, sysctl } from "../../harness/netns.ts";
import { type InetServers, PORTS, startInetServers } from "../../harness/servers.ts";
import { ADDR, createTopology, HOSTS, type Topology } from "../../harness/topology.ts";
import { genKeyPair } from "../../harness/wireguard-go.ts";

const skip = (await dockerSkipReason()) ?? interopSkipReason(["wg", "ip", "ss", "python3"]);

const PREFIX = "wgsicg-";
const WG_IF = "wgsicg0";
const GW_PORT = 51820;
const LINK = { hostIf: "wgsicg-c0", host4: "10.204.0.1", container4: "10.204.0.2", cidr: "10.204.0.0/24" } as const;
const MiB = 1 << 20;
const web = `http://${HOSTS.web}:${PORTS.http}`;

describeOrSkip(skip, "wireguard-go peer container against the gateway CLI", () => {
  let t: Topology | null = null;
  let servers: InetServers | null = null;
  let gw: Gateway | null = null;
  let c: PeerContainer | null = null;

  beforeAll(async () => {
    installContainerExitHook();
    const img = await ensurePeerImage();
    console.log(`container-gateway: image ${img.tag} from ${img.source} in ${Math.round(img.ms)} ms`);
    t = await createTopology(PREFIX);
    servers = await startInetServers(t.inet, { files: { "1m.bin": MiB } });
    await sysctl(t.peer, "net.ipv4.ip_forward", 1);
    await addRoute(t.gw, [LINK.cidr, "via", ADDR.peerOuter4]);
    const [gwKeys, peerKeys] = await Promise.all([genKeyPair(), genKeyPair()]);
    gw = new Gateway({
      ns: t.gw,
      privateKey: gwKeys.privateKey,
      peerPublicKey: peerKeys.publicKey,
      bindPort: GW_PORT,
      keepaliveInterval: 10,
    });
    await gw.start();

    c = await startPeerContainer();
    await c.connectToNetns({
      ns: t.peer,
      hostIf: LINK.hostIf,
      hostCidrs: [`${LINK.host4}/24`],
      containerCidrs: [`${LINK.container4}/24`],
      containerRoutes: [`10.201.0.0/24 via ${LINK.host4}`],
    });
    // Names resolve only through the gateway's DNS (set before any route into the tunnel exists).
    await c.execCheck(["sh", "-c", `printf 'nameserver ${ADDR.tunGw4}\\n' > /etc/resolv.conf`]);
    const pub = await c.wireguardUp({
      ifname: WG_IF,
      privateKey: peerKeys.privateKey,
      peerPublicKey: gwKeys.publicKey,
      endpoint: `${ADDR.gwOuter4}:${GW_PORT}`,
      allowedIps: ["0.0.0.0/0", "::/0"],
      addresses: [`${ADDR.tunPeer4}/32`, `${ADDR.tunPeer6}/128`],
      routes: ["default", "-6 default"],
    });
    expect(pub).toBe(peerKeys.publicKey);
  }, 900_000);

  afterAll(async () => {
    await c?.stop().catch(() => {});
    await removeTestContainers().catch(() => {});
    await gw?.stop().catch(() => {});
    await servers?.stop().catch(() => {});
    await t?.destroy();
  }, 60_000);

  const gwLog = () => `\n--- gateway log (tail) ---\n${gw?.log().slice(-3000) ?? ""}`;

  test("the container's only routes are the veth, the way to gw's outer address, and the tunnel", async () => {
    const r4 = (await c!.execCheck(["ip", "-4", "route"])).stdout
      .trim()
      .split("\n")
      .map((l) => l.trim());
    expect(r4.sort()).toEqual(
      [
        `default dev ${WG_IF} scope link`,
        `10.201.0.0/24 via ${LINK.host4} dev eth0`,
        `${LINK.cidr} dev eth0 proto kernel scope link src ${LINK.container4}`,
      ].sort(),
    );
  }, 30_000);

  test("handshake and ping the pingable address through the gateway", async () => {
    const p = await c!.exec(["ping", "-c", "3", "-i", "0.3", "-W", "3", ADDR.tunGw4], 30_000);
    expect(p.stdout, p.output + gwLog()).toMatch(/3 packets transmitted, 3 received/);
    const peers = await c!.wgPeers(WG_IF);
    expect(peers).toHaveLength(1);
    expect(peers[0]!.endpoint).toBe(`${ADDR.gwOuter4}:${GW_PORT}`);
    expect(peers[0]!.latestHandshake).toBeGreaterThan(0);
    expect(peers[0]!.rx).toBeGreaterThan(0);
  }, 30_000);

  test("dig A/AAAA against the gateway's DNS; an unknown name has no answer", async () => {
    const dig = async (name: string, type: string) => {
      const r = await c!.exec(["dig", `@${ADDR.tunGw4}`, "+time=2", "+tries=2", "+short", name, type], 20_000);
      return { answers: r.stdout.trim().split("\n").filter(Boolean), raw: r.output };
    };
    const a = await dig(HOSTS.web, "A");
    expect(a.answers, a.raw + gwLog()).toEqual([ADDR.inet4]);
    const aaaa = await dig(HOSTS.web, "AAAA");
    expect(aaaa.answers, aaaa.raw).toEqual([ADDR.inet6]);
    const other = await dig(HOSTS.other, "A");
    expect(other.answers, other.raw).toEqual([ADDR.inet4b]);
    const missing = await dig(HOSTS.missing, "A");
    expect(missing.answers, missing.raw).toEqual([]);
    // The system resolver in the container uses the same server (resolv.conf).
    const ga = await c!.exec(["getent", "ahostsv4", HOSTS.web], 20_000);
    expect(ga.stdout, ga.output).toContain(ADDR.inet4);
  }, 60_000);

  test("curl by name over IPv4 and IPv6: sha256 matches", async () => {
    const f = servers!.files["1m.bin"]!;
    for (const family of ["-4", "-6"]) {
      const r = await c!.exec(
        ["sh", "-c", `curl ${family} -sS --fail --max-time 60 ${web}/1m.bin | sha256sum`],
        90_000,
      );
      expect(r.stdout.split(/\s+/)[0], `curl ${family}: ${r.output}${gwLog()}`).toBe(f.sha256);
    }
  }, 200_000);

  test("UDP echo by name over IPv4 and IPv6 (socat)", async () => {
    for (const [family, payload] of [
      ["4", "cg-udp4"],
      ["6", "cg-udp6"],
    ] as const) {
      const r = await c!.exec(
        ["sh", "-c", `printf '${payload}' | socat -t 2 - UDP${family}:${HOSTS.web}:${PORTS.udpEcho}`],
        20_000,
      );
      expect(r.stdout.trim(), r.output + gwLog()).toBe(payload);
    }
  }, 60_000);

  test("the gateway is still running; only this run's container exists", async () => {
    expect(gw!.running(), gwLog()).toBe(true);
    const ids = await listTestContainers();
    expect(ids).toHaveLength(1);
    expect(c!.id.startsWith(ids[0]!)).toBe(true);
  }, 30_000);
});
