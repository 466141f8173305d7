// WireGuard peer containers for interop tests, via testcontainers under Bun (see
// /work/shared/notes/containers.md). The image is built locally (image.ts); Ryuk is disabled, so
// every container carries the label org.wgslirpy.test=<run id> and `removeTestContainers()` deletes
// them (also stale ones from crashed runs); `stop()` removes one.
//
// Safety: by default a container starts with network mode "none" and gets its only link from
// `connectToNetns()`, a veth into a test namespace (e.g. the topology's peer side): nothing can leave
// the test world. Docker bridge networks NAT to the outside, so if one is needed use
// `createInternalNetwork()` (docker `--internal`: no route out).
import { GenericContainer, type StartedTestContainer } from "testcontainers";
import { check, run } from "../netns.ts";
import { PEER_IMAGE } from "./image.ts";

process.env.TESTCONTAINERS_RYUK_DISABLED = "true";

export const LABEL = "org.wgslirpy.test";
/** One id per test process: labels everything it creates. */
export const RUN_ID = `${process.pid}-${Date.now().toString(36)}`;

class PeerGenericContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    this.hostConfig.Devices = [
      { PathOnHost: "/dev/net/tun", PathInContainer: "/dev/net/tun", CgroupPermissions: "rwm" },
    ];
    this.hostConfig.Init = true;
    // Docker disables IPv6 inside containers by default; tunnels here carry both families.
    this.hostConfig.Sysctls = {
      "net.ipv6.conf.all.disable_ipv6": "0",
      "net.ipv6.conf.default.disable_ipv6": "0",
    };
  }
}

export interface ExecOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  output: string;
}

export interface PeerContainerOptions {
  image?: string;
  /** Container name (unique); default wgslirpy-peer-<run>-<n>. */
  name?: string;
  /** Docker network mode; default "none" (then use connectToNetns). Use an --internal network otherwise. */
  networkMode?: string;
  env?: Record<string, string>;
  /** Keep docker's default route on a bridge network (default: removed). */
  keepDefaultRoute?: boolean;
}

export interface WireGuardUpOptions {
  /** Interface name (≤ 15 chars; unique per container is enough, each has its own /var/run). */
  ifname?: string;
  privateKey: string;
  listenPort?: number;
  peerPublicKey: string;
  /** "host:port" of the other side as reachable from the container. */
  endpoint?: string;
  allowedIps: string[];
  addresses: string[];
  /** Routes via the interface (iproute2 syntax, e.g. "default", "10.202.0.0/24"). */
  routes?: string[];
  persistentKeepalive?: number;
  presharedKey?: string;
  mtu?: number;
}

let counter = 0;

export class PeerContainer {
  constructor(
    readonly container: StartedTestContainer,
    readonly name: string,
  ) {}

  get id(): string {
    return this.container.getId();
  }

  /** PID of the container's init on the host (its network namespace is /proc/PID/ns/net). */
  async pid(): Promise<number> {
    const r = await check(["docker", "inspect", "--format", "{{.State.Pid}}", this.id], { timeoutMs: 15_000 });
    return Number(r.stdout.trim());
  }

  /** Run a command in the container (argv, or a string for `sh -c`). Never throws for exit != 0. */
  async exec(cmd: string[] | string, timeoutMs = 30_000): Promise<ExecOutcome> {
    const argv = typeof cmd === "string" ? ["sh", "-c", cmd] : cmd;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`exec timed out after ${timeoutMs} ms: ${argv.join(" ")}`)), timeoutMs);
    });
    try {
      const r = await Promise.race([this.container.exec(argv), timeout]);
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, output: r.output };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Like exec, but throws with the output on a non-zero exit. */
  async execCheck(cmd: string[] | string, timeoutMs = 30_000): Promise<ExecOutcome> {
    const r = await this.exec(cmd, timeoutMs);
    if (r.exitCode !== 0) {
      throw new Error(
        `${this.name}: ${typeof cmd === "string" ? cmd : cmd.join(" ")} -> exit ${r.exitCode}\n${r.output}`,
      );
    }
    return r;
  }

  /**
   * Start wireguard-go for `ifname` (daemonised), configure it with `wg set`, add addresses and
   * routes. Returns the interface's public key.
   */
  async wireguardUp(o: WireGuardUpOptions): Promise<string> {
    const ifname = o.ifname ?? "wg0";
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const lines = [
      "set -e",
      "umask 077",
      "mkdir -p /etc/wireguard",
      `printf '%s\\n' ${q(o.privateKey)} > /etc/wireguard/${ifname}.key`,
      ...(o.presharedKey ? [`printf '%s\\n' ${q(o.presharedKey)} > /etc/wireguard/${ifname}.psk`] : []),
      // Daemonising default (never WG_PROCESS_FOREGROUND=0: it re-spawns itself in a loop).
      `wireguard-go ${ifname} >/tmp/wireguard-go-${ifname}.log 2>&1`,
      `i=0; while [ ! -S /var/run/wireguard/${ifname}.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done`,
      [
        `wg set ${ifname} private-key /etc/wireguard/${ifname}.key`,
        o.listenPort ? `listen-port ${o.listenPort}` : "",
        `peer ${q(o.peerPublicKey)}`,
        o.endpoint ? `endpoint ${q(o.endpoint)}` : "",
        `allowed-ips ${q(o.allowedIps.join(","))}`,
        o.persistentKeepalive ? `persistent-keepalive ${o.persistentKeepalive}` : "",
        o.presharedKey ? `preshared-key /etc/wireguard/${ifname}.psk` : "",
      ]
        .filter(Boolean)
        .join(" "),
      ...o.addresses.map((a) => `ip addr add ${a} dev ${ifname}${a.includes(":") ? " nodad" : ""}`),
      `ip link set ${ifname} mtu ${o.mtu ?? 1420} up`,
      ...(o.routes ?? []).map(
        (r) =>
          `ip ${r.includes(":") || r.startsWith("-6") ? "-6 " : ""}route add ${r.replace(/^-6 /, "")} dev ${ifname}`,
      ),
      `wg show ${ifname} public-key`,
    ];
    const r = await this.execCheck(["sh", "-c", lines.join("\n")], 30_000);
    return r.stdout.trim().split("\n").pop()!.trim();
  }

  /** `wg show IF dump` parsed: the peer lines as {publicKey, endpoint, latestHandshake, rx, tx}. */
  async wgPeers(ifname = "wg0") {
    const r = await this.execCheck(["wg", "show", ifname, "dump"]);
    return r.stdout
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split("\t"))
      .map((f) => ({
        publicKey: f[0]!,
        endpoint: f[2]!,
        latestHandshake: Number(f[4]),
        rx: Number(f[5]),
        tx: Number(f[6]),
      }));
  }

  /**
   * A veth between the container's network namespace and test namespace `ns`: `hostIf` in ns,
   * `containerIf` in the container, with addresses and (container-side) routes via that link.
   */
  async connectToNetns(o: {
    ns: string;
    hostIf: string;
    containerIf?: string;
    hostCidrs: string[];
    containerCidrs: string[];
    containerRoutes?: string[];
  }): Promise<void> {
    const pid = await this.pid();
    const cif = o.containerIf ?? "eth0";
    const tmp = `wgc${pid}`.slice(0, 15);
    await check([
      "ip",
      "link",
      "add",
      o.hostIf,
      "netns",
      o.ns,
      "type",
      "veth",
      "peer",
      "name",
      tmp,
      "netns",
      String(pid),
    ]);
    await this.execCheck(["ip", "link", "set", tmp, "name", cif]);
    await this.execCheck(["ip", "link", "set", cif, "up"]);
    await check(["ip", "-n", o.ns, "link", "set", o.hostIf, "up"]);
    for (const c of o.hostCidrs) {
      await check(["ip", "-n", o.ns, "addr", "add", c, "dev", o.hostIf, ...(c.includes(":") ? ["nodad"] : [])]);
    }
    for (const c of o.containerCidrs) {
      await this.execCheck(["ip", "addr", "add", c, "dev", cif, ...(c.includes(":") ? ["nodad"] : [])]);
    }
    for (const r of o.containerRoutes ?? []) {
      await this.execCheck(["sh", "-c", `ip ${r.includes(":") ? "-6 " : ""}route add ${r} dev ${cif}`]);
    }
  }

  /** Stop and remove the container (idempotent). */
  async stop(): Promise<void> {
    try {
      await this.container.stop({ remove: true, timeout: 2_000 });
    } catch {
      await run(["docker", "rm", "-f", this.id], { timeoutMs: 30_000 });
    }
  }
}

/** Start a peer container (the image must exist: `ensurePeerImage()`). */
export async function startPeerContainer(o: PeerContainerOptions = {}): Promise<PeerContainer> {
  const name = o.name ?? `wgslirpy-peer-${RUN_ID}-${++counter}`;
  const c = new PeerGenericContainer(o.image ?? PEER_IMAGE)
    .withName(name)
    .withLabels({ [LABEL]: RUN_ID })
    .withAddedCapabilities("NET_ADMIN")
    .withNetworkMode(o.networkMode ?? "none")
    .withEnvironment({ WG_COLOR_MODE: "never", ...(o.env ?? {}) })
    .withCommand(["sleep", "infinity"])
    .withStartupTimeout(60_000);
  try {
    const peer = new PeerContainer(await c.start(), name);
    if ((o.networkMode ?? "none") !== "none" && !o.keepDefaultRoute) {
      // A docker bridge (even --internal) installs a default route; drop it so the container can
      // reach only the subnets it is directly attached to.
      await peer.exec(["sh", "-c", "ip route del default; ip -6 route del default; true"]);
    }
    return peer;
  } catch (e) {
    // A half-created container must not stay behind.
    await run(["docker", "rm", "-f", name], { timeoutMs: 30_000 });
    throw e;
  }
}

/**
 * Remove every container (and network) labelled by this harness: this run's (default) or, with
 * `all`, stale ones from any run. Returns the removed container ids.
 */
export async function removeTestContainers(opts: { all?: boolean } = {}): Promise<string[]> {
  const filter = opts.all ? LABEL : `${LABEL}=${RUN_ID}`;
  const ps = await run(["docker", "ps", "-aq", "--filter", `label=${filter}`], { timeoutMs: 30_000 });
  const ids = ps.stdout.split(/\s+/).filter(Boolean);
  if (ids.length) await run(["docker", "rm", "-f", ...ids], { timeoutMs: 60_000 });
  const nets = await run(["docker", "network", "ls", "-q", "--filter", `label=${filter}`], { timeoutMs: 30_000 });
  const nids = nets.stdout.split(/\s+/).filter(Boolean);
  if (nids.length) await run(["docker", "network", "rm", ...nids], { timeoutMs: 60_000 });
  return ids;
}

/** A labelled docker bridge network with `--internal` (no route to the outside world). */
export async function createInternalNetwork(name = `wgslirpy-net-${RUN_ID}-${++counter}`): Promise<string> {
  await check(["docker", "network", "create", "--internal", "--label", `${LABEL}=${RUN_ID}`, name], {
    timeoutMs: 30_000,
  });
  return name;
}

/** Ids of this run's containers that still exist (for cleanup assertions). */
export async function listTestContainers(all = false): Promise<string[]> {
  const filter = all ? LABEL : `${LABEL}=${RUN_ID}`;
  const ps = await run(["docker", "ps", "-aq", "--filter", `label=${filter}`], { timeoutMs: 30_000 });
  return ps.stdout.split(/\s+/).filter(Boolean);
}

let exitHook = false;
/** Remove this run's containers when the process exits (best effort, synchronous). */
export function installContainerExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    try {
      const ids = Bun.spawnSync(["docker", "ps", "-aq", "--filter", `label=${LABEL}=${RUN_ID}`]).stdout.toString();
      const list = ids.split(/\s+/).filter(Boolean);
      if (list.length) Bun.spawnSync(["docker", "rm", "-f", ...list]);
    } catch {}
  });
}
