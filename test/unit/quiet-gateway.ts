// Options of a small, silent gateway on 127.0.0.1 for the startup tests (cli-startup.test.ts and
// its reference run): spread into startGateway()'s options next to the mode and what a test varies.
import type { GatewayOptions } from "../../src/options.ts";

export function quietGateway(udpPort: number) {
  return {
    bind: { address: "127.0.0.1", port: udpPort },
    keepaliveInterval: 0,
    mtu: 1420,
    tcpBufferSize: 65535,
    transmitQueueCapacity: 16,
    udpIdleTimeout: 30,
    incomingTcp: [],
    incomingUdp: [],
    logLevel: "silent",
  } satisfies Partial<GatewayOptions>;
}
