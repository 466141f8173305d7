// Ready-made kernel peers for interop tests: a guest whose kernel WireGuard (wg0) or kernel FOU/GUE
// tunnel talks to a gateway, then runs a list of shell commands and reports each one's output.
//
// Addresses as the guest sees them: with user-mode networking (default) the guest's 10.0.2.2 is the
// loopback of the namespace qemu runs in, so a gateway bound to 127.0.0.1:P (or 0.0.0.0:P) in that
// namespace is reached at 10.0.2.2:P. With tap networking the guest reaches the namespace's real
// addresses (see TapNet in vm.ts).
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { check, tempDir } from "../netns.ts";
import { type KernelPeerResult, runKernelPeer, type TapNet, USER_NET, type UserNet } from "./vm.ts";

export interface GuestCommand {
  /** Shell (dash) command line; its stdout+stderr are captured. */
  cmd: string;
  /** Per-command limit in seconds (busybox timeout); default 20. */
  timeoutS?: number;
}

export interface CommandOutcome {
  cmd: string;
  /** Exit status (124/143 when the timeout killed it), null if it never ran. */
  exitCode: number | null;
  output: string;
  /** Guest wall time in ms (10 ms resolution). */
  ms: number | null;
}

export interface PeerRunResult {
  commands: CommandOutcome[];
  vm: KernelPeerResult;
  /** Files the guest left in /share (name → content). */
  share: Record<string, string>;
}

interface CommonOptions {
  /** Namespace qemu runs in. */
  netns: string;
  commands: (string | GuestCommand)[];
  /** Shell run after the tunnel is up and before the commands (e.g. extra routes). */
  setup?: string;
  /** /etc/resolv.conf nameservers in the guest. */
  dns?: string[];
  /** /etc/hosts lines added in the guest. */
  hosts?: string[];
  /** Default user-mode networking; tap for exact outer addresses. */
  net?: UserNet | TapNet;
  timeoutMs?: number;
  extraBins?: string[];
  logFile?: string;
}

export interface KernelWireGuardOptions extends CommonOptions {
  /** Guest's private key (base64); generated when absent. */
  privateKey?: string;
  /** The gateway's public key. */
  peerPublicKey: string;
  presharedKey?: string;
  /**
   * "host:port" as reachable from the guest; with user-mode networking use `userNetEndpoint(port)`.
   * Omit it for a guest that only answers (the gateway initiates with `-p`): give `listenPort` then.
   */
  endpoint?: string;
  /** wg0 addresses (CIDR), default the seed's 192.168.76.1/32 and fc00::1/128. */
  addresses?: string[];
  /** Default 0.0.0.0/0 and ::/0. */
  allowedIps?: string[];
  /** Routes via wg0; default: "default" for each family that has an address. */
  routes?: string[];
  listenPort?: number;
  persistentKeepalive?: number;
  mtu?: number;
}

export interface KernelWireGuardResult extends PeerRunResult {
  publicKey: string;
  privateKey: string;
  /** `wg show wg0 dump` after the commands. */
  wgDump: string;
  /** Unix seconds of the latest handshake from the dump (0 = none). */
  latestHandshake: number;
}

/** The endpoint string for a gateway listening on `port` in the VM namespace (user-mode networking). */
export function userNetEndpoint(port: number): string {
  return `${USER_NET.host}:${port}`;
}

export async function wgGenKey(): Promise<{ privateKey: string; publicKey: string }> {
  const priv = (await check(["wg", "genkey"])).stdout.trim();
  const pub = (await check(["wg", "pubkey"], { input: `${priv}\n` })).stdout.trim();
  return { privateKey: priv, publicKey: pub };
}

export async function wgPubKey(privateKey: string): Promise<string> {
  return (await check(["wg", "pubkey"], { input: `${privateKey}\n` })).stdout.trim();
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function commandsScript(cmds: (string | GuestCommand)[], files: Record<string, string>): string {
  const lines: string[] = [];
  cmds.forEach((c, i) => {
    const cmd = typeof c === "string" ? { cmd: c } : c;
    files[`cmds/${i}.sh`] = `${cmd.cmd}\n`;
    lines.push(
      `t0=$(cut -d' ' -f1 /proc/uptime | tr -d .)`,
      `timeout ${cmd.timeoutS ?? 20} /usr/bin/dash /cmds/${i}.sh > /share/cmd-${i}.out 2>&1 </dev/null`,
      `rc=$?; t1=$(cut -d' ' -f1 /proc/uptime | tr -d .)`,
      `echo "RESULT=cmd${i}=$rc $(( (t1 - t0) * 10 ))"`,
    );
  });
  return lines.join("\n");
}

function resolverScript(o: CommonOptions): string {
  const lines: string[] = [];
  if (o.dns?.length)
    lines.push(`printf '%s\\n' ${o.dns.map((d) => q(`nameserver ${d}`)).join(" ")} > /etc/resolv.conf`);
  if (o.hosts?.length) lines.push(`printf '%s\\n' ${o.hosts.map(q).join(" ")} >> /etc/hosts`);
  return lines.join("\n");
}

async function runWithShare(
  o: CommonOptions,
  script: string,
  files: Record<string, string>,
): Promise<{ vm: KernelPeerResult; share: Record<string, string>; commands: CommandOutcome[] }> {
  const shareDir = tempDir("wgslirpy-kshare");
  try {
    mkdirSync(shareDir, { recursive: true });
    const vm = await runKernelPeer({
      netns: o.netns,
      script,
      files,
      shareDir,
      net: o.net ?? { mode: "user" },
      timeoutMs: o.timeoutMs ?? 180_000,
      extraBins: o.extraBins,
      logFile: o.logFile,
    });
    if (vm.results.tunnel !== "up") {
      throw new Error(
        `kernel peer: tunnel setup failed (${vm.exitReason}, exit ${vm.exitCode}):\n${vm.output.slice(-6000)}`,
      );
    }
    const share: Record<string, string> = {};
    for (const f of readdirSync(shareDir)) {
      try {
        share[f] = readFileSync(join(shareDir, f), "utf8");
      } catch {}
    }
    const commands = o.commands.map((c, i): CommandOutcome => {
      const r = vm.results[`cmd${i}`];
      const [rc, ms] = r ? r.split(" ").map(Number) : [null, null];
      return {
        cmd: typeof c === "string" ? c : c.cmd,
        exitCode: rc ?? null,
        ms: ms ?? null,
        output: share[`cmd-${i}.out`] ?? "",
      };
    });
    return { vm, share, commands };
  } finally {
    rmSync(shareDir, { recursive: true, force: true });
  }
}

/**
 * Boot a guest whose kernel WireGuard wg0 peers with `peerPublicKey` at `endpoint`, then run the
 * commands. By default everything (0.0.0.0/0, ::/0) is routed into the tunnel, like wg-quick.
 */
export async function kernelWireGuardPeer(o: KernelWireGuardOptions): Promise<KernelWireGuardResult> {
  const privateKey = o.privateKey ?? (await wgGenKey()).privateKey;
  const publicKey = await wgPubKey(privateKey);
  const addresses = o.addresses ?? ["192.168.76.1/32", "fc00::1/128"];
  const allowed = o.allowedIps ?? ["0.0.0.0/0", "::/0"];
  const routes =
    o.routes ??
    [
      ...(addresses.some((a) => !a.includes(":")) ? ["default"] : []),
      ...(addresses.some((a) => a.includes(":")) ? ["-6 default"] : []),
    ].map((r) => r);
  const files: Record<string, string> = { "etc/wireguard/wg0.key": `${privateKey}\n` };
  if (o.presharedKey) files["etc/wireguard/wg0.psk"] = `${o.presharedKey}\n`;
  const peerArgs = [
    `peer ${q(o.peerPublicKey)}`,
    ...(o.endpoint ? [`endpoint ${q(o.endpoint)}`] : []),
    `allowed-ips ${q(allowed.join(","))}`,
    ...(o.presharedKey ? ["preshared-key /etc/wireguard/wg0.psk"] : []),
    ...(o.persistentKeepalive ? [`persistent-keepalive ${o.persistentKeepalive}`] : []),
  ].join(" ");
  const script = [
    "set -e",
    "chmod 600 /etc/wireguard/*",
    "ip link add wg0 type wireguard",
    `wg set wg0 private-key /etc/wireguard/wg0.key${o.listenPort ? ` listen-port ${o.listenPort}` : ""} ${peerArgs}`,
    ...addresses.map((a) => `ip addr add ${a} dev wg0${a.includes(":") ? " nodad" : ""}`),
    `ip link set wg0 mtu ${o.mtu ?? 1420} up`,
    ...routes.map((r) =>
      r.startsWith("-6 ")
        ? `ip -6 route add ${r.slice(3)} dev wg0`
        : `ip ${r.includes(":") ? "-6 " : ""}route add ${r} dev wg0`,
    ),
    resolverScript(o),
    o.setup ?? "",
    "result tunnel up",
    "set +e",
    commandsScript(o.commands, files),
    "wg show wg0 dump > /share/wg.dump 2>&1",
    "ip addr > /share/ip-addr.txt 2>&1; ip route > /share/ip-route.txt 2>&1; ip -6 route >> /share/ip-route.txt 2>&1",
    "",
  ].join("\n");
  const r = await runWithShare(o, script, files);
  const wgDump = r.share["wg.dump"] ?? "";
  const peerLine = wgDump.split("\n").find((l) => l.startsWith(o.peerPublicKey));
  const latestHandshake = peerLine ? Number(peerLine.split("\t")[4] ?? 0) : 0;
  return { ...r, publicKey, privateKey, wgDump, latestHandshake };
}

export interface KernelGueOptions extends CommonOptions {
  /** "gue": GUE (variant 0 header on send); "fou": raw IP in UDP. */
  encap: "gue" | "fou";
  /** Gateway's UDP address as seen from the guest (user-mode default: 10.0.2.2). */
  remote?: string;
  remotePort: number;
  /** Destination port of the IPv6 (sit) tunnel when it differs from `remotePort` (e.g. a second gateway). */
  remotePort6?: number;
  /** Guest's outer address (user-mode default: 10.0.2.15). */
  local?: string;
  /** Guest UDP port: source port of what it sends and the FOU/GUE receive port; default 6555. */
  localPort?: number;
  /** IPv4 tunnel (ipip) addresses, default ["10.0.2.100/24"]; [] for none. */
  addresses4?: string[];
  /** IPv6 tunnel (sit) addresses, default ["fc00::100/64"]; [] for none. */
  addresses6?: string[];
  /** Routes via the tunnels, default "default" for each family with addresses. */
  routes4?: string[];
  routes6?: string[];
  /**
   * `encap-sport auto`: the kernel picks a per-flow hashed source port (the receive ports stay
   * localPort / localPort+1), so the gateway must answer to `-p`, not to the last source.
   */
  sourcePortAuto?: boolean;
  /** Add encap-csum (outer UDP checksum); default false (checksum 0, like the seed's example minus csum). */
  csum?: boolean;
}

/**
 * Boot a guest with kernel FOU/GUE tunnels to the gateway: `ipip` (IPv4, device gue4) and `sit`
 * (IPv6, device gue6), both `encap gue|fou encap-sport localPort encap-dport remotePort`, and a
 * receive port `ip fou add port localPort gue` (GUE) or `ipproto 4` + a second port for 41 (FOU:
 * a FOU port is bound to one protocol, so IPv6 uses localPort+1 then). Then runs the commands.
 */
export async function kernelGuePeer(o: KernelGueOptions): Promise<PeerRunResult> {
  const remote = o.remote ?? USER_NET.host;
  const local = o.local ?? USER_NET.guest;
  const lport = o.localPort ?? 6555;
  const a4 = o.addresses4 ?? ["10.0.2.100/24"];
  const a6 = o.addresses6 ?? ["fc00::100/64"];
  const routes4 = o.routes4 ?? (a4.length ? ["default"] : []);
  const routes6 = o.routes6 ?? (a6.length ? ["default"] : []);
  const csum = o.csum ? " encap-csum" : " noencap-csum";
  const lines = ["set -e"];
  const lport6 = o.encap === "gue" ? lport : lport + 1;
  if (o.encap === "gue") lines.push(`ip fou add port ${lport} gue`);
  else {
    if (a4.length) lines.push(`ip fou add port ${lport} ipproto 4`);
    if (a6.length) lines.push(`ip fou add port ${lport6} ipproto 41`);
  }
  if (a4.length) {
    lines.push(
      `ip link add gue4 type ipip remote ${remote} local ${local} ttl 64 encap ${o.encap} encap-sport ${o.sourcePortAuto ? "auto" : lport} encap-dport ${o.remotePort}${csum}`,
      "ip link set gue4 up",
      ...a4.map((a) => `ip addr add ${a} dev gue4`),
      ...routes4.map((r) => `ip route add ${r} dev gue4`),
    );
  }
  if (a6.length) {
    lines.push(
      `ip link add gue6 type sit remote ${remote} local ${local} ttl 64 encap ${o.encap} encap-sport ${o.sourcePortAuto ? "auto" : lport6} encap-dport ${o.remotePort6 ?? o.remotePort}${csum}`,
      "ip link set gue6 up",
      ...a6.map((a) => `ip -6 addr add ${a} dev gue6 nodad`),
      ...routes6.map((r) => `ip -6 route add ${r} dev gue6`),
    );
  }
  const files: Record<string, string> = {};
  lines.push(
    resolverScript(o),
    o.setup ?? "",
    "result tunnel up",
    "set +e",
    commandsScript(o.commands, files),
    "ip addr > /share/ip-addr.txt 2>&1; ip route > /share/ip-route.txt 2>&1; ip -6 route >> /share/ip-route.txt 2>&1",
    "ip -s link > /share/ip-link.txt 2>&1",
    "",
  );
  return runWithShare(o, lines.join("\n"), files);
}
