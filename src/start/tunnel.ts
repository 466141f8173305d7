/**
 * The tunnel half of startGateway: the IpLink toward the peer(s) over the outer transport —
 * a WireGuard device with its peers, or the no-crypto GUE tunnel — and the readiness figures the
 * handle reports.
 */
import { GueTunnel } from "../gue/tunnel.ts";
import type { IpLink } from "../link.ts";
import { peerLabel, peerLogEvents, type RejectionReporter } from "../observe/peer-log.ts";
import type { GatewayOptions, PeerConfig } from "../options.ts";
import type { DatagramTransport } from "../transport/types.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import type { StartupScope } from "../util/startup.ts";
import { aeadBackendName, selectAead } from "../wireguard/aead.ts";
import { sodiumChaCha20Poly1305, sodiumSource } from "../wireguard/aead-sodium.ts";
import { WireGuardDevice } from "../wireguard/device.ts";
import type { Peer } from "../wireguard/peer.ts";

export interface TunnelLink {
  link: IpLink & { start(): void; close(): void; stats: unknown };
  /** The WireGuard device; undefined in GUE mode. */
  device: WireGuardDevice | undefined;
  /** The AEAD backend's name for the start line; undefined in GUE mode (unencrypted). */
  aeadName: string | undefined;
  /** Whether the peer is reachable now (WireGuard: every peer with a known endpoint has a session; GUE: an endpoint to send to). */
  peerUp(): boolean;
  peersUp(): number;
  peerCount(): number;
  /** Called when a WireGuard peer moved to a new endpoint (set once the TCP layer exists). */
  onPeerRoamed: (peer: Peer) => void;
}

export interface TunnelDeps {
  transport: DatagramTransport;
  scope: StartupScope;
  rejections: RejectionReporter;
  clock: Clock;
  random: Random;
  log: Logger;
}

export async function openTunnelLink(options: GatewayOptions, deps: TunnelDeps): Promise<TunnelLink> {
  const { transport, scope, rejections, clock, random, log } = deps;
  if (options.mode === "gue") {
    const gue = new GueTunnel({
      transport,
      peer: options.peerEndpoint,
      keepaliveIntervalS: options.keepaliveInterval,
      clock,
      log,
    });
    scope.add(() => gue.close());
    return {
      link: gue,
      device: undefined,
      aeadName: undefined,
      peerUp: () => !options.peerEndpoint || gue.peer !== undefined,
      peersUp: () => (gue.peer !== undefined ? 1 : 0),
      peerCount: () => 1,
      onPeerRoamed: () => {},
    };
  }
  if (!options.privateKey || (!options.peerPublicKey && !options.peers)) {
    await scope.closeAll();
    throw new Error("WireGuard mode needs a private key and a peer key");
  }
  const aead = selectAead(log);
  // "embedded": the compiled binary's own copy of the native addon (see aead-sodium.ts).
  const aeadName =
    aeadBackendName(aead) + (aead === sodiumChaCha20Poly1305 && sodiumSource() === "embedded" ? " (embedded)" : "");
  const wg = new WireGuardDevice({
    privateKey: options.privateKey,
    transmitQueueCapacity: options.transmitQueueCapacity,
    mtu: options.mtu,
    transport,
    clock,
    random,
    log,
    aead,
    events: {
      peer: (p) => {
        const logged = peerLogEvents(log, peerLabel(p), rejections);
        return {
          ...logged,
          roamed: (from, to) => {
            logged.roamed?.(from, to);
            tunnel.onPeerRoamed(p);
          },
        };
      },
      handshakeRejected: (reason, from) => rejections.add(reason, from),
    },
  });
  scope.add(() => wg.close());
  let expected: Peer[] = [];
  const tunnel: TunnelLink = {
    link: wg,
    device: wg,
    aeadName,
    // Ready once every peer we were told where to find has a session.
    peerUp: () => expected.every((p) => p.hasSession),
    peersUp: () => {
      let n = 0;
      for (const p of wg.peers) if (p.hasSession) n++;
      return n;
    },
    peerCount: () => wg.peerCount,
    onPeerRoamed: () => {},
  };
  await scope.open("invalid peer configuration", () => {
    for (const peer of wireguardPeers(options)) wg.addPeer(peer);
  });
  expected = [...wg.peers].filter((p) => p.endpoint !== undefined);
  return tunnel;
}

/** The configured peers, or the one `peerPublicKey` peer that takes every address. */
function wireguardPeers(options: GatewayOptions): PeerConfig[] {
  if (options.peers) return options.peers;
  if (!options.peerPublicKey) return [];
  return [
    {
      publicKey: options.peerPublicKey,
      presharedKey: options.presharedKey,
      endpoint: options.peerEndpoint,
      persistentKeepalive: options.keepaliveInterval,
      allowedIps: ["0.0.0.0/0", "::/0"],
    },
  ];
}
