// Issue 5: a real Linux kernel's FOU/GUE tunnels (the Debian kernel booted in qemu) against the
// gateway's GUE mode (`-k INSECURE -K GUE -b … [-p …] -D … -P …`): `ipip … encap gue`,
// `sit … encap gue`, `ipip … encap fou`, `sit … encap fou`. From inside the guest: ping the pingable
// address (IPv4 and IPv6), DNS against `-D`, curl downloads from the inet test server with sha256.
//
// Layout (everything inside the test's own namespaces and VM; see test-network.md):
//
//   qemu guest (peer ns)              peer ns                 gw ns                    inet ns
//   eth0 10.203.0.2/.3 <-- tap --> 10.203.0.1  10.201.0.1 <-> 10.201.0.2 [gateways] <-> servers
//
// The tap gives exact outer addresses, so `-p 10.203.0.2:PORT` is the guest's FOU/GUE receive port.
// `-P` takes one address, so IPv6 ping goes to a second gateway whose `-P` is fc00::72:2. A FOU
// receive port is bound to one inner protocol (ipproto 4 or 41), and the gateway sends to one `-p`,
// so with FOU each family has its own gateway.
//
// Boot 1 (GUE, fixed encap-sport): ipip+sit → gateway A (v4 pingable, `-p`): both families through
//   one gateway; a second sit tunnel (local 10.203.0.3) → gateway B (v6 pingable, no `-p`: replies go
//   to the last source, which with a fixed encap-sport is the guest's GUE port).
// Boot 2 (FOU, encap-sport auto): ipip → gateway C (`-p` guest:6555), sit → gateway D (`-p`
//   guest:6556). The kernel's source ports are per-flow hashes where nothing listens: only `-p` works.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { describeOrSkip, optionalTool } from "../../harness/gate.ts";
import { Gateway } from "../../harness/gateway.ts";
import { type CommandOutcome, kernelGuePeer } from "../../harness/kernel/peers.ts";
import { kernelSkipReason } from "../../harness/kernel/vm.ts";
import { addRoute, type BgProcess, interopSkipReason, spawnBg, sysctl } from "../../harness/netns.ts";
import { type InetServers, PORTS, startInetServers } from "../../harness/servers.ts";
import { ADDR, createTopology, HOSTS, type Topology } from "../../harness/topology.ts";

const skip = kernelSkipReason() ?? interopSkipReason(["ip", "ss", "python3"]);

const PREFIX = "wgsikgue-";
const TAP = {
  ifname: "wgsikguetap",
  host4: "10.203.0.1",
  guest4: "10.203.0.2",
  guest4b: "10.203.0.3",
  cidr: "10.203.0.0/24",
} as const;
const GUEST_PORT = 6555;

interface Capture {
  /** Stop tcpdump (idempotent) and return the distinct outer UDP flows it saw. */
  stop(): Promise<string[]>;
}
const MiB = 1 << 20;
const web = `http://${HOSTS.web}:${PORTS.http}`;

describeOrSkip(skip, "kernel FOU/GUE (qemu guest) against the gateway's GUE mode", () => {
  let t: Topology | null = null;
  let servers: InetServers | null = null;
  const gateways: Gateway[] = [];

  beforeAll(async () => {
    t = await createTopology(PREFIX);
    servers = await startInetServers(t.inet, { files: { "1m.bin": MiB } });
    await sysctl(t.peer, "net.ipv4.ip_forward", 1);
    await addRoute(t.gw, [TAP.cidr, "via", ADDR.peerOuter4]);
  }, 60_000);

  async function stopGateways(): Promise<void> {
    for (const g of gateways.splice(0)) await g.stop().catch(() => {});
  }

  afterAll(async () => {
    await stopGateways();
    await servers?.stop().catch(() => {});
    await t?.destroy();
  }, 30_000);

  /** `-k INSECURE -K GUE -b 10.201.0.2:port [-p …] -D … -P …` in gw. */
  async function gueGateway(o: { port: number; peer?: string; dns: string; pingable: string }): Promise<Gateway> {
    const g = new Gateway({
      ns: t!.gw,
      privateKey: "INSECURE",
      peerPublicKey: "GUE",
      bindPort: o.port,
      peerEndpoint: o.peer,
      keepaliveInterval: 0,
      dns: o.dns,
      pingable: o.pingable,
    });
    gateways.push(g);
    await g.start();
    return g;
  }

  const tapNet = {
    mode: "tap" as const,
    ifname: TAP.ifname,
    hostCidrs: [`${TAP.host4}/24`],
    guestCidrs: [`${TAP.guest4}/24`, `${TAP.guest4b}/24`],
    guestRoutes: [`10.201.0.0/24 via ${TAP.host4}`],
  };

  /**
   * tcpdump on gw's veth toward the peer namespace (optional: checks skipped without tcpdump):
   * the outer UDP flows as `src:sport > dst:dport` strings.
   */
  async function capture(ports: number[]): Promise<Capture | null> {
    if (!optionalTool("tcpdump")) return null;
    const filter = `udp and (${ports.map((p) => `port ${p}`).join(" or ")})`;
    const p: BgProcess = spawnBg(t!.gw, "tcpdump", [
      "tcpdump",
      "-l",
      "-n",
      "-i",
      t!.ifs.gwToPeer,
      "-c",
      "5000",
      filter,
    ]);
    await p.waitFor(/listening on/, 10_000);
    return {
      async stop() {
        await p.stop(1000);
        const flows = new Set<string>();
        for (const l of p.lines()) {
          const m = l.match(/IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): UDP/);
          if (m) flows.add(`${m[1]}:${m[2]} > ${m[3]}:${m[4]}`);
        }
        return [...flows].sort();
      },
    };
  }

  const logs = () =>
    gateways.map((g, i) => `\n--- gateway ${i} (${g.bindEndpoint}) log tail ---\n${g.log().slice(-2000)}`).join("");
  const show = (label: string, cmds: CommandOutcome[]) => {
    for (const c of cmds) console.log(`kernel-gue ${label}: $ ${c.cmd} -> ${c.exitCode} (${c.ms} ms)\n${c.output}`);
  };
  const curlSha = (family: "4" | "6", file: string) => ({
    cmd: `curl -${family} -sS --fail --max-time 60 -o /tmp/dl ${web}/${file} && sha256sum /tmp/dl`,
    timeoutS: 70,
  });
  const sha = (c: CommandOutcome) => c.output.match(/\b([0-9a-f]{64})\b/)?.[1] ?? `no sha256 (exit ${c.exitCode})`;
  const pinged = (c: CommandOutcome) => c.output.match(/(\d+) received/)?.[1] ?? "0";

  test("GUE: ipip/sit encap gue: ping v4 and v6 pingable, DNS, HTTP v4/v6 with sha256", async () => {
    let cap: Capture | null = null;
    try {
      const a = await gueGateway({
        port: 7100,
        peer: `${TAP.guest4}:${GUEST_PORT}`,
        dns: `${ADDR.tunGw4}:53`,
        pingable: ADDR.tunGw4,
      });
      const b = await gueGateway({ port: 7101, dns: `[${ADDR.tunGw6}]:53`, pingable: ADDR.tunGw6 });
      cap = await capture([7100, 7101]);
      const f = servers!.files["1m.bin"]!;
      const t0 = performance.now();
      const r = await kernelGuePeer({
        netns: t!.peer,
        net: tapNet,
        encap: "gue",
        remote: ADDR.gwOuter4,
        local: TAP.guest4,
        remotePort: 7100,
        localPort: GUEST_PORT,
        addresses4: [`${ADDR.tunPeer4}/32`],
        addresses6: [`${ADDR.tunPeer6}/128`],
        dns: [ADDR.tunGw4],
        // A second sit tunnel from the guest's second address to gateway B, only for fc00::72:2.
        setup: [
          "ip fou add port 6557 gue",
          `ip link add gue6b type sit remote ${ADDR.gwOuter4} local ${TAP.guest4b} ttl 64 encap gue encap-sport 6557 encap-dport 7101 noencap-csum`,
          "ip link set gue6b up",
          "ip -6 addr add fc00::2/128 dev gue6b nodad",
          `ip -6 route add ${ADDR.tunGw6}/128 dev gue6b`,
        ].join("\n"),
        commands: [
          `ping -c 3 -i 0.3 -W 3 ${ADDR.tunGw4}`,
          `nslookup ${HOSTS.web} ${ADDR.tunGw4}`,
          curlSha("4", "1m.bin"),
          curlSha("6", "1m.bin"),
          `ping -6 -c 3 -i 0.3 -W 3 ${ADDR.tunGw6}`,
          `nslookup ${HOSTS.web} ${ADDR.tunGw6}`,
          "ip -s link show gue4; ip -s link show gue6; ip -s link show gue6b",
        ],
        timeoutMs: 170_000,
      });
      console.log(
        `kernel-gue GUE: VM ${Math.round(r.vm.totalMs)} ms (boot ${Math.round(r.vm.bootMs ?? -1)} ms, accel ${r.vm.accel}), test ${Math.round(performance.now() - t0)} ms`,
      );
      show("GUE", r.commands);
      const flows = (await cap?.stop()) ?? null;
      console.log(`kernel-gue GUE: outer UDP flows seen in gw: ${JSON.stringify(flows)}`);
      const [p4, ns4, c4, c6, p6, ns6] = r.commands as CommandOutcome[] as [
        CommandOutcome,
        CommandOutcome,
        CommandOutcome,
        CommandOutcome,
        CommandOutcome,
        CommandOutcome,
      ];
      expect(r.vm.exitReason, r.vm.output.slice(-3000)).toBe("done");
      expect(pinged(p4), p4.output + logs()).toBe("3");
      expect(ns4.output, logs()).toContain(ADDR.inet4);
      expect(ns4.output).toContain(ADDR.inet6);
      expect(sha(c4), c4.output + logs()).toBe(f.sha256);
      expect(sha(c6), c6.output + logs()).toBe(f.sha256);
      expect(pinged(p6), p6.output + logs()).toBe("3");
      expect(ns6.output, logs()).toContain(ADDR.inet6);
      expect(a.running() && b.running()).toBe(true);
      if (flows) {
        // Fixed encap-sport: the guest sends from its GUE ports; A answers to -p, B to the last source.
        expect(flows).toEqual([
          `${ADDR.gwOuter4}:7100 > ${TAP.guest4}:${GUEST_PORT}`,
          `${ADDR.gwOuter4}:7101 > ${TAP.guest4b}:6557`,
          `${TAP.guest4}:${GUEST_PORT} > ${ADDR.gwOuter4}:7100`,
          `${TAP.guest4b}:6557 > ${ADDR.gwOuter4}:7101`,
        ]);
      }
    } finally {
      await cap?.stop();
      await stopGateways();
    }
  }, 200_000);

  test("FOU: ipip/sit encap fou with encap-sport auto (replies to -p): ping v4 and v6, DNS, HTTP v4/v6 with sha256", async () => {
    let cap: Capture | null = null;
    try {
      const c = await gueGateway({
        port: 7102,
        peer: `${TAP.guest4}:${GUEST_PORT}`,
        dns: `${ADDR.tunGw4}:53`,
        pingable: ADDR.tunGw4,
      });
      const d = await gueGateway({
        port: 7103,
        peer: `${TAP.guest4}:${GUEST_PORT + 1}`,
        dns: `[${ADDR.tunGw6}]:53`,
        pingable: ADDR.tunGw6,
      });
      cap = await capture([7102, 7103]);
      const f = servers!.files["1m.bin"]!;
      const t0 = performance.now();
      const r = await kernelGuePeer({
        netns: t!.peer,
        net: tapNet,
        encap: "fou",
        remote: ADDR.gwOuter4,
        local: TAP.guest4,
        remotePort: 7102,
        remotePort6: 7103,
        localPort: GUEST_PORT,
        sourcePortAuto: true,
        addresses4: [`${ADDR.tunPeer4}/32`],
        addresses6: [`${ADDR.tunPeer6}/128`],
        dns: [ADDR.tunGw4],
        commands: [
          `ping -c 3 -i 0.3 -W 3 ${ADDR.tunGw4}`,
          `ping -6 -c 3 -i 0.3 -W 3 ${ADDR.tunGw6}`,
          `nslookup ${HOSTS.web} ${ADDR.tunGw4}`,
          `nslookup ${HOSTS.web} ${ADDR.tunGw6}`,
          curlSha("4", "1m.bin"),
          curlSha("6", "1m.bin"),
          "ip -d link show gue4; ip -d link show gue6; ip fou show",
        ],
        timeoutMs: 170_000,
      });
      console.log(
        `kernel-gue FOU: VM ${Math.round(r.vm.totalMs)} ms (boot ${Math.round(r.vm.bootMs ?? -1)} ms), test ${Math.round(performance.now() - t0)} ms`,
      );
      show("FOU", r.commands);
      const flows = (await cap?.stop()) ?? null;
      console.log(`kernel-gue FOU: outer UDP flows seen in gw: ${JSON.stringify(flows)}`);
      const [p4, p6, ns4, ns6, c4, c6, links] = r.commands as [
        CommandOutcome,
        CommandOutcome,
        CommandOutcome,
        CommandOutcome,
        CommandOutcome,
        CommandOutcome,
        CommandOutcome,
      ];
      expect(r.vm.exitReason, r.vm.output.slice(-3000)).toBe("done");
      expect(links.output).toContain("encap-sport auto");
      expect(pinged(p4), p4.output + logs()).toBe("3");
      expect(pinged(p6), p6.output + logs()).toBe("3");
      expect(ns4.output, logs()).toContain(ADDR.inet4);
      expect(ns6.output, logs()).toContain(ADDR.inet6);
      expect(sha(c4), c4.output + logs()).toBe(f.sha256);
      expect(sha(c6), c6.output + logs()).toBe(f.sha256);
      expect(c.running() && d.running()).toBe(true);
      if (flows) {
        // encap-sport auto: the guest sends from hashed ports (not its receive ports); the
        // gateways still answer only to -p (6555 for IPv4-in-UDP, 6556 for IPv6-in-UDP).
        const fromGuest = flows.filter((x) => x.startsWith(`${TAP.guest4}:`));
        const toGuest = flows.filter((x) => x.startsWith(`${ADDR.gwOuter4}:`));
        expect(
          fromGuest.some((x) => !/:655[56] >/.test(x)),
          JSON.stringify(flows),
        ).toBe(true);
        expect(toGuest).toEqual([
          `${ADDR.gwOuter4}:7102 > ${TAP.guest4}:${GUEST_PORT}`,
          `${ADDR.gwOuter4}:7103 > ${TAP.guest4}:${GUEST_PORT + 1}`,
        ]);
      }
    } finally {
      await cap?.stop();
      await stopGateways();
    }
  }, 200_000);
});
