/**
 * The stack half of startGateway: the Netstack (through a pcap tap with --pcap), its TcpLayer and
 * the Gateway that bridges flows to OS sockets, with the flow budget derived from the open-files
 * limit and the roaming kick (a peer that moved gets its lost segments resent at once).
 */
import { readFileSync } from "node:fs";
import { deriveFlowLimits } from "../gateway/budget.ts";
import { Gateway } from "../gateway/gateway.ts";
import { readFdLimit } from "../gateway/host-fds.ts";
import type { DestinationPolicy } from "../gateway/policy.ts";
import type { IpLink } from "../link.ts";
import { Netstack } from "../netstack/stack.ts";
import { congestionControlForHost, HOST_CONGESTION_CONTROL_PATH } from "../netstack/tcp/congestion/host.ts";
import { AUTOTUNE_MAX_BUFFER_SIZE } from "../netstack/tcp/constants.ts";
import { TcpLayer } from "../netstack/tcp/layer.ts";
import type { GatewayOptions } from "../options.ts";
import { type PcapWriter, tapLink } from "../pcap/writer.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import { KeyedThrottle } from "../util/throttle.ts";
import { keyToBase64 } from "../wireguard/keys.ts";
import type { Peer } from "../wireguard/peer.ts";
import type { TunnelLink } from "./tunnel.ts";

export interface Stack {
  gateway: Gateway;
  netstack: Netstack;
  tcp: TcpLayer;
}

export interface StackDeps {
  tunnel: TunnelLink;
  policy: DestinationPolicy;
  pcap: PcapWriter | undefined;
  clock: Clock;
  random: Random;
  log: Logger;
}

export function buildStack(options: GatewayOptions, deps: StackDeps): Stack {
  const { tunnel, policy, pcap, clock, random, log } = deps;
  const device = tunnel.device;
  // The listeners the options open come out of the descriptor budget's reserve.
  const fdLimit = readFdLimit();
  const listeners =
    options.incomingTcp.length + options.incomingUdp.length + (options.statsListen ? 1 : 0) + (options.pcap ? 1 : 0);
  const limits = deriveFlowLimits(fdLimit, listeners, options.maxFlows);
  log.info(
    `flow budget: ${limits.maxFlows} host sockets (open-files limit ${fdLimit ?? "unknown"}), ${limits.maxPendingConnects} TCP connects under way, ${limits.maxUdpMappings} UDP mappings`,
  );
  const gateway = new Gateway({
    clock,
    log,
    limits,
    fdLimit,
    // Budget shares per peer: the peer whose AllowedIPs hold the flow's inner address.
    peerOf: device
      ? (addr) => {
          const p = device.allowedIps.lookup(addr);
          return p ? keyToBase64(p.publicKey) : "";
        }
      : undefined,
    dns: options.dns,
    pingable: options.pingable,
    udpIdleTimeoutMs: options.udpIdleTimeout * 1000,
    tcpBufferSize: options.tcpBufferSize,
    tcpConnectTimeoutMs: options.tcpConnectTimeoutMs,
    policy,
    incomingTcp: options.incomingTcp,
    incomingUdp: options.incomingUdp,
  });
  // With --pcap the netstack talks to a tap that records every inner packet, both directions.
  const link: IpLink = pcap ? tapLink(tunnel.link, pcap) : tunnel.link;
  const netstack = new Netstack({
    link,
    mtu: options.mtu,
    clock,
    log,
    handlers: gateway,
    routerAddress: gateway.ownAddresses(),
  });
  const tcp = new TcpLayer({
    output: netstack.output,
    clock,
    random,
    log,
    mss4: options.mtu - 40,
    mss6: options.mtu - 60,
    bufferSize: options.tcpBufferSize,
    autotuneMaxBufferSize: options.tcpBufferFixed ? 0 : AUTOTUNE_MAX_BUFFER_SIZE,
    congestionControl: congestionControlForHost(readHostSetting(HOST_CONGESTION_CONTROL_PATH)),
    onConnect: (flow, conn) => gateway.onTcpConnect(flow, conn),
  });
  netstack.setTcp(tcp);
  if (device) {
    // What was lost on the old path is resent at once, not after a backed-off timer (up to 60 s).
    // At most once a second per peer: each kick scans every flow, and a peer may hop ports often.
    const kicks = new KeyedThrottle<Peer>(clock, 1000);
    tunnel.onPeerRoamed = (p) => {
      if (kicks.allow(p)) tcp.kickRetransmissions((address) => device.allowedIps.lookup(address) === p);
    };
  }
  gateway.attach(netstack);
  return { gateway, netstack, tcp };
}

/** A /proc setting of the host, or undefined where there is none (not Linux, no /proc). */
function readHostSetting(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
