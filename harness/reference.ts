// The reference path: wireguard-go in the gw namespace as a kernel-routed WireGuard endpoint
// (ip forwarding on, no wgslirpy). Proves the harness independently of the gateway and gives the
// benchmark its baseline.
import { readFileSync } from "node:fs";
import type { GatewayConfig } from "./gateway.ts";
import { type BgProcess, rssKiB, spawnBg } from "./netns.ts";
import { PY_DIR } from "./servers.ts";
import { ADDR, type Topology } from "./topology.ts";
import { genKeyPair, type KeyPair, WireGuardGo } from "./wireguard-go.ts";

export interface ReferencePair {
  peer: WireGuardGo;
  gw: WireGuardGo;
  peerKeys: KeyPair;
  gwKeys: KeyPair;
  stop(): Promise<void>;
}

/**
 * Start wireguard-go in peer (default routes into the tunnel, endpoint = gw) and in gw
 * (192.168.72.2 + fc00::72:2, routes to the peer's tunnel addresses), forwarding on.
 * `ifPrefix` makes the interface names unique (≤ 11 chars).
 */
export async function startReferencePair(t: Topology, ifPrefix: string, gwPort = 51900): Promise<ReferencePair> {
  const [peerKeys, gwKeys] = await Promise.all([genKeyPair(), genKeyPair()]);
  await t.enableForwarding();
  const gw = new WireGuardGo({
    ns: t.gw,
    ifname: `${ifPrefix}rg`,
    privateKey: gwKeys.privateKey,
    listenPort: gwPort,
    peerPublicKey: peerKeys.publicKey,
    allowedIps: [`${ADDR.tunPeer4}/32`, `${ADDR.tunPeer6}/128`],
    addresses: [`${ADDR.tunGw4}/32`, `${ADDR.tunGw6}/128`],
    routes: [`${ADDR.tunPeer4}/32`, `${ADDR.tunPeer6}/128`],
  });
  const peer = new WireGuardGo({
    ns: t.peer,
    ifname: `${ifPrefix}rp`,
    privateKey: peerKeys.privateKey,
    listenPort: 51901,
    peerPublicKey: gwKeys.publicKey,
    endpoint: `${ADDR.gwOuter4}:${gwPort}`,
  });
  const pair: ReferencePair = {
    peer,
    gw,
    peerKeys,
    gwKeys,
    async stop() {
      await peer.dispose();
      await gw.dispose();
    },
  };
  try {
    await gw.start();
    await peer.start();
  } catch (e) {
    await pair.stop();
    throw e;
  }
  return pair;
}

/** What the interop suites need from "the gateway": the CLI (`Gateway`) or the reference. */
export interface GatewayLike {
  readonly config: GatewayConfig;
  readonly pid: number;
  readonly isReference: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  running(): boolean;
  log(): string;
  countLog(re: RegExp): number;
  rssKiB(): Promise<number | null>;
}

/**
 * The same contract as the gateway CLI, made of wireguard-go in the gw namespace (kernel routing,
 * forwarding on) plus a tiny DNS responder: used with WGSLIRPY_INTEROP_GATEWAY=reference to check
 * the suites themselves. Forwarding must be on (`Topology.enableForwarding`).
 */
export class ReferenceGateway implements GatewayLike {
  readonly isReference = true;
  private wg: WireGuardGo | null = null;
  private dns: BgProcess | null = null;

  constructor(
    readonly config: GatewayConfig,
    private readonly ifname: string,
  ) {}

  get pid(): number {
    if (!this.wg?.pid) throw new Error("reference gateway not started");
    return this.wg.pid;
  }

  async start(): Promise<void> {
    const c = this.config;
    const pingable = c.pingable === undefined ? ADDR.tunGw4 : c.pingable;
    const dns = c.dns === undefined ? `${ADDR.tunGw4}:53` : c.dns;
    const psk = c.presharedKeyFile ? readFileSync(c.presharedKeyFile, "utf8").trim() : undefined;
    const addrs = pingable ? [`${pingable}/${pingable.includes(":") ? 128 : 32}`] : [];
    this.wg = new WireGuardGo({
      ns: c.ns,
      ifname: this.ifname,
      privateKey: c.privateKey,
      listenPort: c.bindPort,
      peerPublicKey: c.peerPublicKey,
      endpoint: c.peerEndpoint,
      presharedKey: psk,
      persistentKeepalive: c.keepaliveInterval,
      allowedIps: [`${ADDR.tunPeer4}/32`, `${ADDR.tunPeer6}/128`],
      addresses: addrs,
      routes: [`${ADDR.tunPeer4}/32`, `${ADDR.tunPeer6}/128`],
    });
    await this.wg.start();
    if (dns) {
      const m = dns.match(/^\[?([^\]]+?)\]?:(\d+)$/);
      if (!m) throw new Error(`bad dns ${dns}`);
      this.dns = spawnBg(c.ns, "ref-dns", ["python3", "-u", `${PY_DIR}/wgs_dnsd.py`, m[1]!, m[2]!]);
      await this.dns.waitFor(/READY/, 10_000);
    }
  }

  async stop(): Promise<void> {
    await this.dns?.stop(1000);
    await this.wg?.dispose();
    this.dns = null;
    this.wg = null;
  }

  running(): boolean {
    return this.wg?.running() ?? false;
  }

  log(): string {
    return `${this.wg?.output() ?? ""}${this.dns?.output() ?? ""}`;
  }

  countLog(re: RegExp): number {
    return this.log()
      .split("\n")
      .filter((l) => re.test(l)).length;
  }

  rssKiB(): Promise<number | null> {
    return this.wg?.pid ? rssKiB(this.wg.pid) : Promise.resolve(null);
  }
}

export const useReferenceGateway = process.env.WGSLIRPY_INTEROP_GATEWAY === "reference";
