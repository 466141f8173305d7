// Servers in the inet namespace and clients in the peer namespace (python3 helpers in harness/py,
// named wgs_* so none shadows a stdlib module).
import { createHash, randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { type BgProcess, exec, type RunResult, spawnBg, tempDir } from "./netns.ts";
import { ADDR } from "./topology.ts";

export const PY_DIR = resolve(import.meta.dir, "py");
const PY = "python3";

export const PORTS = {
  http: 8080,
  sink: 9000,
  udpEcho: 7000,
  udpOther: 7001,
  udpOtherReply: 7002,
  iperf: 5201,
  /** Nothing listens here. */
  closed: 9999,
} as const;

export interface ServedFile {
  name: string;
  size: number;
  sha256: string;
  path: string;
}

export const sha256Hex = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

export interface InetServers {
  dir: string;
  files: Record<string, ServedFile>;
  procs: BgProcess[];
  stop(): Promise<void>;
}

/**
 * Start in `ns`: HTTP (GET files / POST sha256) on PORTS.http, the half-close upload sink on
 * PORTS.sink, UDP echo on PORTS.udpEcho, the other-port UDP responder on PORTS.udpOther (replies
 * from PORTS.udpOtherReply), optionally `iperf3 -s` on PORTS.iperf. All dual-stack.
 * `files` maps file names to sizes in bytes (random content, sha256 recorded).
 */
export async function startInetServers(
  ns: string,
  opts: { files?: Record<string, number>; iperf?: boolean; udpAddresses?: string[] } = {},
): Promise<InetServers> {
  const udpAddrs = opts.udpAddresses ?? [ADDR.inet4, ADDR.inet4b, ADDR.inet6, ADDR.inet6b];
  const dir = tempDir("wgs-www");
  const files: Record<string, ServedFile> = {};
  for (const [name, size] of Object.entries(opts.files ?? { "small.bin": 4096 })) {
    const data = randomBytes(size);
    const path = `${dir}/${name}`;
    writeFileSync(path, data);
    files[name] = { name, size, sha256: sha256Hex(data), path };
  }
  const procs: BgProcess[] = [];
  const servers: InetServers = {
    dir,
    files,
    procs,
    async stop() {
      await Promise.all(procs.map((p) => p.stop(1000)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const start = (name: string, argv: string[], ready: RegExp) => {
      const p = spawnBg(ns, name, argv);
      procs.push(p);
      return p.waitFor(ready, 10_000);
    };
    await Promise.all([
      start("httpd", [PY, "-u", `${PY_DIR}/wgs_httpd.py`, "--dir", dir, "--port", String(PORTS.http)], /READY/),
      start("sink", [PY, "-u", `${PY_DIR}/wgs_sink.py`, "--port", String(PORTS.sink)], /READY/),
      start("udp-echo", [PY, "-u", `${PY_DIR}/wgs_udpd.py`, "echo", String(PORTS.udpEcho), ...udpAddrs], /READY/),
      start(
        "udp-other",
        [PY, "-u", `${PY_DIR}/wgs_udpd.py`, "other", String(PORTS.udpOther), String(PORTS.udpOtherReply), ...udpAddrs],
        /READY/,
      ),
      ...(opts.iperf
        ? [start("iperf3-s", ["iperf3", "-s", "-p", String(PORTS.iperf), "--forceflush"], /Server listening/)]
        : []),
    ]);
  } catch (e) {
    await servers.stop();
    throw e;
  }
  return servers;
}

// ---------------------------------------------------------------------------------------------
// Clients (run in the peer namespace)

// biome-ignore lint/suspicious/noExplicitAny: JSON from the helper script, typed by each caller
async function pyClient(ns: string, args: string[], timeoutMs: number): Promise<any> {
  const r = await exec(ns, [PY, `${PY_DIR}/wgs_client.py`, ...args], { timeoutMs });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    return { ok: false, error: `exit ${r.code}${r.timedOut ? " (timeout)" : ""}: ${r.stderr.trim().slice(-500)}` };
  }
}

export interface UdpReply {
  ok: boolean;
  reply?: string;
  from?: string;
  fromPort?: number;
  error?: string;
}

/** Send one datagram (hex payload) from the peer namespace; wait ≤ 5 s for a reply. */
export function udpRequest(ns: string, host: string, port: number, hex: string, family: "4" | "6" | "any" = "any") {
  return pyClient(ns, ["udp", host, String(port), hex, family], 15_000) as Promise<UdpReply>;
}

export interface HalfCloseResult {
  ok: boolean;
  sentSha256?: string;
  sent?: number;
  reply?: string;
  error?: string;
}

/** Send nbytes, shut the write side, read the server's reply until EOF. */
export function halfClose(ns: string, host: string, port: number, nbytes: number, seed = 1, family = "any") {
  return pyClient(
    ns,
    ["halfclose", host, String(port), String(nbytes), String(seed), family],
    90_000,
  ) as Promise<HalfCloseResult>;
}

export function tcpConnectProbe(ns: string, host: string, port: number, family = "any") {
  return pyClient(ns, ["connect", host, String(port), family], 15_000) as Promise<{
    result: string;
    ms: number;
    error?: string;
  }>;
}

/** Send `count` random / truncated WireGuard-looking datagrams at host:port. */
export function fuzzUdp(ns: string, host: string, port: number, count: number, seed = 7) {
  return pyClient(ns, ["fuzz", host, String(port), String(count), String(seed)], 30_000);
}

/** `curl URL` in ns, returning the sha256 of the body (computed in the peer ns by sha256sum). */
export async function curlSha256(
  ns: string,
  url: string,
  extra: string[] = [],
  timeoutMs = 120_000,
): Promise<{ sha256: string; result: RunResult }> {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const cmd = `set -o pipefail; curl -sS --fail --max-time ${Math.ceil(timeoutMs / 1000) - 5} ${extra.map(q).join(" ")} ${q(url)} | sha256sum`;
  const result = await exec(ns, ["bash", "-c", cmd], { timeoutMs });
  return { sha256: result.stdout.trim().split(/\s+/)[0] ?? "", result };
}
