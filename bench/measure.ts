// Per-process cost figures for the benchmarks: CPU seconds from /proc (user + sys, all threads), the
// gateway's own counters from its /stats endpoint, and syscall counts from `perf stat` tracepoints.
import { exec, spawnBg } from "../harness/netns.ts";

/** Clock ticks per second of /proc/PID/stat (USER_HZ; 100 on Linux). */
const USER_HZ = 100;

/** utime + stime of `pid` in seconds (every thread), or NaN when it cannot be read. */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    const s = await Bun.file(`/proc/${pid}/stat`).text();
    // Fields after "(comm)": state is [0], utime [11], stime [12].
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / USER_HZ;
  } catch {
    return Number.NaN;
  }
}

/** The whole machine's busy and total CPU seconds so far (/proc/stat, every CPU): busy = total - idle - iowait - steal; steal = time the hypervisor ran something else. */
export async function machineCpu(): Promise<{ busy: number; total: number; steal: number }> {
  const line = (await Bun.file("/proc/stat").text()).split("\n", 1)[0] ?? "";
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  // Fields: user nice system idle iowait irq softirq steal guest guest_nice (guest time is also in user).
  const counted = total - (f[8] ?? 0) - (f[9] ?? 0);
  return {
    busy: (counted - (f[3] ?? 0) - (f[4] ?? 0) - (f[7] ?? 0)) / USER_HZ,
    total: counted / USER_HZ,
    steal: (f[7] ?? 0) / USER_HZ,
  };
}

export interface GatewayCounters {
  segmentsIn: number;
  segmentsOut: number;
  timersScheduled: number;
  retransmits: number;
  rtoExpirations: number;
  fastRecoveries: number;
  tlpProbes: number;
  /** Losses found by RACK's reordering timer, and retransmissions the peer D-SACKed (needless). */
  reorderTimeouts: number;
  spuriousRetransmits: number;
  /** Outer UDP datagrams sent, and the sendMany batches they left in (burst size = the ratio). */
  datagramsOut: number;
  flushes: number;
}

/** b - a, field by field. */
export function counterDelta(a: GatewayCounters, b: GatewayCounters): GatewayCounters {
  const out = { ...b };
  for (const k of Object.keys(out) as (keyof GatewayCounters)[]) out[k] = b[k] - a[k];
  return out;
}

/** a + b, field by field. */
export function counterSum(a: GatewayCounters, b: GatewayCounters): GatewayCounters {
  const out = { ...b };
  for (const k of Object.keys(out) as (keyof GatewayCounters)[]) out[k] = a[k] + b[k];
  return out;
}

/** The gateway's TCP segment and OS-timer counters from `--stats-listen` (inside `ns`). */
export async function gatewayCounters(ns: string, statsPort: number): Promise<GatewayCounters | null> {
  const r = await exec(ns, ["curl", "-s", "--max-time", "3", `http://127.0.0.1:${statsPort}/stats`], {
    timeoutMs: 5000,
  });
  try {
    const j = JSON.parse(r.stdout);
    return {
      segmentsIn: Number(j.tcp?.segmentsIn ?? Number.NaN),
      segmentsOut: Number(j.tcp?.segmentsOut ?? Number.NaN),
      timersScheduled: Number(j.osTimers?.scheduled ?? Number.NaN),
      retransmits: Number(j.tcp?.retransmits ?? Number.NaN),
      rtoExpirations: Number(j.tcp?.rtoExpirations ?? Number.NaN),
      fastRecoveries: Number(j.tcp?.fastRecoveries ?? Number.NaN),
      tlpProbes: Number(j.tcp?.tlpProbes ?? Number.NaN),
      reorderTimeouts: Number(j.tcp?.reorderTimeouts ?? Number.NaN),
      spuriousRetransmits: Number(j.tcp?.spuriousRetransmits ?? Number.NaN),
      datagramsOut: Number(j.transport?.datagramsOut ?? Number.NaN),
      flushes: Number(j.transport?.flushes ?? Number.NaN),
    };
  } catch {
    return null;
  }
}

/** Syscalls the counts are taken of; "host sends" are the TCP-socket writes among them. */
const SYSCALLS = ["sendto", "write", "writev", "sendmsg", "sendmmsg", "recvmmsg", "recvfrom", "read"] as const;
export type SyscallCounts = Partial<Record<(typeof SYSCALLS)[number], number>>;

/** Count syscalls of `pid` until stop() (perf stat on syscall tracepoints; null if perf fails). */
export function countSyscalls(pid: number): { stop(): Promise<SyscallCounts | null> } {
  const events = SYSCALLS.map((s) => `syscalls:sys_enter_${s}`).join(",");
  const p = spawnBg(null, "perf stat", ["perf", "stat", "-x", ",", "-e", events, "-p", String(pid)]);
  return {
    async stop() {
      // perf stat prints its counts on SIGINT.
      try {
        process.kill(p.pid, "SIGINT");
      } catch {}
      await Promise.race([p.exited, Bun.sleep(3000)]);
      await p.stop(500);
      const out: SyscallCounts = {};
      for (const line of p.output().split("\n")) {
        const m = line.match(/^(\d+),[^,]*,syscalls:sys_enter_(\w+)/);
        if (m) out[m[2] as (typeof SYSCALLS)[number]] = Number(m[1]);
      }
      return Object.keys(out).length > 0 ? out : null;
    },
  };
}

/** CPU seconds per thread name (JIT workers, GC helpers, the JS thread), summed. */
export async function threadCpu(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const { readdirSync } = await import("node:fs");
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const st = await Bun.file(`/proc/${pid}/task/${t}/stat`).text();
      const name = st.slice(st.indexOf("(") + 1, st.lastIndexOf(")")).replace(/[0-9]+$/, "");
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // thread gone
    }
  }
  return out;
}
