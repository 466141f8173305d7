import { DEFAULTS, type GatewayOptions } from "../../src/options.ts";
import { publicKeyOf } from "../../src/wireguard/keys.ts";

/** Gateway options for these tests (no `allow` unless given: the default policy applies). */
export function testGatewayOptions(
  gwKey: Uint8Array,
  clientKey: Uint8Array,
  extra: Partial<GatewayOptions> = {},
): GatewayOptions {
  return {
    mode: "wireguard",
    privateKey: gwKey,
    peerPublicKey: publicKeyOf(clientKey),
    bind: { address: "127.0.0.1", port: 0 },
    dns: { address: "10.0.2.1", port: 53 },
    pingable: "10.0.2.1",
    keepaliveInterval: 0,
    mtu: DEFAULTS.mtu,
    tcpBufferSize: DEFAULTS.tcpBufferSize,
    transmitQueueCapacity: DEFAULTS.transmitQueueCapacity,
    udpIdleTimeout: DEFAULTS.udpIdleTimeout,
    incomingTcp: [],
    incomingUdp: [],
    logLevel: "silent",
    ...extra,
  };
}
