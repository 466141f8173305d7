// One "world" for an interop suite: topology + inet servers + keys + a wireguard-go peer + the
// gateway under test, with teardown that always runs.
import { rmSync } from "node:fs";
import { Gateway, type GatewayConfig } from "./gateway.ts";
import { exec, killAll, tempDir } from "./netns.ts";
import { type GatewayLike, ReferenceGateway, useReferenceGateway } from "./reference.ts";
import { type InetServers, startInetServers } from "./servers.ts";
import { ADDR, createTopology, type Topology } from "./topology.ts";
import { genKeyPair, type KeyPair, sweepWgSockets, type WgPeerConfig, WireGuardGo } from "./wireguard-go.ts";

export const GW_PORT = 51820;
export const PEER_PORT = 51821;

export interface World {
  t: Topology;
  servers: InetServers;
  gwKeys: KeyPair;
  peerKeys: KeyPair;
  tmp: string;
  peer: WireGuardGo;
  gateway: GatewayLike | null;
  /** True when WGSLIRPY_INTEROP_GATEWAY=reference: wireguard-go + kernel routing stands in for the CLI. */
  reference: boolean;
  /** Peer config for the correct peer (responder mode: endpoint = the gateway). */
  peerConfig(changes?: Partial<WgPeerConfig>): WgPeerConfig;
  /** Gateway config with the seed flags (responder mode: no peer endpoint). */
  gatewayConfig(changes?: Partial<GatewayConfig>): GatewayConfig;
  /** Stop the current gateway (if any) and start one with `changes`. */
  startGateway(changes?: Partial<GatewayConfig>): Promise<GatewayLike>;
  /** Stop the current peer and start one with `changes`. */
  startPeer(changes?: Partial<WgPeerConfig>): Promise<WireGuardGo>;
  /** `ping -c N` from the peer namespace; returns the number of replies. */
  ping(dst: string, count?: number): Promise<number>;
  destroy(): Promise<void>;
}

/**
 * `prefix`: namespace prefix unique to the test file (e.g. "wgsiwg-"); `ifPrefix`: wireguard-go
 * interface prefix unique to the test file (≤ 12 chars).
 */
export async function createWorld(
  prefix: string,
  ifPrefix: string,
  serverOpts: Parameters<typeof startInetServers>[1] = {},
): Promise<World> {
  await sweepWgSockets(ifPrefix);
  const t = await createTopology(prefix);
  if (useReferenceGateway) await t.enableForwarding();
  let servers: InetServers | null = null;
  try {
    servers = await startInetServers(t.inet, serverOpts);
    const [gwKeys, peerKeys] = await Promise.all([genKeyPair(), genKeyPair()]);
    const tmp = tempDir("wgs-world");
    const w: World = {
      t,
      servers,
      gwKeys,
      peerKeys,
      tmp,
      gateway: null,
      reference: useReferenceGateway,
      peer: new WireGuardGo({
        ns: t.peer,
        ifname: `${ifPrefix}p`,
        privateKey: peerKeys.privateKey,
        listenPort: PEER_PORT,
        peerPublicKey: gwKeys.publicKey,
        endpoint: `${ADDR.gwOuter4}:${GW_PORT}`,
      }),
      peerConfig(changes = {}) {
        return {
          ns: t.peer,
          ifname: `${ifPrefix}p`,
          privateKey: peerKeys.privateKey,
          listenPort: PEER_PORT,
          peerPublicKey: gwKeys.publicKey,
          endpoint: `${ADDR.gwOuter4}:${GW_PORT}`,
          ...changes,
        };
      },
      gatewayConfig(changes = {}) {
        return {
          ns: t.gw,
          privateKey: gwKeys.privateKey,
          peerPublicKey: peerKeys.publicKey,
          bindPort: GW_PORT,
          keepaliveInterval: 10,
          ...changes,
        };
      },
      async startGateway(changes = {}) {
        await w.gateway?.stop();
        w.gateway = useReferenceGateway
          ? new ReferenceGateway(w.gatewayConfig(changes), `${ifPrefix}g`)
          : new Gateway(w.gatewayConfig(changes));
        await w.gateway.start();
        return w.gateway;
      },
      async startPeer(changes = {}) {
        await w.peer.dispose();
        w.peer = new WireGuardGo(w.peerConfig(changes));
        await w.peer.start();
        return w.peer;
      },
      async ping(dst, count = 2) {
        const v6 = dst.includes(":");
        const argv = ["ping", ...(v6 ? ["-6"] : []), "-c", String(count), "-i", "0.3", "-W", "2", dst];
        const r = await exec(t.peer, argv, { timeoutMs: 10_000 + count * 2500 });
        const m = r.stdout.match(/(\d+) received/);
        return m ? Number(m[1]) : 0;
      },
      async destroy() {
        await w.peer.dispose().catch(() => {});
        await w.gateway?.stop().catch(() => {});
        await servers?.stop().catch(() => {});
        await t.destroy();
        rmSync(tmp, { recursive: true, force: true });
      },
    };
    return w;
  } catch (e) {
    await servers?.stop().catch(() => {});
    await t.destroy();
    await killAll();
    throw e;
  }
}
