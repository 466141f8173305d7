// A real WireGuard peer: `wireguard-go -f IFNAME` in a namespace, configured with `wg set`.
import { chmodSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { type BgProcess, check, execCheck, run, spawnBg, tempDir, waitUntil, writeNsFile } from "./netns.ts";
import { ADDR } from "./topology.ts";

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

/** `wg genkey` + `wg pubkey`. */
export async function genKeyPair(): Promise<KeyPair> {
  const priv = (await check(["wg", "genkey"])).stdout.trim();
  const pub = (await check(["wg", "pubkey"], { input: `${priv}\n` })).stdout.trim();
  return { privateKey: priv, publicKey: pub };
}

export async function genPsk(): Promise<string> {
  return (await check(["wg", "genpsk"])).stdout.trim();
}

/** Write a secret to a 0600 file in `dir`; returns the path. */
export function writeSecret(dir: string, name: string, value: string): string {
  const path = `${dir}/${name}`;
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

export interface WgPeerConfig {
  ns: string;
  /** Unique across the machine, ≤ 15 chars (the UAPI socket path is shared by all namespaces). */
  ifname: string;
  privateKey: string;
  listenPort: number;
  peerPublicKey: string;
  /** "IP:PORT" of the other side; absent = wait to be contacted. */
  endpoint?: string;
  presharedKey?: string;
  persistentKeepalive?: number;
  /** Addresses on the interface (CIDR); default the seed's 192.168.76.1/32 and fc00::1/128. */
  addresses?: string[];
  /** allowed-ips of the peer; default 0.0.0.0/0,::/0. */
  allowedIps?: string[];
  /** Routes through the tunnel (`ip route add R dev IF`); default 0.0.0.0/0 and ::/0 (default routes). */
  routes?: string[];
  mtu?: number;
  /** Write /etc/netns/NS/resolv.conf with `nameserver X` (the gateway's DNS address) on start. */
  nameserver?: string;
}

export interface WgShow {
  publicKey: string;
  listenPort: number;
  peers: {
    publicKey: string;
    endpoint: string | null;
    allowedIps: string[];
    /** Unix seconds; 0 = never. */
    latestHandshake: number;
    rxBytes: number;
    txBytes: number;
    keepalive: number | null;
  }[];
}

/** Parse `wg show IFNAME dump`. */
export function parseWgDump(text: string): WgShow {
  const lines = text.trim().split("\n").filter(Boolean);
  const head = (lines[0] ?? "").split("\t");
  return {
    publicKey: head[1] ?? "",
    listenPort: Number(head[2] ?? 0),
    peers: lines.slice(1).map((l) => {
      const f = l.split("\t");
      return {
        publicKey: f[0] ?? "",
        endpoint: f[2] && f[2] !== "(none)" ? f[2] : null,
        allowedIps: f[3] && f[3] !== "(none)" ? f[3].split(",") : [],
        latestHandshake: Number(f[4] ?? 0),
        rxBytes: Number(f[5] ?? 0),
        txBytes: Number(f[6] ?? 0),
        keepalive: f[7] && f[7] !== "off" ? Number(f[7]) : null,
      };
    }),
  };
}

const SOCK_DIR = "/var/run/wireguard";

/** `wg show IFNAME dump` in `ns`, parsed (latest handshake, transfer counters, endpoint). */
export async function wgShow(ns: string, ifname: string): Promise<WgShow> {
  return parseWgDump((await execCheck(ns, ["wg", "show", ifname, "dump"])).stdout);
}

export class WireGuardGo {
  private proc: BgProcess | null = null;
  private readonly dir = tempDir("wgs-wg");
  config: WgPeerConfig;

  constructor(config: WgPeerConfig) {
    if (config.ifname.length > 15) throw new Error(`ifname too long: ${config.ifname}`);
    this.config = { ...config };
  }

  get pid(): number | null {
    return this.proc?.pid ?? null;
  }

  running(): boolean {
    return this.proc?.running() ?? false;
  }

  get ifname(): string {
    return this.config.ifname;
  }

  output(): string {
    return this.proc?.output() ?? "";
  }

  /** Start wireguard-go, configure keys/peer/addresses/routes. */
  async start(): Promise<void> {
    const c = this.config;
    const sock = `${SOCK_DIR}/${c.ifname}.sock`;
    rmSync(sock, { force: true });
    this.proc = spawnBg(c.ns, `wireguard-go ${c.ifname}`, ["wireguard-go", "-f", c.ifname], {
      env: { ...process.env, LOG_LEVEL: "error", WG_PROCESS_FOREGROUND: undefined },
    });
    await waitUntil(`${c.ifname} UAPI socket`, () => existsSync(sock) || !this.proc?.running(), 10_000, 50);
    if (!this.proc.running()) throw new Error(`wireguard-go ${c.ifname} exited:\n${this.proc.output()}`);
    const keyFile = writeSecret(this.dir, "private", c.privateKey);
    const set = ["wg", "set", c.ifname, "listen-port", String(c.listenPort), "private-key", keyFile];
    set.push("peer", c.peerPublicKey, "allowed-ips", (c.allowedIps ?? ["0.0.0.0/0", "::/0"]).join(","));
    if (c.presharedKey) set.push("preshared-key", writeSecret(this.dir, "psk", c.presharedKey));
    if (c.endpoint) set.push("endpoint", c.endpoint);
    if (c.persistentKeepalive) set.push("persistent-keepalive", String(c.persistentKeepalive));
    await execCheck(c.ns, set);
    await execCheck(c.ns, ["ip", "link", "set", c.ifname, "mtu", String(c.mtu ?? 1420), "up"]);
    for (const a of c.addresses ?? [`${ADDR.tunPeer4}/32`, `${ADDR.tunPeer6}/128`]) {
      const v6 = a.includes(":");
      await execCheck(c.ns, ["ip", v6 ? "-6" : "-4", "addr", "add", a, "dev", c.ifname, ...(v6 ? ["nodad"] : [])]);
    }
    if (c.nameserver) writeNsFile(c.ns, "resolv.conf", `nameserver ${c.nameserver}\n`);
    for (const r of c.routes ?? ["0.0.0.0/0", "::/0"]) {
      await execCheck(c.ns, ["ip", r.includes(":") ? "-6" : "-4", "route", "add", r, "dev", c.ifname]);
    }
  }

  /** Stop wireguard-go (its TUN, addresses and routes disappear with it) and remove the UAPI socket. */
  async stop(): Promise<void> {
    await this.proc?.stop(2000);
    this.proc = null;
    rmSync(`${SOCK_DIR}/${this.config.ifname}.sock`, { force: true });
  }

  /** Stop and start again with changed settings (e.g. a new listen port for a roaming test). */
  async restart(changes: Partial<WgPeerConfig> = {}): Promise<void> {
    await this.stop();
    this.config = { ...this.config, ...changes };
    await this.start();
  }

  /** Change the listen port of the running device (the source port of its datagrams changes). */
  async setListenPort(port: number): Promise<void> {
    await execCheck(this.config.ns, ["wg", "set", this.config.ifname, "listen-port", String(port)]);
    this.config.listenPort = port;
  }

  async show(): Promise<WgShow> {
    return wgShow(this.config.ns, this.config.ifname);
  }

  /** Wait for a handshake newer than `after` (Unix seconds); returns its time. */
  async waitHandshake(timeoutMs = 15_000, after = 0): Promise<number> {
    return waitUntil(
      `handshake on ${this.config.ifname}`,
      async () => {
        const s = await this.show();
        const hs = s.peers[0]?.latestHandshake ?? 0;
        return hs > after ? hs : null;
      },
      timeoutMs,
      200,
    );
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Remove stale UAPI sockets of interfaces whose names start with `prefix` (and no process). */
export async function sweepWgSockets(prefix: string): Promise<void> {
  const r = await run(["sh", "-c", `ls ${SOCK_DIR} 2>/dev/null || true`]);
  for (const f of r.stdout.split("\n")) {
    if (f.startsWith(prefix) && f.endsWith(".sock")) rmSync(`${SOCK_DIR}/${f}`, { force: true });
  }
}
