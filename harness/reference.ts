// The reference path: wireguard-go in the gw namespace as a kernel-routed WireGuard endpoint
// (ip forwarding on, no wgslirpy). Proves the harness independently of the gateway and gives the
// benchmark its baseline.
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
