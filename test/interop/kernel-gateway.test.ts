// Issue 5: a real Linux kernel's WireGuard (the Debian kernel booted in qemu) as the peer of the
// gateway CLI, in both roles: the guest initiates (gateway = responder), and the gateway initiates
// with `-p` toward the guest (guest = responder, no endpoint configured). From inside the guest:
// ping the pingable address (v4 in one boot, v6 in the other), DNS against `-D` (busybox nslookup),
// curl downloads from the inet test server with sha256 checked, UDP echo with socat.
//
// Layout (everything inside the test's own namespaces and VM; see test-network.md):
//
//   qemu guest (peer ns)           peer ns              gw ns                  inet ns
//   eth0 10.203.0.2 <-- tap --> 10.203.0.1  10.201.0.1 <-> 10.201.0.2 [gateway] <-> 10.202.0.2 servers
//   wg0 192.168.76.1, fc00::1   (forwarding on; only its two connected subnets)
//
// The tap gives exact outer addresses (no NAT), so the gateway's `-p 10.203.0.2:51820` reaches the
// guest's kernel WireGuard socket directly. One VM boot per role keeps this file around a minute.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { describeOrSkip } from "../../harness/gate.ts";
import { Gateway } from "../../harness/gateway.ts";
import { type CommandOutcome, kernelWireGuardPeer } from "../../harness/kernel/peers.ts";
import { kernelSkipReason } from "../../harness/kernel/vm.ts";
import { addRoute, interopSkipReason, sysctl, writeNsFile } from "../../harness/netns.ts";
import { type InetServers, PORTS, startInetServers } from "../../harness/servers.ts";
import { ADDR, createTopology, HOSTS, type Topology } from "../../harness/topology.ts";
import { genKeyPair, type KeyPair } from "../../harness/wireguard-go.ts";

const skip = kernelSkipReason() ?? interopSkipReason(["wg", "ip", "ss", "python3"]);

const PREFIX = "wgsikg-";
const GW_PORT = 51820;
const GUEST_PORT = 51820;
const TAP = { ifname: "wgsikgtap", host4: "10.203.0.1", guest4: "10.203.0.2", cidr: "10.203.0.0/24" } as const;
const MiB = 1 << 20;
const web = `http://${HOSTS.web}:${PORTS.http}`;

describeOrSkip(skip, "kernel WireGuard (qemu guest) against the gateway CLI", () => {
  let t: Topology | null = null;
  let servers: InetServers | null = null;
  let gw: Gateway | null = null;
  let gwKeys: KeyPair;
  let guestKeys: KeyPair;

  beforeAll(async () => {
    t = await createTopology(PREFIX);
    servers = await startInetServers(t.inet, { files: { "1m.bin": MiB } });
    // The peer namespace routes between the VM's tap and the veth to gw; gw knows the way back.
    await sysctl(t.peer, "net.ipv4.ip_forward", 1);
    await addRoute(t.gw, [TAP.cidr, "via", ADDR.peerOuter4]);
    // An offline gateway host: its nameserver is unreachable (no route), so a lookup not answered
    // by /etc/hosts fails transiently (EAI_AGAIN), the case of issue 12 for the A-only name below.
    writeNsFile(t.gw, "resolv.conf", "nameserver 10.77.0.1\n");
    [gwKeys, guestKeys] = await Promise.all([genKeyPair(), genKeyPair()]);
  }, 60_000);

  afterAll(async () => {
    await gw?.stop().catch(() => {});
    await servers?.stop().catch(() => {});
    await t?.destroy();
  }, 30_000);

  async function startGateway(extra: { peerEndpoint?: string; dns: string; pingable: string }): Promise<Gateway> {
    await gw?.stop();
    gw = new Gateway({
      ns: t!.gw,
      privateKey: gwKeys.privateKey,
      peerPublicKey: guestKeys.publicKey,
      bindPort: GW_PORT,
      keepaliveInterval: 10,
      ...extra,
    });
    await gw.start();
    return gw;
  }

  const tap = {
    mode: "tap" as const,
    ifname: TAP.ifname,
    hostCidrs: [`${TAP.host4}/24`],
    guestCidrs: [`${TAP.guest4}/24`],
    guestRoutes: [`10.201.0.0/24 via ${TAP.host4}`],
  };

  const gwLog = () => `\n--- gateway log (tail) ---\n${gw?.log().slice(-3000) ?? ""}`;
  const show = (label: string, cmds: CommandOutcome[]) => {
    for (const c of cmds) console.log(`kernel-gateway ${label}: $ ${c.cmd} -> ${c.exitCode} (${c.ms} ms)\n${c.output}`);
  };
  const curlSha = (family: "4" | "6", file: string) =>
    `curl -${family} -sS --fail --max-time 60 -o /tmp/dl ${web}/${file} && sha256sum /tmp/dl`;
  const sha = (c: CommandOutcome) => c.output.match(/\b([0-9a-f]{64})\b/)?.[1] ?? `no sha256 (exit ${c.exitCode})`;
  const udpEcho = (family: "4" | "6", host: string, payload: string) =>
    `printf '${payload}' | socat -t 2 - UDP${family}:${family === "6" ? `[${host}]` : host}:${PORTS.udpEcho}`;

  test("guest initiates (gateway = responder): handshake, ping, DNS, HTTP v4/v6 with sha256, UDP echo v4/v6", async () => {
    const g = await startGateway({ dns: `${ADDR.tunGw4}:53`, pingable: ADDR.tunGw4 });
    const f = servers!.files["1m.bin"]!;
    const t0 = performance.now();
    const r = await kernelWireGuardPeer({
      netns: t!.peer,
      net: tap,
      privateKey: guestKeys.privateKey,
      peerPublicKey: gwKeys.publicKey,
      endpoint: `${ADDR.gwOuter4}:${GW_PORT}`,
      dns: [ADDR.tunGw4],
      commands: [
        `ping -c 3 -i 0.3 -W 3 ${ADDR.tunGw4}`,
        `nslookup ${HOSTS.web} ${ADDR.tunGw4}`,
        { cmd: curlSha("4", "1m.bin"), timeoutS: 70 },
        { cmd: curlSha("6", "1m.bin"), timeoutS: 70 },
        udpEcho("4", ADDR.inet4, "kg-udp4-hello"),
        udpEcho("6", ADDR.inet6, "kg-udp6-hello"),
        `nslookup ${HOSTS.missing} ${ADDR.tunGw4}`,
        // busybox asks A and AAAA; a SERVFAIL for AAAA used to fail the whole lookup (issue 12).
        `nslookup ${HOSTS.v4only} ${ADDR.tunGw4}`,
      ],
      timeoutMs: 170_000,
    });
    console.log(
      `kernel-gateway responder: VM ${Math.round(r.vm.totalMs)} ms (boot ${Math.round(r.vm.bootMs ?? -1)} ms, accel ${r.vm.accel}), test ${Math.round(performance.now() - t0)} ms`,
    );
    show("responder", r.commands);
    const [ping, ns, c4, c6, u4, u6, nx, v4only] = r.commands as [
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
    ];
    expect(r.vm.exitReason, r.vm.output.slice(-3000)).toBe("done");
    expect(r.latestHandshake, r.wgDump + gwLog()).toBeGreaterThan(0);
    expect(ping.output, gwLog()).toMatch(/3 packets transmitted, 3 received/);
    expect(ns.output, gwLog()).toContain(ADDR.inet4);
    expect(ns.output).toContain(ADDR.inet6);
    expect(sha(c4), c4.output + gwLog()).toBe(f.sha256);
    expect(sha(c6), c6.output + gwLog()).toBe(f.sha256);
    expect(u4.output.trim(), gwLog()).toBe("kg-udp4-hello");
    expect(u6.output.trim(), gwLog()).toBe("kg-udp6-hello");
    expect(nx.output).not.toContain(ADDR.inet4);
    expect(v4only.exitCode, v4only.output + gwLog()).toBe(0);
    expect(v4only.output).toContain(ADDR.inet4);
    // The guest's kernel initiated; the gateway answered.
    expect(g.countLog(/Received handshake_initiation/), gwLog()).toBeGreaterThan(0);
    expect(g.countLog(/Sending handshake_response/), gwLog()).toBeGreaterThan(0);
    expect(g.running()).toBe(true);
  }, 200_000);

  test("gateway initiates with -p toward the guest: handshake, ping v6, DNS over v6, HTTP with sha256, UDP echo", async () => {
    const v6Dns = `[${ADDR.tunGw6}]:53`;
    const g = await startGateway({
      peerEndpoint: `${TAP.guest4}:${GUEST_PORT}`,
      dns: v6Dns,
      pingable: ADDR.tunGw6,
    });
    const f = servers!.files["1m.bin"]!;
    const t0 = performance.now();
    // No endpoint in the guest: only the gateway can start this handshake.
    const waitHandshake = [
      "i=0",
      "while [ $i -lt 80 ]; do",
      "  h=$(wg show wg0 latest-handshakes | cut -f2)",
      '  if [ -n "$h" ] && [ "$h" != 0 ]; then echo "handshake $h after $i"; wg show wg0 endpoints; exit 0; fi',
      "  i=$((i + 1)); sleep 0.5",
      "done",
      "echo no handshake; exit 1",
    ].join("\n");
    const r = await kernelWireGuardPeer({
      netns: t!.peer,
      net: tap,
      privateKey: guestKeys.privateKey,
      peerPublicKey: gwKeys.publicKey,
      listenPort: GUEST_PORT,
      dns: [ADDR.tunGw6],
      commands: [
        { cmd: waitHandshake, timeoutS: 50 },
        `ping -6 -c 3 -i 0.3 -W 3 ${ADDR.tunGw6}`,
        `nslookup ${HOSTS.web} ${ADDR.tunGw6}`,
        { cmd: curlSha("6", "1m.bin"), timeoutS: 70 },
        { cmd: curlSha("4", "1m.bin"), timeoutS: 70 },
        udpEcho("6", ADDR.inet6b, "kg-init-udp6"),
        udpEcho("4", ADDR.inet4b, "kg-init-udp4"),
      ],
      timeoutMs: 170_000,
    });
    console.log(
      `kernel-gateway initiator: VM ${Math.round(r.vm.totalMs)} ms (boot ${Math.round(r.vm.bootMs ?? -1)} ms), test ${Math.round(performance.now() - t0)} ms`,
    );
    show("initiator", r.commands);
    const [hs, ping, ns, c6, c4, u6, u4] = r.commands as [
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
      CommandOutcome,
    ];
    expect(r.vm.exitReason, r.vm.output.slice(-3000)).toBe("done");
    expect(hs.exitCode, hs.output + gwLog()).toBe(0);
    // The guest learned the gateway's endpoint from the gateway's handshake initiation.
    expect(hs.output).toContain(`${ADDR.gwOuter4}:${GW_PORT}`);
    expect(r.latestHandshake).toBeGreaterThan(0);
    expect(g.countLog(/Received handshake_response/), gwLog()).toBeGreaterThan(0);
    expect(ping.output, gwLog()).toMatch(/3 packets transmitted, 3 received/);
    expect(ns.output, gwLog()).toContain(ADDR.inet4);
    expect(ns.output).toContain(ADDR.inet6);
    expect(sha(c6), c6.output + gwLog()).toBe(f.sha256);
    expect(sha(c4), c4.output + gwLog()).toBe(f.sha256);
    expect(u6.output.trim(), gwLog()).toBe("kg-init-udp6");
    expect(u4.output.trim(), gwLog()).toBe("kg-init-udp4");
    expect(g.running()).toBe(true);
  }, 200_000);
});
