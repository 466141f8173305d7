// Network-namespace plumbing for the interop tests and benchmarks.
//
// Safety: everything here only creates namespaces, veths between them and processes inside them.
// Nothing adds a route out of a test namespace to the real network. Every process is tracked by PID
// and killed on `stop()`, on `killAll()` and at process exit.
import { spawn as nodeSpawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  /** Kill the process (SIGKILL) after this many ms; default 30000. */
  timeoutMs?: number;
  /** Bytes for stdin; stdin is closed after writing (or /dev/null if absent). */
  input?: string | Uint8Array;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** Run argv to completion, capturing output. Never throws for a non-zero exit (see `check`). */
export async function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const t0 = performance.now();
  const proc = Bun.spawn(argv, {
    stdin: opts.input === undefined ? "ignore" : "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: opts.env ? cleanEnv(opts.env) : undefined,
    cwd: opts.cwd,
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs ?? 30_000);
  if (opts.input !== undefined && proc.stdin) {
    proc.stdin.write(opts.input);
    await proc.stdin.end();
  }
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout, stderr, timedOut, ms: performance.now() - t0 };
}

function cleanEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

export class CommandError extends Error {}

/** Like `run` but throws with the command's output when it fails or times out. */
export async function check(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(argv, opts);
  if (r.code !== 0 || r.timedOut) {
    throw new CommandError(
      `${argv.join(" ")} -> ${r.timedOut ? "timed out" : `exit ${r.code}`}\n${r.stderr.trim()}\n${r.stdout.trim()}`.trim(),
    );
  }
  return r;
}

/** argv prefixed to run inside namespace `ns` (which also bind-mounts /etc/netns/NS/*). */
export function inNs(ns: string, argv: string[]): string[] {
  return ["ip", "netns", "exec", ns, ...argv];
}

/** Run argv inside a namespace, capturing output. */
export function exec(ns: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(inNs(ns, argv), opts);
}

/** Run argv inside a namespace; throw on failure. */
export function execCheck(ns: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return check(inNs(ns, argv), opts);
}

// ---------------------------------------------------------------------------------------------
// Namespaces

export async function nsExists(name: string): Promise<boolean> {
  return existsSync(`/var/run/netns/${name}`);
}

/** Create a namespace with loopback up, its own resolv.conf (and optionally hosts file). */
export async function createNs(name: string, files: { hosts?: string; resolvConf?: string } = {}): Promise<void> {
  if (name.length > 40) throw new Error(`namespace name too long: ${name}`);
  await deleteNs(name);
  await check(["ip", "netns", "add", name]);
  await check(["ip", "-n", name, "link", "set", "lo", "up"]);
  const dir = `/etc/netns/${name}`;
  mkdirSync(dir, { recursive: true });
  // Every test namespace gets its own resolver config: nothing in it may query the host's resolver.
  writeFileSync(`${dir}/resolv.conf`, files.resolvConf ?? "nameserver 127.0.0.1\n");
  writeFileSync(`${dir}/hosts`, files.hosts ?? "127.0.0.1 localhost\n::1 localhost ip6-localhost\n");
}

/** Write /etc/netns/NS/FILE (e.g. "hosts", "resolv.conf"). */
export function writeNsFile(name: string, file: "hosts" | "resolv.conf", content: string): void {
  const dir = `/etc/netns/${name}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/${file}`, content);
}

/** Kill every process still inside the namespace, delete it and its /etc/netns directory. */
export async function deleteNs(name: string): Promise<void> {
  if (existsSync(`/var/run/netns/${name}`)) {
    const pids = await run(["ip", "netns", "pids", name], { timeoutMs: 5000 });
    for (const p of pids.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(p), "SIGKILL");
      } catch {}
    }
    await run(["ip", "netns", "delete", name], { timeoutMs: 10_000 });
  }
  rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
}

/** Delete every namespace whose name starts with `prefix` (stale leftovers of a crashed run). */
export async function sweepNs(prefix: string): Promise<string[]> {
  if (prefix.length < 4) throw new Error("sweep prefix too short");
  const names = existsSync("/var/run/netns") ? readdirSync("/var/run/netns").filter((n) => n.startsWith(prefix)) : [];
  for (const n of names) await deleteNs(n);
  if (existsSync("/etc/netns")) {
    for (const n of readdirSync("/etc/netns")) if (n.startsWith(prefix)) rmSync(`/etc/netns/${n}`, { recursive: true });
  }
  return names;
}

/** A veth pair with one end in each namespace (never touching the root namespace's names). */
export async function veth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  for (const n of [ifA, ifB]) if (n.length > 15) throw new Error(`ifname too long: ${n}`);
  await check(["ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB]);
  await check(["ip", "-n", nsA, "link", "set", ifA, "up"]);
  await check(["ip", "-n", nsB, "link", "set", ifB, "up"]);
}

/** Add an address (CIDR); IPv6 addresses get `nodad` so they are usable at once. */
export async function addAddr(ns: string, dev: string, cidr: string): Promise<void> {
  const v6 = cidr.includes(":");
  await check(["ip", "-n", ns, v6 ? "-6" : "-4", "addr", "add", cidr, "dev", dev, ...(v6 ? ["nodad"] : [])]);
}

export async function addRoute(ns: string, args: string[]): Promise<void> {
  const v6 = args.some((a) => a.includes(":"));
  await check(["ip", "-n", ns, v6 ? "-6" : "-4", "route", "add", ...args]);
}

export async function sysctl(ns: string, key: string, value: string | number): Promise<void> {
  await check(inNs(ns, ["sysctl", "-q", "-w", `${key}=${value}`]));
}

// ---------------------------------------------------------------------------------------------
// Background processes

export interface BgProcess {
  readonly pid: number;
  readonly name: string;
  /** Resolves with the exit code (or signal as 128+n) once the process has exited. */
  readonly exited: Promise<number>;
  /** Everything written to stdout+stderr so far. */
  output(): string;
  /** Lines of output so far. */
  lines(): string[];
  running(): boolean;
  /** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** Wait until `re` matches the output (bounded); throws with the output on timeout or exit. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

const live = new Set<BgProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const p of live) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {}
    }
  });
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Keep at most this many characters of output (oldest dropped); default 4 MiB. */
  maxOutput?: number;
  /** Also append output to this file. */
  logFile?: string;
}

/**
 * Start argv in the background inside namespace `ns` (or in the current one when ns is null).
 * `ip netns exec` execs the command, so the PID is the command's own PID.
 */
export function spawnBg(ns: string | null, name: string, argv: string[], opts: SpawnOptions = {}): BgProcess {
  installExitHook();
  const full = ns ? inNs(ns, argv) : argv;
  const child = nodeSpawn(full[0]!, full.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
    env: opts.env ? cleanEnv(opts.env) : process.env,
    cwd: opts.cwd,
  });
  if (child.pid === undefined) throw new Error(`could not start ${argv.join(" ")}`);
  const pid = child.pid;
  const max = opts.maxOutput ?? 4 * 1024 * 1024;
  let out = "";
  let running = true;
  const waiters = new Set<() => void>();
  const onData = (b: Buffer) => {
    const s = b.toString("utf8");
    out += s;
    if (out.length > max) out = out.slice(out.length - max);
    if (opts.logFile) {
      try {
        writeFileSync(opts.logFile, s, { flag: "a" });
      } catch {}
    }
    for (const w of waiters) w();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => {
      running = false;
      live.delete(proc);
      for (const w of waiters) w();
      resolve(code ?? 128 + (signal ? signalNumber(signal) : 0));
    });
  });
  const proc: BgProcess = {
    pid,
    name,
    exited,
    output: () => out,
    lines: () => out.split("\n"),
    running: () => running,
    async stop(graceMs = 3000) {
      if (!running) return;
      try {
        process.kill(pid, "SIGTERM");
      } catch {}
      const t = setTimeout(() => {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }, graceMs);
      await exited;
      clearTimeout(t);
    },
    waitFor(re: RegExp, timeoutMs = 10_000) {
      return new Promise<RegExpMatchArray>((resolve, reject) => {
        const test = () => {
          const m = out.match(re);
          if (m) {
            done();
            resolve(m);
          } else if (!running) {
            done();
            reject(new Error(`${name} exited before printing ${re}:\n${out.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: no ${re} within ${timeoutMs} ms:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(test);
        };
        waiters.add(test);
        test();
      });
    },
  };
  live.add(proc);
  return proc;
}

function signalNumber(sig: string): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15, SIGABRT: 6 };
  return table[sig] ?? 0;
}

/** Stop every background process started by this module that is still running. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(1000)));
}

// ---------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value, at most `timeoutMs`; returns the value or throws. */
export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 10_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 100_000; i++) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (performance.now() > deadline) break;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** Is `bin` on PATH? */
export function have(bin: string): boolean {
  return Bun.which(bin) !== null;
}

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Why the interop suites cannot run here (null = they can). */
export function interopSkipReason(bins: string[]): string | null {
  if (process.platform !== "linux") return "not Linux";
  if (!isRoot()) return "not root";
  const missing = bins.filter((b) => !have(b));
  if (missing.length) return `missing ${missing.join(", ")}`;
  if (!existsSync("/dev/net/tun")) return "no /dev/net/tun";
  return null;
}

/** A fresh temporary directory under /tmp (removed by the caller). */
export function tempDir(prefix: string): string {
  const dir = `/tmp/${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Read VmRSS of a process in KiB (null if gone). */
export async function rssKiB(pid: number): Promise<number | null> {
  try {
    const s = await Bun.file(`/proc/${pid}/status`).text();
    const m = s.match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
