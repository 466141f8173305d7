// The fairness part of `bun run bench`: FLOWS concurrent echo flows (bench/py/flows.py `fairness`,
// one chunk in flight per flow) for SECONDS, and what each network namespace counted meanwhile:
// UDP receive-buffer overflows (the peer's wireguard-go socket drops whole datagrams when a burst
// outruns it), kernel TCP retransmissions and timeouts (the reference's senders are kernel TCP), and
// the gateway's own TCP counters (wgslirpy's sender toward the peer).
import { resolve } from "node:path";
import { exec, spawnBg } from "../harness/netns.ts";
import { counterDelta, type GatewayCounters } from "./measure.ts";

const FLOWS_PY = resolve(import.meta.dir, "py/flows.py");

export interface FairnessResult {
  flows: number;
  seconds: number;
  minBytes: number;
  p10Bytes: number;
  medianBytes: number;
  maxBytes: number;
  minOverMedian: number;
  flowsUnderHalfMedian: number;
  totalMbps: number;
  /** Per flow, the longest wait for echoed bytes (s): median over flows and the worst. */
  stallMedianS: number;
  stallMaxS: number;
  /** Waits of 1 s or more, over all flows. */
  stalls1s: number;
  perFlowBytes: number[];
  error?: string;
}

/** Kernel counters of one namespace (/proc/net/snmp and /proc/net/netstat). */
export interface NsCounters {
  udpRcvbufErrors: number;
  tcpRetransSegs: number;
  tcpTimeouts: number;
  tcpLossProbes: number;
}

/** `Proto: names...` / `Proto: values...` line pairs as one map ("Udp.RcvbufErrors" → n). */
function parseProcNet(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.trim().split("\n");
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = (lines[i] as string).split(/\s+/);
    const values = (lines[i + 1] as string).split(/\s+/);
    const proto = names[0]?.replace(":", "") ?? "";
    for (let j = 1; j < names.length; j++) out.set(`${proto}.${names[j]}`, Number(values[j]));
  }
  return out;
}

export async function nsCounters(ns: string): Promise<NsCounters> {
  const r = await exec(ns, ["cat", "/proc/net/snmp", "/proc/net/netstat"], { timeoutMs: 5000 });
  const m = parseProcNet(r.stdout);
  return {
    udpRcvbufErrors: m.get("Udp.RcvbufErrors") ?? Number.NaN,
    tcpRetransSegs: m.get("Tcp.RetransSegs") ?? Number.NaN,
    tcpTimeouts: m.get("TcpExt.TCPTimeouts") ?? Number.NaN,
    tcpLossProbes: m.get("TcpExt.TCPLossProbes") ?? Number.NaN,
  };
}

function nsDelta(a: NsCounters, b: NsCounters): NsCounters {
  return {
    udpRcvbufErrors: b.udpRcvbufErrors - a.udpRcvbufErrors,
    tcpRetransSegs: b.tcpRetransSegs - a.tcpRetransSegs,
    tcpTimeouts: b.tcpTimeouts - a.tcpTimeouts,
    tcpLossProbes: b.tcpLossProbes - a.tcpLossProbes,
  };
}

export interface FairnessRun {
  result?: FairnessResult;
  /** Per namespace name (peer / gw / inet): what its kernel counted during the run. */
  ns: Record<string, NsCounters>;
  /** The wgslirpy gateway's TCP counters during the run (absent for the reference). */
  gateway?: GatewayCounters | null;
}

export interface FairnessSetup {
  /** Client namespace and the echo server's namespace, host and port. */
  clientNs: string;
  serverNs: string;
  host: string;
  port: number;
  flows: number;
  seconds: number;
  /** Namespaces whose kernel counters to report, by label. */
  watch: Record<string, string>;
  /** Read the gateway's counters (wgslirpy only). */
  gatewayCounters?: () => Promise<GatewayCounters | null>;
}

/** Start the echo server, run the client, and collect the counters around it. */
export async function runFairness(s: FairnessSetup): Promise<FairnessRun> {
  const server = spawnBg(s.serverNs, "echo-server", ["python3", FLOWS_PY, "echo-server", String(s.port)]);
  try {
    await server.waitFor(/listening/, 10_000);
    const before: Record<string, NsCounters> = {};
    for (const [label, ns] of Object.entries(s.watch)) before[label] = await nsCounters(ns);
    const g0 = (await s.gatewayCounters?.()) ?? null;
    const argv = ["python3", FLOWS_PY, "fairness", s.host, String(s.port), String(s.flows), String(s.seconds), "65536"];
    const r = await exec(s.clientNs, argv, { timeoutMs: (s.seconds + 60) * 1000 });
    const g1 = (await s.gatewayCounters?.()) ?? null;
    const ns: Record<string, NsCounters> = {};
    for (const [label, n] of Object.entries(s.watch)) ns[label] = nsDelta(before[label]!, await nsCounters(n));
    let result: FairnessResult | undefined;
    try {
      result = JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as FairnessResult;
    } catch {
      process.stderr.write(`  fairness client failed: ${(r.stdout + r.stderr).slice(-300)}\n`);
    }
    return { result, ns, gateway: g0 && g1 ? counterDelta(g0, g1) : undefined };
  } finally {
    await server.stop(2000);
  }
}

/** One line of figures for a run. */
export function describeFairness(run: FairnessRun | undefined): string {
  const x = run?.result;
  if (!x) return "-";
  if (x.error) return `err: ${x.error}`;
  const mb = (n: number) => (n / 1e6).toFixed(2);
  let s =
    `slowest/median ${x.minOverMedian.toFixed(2)} (min ${mb(x.minBytes)} MB, p10 ${mb(x.p10Bytes)}, median ` +
    `${mb(x.medianBytes)}, max ${mb(x.maxBytes)}; ${x.flowsUnderHalfMedian} flows < median/2; total ` +
    `${x.totalMbps.toFixed(0)} Mbit/s; longest stall per flow: median ${x.stallMedianS.toFixed(2)} s, max ` +
    `${x.stallMaxS.toFixed(2)} s; ${x.stalls1s} stalls >= 1 s)`;
  for (const [label, c] of Object.entries(run.ns))
    s += `; ${label}: UDP RcvbufErrors ${c.udpRcvbufErrors}, TCP RetransSegs ${c.tcpRetransSegs}, TCPTimeouts ${c.tcpTimeouts}`;
  const g = run.gateway;
  if (g)
    s +=
      `; gateway TCP: ${g.retransmits} retransmits, ${g.rtoExpirations} RTOs, ${g.fastRecoveries} recoveries, ` +
      `${g.tlpProbes} loss probes; ${g.datagramsOut} datagrams out in ${g.flushes} sendMany batches`;
  return s;
}
