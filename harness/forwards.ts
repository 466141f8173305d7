// Helpers for test/interop/forwards-policy.test.ts (issue 4: reverse forwards, policy, ICMP errors):
// its ports, test-only destinations and world (forwards, servers, routes, a black-holed port), and
// harness/py/wgs_fw.py, whose servers log who connected and whose clients print one JSON line.
import { type BgProcess, exec, execCheck, spawnBg, waitUntil } from "./netns.ts";
import { PY_DIR } from "./servers.ts";
import { ADDR } from "./topology.ts";

/** Peer-side servers (on the tunnel addresses). */
export const PEER_TCP = 7000;
export const PEER_UDP = 7001;
/** Reverse forwards: host side in gw on its inet-facing address. */
export const FWD = { tcpSrc: 8022, tcpNoSrc: 8023, tcp6: 8026, udpSrc: 8024, udpNoSrc: 8025, gueTcp: 8030 } as const;
/** A service on gw's inet-facing address, and the stats server's port. */
export const GW_VETH_PORT = 7071;
export const STATS_PORT = 9190;
/** Loopback-only service inside gw. */
export const GW_LOOPBACK_PORT = 7070;
export const BANNER = "wgsifw-gw-loopback-service";
/** Test-only unreachable destinations (routes added in gw by setUpForwardsWorld). */
export const UNREACH_NET = "10.209.0.0/24";
export const UNREACH_HOST = "10.209.0.1";
export const THROW_NET = "10.210.0.0/24";
export const THROW_HOST = "10.210.0.1";
export const NOBODY = "10.202.0.99";
/** inet drops SYNs to this port (nftables in the inet namespace). */
export const BLACKHOLE_PORT = 8081;

export const forwardArgs = [
  "-t",
  `${ADDR.gwInet4}:${FWD.tcpSrc},${ADDR.tunGw4}:0,${ADDR.tunPeer4}:${PEER_TCP}`,
  "-t",
  `${ADDR.gwInet4}:${FWD.tcpNoSrc},,${ADDR.tunPeer4}:${PEER_TCP}`,
  "-t",
  `[${ADDR.gwInet6}]:${FWD.tcp6},,[${ADDR.tunPeer6}]:${PEER_TCP}`,
  "-u",
  `${ADDR.gwInet4}:${FWD.udpSrc},${ADDR.tunGw4}:0,${ADDR.tunPeer4}:${PEER_UDP}`,
  "-u",
  `${ADDR.gwInet4}:${FWD.udpNoSrc},,${ADDR.tunPeer4}:${PEER_UDP}`,
];

/** Wait until gw listens on these TCP ports (the -t listeners). */
async function waitTcpListen(gw: string, ports: number[]): Promise<void> {
  await waitUntil(
    `gw TCP listeners ${ports.join(",")}`,
    async () => {
      const r = await exec(gw, ["ss", "-Hltn"], { timeoutMs: 3000 });
      return ports.every((p) => r.stdout.includes(`:${p} `));
    },
    10_000,
    100,
  );
}

/**
 * Once the gateway (with forwardArgs) and the peer run: wait for the -t listeners, start the peer's
 * servers and gw's loopback banner (pushed to `procs` for the caller to stop), add gw's test-only
 * routes and the black-holed port in inet.
 */
export async function setUpForwardsWorld(
  t: { gw: string; peer: string; inet: string },
  fw: Fw,
  procs: BgProcess[],
): Promise<{ peerTcp: BgProcess; peerUdp: BgProcess; gwLoopback: BgProcess }> {
  await waitTcpListen(t.gw, [FWD.tcpSrc, FWD.tcpNoSrc, FWD.tcp6]);
  const peerTcp = await fw.tcpServer(t.peer, PEER_TCP, [ADDR.tunPeer4, ADDR.tunPeer6]);
  const peerUdp = await fw.udpServer(t.peer, PEER_UDP, [ADDR.tunPeer4]);
  procs.push(peerTcp, peerUdp);
  const gwLoopback = await fw.bannerServer(t.gw, "127.0.0.1", GW_LOOPBACK_PORT, BANNER);
  procs.push(gwLoopback);
  await execCheck(t.gw, ["ip", "route", "add", "unreachable", UNREACH_NET]);
  await execCheck(t.gw, ["ip", "route", "add", "throw", THROW_NET]);
  await execCheck(t.inet, ["nft", "add", "table", "inet", "wgsifw"]);
  await execCheck(t.inet, ["nft", "add", "chain", "inet", "wgsifw", "in", "{ type filter hook input priority 0; }"]);
  await execCheck(t.inet, [
    "nft",
    "add",
    "rule",
    "inet",
    "wgsifw",
    "in",
    "tcp",
    "dport",
    String(BLACKHOLE_PORT),
    "drop",
  ]);
  return { peerTcp, peerUdp, gwLoopback };
}

/** The helpers of harness/py/wgs_fw.py. */
export function fwHelpers(): Fw {
  return new Fw(`${PY_DIR}/wgs_fw.py`);
}

export interface TcpClientResult {
  ok: boolean;
  error?: string;
  local?: [string, number];
  sentSha256?: string;
  echoSha256?: string;
  echoLen?: number;
  trailer?: string;
  seconds?: number;
}

export interface UdpClientsResult {
  ok: boolean;
  replies: { text: string; from: string }[][];
  attempts: number;
}

export interface UdpErrResult {
  result: "reply" | "error" | "timeout";
  errno?: string;
  strerror?: string;
  eeErrno?: string;
  origin?: number;
  icmpType?: number;
  icmpCode?: number;
  offender?: string | null;
  reply?: string;
  ms: number;
  attempts: number;
}

export interface TcpErrResult {
  result: string;
  strerror?: string;
  ms: number;
}

export interface RawTcpResult {
  result: "rst" | "synack" | "none";
  ackOk?: boolean;
  rstAck?: boolean;
  data: string;
  ms: number;
  error?: string;
}

export class Fw {
  constructor(readonly path: string) {}

  private async json<T>(ns: string, args: string[], timeoutMs: number): Promise<T> {
    const r = await exec(ns, ["python3", this.path, ...args], { timeoutMs });
    const line = r.stdout.trim().split("\n").pop() ?? "";
    try {
      return JSON.parse(line) as T;
    } catch {
      return {
        ok: false,
        result: "none",
        error: `exit ${r.code}${r.timedOut ? " (timeout)" : ""}: ${r.stderr.trim().slice(-800)}`,
      } as T;
    }
  }

  private async server(ns: string, name: string, args: string[]): Promise<BgProcess> {
    const p = spawnBg(ns, name, ["python3", "-u", this.path, ...args]);
    try {
      await p.waitFor(/READY/, 10_000);
    } catch (e) {
      await p.stop(1000);
      throw e;
    }
    return p;
  }

  /** Stream echo + "sha256 n" trailer after EOF; logs `CONN ip port` per connection. */
  tcpServer(ns: string, port: number, addrs: string[]): Promise<BgProcess> {
    return this.server(ns, `tcp-echo:${port}`, ["tcpserver", String(port), ...addrs]);
  }

  /** Reply "ip port|payload"; logs `UDP ip port …` per datagram. */
  udpServer(ns: string, port: number, addrs: string[]): Promise<BgProcess> {
    return this.server(ns, `udp-echo:${port}`, ["udpserver", String(port), ...addrs]);
  }

  /** A TCP server that sends `text` + "\n" and closes. */
  bannerServer(ns: string, addr: string, port: number, text: string): Promise<BgProcess> {
    return this.server(ns, `banner:${port}`, ["banner", addr, String(port), text]);
  }

  /** Connect (from `bindAddr`:`bindPort` when given), echo test: see TcpClientResult. */
  tcpClient(ns: string, host: string, port: number, nbytes: number, seed: number, bindAddr = "", bindPort = 0) {
    return this.json<TcpClientResult>(
      ns,
      ["tcpclient", host, String(port), String(nbytes), String(seed), bindAddr, String(bindPort)],
      60_000,
    );
  }

  /** One socket per port bound to `bindAddr`, three datagrams each. */
  udpClients(ns: string, host: string, port: number, bindAddr: string, bindPorts: number[]) {
    return this.json<UdpClientsResult>(
      ns,
      ["udpclients", host, String(port), bindAddr, ...bindPorts.map(String)],
      15_000,
    );
  }

  /** Connected UDP socket: the ICMP error it receives (three sends, `waitS` apart). */
  udpErr(ns: string, host: string, port: number, waitS = 1.5) {
    return this.json<UdpErrResult>(ns, ["udperr", host, String(port), String(waitS)], 5000 + 3 * waitS * 1000);
  }

  tcpErr(ns: string, host: string, port: number, timeoutS = 12) {
    return this.json<TcpErrResult>(ns, ["tcperr", host, String(port), String(timeoutS)], (timeoutS + 5) * 1000);
  }

  rawTcp(ns: string, ifname: string, src: string, dst: string, dport: number) {
    return this.json<RawTcpResult>(ns, ["rawtcp", ifname, src, dst, String(dport)], 15_000);
  }
}

/** `CONN ip port` lines a tcpServer logged. */
export function connLines(p: BgProcess): { ip: string; port: number }[] {
  return p
    .lines()
    .map((l) => l.match(/^CONN (\S+) (\d+)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => ({ ip: m[1]!, port: Number(m[2]) }));
}
