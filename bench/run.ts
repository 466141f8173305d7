// `bun run bench`: iperf3 through wgslirpy next to the same run through a kernel-routed
// wireguard-go reference, in private namespaces (peer / gw / inet). Prints figures; gates nothing.
//
// Scenarios, each a download (iperf3 -R) and an upload for both paths:
//   direct IPv4, direct IPv6 (peer → gw's WireGuard port),
//   and through the seeded UDP impairment relay (harness/impair.ts) in the gw namespace, in front of
//   both paths alike: clean (the relay's own cost), 1% loss each way, +50 ms each way (~100 ms RTT).
//
// Per row and direction: both paths' Mbit/s (median of --runs), the ratio, and the CPU cost per GiB
// moved (user + sys from /proc) of the gateway and of the reference's gateway-side wireguard-go; for
// the gateway also TCP segments out per segment in and setTimeout calls per segment (its /stats),
// and with --syscalls host TCP send syscalls per segment (perf stat).
//
//   bun bench/run.ts [--time S] [--runs N] [--streams N] [--only wgslirpy|reference] [--no-impair]
//                    [--no-ipv6] [--only-rows a,b] [--syscalls] [--cpu-prof DIR] [--tcp-buffer-size N]
// After each path's iperf rows, on its direct path: fairness (--fairness-flows F concurrent echo flows
// for --fairness-seconds S, default 200 for 180 s; 0 skips): the slowest flow's bytes over the median's,
// with UDP receive-buffer drops and kernel TCP timeouts in each namespace and the gateway's TCP counters
// (bench/fairness.ts). --fairness-control adds the same client and echo server over loopback in one
// namespace (no tunnel); --fairness-json FILE writes every run, per-flow bytes included.
// Last, new TCP connections per second (--conns N fresh HTTP/1.0 connections in a row, default 500;
// 0 skips) on both direct paths in --runs pairs, each pair one run per path back to back (which
// goes first alternates), both gateways still running from their rows: each path's median run, and
// the median of the pairs' ratios. Before the pairs each path runs --conns-warmup N connections
// (default: --conns; 0: none), printed but not counted: the rows warm the data path, not connection
// setup, whose JIT compilation a long-running gateway paid long ago.
// Only the connection rate: `--only-rows none --fairness-seconds 0` (no iperf row matches "none").
// --cpu-prof DIR: the gateway runs under `bun --cpu-prof`; its profile lands in DIR when it stops
// (summarize with `bun bench/profile.ts DIR/*.cpuprofile`).
import { resolve } from "node:path";
import { createWorld, GW_PORT, type World } from "../harness/fixture.ts";
import { describeImpairment, type Relay, type RelayImpairment, startRelay } from "../harness/impair-world.ts";
import { exec, execCheck, interopSkipReason, killAll } from "../harness/netns.ts";
import { type ReferencePair, startReferencePair } from "../harness/reference.ts";
import { PORTS } from "../harness/servers.ts";
import { ADDR } from "../harness/topology.ts";
import type { WireGuardGo } from "../harness/wireguard-go.ts";
import { describeFairness, type FairnessRun, runFairness } from "./fairness.ts";
import { type IperfResult, iperf } from "./iperf.ts";
import {
  counterDelta,
  counterSum,
  countSyscalls,
  cpuSeconds,
  type GatewayCounters,
  gatewayCounters,
  type SyscallCounts,
  threadCpu,
} from "./measure.ts";

const PREFIX = "wgsibench-";
const IFP = "wgsibench";
const REF_GW_PORT = 51900;
const RELAY_PORT = { wgslirpy: 51830, reference: 51930 } as const;
const STATS_PORT = 51899;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

const seconds = Math.min(60, Math.max(1, Number(arg("time", "5"))));
const streams = Math.min(8, Math.max(1, Number(arg("streams", "1"))));
const runs = Math.min(9, Math.max(1, Number(arg("runs", "1"))));
const withSyscalls = flag("syscalls");
const cpuProfDir = arg("cpu-prof", "");
const connsN = Math.min(5000, Math.max(0, Number(arg("conns", "500"))));
/**
 * Connections each path runs before the timed pairs (0: none). The throughput rows warm the data
 * path but not connection setup: a gateway's first ~500 connections pay JSC's compilation of it
 * (measured 0.34-0.36 CPU-ms per connection of JIT threads, against 0.06-0.26 in the next 1,500),
 * which a long-running gateway has long paid. The warm-up runs are printed, not counted.
 */
const connsWarmup = Math.min(5000, Math.max(0, Number(arg("conns-warmup", String(connsN)))));
const fairFlows = Math.min(1000, Math.max(1, Number(arg("fairness-flows", "200"))));
const fairSeconds = Math.min(600, Math.max(0, Number(arg("fairness-seconds", "180"))));
const FLOWS_PY = resolve(import.meta.dir, "py/flows.py");
const fairControl = flag("fairness-control");
const fairJson = arg("fairness-json", "");
const ECHO_PORT = 9100;
const onlyRows = arg("only-rows", "")
  .split(",")
  .map((s) => s.trim().toLowerCase())
  .filter((s) => s !== "");
const only = arg("only", "");
const withImpair = !flag("no-impair");
const withV6 = !flag("no-ipv6");
/** The gateway's --tcp-buffer-size (per flow and direction); default: the CLI's (the seed's 65535). */
const tcpBuffer = arg("tcp-buffer-size", "");

interface Scenario {
  name: string;
  /** Server address for iperf3. */
  host: string;
  /** Through the relay with this impairment; absent = peer talks to the gateway directly. */
  relay?: RelayImpairment;
}

const ALL_SCENARIOS: Scenario[] = [
  { name: "direct IPv4", host: ADDR.inet4 },
  ...(withV6 ? [{ name: "direct IPv6", host: ADDR.inet6 }] : []),
  ...(withImpair
    ? [
        { name: "relay clean", host: ADDR.inet4, relay: { seed: 7 } },
        { name: "relay 1% loss", host: ADDR.inet4, relay: { loss: 0.01, seed: 7 } },
        { name: "relay +50 ms/dir", host: ADDR.inet4, relay: { delayMs: 50, seed: 7 } },
      ]
    : []),
];
const SCENARIOS = ALL_SCENARIOS.filter(
  (s) => onlyRows.length === 0 || onlyRows.some((r) => s.name.toLowerCase().includes(r)),
);

type PathName = "wgslirpy" | "reference";
/** One direction of one row on one path: the median run, and costs summed over every run. */
interface Measured {
  result: IperfResult;
  bytes: number;
  cpuS: number;
  counters: GatewayCounters | null;
  syscalls: SyscallCounts | null;
}
interface Cell {
  download: Measured;
  upload: Measured;
}
const results = new Map<string, Partial<Record<PathName, Cell>>>();
interface ConnsResult {
  ok: number;
  errors: number;
  perSecond: number;
  /** CPU seconds (user + sys) of the gateway process over the run (bench side). */
  cpuS?: number;
  /** Connections per second of every run (--runs), in order; this result is their median. */
  runs?: number[];
  /** CPU ms per connection of the gateway's threads by kind (JS thread, JIT compiler, GC) in this run. */
  threads?: string;
}
const extra: Partial<Record<PathName, { conns?: ConnsResult; fairness?: FairnessRun; cpuS?: number }>> = {};
let fairLoopback: FairnessRun | undefined;
/** wgslirpy ÷ reference connections per second, one per pair of runs (measureConnsPairs). */
let connsRatios: number[] = [];
/** The untimed warm-up run of each path (conns/s), printed beside the result. */
const connsWarmups: Partial<Record<PathName, ConnsResult>> = {};

async function runJson<T>(ns: string, argv: string[], timeoutMs: number): Promise<T | undefined> {
  const r = await exec(ns, argv, { timeoutMs });
  try {
    return JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as T;
  } catch {
    process.stderr.write(`  ${argv.slice(1, 3).join(" ")} failed: ${(r.stdout + r.stderr).slice(-300)}\n`);
    return undefined;
  }
}

/**
 * CPU ms per connection between two threadCpu() readings, by kind: the JS thread (named after the
 * process), JSC's JIT compiler threads, its GC helpers, and the rest. The JIT share is what a gateway
 * that has not yet run many connections pays on top of a warm one.
 */
function describeThreads(a: Map<string, number>, b: Map<string, number>, n: number): string {
  const sum: Record<string, number> = {};
  for (const [name, v] of b) {
    const kind = /JIT|JSCWarmUp/.test(name)
      ? "jit"
      : /Heap|GC|Collector|Marker/i.test(name)
        ? "gc"
        : name === "bun" || name === "bun.exe" || name === "wireguard-go"
          ? "main"
          : "other";
    sum[kind] = (sum[kind] ?? 0) + v - (a.get(name) ?? 0);
  }
  return Object.entries(sum)
    .map(([k, v]) => `${k} ${((v * 1000) / Math.max(1, n)).toFixed(2)}`)
    .join(", ");
}

/** One run of `connsN` fresh connections in a row on the direct path of `path`. */
async function connsRun(
  path: PathName,
  w: World,
  probe: Probe,
  run: number,
  count = connsN,
): Promise<ConnsResult | undefined> {
  process.stderr.write(
    `${path}: ${count} connections in a row (${run === 0 ? "warm-up, not counted" : `run ${run} of ${runs}`})...\n`,
  );
  const t0 = await cpuSeconds(probe.pid);
  const th0 = await threadCpu(probe.pid);
  const r = await runJson<ConnsResult>(
    w.t.peer,
    ["python3", FLOWS_PY, "conns", ADDR.inet4, String(PORTS.http), String(count)],
    count * 1000 + 30_000,
  );
  if (!r) return undefined;
  r.cpuS = (await cpuSeconds(probe.pid)) - t0;
  r.threads = describeThreads(th0, await threadCpu(probe.pid), r.ok);
  process.stderr.write(`  ${r.perSecond.toFixed(0)}/s; CPU-ms per connection: ${r.threads}\n`);
  return r;
}

/** The median run by connections per second, with every run's figure. */
function medianConns(all: ConnsResult[]): ConnsResult | undefined {
  const sorted = [...all].sort((x, y) => x.perSecond - y.perSecond);
  const m = sorted[(sorted.length - 1) >> 1];
  if (m) m.runs = all.map((r) => r.perSecond);
  return m;
}

/** Fairness on the direct path of `path` (connections per second are measured in pairs, later). */
async function measureFlows(path: PathName, w: World, probe: Probe): Promise<void> {
  const e: NonNullable<(typeof extra)[PathName]> = {};
  extra[path] = e;
  if (fairSeconds > 0) {
    process.stderr.write(`${path}: fairness, ${fairFlows} echo flows for ${fairSeconds} s...\n`);
    const t0 = await cpuSeconds(probe.pid);
    e.fairness = await runFairness({
      clientNs: w.t.peer,
      serverNs: w.t.inet,
      host: ADDR.inet4,
      port: ECHO_PORT,
      flows: fairFlows,
      seconds: fairSeconds,
      watch: { peer: w.t.peer, gw: w.t.gw, inet: w.t.inet },
      gatewayCounters: probe.statsNs ? () => gatewayCounters(probe.statsNs!, STATS_PORT) : undefined,
    });
    e.cpuS = (await cpuSeconds(probe.pid)) - t0;
    process.stderr.write(`  ${describeFairness(e.fairness)}\n`);
  }
}

/**
 * Wait (at most 15 s) until the iperf3 server in inet holds no connection: the last run's close may
 * still be on its way through the tunnel (after +50 ms, or a lost FIN), and the client's
 * wireguard-go is about to stop; a flow left open there keeps the server busy for the next path.
 */
async function waitIperfIdle(w: World): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const r = await exec(w.t.inet, ["ss", "-Htn", "state", "established", `( sport = :${PORTS.iperf} )`]);
    if (r.stdout.trim() === "") return;
    await Bun.sleep(100);
  }
  process.stderr.write(`  the iperf3 server still has a connection open after 15 s\n`);
}

/** Point the running wireguard-go peer at `endpoint` (the gateway roams on the next datagram). */
async function setEndpoint(peer: WireGuardGo, endpoint: string): Promise<void> {
  const c = peer.config;
  await execCheck(c.ns, ["wg", "set", c.ifname, "peer", c.peerPublicKey, "endpoint", endpoint]);
  c.endpoint = endpoint;
}

/**
 * Run every scenario on one path. `ping` proves the tunnel after each endpoint change (the first
 * datagrams through a new relay make the gateway roam to it).
 */
/** How to read the costs of the path's gateway process. */
interface Probe {
  pid: number;
  /** The wgslirpy gateway's stats endpoint (none for the reference). */
  statsNs?: string;
}

function diffCounters(a: GatewayCounters | null, b: GatewayCounters | null): GatewayCounters | null {
  return a && b ? counterDelta(a, b) : null;
}

function addSyscalls(a: SyscallCounts | null, b: SyscallCounts | null): SyscallCounts | null {
  if (!b) return a;
  const out: SyscallCounts = { ...(a ?? {}) };
  for (const [k, v] of Object.entries(b)) out[k as keyof SyscallCounts] = (out[k as keyof SyscallCounts] ?? 0) + v;
  return out;
}

/** `runs` iperf runs of one direction; the median by Mbit/s, with the costs of all runs. */
async function measureDirection(ns: string, host: string, reverse: boolean, probe: Probe): Promise<Measured> {
  const results: IperfResult[] = [];
  let bytes = 0;
  let cpuS = 0;
  let counters: GatewayCounters | null = null;
  let syscalls: SyscallCounts | null = null;
  for (let i = 0; i < runs; i++) {
    const c0 = probe.statsNs ? await gatewayCounters(probe.statsNs, STATS_PORT) : null;
    const sc = withSyscalls ? countSyscalls(probe.pid) : null;
    const t0 = await cpuSeconds(probe.pid);
    const r = await iperf(ns, host, PORTS.iperf, { seconds, reverse, streams });
    const t1 = await cpuSeconds(probe.pid);
    syscalls = addSyscalls(syscalls, (await sc?.stop()) ?? null);
    const c1 = probe.statsNs ? await gatewayCounters(probe.statsNs, STATS_PORT) : null;
    const d = diffCounters(c0, c1);
    if (d) {
      counters = counters ? counterSum(counters, d) : d;
      process.stderr.write(
        `  ${r.mbps.toFixed(1)} Mbit/s; gateway TCP: ${d.segmentsIn} in, ${d.segmentsOut} out, ${d.retransmits} retransmits, ` +
          `${d.fastRecoveries} recoveries, ${d.rtoExpirations} RTOs, ${d.tlpProbes} loss probes, ` +
          `${d.reorderTimeouts} RACK timeouts, ${d.spuriousRetransmits} D-SACKed` +
          `${r.busyRetries ? `; server busy ${r.busyRetries}x before it` : ""}${r.error ? ` ERROR ${r.error.slice(0, 80)}` : ""}\n`,
      );
    }
    results.push(r);
    bytes += r.bytes;
    cpuS += t1 - t0;
  }
  results.sort((a, b) => a.mbps - b.mbps);
  return { result: results[Math.floor(results.length / 2)]!, bytes, cpuS, counters, syscalls };
}

async function measurePath(
  path: PathName,
  w: World,
  peer: WireGuardGo,
  gwPort: number,
  ping: () => Promise<boolean>,
  probe: Probe,
): Promise<void> {
  const direct = `${ADDR.gwOuter4}:${gwPort}`;
  for (const s of SCENARIOS) {
    let relay: Relay | null = null;
    try {
      if (s.relay) {
        const listen = `${ADDR.gwOuter4}:${RELAY_PORT[path]}`;
        relay = await startRelay(w.t.gw, listen, direct, s.relay);
        await setEndpoint(peer, listen);
      } else if (peer.config.endpoint !== direct) await setEndpoint(peer, direct);
      if (!(await ping())) throw new Error(`${path}/${s.name}: no ping through the tunnel`);
      process.stderr.write(`${path} / ${s.name}${s.relay ? ` [${describeImpairment(s.relay)}]` : ""}: download...\n`);
      const download = await measureDirection(w.t.peer, s.host, true, probe);
      process.stderr.write(`${path} / ${s.name}: upload...\n`);
      const upload = await measureDirection(w.t.peer, s.host, false, probe);
      const row = results.get(s.name) ?? {};
      row[path] = { download, upload };
      results.set(s.name, row);
    } finally {
      const stats = await relay?.stop();
      if (stats) {
        const d = (x: { dropped: number; received: number }) => `${x.dropped}/${x.received}`;
        process.stderr.write(`  relay dropped up ${d(stats.toUpstream)}, down ${d(stats.toPeer)}\n`);
      }
    }
  }
  if (peer.config.endpoint !== direct) await setEndpoint(peer, direct);
  await measureFlows(path, w, probe);
}

const fmt = (r: IperfResult | undefined) =>
  !r ? "-" : r.error ? `err: ${r.error.replace(/\s+/g, " ").slice(0, 12)}` : r.mbps.toFixed(1);
const ratio = (a: IperfResult | undefined, b: IperfResult | undefined) =>
  !a || !b || a.error || b.error || b.mbps === 0 ? "-" : `${(a.mbps / b.mbps).toFixed(2)}x`;
const GIB = 1024 ** 3;
const perGiB = (m: Measured | undefined) =>
  !m || m.bytes <= 0 || !Number.isFinite(m.cpuS) ? "-" : (m.cpuS / (m.bytes / GIB)).toFixed(1);
const per = (n: number | undefined, d: number | undefined) =>
  n === undefined || d === undefined || !Number.isFinite(n) || !Number.isFinite(d) || d <= 0 ? "-" : (n / d).toFixed(2);
/** Host TCP send syscalls: every write-like syscall but the UDP batch (sendmmsg). */
const hostSends = (s: SyscallCounts | null | undefined) =>
  s ? (s.sendto ?? 0) + (s.write ?? 0) + (s.writev ?? 0) + (s.sendmsg ?? 0) : undefined;

async function main(): Promise<number> {
  const skip = interopSkipReason(["wireguard-go", "wg", "ip", "ss", "iperf3", "python3"]);
  if (skip) {
    console.log(`SKIP bench: ${skip}`);
    return 0;
  }
  let world: World | null = null;
  let ref: ReferencePair | null = null;
  let ourProbe: Probe | null = null;
  const ping = (w: World) => async () => {
    for (let i = 0; i < 5; i++) if ((await w.ping(ADDR.tunGw4, 2)) > 0) return true;
    return false;
  };
  /**
   * New connections per second, both paths in turn, `runs` pairs: the machine's drift between two
   * runs minutes apart weighs on both alike, and each pair gives a ratio. The order alternates per
   * pair. Both gateways are the ones their rows warmed and keep running; only the client's
   * wireguard-go is swapped (the two peers' routes in the peer namespace would clash).
   */
  const measureConnsPairs = async (w: World, ours: Probe | null): Promise<void> => {
    const a: ConnsResult[] = [];
    const b: ConnsResult[] = [];
    const ratios: number[] = [];
    const runOn = async (path: PathName, peer: WireGuardGo, probe: Probe, i: number) => {
      await peer.start();
      try {
        if (!(await ping(w)())) throw new Error(`${path}: no ping through the tunnel before the connections`);
        return await connsRun(path, w, probe, i, i === 0 ? connsWarmup : connsN);
      } finally {
        await peer.stop();
      }
    };
    const oursRun = (i: number) => (ours ? runOn("wgslirpy", w.peer, ours, i) : Promise.resolve(undefined));
    const refRun = (i: number) =>
      ref ? runOn("reference", ref.peer, { pid: ref.gw.pid ?? -1 }, i) : Promise.resolve(undefined);
    if (connsWarmup > 0) {
      const x = await oursRun(0);
      const y = await refRun(0);
      if (x) connsWarmups.wgslirpy = x;
      if (y) connsWarmups.reference = y;
    }
    for (let i = 1; i <= runs; i++) {
      let x: ConnsResult | undefined;
      let y: ConnsResult | undefined;
      if (i % 2 === 1) {
        x = await oursRun(i);
        y = await refRun(i);
      } else {
        y = await refRun(i);
        x = await oursRun(i);
      }
      if (x) a.push(x);
      if (y) b.push(y);
      if (x && y && y.perSecond > 0) ratios.push(x.perSecond / y.perSecond);
    }
    (extra.wgslirpy ??= {}).conns = medianConns(a);
    (extra.reference ??= {}).conns = medianConns(b);
    connsRatios = ratios;
  };
  const stop = async () => {
    await ref?.stop().catch(() => {});
    await world?.destroy().catch(() => {});
    await killAll();
  };
  process.on("SIGINT", () => {
    void stop().then(() => process.exit(130));
  });
  try {
    world = await createWorld(PREFIX, IFP, { files: {}, iperf: true });
    const w = world;
    if (only !== "reference") {
      // --stats-listen only adds a loopback HTTP endpoint for the counters; the data path keeps defaults.
      const extraArgs = ["--stats-listen", `127.0.0.1:${STATS_PORT}`];
      if (tcpBuffer) extraArgs.push("--tcp-buffer-size", tcpBuffer);
      const command = cpuProfDir
        ? [process.execPath, "--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`, "src/cli.ts"]
        : undefined;
      const gw = await w.startGateway({ logLevel: "warn", extraArgs, command });
      await w.startPeer();
      ourProbe = { pid: gw.pid, statsNs: w.t.gw };
      await measurePath("wgslirpy", w, w.peer, GW_PORT, ping(w), ourProbe);
      const rss = await w.gateway!.rssKiB();
      if (rss) process.stderr.write(`wgslirpy RSS after the runs: ${Math.round(rss / 1024)} MiB\n`);
      // Stopped, not disposed: the connection pairs start it again.
      await waitIperfIdle(w);
      await w.peer.stop();
      // The gateway keeps running (as warm as the rows left it) for the connection pairs below.
    }
    if (only !== "wgslirpy") {
      ref = await startReferencePair(w.t, IFP, REF_GW_PORT);
      const pair = ref;
      await measurePath("reference", w, pair.peer, REF_GW_PORT, ping(w), { pid: pair.gw.pid ?? -1 });
      await waitIperfIdle(w);
      await pair.peer.stop();
    }
    if (connsN > 0) await measureConnsPairs(w, ourProbe);
    await w.gateway?.stop();
    if (fairControl && fairSeconds > 0) {
      process.stderr.write(`control: fairness over loopback in one namespace, no tunnel...\n`);
      fairLoopback = await runFairness({
        clientNs: w.t.inet,
        serverNs: w.t.inet,
        host: "127.0.0.1",
        port: ECHO_PORT,
        flows: fairFlows,
        seconds: fairSeconds,
        watch: { inet: w.t.inet },
      });
    }
  } finally {
    await stop();
  }

  const head =
    `iperf3 -t ${seconds}${streams > 1 ? ` -P ${streams}` : ""}${runs > 1 ? `, median of ${runs}` : ""}, Mbit/s (receiver side)` +
    `; wgslirpy --tcp-buffer-size ${tcpBuffer || "default"}`;
  console.log(`\n${head}; ref = wireguard-go + kernel routing; ratio = wgslirpy / ref`);
  console.log(
    "CPU-s/GiB = user+sys of the gateway process (ref: gw-side wireguard-go) per GiB moved; seg out/in, timers/seg: the " +
      "gateway's TCP segments out per segment in and setTimeout calls per segment in+out" +
      (withSyscalls ? "; sends/seg: host TCP send syscalls per segment in+out" : ""),
  );
  const cols = ["wgslirpy", "ref", "ratio", "CPU-s/GiB", "ref CPU-s/GiB", "seg out/in", "timers/seg"];
  if (withSyscalls) cols.push("sends/seg");
  console.log(`${"scenario".padEnd(28)}${cols.map((c) => c.padStart(14)).join("")}`);
  for (const s of SCENARIOS) {
    const r = results.get(s.name) ?? {};
    for (const dir of ["download", "upload"] as const) {
      const a = r.wgslirpy?.[dir];
      const b = r.reference?.[dir];
      const c = a?.counters;
      const segs = c ? c.segmentsIn + c.segmentsOut : undefined;
      const cells = [
        fmt(a?.result),
        fmt(b?.result),
        ratio(a?.result, b?.result),
        perGiB(a),
        perGiB(b),
        per(c?.segmentsOut, c?.segmentsIn),
        per(c?.timersScheduled, segs),
      ];
      if (withSyscalls) cells.push(per(hostSends(a?.syscalls), segs));
      console.log(
        `${`${s.name} ${dir === "download" ? "down" : "up"}`.padEnd(28)}${cells.map((x) => x.padStart(14)).join("")}`,
      );
    }
  }
  const a = extra.wgslirpy;
  const b = extra.reference;
  if (connsN > 0) {
    const c = (x: ConnsResult | undefined) =>
      x
        ? `${x.perSecond.toFixed(0)}/s${x.errors ? ` (${x.errors} failed)` : ""}` +
          (x.cpuS !== undefined && x.ok > 0
            ? ` (${((x.cpuS * 1000) / x.ok).toFixed(2)} CPU-ms/conn${x.threads ? `: ${x.threads}` : ""})`
            : "") +
          (x.runs && x.runs.length > 1 ? ` [runs: ${x.runs.map((v) => v.toFixed(0)).join(", ")}]` : "")
        : "-";
    const sortedRatios = [...connsRatios].sort((x, y) => x - y);
    const mid = sortedRatios[(sortedRatios.length - 1) >> 1];
    const r =
      mid === undefined
        ? "-"
        : `${mid.toFixed(2)}x (median of the pairs' ratios: ${connsRatios.map((v) => v.toFixed(2)).join(", ")})`;
    console.log(
      `new TCP connections (${connsN} HTTP GETs in a row; ${runs} runs per path, in pairs, alternating which goes first; median): ` +
        `wgslirpy ${c(a?.conns)}, ref ${c(b?.conns)}, ratio ${r}`,
    );
    const wa = connsWarmups.wgslirpy;
    const wb = connsWarmups.reference;
    if (wa || wb)
      console.log(
        `  warm-up before the pairs (${connsWarmup} connections per path, not counted): wgslirpy ${c(wa)}, ref ${c(wb)}` +
          (wa && wb && wb.perSecond > 0 ? `, ratio ${(wa.perSecond / wb.perSecond).toFixed(2)}x` : ""),
      );
  }
  if (fairSeconds > 0) {
    console.log(`fairness (${fairFlows} echo flows, ${fairSeconds} s):`);
    console.log(`  wgslirpy: ${describeFairness(a?.fairness)}`);
    console.log(`  ref: ${describeFairness(b?.fairness)}`);
    if (fairControl) console.log(`  loopback control: ${describeFairness(fairLoopback)}`);
    if (fairJson)
      await Bun.write(fairJson, JSON.stringify({ wgslirpy: a?.fairness, ref: b?.fairness, loopback: fairLoopback }));
  }
  if (withImpair)
    console.log(
      "relay rows: bun harness/impair.ts in the gw namespace between peer and WireGuard port (both paths; seed 7)",
    );
  return 0;
}

process.exit(await main());
