// Where a new TCP connection's time goes: `bun bench/conns-trace.ts [--conns N] [--only wgslirpy|reference]`.
// Runs N sequential HTTP/1.0 GETs on fresh connections (bench/py/flows.py conns) from the peer
// namespace to the inet HTTP server, once through wgslirpy and once through the kernel-routed
// wireguard-go reference, with tcpdump on the peer's tunnel interface (what the client sees) and on
// the inet host's veth (what the server sees). Prints, per path, the median time of each step of a
// connection, measured from the client's SYN (both captures share the machine's clock):
//   gw gets SYN   the first tunnel datagram reaches the gateway's outer interface after it (a third capture,
//                 on the gateway's outer veth; "gw SYN-ACK", "gw gets req", "gw response" likewise)
//   host SYN      the server sees the SYN (wgslirpy: its Bun.connect; reference: the forwarded SYN)
//   host SYN-ACK  the server answers
//   SYN-ACK       the client gets its SYN-ACK
//   request       the client sends its request
//   host request  the server gets it
//   host resp     the server's first response byte leaves
//   host FIN      the server's FIN leaves
//   response      the client gets the first response byte
//   FIN           the client gets the FIN
//   next SYN      the client's next connection starts (the period of the loop)
//
// A/B mode, `--rounds R [--baseline DIR]`: no captures; R rounds of N connections each through
// wgslirpy (this tree), wgslirpy from DIR (a checkout of the commit to compare with) and the
// reference, in turn, each round in the same world; prints per round conns/s and the gateway's CPU-ms
// per connection, and the medians, so a change is judged side by side on a noisy machine.
// Diagnostics: --warm N runs N connections first (a warm gateway: JIT compiled, TIME-WAITs held),
// --threads prints CPU per thread of the measured process (JIT workers, GC helpers, the JS thread),
// --cpu-prof DIR runs this tree's gateway under `bun --cpu-prof` (trace mode; the profile lands in DIR
// when it stops: `bun bench/profile.ts DIR/*.cpuprofile`), --perf-trace FILE records the gateway's syscalls with `perf trace` (with
// --perf-trace-summary: only their counts and times per syscall), --dump-slow dumps the
// connection whose host SYN came latest; the step table shows p90/p99/max next to the median.
// Sends only inside its own namespaces; needs root, wireguard-go, tcpdump, tshark, python3.
import { resolve } from "node:path";
import { createWorld, GW_PORT, type World } from "../harness/fixture.ts";
import { exec, interopSkipReason, killAll, run, sleep, spawnBg, tempDir } from "../harness/netns.ts";
import { type ReferencePair, startReferencePair } from "../harness/reference.ts";
import { PORTS } from "../harness/servers.ts";
import { ADDR } from "../harness/topology.ts";
import { cpuSeconds, machineCpu, threadCpu } from "./measure.ts";

const PREFIX = "wgsictr-";
const IFP = "wgsictr";
const REF_GW_PORT = 51900;
const FLOWS_PY = resolve(import.meta.dir, "py/flows.py");

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}
const n = Math.min(2000, Math.max(1, Number(arg("conns", "200"))));
const only = arg("only", "");
const rounds = Math.min(20, Math.max(0, Number(arg("rounds", "0"))));
const baseline = arg("baseline", "");
const gwExtra = arg("gateway-args", "")
  .split(" ")
  .filter((s) => s !== "");

interface Pkt {
  t: number;
  src: number;
  dst: number;
  flags: number;
  len: number;
}

const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;

async function capture(ns: string, iface: string, file: string, filter = `tcp port ${PORTS.http}`) {
  const p = spawnBg(ns, "tcpdump", [
    "tcpdump",
    "--immediate-mode",
    "-i",
    iface,
    "-n",
    "-s",
    "128",
    "-w",
    file,
    "-U",
    filter,
  ]);
  await p.waitFor(/listening on/, 10_000);
  return p;
}

async function packets(file: string): Promise<Pkt[]> {
  const r = await run(
    ["tshark", "-r", file, "-T", "fields", "-e", "frame.time_epoch", "-e", "tcp.srcport", "-e", "tcp.dstport"].concat([
      "-e",
      "tcp.flags",
      "-e",
      "tcp.len",
      "-e",
      "udp.dstport",
    ]),
    { timeoutMs: 60_000 },
  );
  return r.stdout
    .trim()
    .split("\n")
    .filter((l) => l)
    .map((l) => {
      const [t, s, d, f, len, udst] = l.split("\t");
      return {
        t: Number(t) * 1000,
        src: Number(s),
        dst: Number(d || udst),
        flags: Number(f),
        len: Number(len),
      };
    });
}

/** Per connection (in order of SYN), the time of each event; `server` is the port-8080 side. */
function connections(pkts: Pkt[]) {
  const byPort = new Map<number, Record<string, number>>();
  const order: number[] = [];
  for (const p of pkts) {
    const fromClient = p.dst === PORTS.http;
    const port = fromClient ? p.src : p.dst;
    let c = byPort.get(port);
    if (!c) {
      if (!(fromClient && p.flags & SYN)) continue;
      c = {};
      byPort.set(port, c);
      order.push(port);
    }
    const set = (k: string) => {
      if (c[k] === undefined) c[k] = p.t;
    };
    if (fromClient) {
      if (p.flags & SYN) set("syn");
      if (p.len > 0) set("req");
      if (p.flags & FIN) set("cfin");
    } else {
      if ((p.flags & (SYN | ACK)) === (SYN | ACK)) set("synack");
      if (p.len > 0) set("resp");
      if (p.flags & FIN) set("sfin");
    }
  }
  return order.map((p) => byPort.get(p)!);
}

const flag = (name: string) => process.argv.includes(`--${name}`);

/** Every packet of one connection in the middle of the run, both captures merged by time. */
function dumpOne(cp: Pkt[], hp: Pkt[], client: Record<string, number>[], host: Record<string, number>[]): void {
  let i = Math.floor(Math.min(client.length, host.length) / 2);
  if (flag("dump-slow")) {
    let worst = -1;
    for (let k = 0; k < Math.min(client.length, host.length) - 1; k++) {
      const d = host[k]!.syn! - client[k]!.syn!;
      if (d > worst) {
        worst = d;
        i = k;
      }
    }
  }
  const t0 = client[i]!.syn!;
  const end = client[i + 1]?.syn ?? t0 + 10;
  const f = (p: Pkt) =>
    `${p.flags & SYN ? "S" : ""}${p.flags & FIN ? "F" : ""}${p.flags & 0x04 ? "R" : ""}${p.flags & 0x08 ? "P" : ""}${p.flags & ACK ? "." : ""}`;
  const all = [...cp.map((p) => ({ ...p, where: "peer" })), ...hp.map((p) => ({ ...p, where: "inet" }))].filter(
    (p) => p.t >= t0 - 0.01 && p.t <= end + 0.01,
  );
  all.sort((a, b) => a.t - b.t);
  console.log(`  connection ${i}, t0 = ${(t0 / 1000).toFixed(6)} s`);
  for (const p of all)
    console.log(
      `  ${(p.t - t0).toFixed(3).padStart(8)} ${p.where} ${p.dst === PORTS.http ? "->srv" : "<-srv"} ${f(p).padEnd(4)} len ${p.len}`,
    );
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : Number.NaN;
};

async function tracePath(path: string, w: World, peerIf: string, pid?: number): Promise<void> {
  const dir = tempDir("wgs-ctr");
  const st =
    pid && flag("strace")
      ? spawnBg(null, "strace", [
          "strace",
          "-f",
          flag("strace-count") ? "-c" : "-ttt",
          "-o",
          `${dir}/strace.txt`,
          "-p",
          String(pid),
        ])
      : null;
  const ptraceOut = arg("perf-trace", "");
  const ptrace =
    pid && ptraceOut
      ? spawnBg(null, "perf", [
          "perf",
          "trace",
          ...(flag("perf-trace-summary") ? ["-s"] : []),
          "-o",
          ptraceOut,
          "-p",
          String(pid),
        ])
      : null;
  const perfOut = arg("perf", "");
  const perf =
    pid && perfOut ? spawnBg(null, "perf", ["perf", "record", "-g", "-o", perfOut, "-p", String(pid)]) : null;
  if (st || perf || ptrace) await sleep(1000);
  const warmN = Number(arg("warm", "0"));
  if (warmN > 0)
    await exec(w.t.peer, ["python3", FLOWS_PY, "conns", ADDR.inet4, String(PORTS.http), String(warmN)], {
      timeoutMs: warmN * 1000 + 30_000,
    });
  const peerCap = await capture(w.t.peer, peerIf, `${dir}/peer.pcap`);
  const inetCap = await capture(w.t.inet, w.t.ifs.inetToGw, `${dir}/inet.pcap`);
  // The gateway's outer side: when the tunnel datagrams reach it and leave it (splits the gateway's
  // own time from the peer's wireguard-go and the client).
  const gwPort = pid ? GW_PORT : REF_GW_PORT;
  const outerCap = await capture(w.t.gw, w.t.ifs.gwToPeer, `${dir}/outer.pcap`, `udp port ${gwPort}`);
  const r = await exec(w.t.peer, ["python3", FLOWS_PY, "conns", ADDR.inet4, String(PORTS.http), String(n)], {
    timeoutMs: n * 1000 + 30_000,
  });
  await sleep(300);
  await peerCap.stop(2000);
  await inetCap.stop(2000);
  await outerCap.stop(2000);
  await st?.stop(2000);
  for (const p of [perf, ptrace]) {
    if (!p) continue;
    process.kill(p.pid, "SIGINT");
    await p.exited;
  }
  if (st) console.log(`strace: ${dir}/strace.txt`);
  const cp = await packets(`${dir}/peer.pcap`);
  const hp = await packets(`${dir}/inet.pcap`);
  const client = connections(cp);
  const host = connections(hp);
  // Outer datagrams: to the gateway (dst = its port) or from it, in time order.
  const op = (await packets(`${dir}/outer.pcap`)).map((p) => ({ t: p.t, toGw: p.dst === gwPort }));
  const firstAfter = (t: number | undefined, toGw: boolean): number | undefined => {
    if (t === undefined) return undefined;
    let lo = 0;
    let hi = op.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (op[mid]!.t < t) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < op.length && op[k]!.t < t + 20; k++) if (op[k]!.toGw === toGw) return op[k]!.t;
    return undefined;
  };
  if (flag("dump") && client.length > 2 && host.length > 2) dumpOne(cp, hp, client, host);
  /** Each connection's steps by name, in ms from its client SYN (a step not seen is absent). */
  const perConn: Record<string, number>[] = [];
  for (let i = 0; i < client.length && i < host.length; i++) {
    const c = client[i]!;
    const h = host[i]!;
    const t0 = c.syn!;
    const rel = (v: number | undefined) => (v === undefined ? undefined : v - t0);
    const one: Record<string, number> = {};
    perConn.push(one);
    const add = (k: string, v: number | undefined) => {
      if (v !== undefined) one[k] = v;
    };
    add("gw gets SYN", rel(firstAfter(t0, true)));
    add("host SYN", h.syn! - t0);
    add("host SYN-ACK", h.synack! - t0);
    add("gw SYN-ACK", rel(firstAfter(h.synack, false)));
    add("SYN-ACK", c.synack! - t0);
    add("request", c.req! - t0);
    add("gw gets req", rel(firstAfter(c.req, true)));
    add("host request", h.req! - t0);
    add("host resp", h.resp! - t0);
    add("host FIN", h.sfin! - t0);
    add("gw response", rel(firstAfter(h.resp, false)));
    add("response", c.resp! - t0);
    add("FIN", c.sfin! - t0);
    add("client FIN", c.cfin! - t0);
    const next = client[i + 1];
    if (next) add("next SYN", next.syn! - t0);
  }
  // Per connection, each step after the previous one in this order (the steps of the rows above that
  // follow each other in time on the critical path).
  const chain = [
    "gw gets SYN",
    "host SYN",
    "host SYN-ACK",
    "gw SYN-ACK",
    "SYN-ACK",
    "request",
    "gw gets req",
    "host request",
    "host resp",
    "gw response",
    "response",
    "FIN",
    "client FIN",
    "next SYN",
  ];
  const rows: Record<string, number[]> = {};
  for (const c of perConn) for (const [k, v] of Object.entries(c)) (rows[k] ??= []).push(v);
  const deltas: Record<string, number[]> = {};
  for (const c of perConn) {
    if (!chain.every((k) => c[k] !== undefined)) continue;
    let prev = 0;
    let prevName = "client SYN";
    for (const k of chain) {
      const v = c[k]!;
      (deltas[`${prevName} -> ${k}`] ??= []).push(v - prev);
      prev = v;
      prevName = k;
    }
  }
  console.log(`\n${path}: ${r.stdout.trim()}  (${client.length} client / ${host.length} host connections seen)`);
  const pct = (xs: number[], q: number) => {
    const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * q))]! : Number.NaN;
  };
  for (const [k, v] of Object.entries(rows))
    console.log(
      `  ${k.padEnd(14)} ${median(v).toFixed(3).padStart(8)} ms   mean ${mean(v).toFixed(3).padStart(8)}   p90 ${pct(v, 0.9).toFixed(3).padStart(8)}   p99 ${pct(v, 0.99).toFixed(3).padStart(8)}   max ${pct(v, 1).toFixed(3).padStart(8)}`,
    );
  // Where the mean goes: each step's own time (from the step before it, per connection), so a tail
  // (a pause in one step) shows as that step's mean well above its median.
  console.log("  each step's own time (ms; a mean far above the median is a tail):");
  for (const [k, v] of Object.entries(deltas)) {
    console.log(
      `    ${k.padEnd(30)} median ${median(v).toFixed(3).padStart(7)}   mean ${mean(v).toFixed(3).padStart(7)}   over 0.5 ms ${v.filter((x) => x > 0.5).length}`,
    );
  }
}

interface Rate {
  perSecond: number;
  cpuMsPerConn: number;
  /** Every CPU of the machine: busy CPU-ms per connection, and the share of the CPUs' time that was busy. */
  machineMsPerConn: number;
  machineBusy: number;
  /** The share of the CPUs' time the hypervisor gave to others (steal). */
  machineSteal: number;
}

async function rate(w: World, pid: number): Promise<Rate> {
  const warm = Number(arg("warm", "0"));
  if (warm > 0)
    await exec(w.t.peer, ["python3", FLOWS_PY, "conns", ADDR.inet4, String(PORTS.http), String(warm)], {
      timeoutMs: warm * 1000 + 30_000,
    });
  const t0 = flag("threads") ? await threadCpu(pid) : null;
  const c0 = await cpuSeconds(pid);
  const m0 = await machineCpu();
  const r = await exec(w.t.peer, ["python3", FLOWS_PY, "conns", ADDR.inet4, String(PORTS.http), String(n)], {
    timeoutMs: n * 1000 + 30_000,
  });
  const c1 = await cpuSeconds(pid);
  const m1 = await machineCpu();
  if (t0) {
    const t1 = await threadCpu(pid);
    const parts = [...t1].map(([k, v]) => `${k} ${((v - (t0.get(k) ?? 0)) * 1000).toFixed(0)} ms`);
    console.log(`  threads: ${parts.join(", ")}`);
  }
  const j = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { ok: number; perSecond: number };
  const ok = Math.max(1, j.ok);
  return {
    perSecond: j.perSecond,
    cpuMsPerConn: ((c1 - c0) * 1000) / ok,
    machineMsPerConn: ((m1.busy - m0.busy) * 1000) / ok,
    machineBusy: (m1.busy - m0.busy) / Math.max(1e-9, m1.total - m0.total),
    machineSteal: (m1.steal - m0.steal) / Math.max(1e-9, m1.total - m0.total),
  };
}

const describeMachine = (r: Rate) =>
  `(machine ${r.machineMsPerConn.toFixed(2)} CPU-ms, ${(r.machineBusy * 100).toFixed(0)}% busy, ${(r.machineSteal * 100).toFixed(0)}% steal)`;

/** R rounds: this tree, the baseline tree, the reference; one after the other in the same world. */
async function abRounds(w: World): Promise<void> {
  const paths: { name: string; command?: string[] }[] = [{ name: "wgslirpy" }];
  if (baseline) paths.push({ name: "baseline", command: [process.execPath, resolve(baseline, "src/cli.ts")] });
  const all: Record<string, Rate[]> = {};
  for (let i = 0; i < rounds; i++) {
    const line: string[] = [];
    for (const p of paths) {
      const gw = await w.startGateway({ logLevel: "warn", extraArgs: gwExtra, command: p.command });
      await w.startPeer();
      await w.ping(ADDR.tunGw4, 2);
      const r = await rate(w, gw.pid);
      (all[p.name] ??= []).push(r);
      line.push(`${p.name} ${r.perSecond.toFixed(0)}/s ${r.cpuMsPerConn.toFixed(2)} CPU-ms ${describeMachine(r)}`);
      await w.peer.dispose();
      await w.gateway!.stop();
    }
    // startReferencePair adds inet's routes back to the tunnel: drop the previous round's first.
    await exec(w.t.inet, ["ip", "-4", "route", "del", "192.168.76.0/24"]);
    await exec(w.t.inet, ["ip", "-6", "route", "del", "fc00::/64"]);
    const ref = await startReferencePair(w.t, IFP, REF_GW_PORT);
    try {
      await w.ping(ADDR.tunGw4, 2);
      const r = await rate(w, ref.gw.pid ?? -1);
      (all.reference ??= []).push(r);
      line.push(`reference ${r.perSecond.toFixed(0)}/s ${r.cpuMsPerConn.toFixed(2)} CPU-ms ${describeMachine(r)}`);
    } finally {
      await ref.stop();
    }
    const ratios = paths.map(
      (p) => `${p.name}/ref ${(all[p.name]!.at(-1)!.perSecond / all.reference!.at(-1)!.perSecond).toFixed(2)}`,
    );
    console.log(`round ${i + 1}: ${line.join(", ")}; ${ratios.join(", ")}`);
  }
  const med = (k: string, f: (r: Rate) => number) => median((all[k] ?? []).map(f));
  for (const k of Object.keys(all)) {
    const ratio = median((all[k] ?? []).map((r, i) => r.perSecond / all.reference![i]!.perSecond));
    console.log(
      `median ${k}: ${med(k, (r) => r.perSecond).toFixed(0)}/s, ${med(k, (r) => r.cpuMsPerConn).toFixed(2)} CPU-ms/conn, ratio to ref ${ratio.toFixed(2)}`,
    );
  }
}

/** The gateway's JSC GC log lines (BUN_JSC_logGC=1 in the environment). */
function gcLines(w: World): string[] {
  const g = w.gateway as { log?: () => string } | null;
  return (g?.log?.() ?? "")
    .split("\n")
    .filter((l) => l.includes(" => EdenCollection") || l.includes(" => FullCollection"));
}

async function main(): Promise<number> {
  const skip = interopSkipReason(["wireguard-go", "wg", "ip", "tcpdump", "tshark", "python3"]);
  if (skip) {
    console.log(`SKIP: ${skip}`);
    return 0;
  }
  let world: World | null = null;
  let ref: ReferencePair | null = null;
  try {
    world = await createWorld(PREFIX, IFP, { files: {} });
    const w = world;
    if (rounds > 0) {
      await abRounds(w);
      return 0;
    }
    if (only !== "reference") {
      const prof = arg("cpu-prof", "");
      const command = prof
        ? [process.execPath, "--cpu-prof", `--cpu-prof-dir=${prof}`, resolve(import.meta.dir, "../src/cli.ts")]
        : undefined;
      await w.startGateway({ logLevel: "warn", extraArgs: gwExtra, command });
      await w.startPeer();
      await w.ping(ADDR.tunGw4, 2);
      const gcBefore = gcLines(w);
      await tracePath("wgslirpy", w, `${IFP}p`, w.gateway!.pid);
      if (process.env.BUN_JSC_logGC) {
        const gcs = gcLines(w).slice(gcBefore.length);
        const pause = gcs.reduce((t, l) => t + Number(l.match(/p=([\d.]+)ms/)?.[1] ?? 0), 0);
        console.log(
          `gateway GCs during the run: ${gcs.length} (${gcs.filter((l) => l.includes("FullCollection")).length} full), pauses ${pause.toFixed(1)} ms`,
        );
      }
      await w.peer.dispose();
      await w.gateway!.stop();
    }
    if (only !== "wgslirpy") {
      ref = await startReferencePair(w.t, IFP, REF_GW_PORT);
      await w.ping(ADDR.tunGw4, 2);
      await tracePath("reference", w, `${IFP}rp`);
    }
  } finally {
    await ref?.stop().catch(() => {});
    await world?.destroy().catch(() => {});
    await killAll();
  }
  return 0;
}

process.exit(await main());
