// Boots a real Linux kernel (the Debian kernel under /boot) in qemu as a test peer: kernel WireGuard,
// FOU and GUE live there (the host kernel lacks those modules). See /work/shared/notes/kernel-peer.md.
//
// Safety: qemu always runs inside a test network namespace. With user-mode networking the guest's
// 10.0.2.2 is that namespace's loopback; with a tap device the tap lives in the namespace. The guest
// gets no default route from the harness: a test routes only what it means to route.
// Every VM is killed (SIGKILL after a hard timeout) and its temporary files and tap device removed.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type BgProcess, check, run, spawnBg, tempDir } from "../netns.ts";
import {
  type BaseInitramfs,
  BOOT_MARKER,
  buildBaseInitramfs,
  cacheDir,
  DONE_MARKER,
  EXPECT_FILE,
  resolveGuestKernel,
  SETUP_FAILED_MARKER,
  scriptCpio,
} from "./initramfs.ts";

export type Accel = "kvm" | "tcg";

export interface HostFwd {
  proto: "udp" | "tcp";
  /** Address in the VM's namespace to listen on; default 127.0.0.1. */
  hostAddr?: string;
  hostPort: number;
  guestPort: number;
}

/** qemu user-mode networking: guest eth0 = 10.0.2.15/24, the namespace's loopback = 10.0.2.2. */
export interface UserNet {
  mode: "user";
  hostfwd?: HostFwd[];
}

/**
 * A tap device created in the VM's namespace (exact outer addresses, no NAT). The harness creates it,
 * gives it `hostCidrs`, gives the guest's eth0 `guestCidrs` and removes the tap afterwards.
 */
export interface TapNet {
  mode: "tap";
  /** Tap name in the namespace (≤ 15 chars); default "ktap0". */
  ifname?: string;
  hostCidrs: string[];
  guestCidrs: string[];
  /** Routes added in the guest via eth0, e.g. ["10.201.0.0/24 via 10.9.0.1"] (iproute2 syntax). */
  guestRoutes?: string[];
}

export interface NoNet {
  mode: "none";
}

export const USER_NET = { guest: "10.0.2.15", host: "10.0.2.2", cidr: "10.0.2.15/24" } as const;

export interface KernelPeerOptions {
  /** Namespace qemu runs in (required unless net.mode is "none"). */
  netns: string | null;
  /** Shell script (dash) run as /test.sh in the guest after boot. */
  script: string;
  /** Extra files for the guest (path → content), mode 755. */
  files?: Record<string, string | Uint8Array>;
  /** Host directory shared read-write with the guest at /share (9p); none when absent. */
  shareDir?: string;
  /** Hard limit for the whole VM run (boot + script); SIGKILL after it. Default 120 s. */
  timeoutMs?: number;
  net?: UserNet | TapNet | NoNet;
  memoryMb?: number;
  /** Extra host binaries for the initramfs (e.g. ["dig"]). */
  extraBins?: string[];
  /** Name for logs; default "kernel-peer". */
  name?: string;
  /** Append the serial console here as well. */
  logFile?: string;
  /** Force an accelerator (default: $WGSLIRPY_QEMU_ACCEL, else KVM if it really works, else TCG). */
  accel?: Accel;
  /**
   * What /init must find before it runs the script, else the run rejects with GuestSetupError.
   * Default: "eth0" unless net.mode is "none", "share" when shareDir is given.
   */
  requireInGuest?: ("eth0" | "share")[];
}

export type ExitReason = "done" | "timeout" | "exited" | "stopped";

/** The guest booted without what it was given (no eth0, no 9p share, a module that did not load). */
export class GuestSetupError extends Error {
  override name = "GuestSetupError";
}

export interface KernelPeerResult {
  /** Serial console, CRs removed. */
  output: string;
  /** `RESULT=<key>=<value>` lines (last one wins). */
  results: Record<string, string>;
  /** "done": the script finished and the guest powered off; "exited": qemu exited without that (panic, crash). */
  exitReason: ExitReason;
  /** The script's exit status (results.exit), null if it never finished. */
  exitCode: number | null;
  /** Host ms from qemu start until /init printed its boot marker (null if it never did). */
  bootMs: number | null;
  /** Guest uptime (s) at the boot marker. */
  guestBootSeconds: number | null;
  totalMs: number;
  accel: Accel;
  qemuExitCode: number | null;
}

export interface KernelPeerVm {
  readonly proc: BgProcess;
  readonly accel: Accel;
  output(): string;
  /** Wait until `re` matches the console output (bounded). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves when qemu has exited and everything is cleaned up. */
  readonly result: Promise<KernelPeerResult>;
  /** Kill the VM now (SIGKILL) and clean up; resolves with the result. */
  stop(): Promise<KernelPeerResult>;
}

/** Why kernel-peer tests cannot run here (null = they can). */
export function kernelSkipReason(): string | null {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not root";
  if (!Bun.which("qemu-system-x86_64")) return "qemu-system-x86_64 missing (harness/kernel/install.sh)";
  const kernel = resolveGuestKernel();
  if (typeof kernel === "string") return kernel;
  for (const b of ["busybox", "wg", "ip", "socat", "modprobe", "ldd"]) if (!Bun.which(b)) return `${b} missing`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Accelerator

let accelMemo: Accel | null = null;

/**
 * KVM if it really runs this kernel, else TCG. /dev/kvm existing is not enough (here it is a PVM
 * hypervisor on which qemu -enable-kvm fails with an emulation error), so this boots the guest once
 * under KVM with a 12 s limit and caches the verdict on disk (per host kernel and qemu binary).
 */
export async function detectAccel(base?: BaseInitramfs): Promise<Accel> {
  const forced = process.env.WGSLIRPY_QEMU_ACCEL;
  if (forced === "kvm" || forced === "tcg") return forced;
  if (accelMemo) return accelMemo;
  if (!existsSync("/dev/kvm")) return (accelMemo = "tcg");
  try {
    closeSync(openSync("/dev/kvm", "r+"));
  } catch {
    return (accelMemo = "tcg");
  }
  const b = base ?? buildBaseInitramfs();
  const hostKernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  const qemu = Bun.which("qemu-system-x86_64")!;
  const key = `${hostKernel}|${qemu}|${statSync(qemu).mtimeMs}|${b.kernel.vmlinuz}`;
  const cacheFile = join(cacheDir(), "kvm-probe.json");
  try {
    const c = JSON.parse(readFileSync(cacheFile, "utf8"));
    if (c.key === key && (c.accel === "kvm" || c.accel === "tcg")) return (accelMemo = c.accel);
  } catch {}
  const dir = tempDir("wgslirpy-kvmprobe");
  let accel: Accel = "tcg";
  try {
    const initrd = join(dir, "initrd");
    writeFileSync(initrd, Buffer.concat([readFileSync(b.path), scriptCpio("echo KVM-PROBE-OK\n")]));
    const r = await run(
      [
        qemu,
        ...qemuArgs({ accel: "kvm", vmlinuz: b.kernel.vmlinuz, initrd, memoryMb: 256, netArgs: [], shareDir: null }),
      ],
      { timeoutMs: 12_000 },
    );
    if (!r.timedOut && r.stdout.includes("KVM-PROBE-OK")) accel = "kvm";
  } catch {
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  try {
    writeFileSync(cacheFile, JSON.stringify({ key, accel }));
  } catch {}
  return (accelMemo = accel);
}

function qemuArgs(o: {
  accel: Accel;
  vmlinuz: string;
  initrd: string;
  memoryMb: number;
  netArgs: string[];
  shareDir: string | null;
}): string[] {
  const accelArgs =
    o.accel === "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg,thread=multi", "-cpu", "max"];
  return [
    ...accelArgs,
    ...["-M", "pc", "-m", String(o.memoryMb), "-smp", "1", "-nodefaults", "-no-user-config"],
    ...["-display", "none", "-serial", "stdio", "-no-reboot"],
    ...["-kernel", o.vmlinuz, "-initrd", o.initrd],
    ...["-append", "console=ttyS0 quiet loglevel=4 panic=-1 reboot=t tsc=reliable no_timer_check"],
    ...o.netArgs,
    ...(o.shareDir
      ? [
          ...["-fsdev", `local,id=fs0,path=${o.shareDir},security_model=none`],
          ...["-device", "virtio-9p-pci,fsdev=fs0,mount_tag=share"],
        ]
      : []),
  ];
}

// ---------------------------------------------------------------------------------------------

/** Shell prepended to every test script: PATH, helpers, and eth0 per the network mode. */
function preamble(net: UserNet | TapNet | NoNet): string {
  const lines = [
    "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin WG_COLOR_MODE=never HOME=/root",
    "umask 077",
    'result() { k="$1"; shift; echo "RESULT=$k=$*"; }',
  ];
  if (net.mode === "user") {
    lines.push(
      `ip link set eth0 up && ip addr add ${USER_NET.cidr} dev eth0`,
      `export GUEST_ADDR=${USER_NET.guest} HOST_ADDR=${USER_NET.host}`,
    );
  } else if (net.mode === "tap") {
    lines.push("ip link set eth0 up");
    for (const c of net.guestCidrs) lines.push(`ip addr add ${c} dev eth0${c.includes(":") ? " nodad" : ""}`);
    for (const r of net.guestRoutes ?? []) lines.push(`ip ${r.includes(":") ? "-6 " : ""}route add ${r} dev eth0`);
  }
  lines.push("umask 022", "");
  return lines.join("\n");
}

/** What /init must find before it runs the script: eth0 for a networked VM, /share when shared. */
function defaultRequirements(net: UserNet | TapNet | NoNet, shareDir: string | undefined): ("eth0" | "share")[] {
  return [...(net.mode === "none" ? [] : ["eth0" as const]), ...(shareDir ? ["share" as const] : [])];
}

function validateHostFwd(f: HostFwd): void {
  const addr = f.hostAddr ?? "127.0.0.1";
  if (!/^[0-9.]+$/.test(addr)) throw new Error(`hostfwd address must be IPv4: ${addr}`);
  for (const p of [f.hostPort, f.guestPort])
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`bad port ${p}`);
}

/** Start a VM; use `runKernelPeer` to wait for it. */
export async function startKernelPeer(opts: KernelPeerOptions): Promise<KernelPeerVm> {
  const net = opts.net ?? { mode: "user" };
  if (net.mode !== "none" && !opts.netns) throw new Error("a networked VM must run inside a test namespace");
  const qemu = Bun.which("qemu-system-x86_64");
  if (!qemu) throw new Error("qemu-system-x86_64 missing (harness/kernel/install.sh)");
  const base = buildBaseInitramfs({ extraBins: opts.extraBins });
  const accel = opts.accel ?? (await detectAccel());
  const name = opts.name ?? "kernel-peer";
  const work = tempDir("wgslirpy-vm");
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(work, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {}
    }
    cleanups.length = 0;
  };

  try {
    const initrd = join(work, "initrd");
    writeFileSync(
      initrd,
      Buffer.concat([
        readFileSync(base.path),
        scriptCpio(preamble(net) + opts.script, {
          ...opts.files,
          [EXPECT_FILE]: (opts.requireInGuest ?? defaultRequirements(net, opts.shareDir)).map((l) => `${l}\n`).join(""),
        }),
      ]),
    );

    let netArgs: string[] = [];
    if (net.mode === "user") {
      for (const f of net.hostfwd ?? []) validateHostFwd(f);
      const fwd = (net.hostfwd ?? [])
        .map((f) => `,hostfwd=${f.proto}:${f.hostAddr ?? "127.0.0.1"}:${f.hostPort}-:${f.guestPort}`)
        .join("");
      netArgs = [
        ...["-netdev", `user,id=n0,net=10.0.2.0/24,host=${USER_NET.host},ipv6=off${fwd}`],
        ...["-device", "virtio-net-pci,netdev=n0"],
      ];
    } else if (net.mode === "tap") {
      const ifname = net.ifname ?? "ktap0";
      if (ifname.length > 15) throw new Error(`tap name too long: ${ifname}`);
      const ns = opts.netns!;
      await check(["ip", "-n", ns, "tuntap", "add", "dev", ifname, "mode", "tap"]);
      cleanups.push(async () => {
        await run(["ip", "-n", ns, "link", "del", ifname], { timeoutMs: 5000 });
      });
      for (const c of net.hostCidrs) {
        await check(["ip", "-n", ns, "addr", "add", c, "dev", ifname, ...(c.includes(":") ? ["nodad"] : [])]);
      }
      await check(["ip", "-n", ns, "link", "set", ifname, "up"]);
      netArgs = [
        ...["-netdev", `tap,id=n0,ifname=${ifname},script=no,downscript=no`],
        ...["-device", "virtio-net-pci,netdev=n0"],
      ];
    }
    if (opts.shareDir) mkdirSync(opts.shareDir, { recursive: true });

    const argv = [
      qemu,
      ...qemuArgs({
        accel,
        vmlinuz: base.kernel.vmlinuz,
        initrd,
        memoryMb: opts.memoryMb ?? 256,
        netArgs,
        shareDir: opts.shareDir ?? null,
      }),
    ];
    const t0 = performance.now();
    const proc = spawnBg(opts.netns, name, argv, { logFile: opts.logFile });
    let bootMs: number | null = null;
    proc
      .waitFor(new RegExp(BOOT_MARKER), opts.timeoutMs ?? 120_000)
      .then(() => {
        bootMs = performance.now() - t0;
      })
      .catch(() => {});

    let reason: ExitReason | null = null;
    const timer = setTimeout(() => {
      reason ??= "timeout";
      try {
        process.kill(proc.pid, "SIGKILL");
      } catch {}
    }, opts.timeoutMs ?? 120_000);

    const result = (async (): Promise<KernelPeerResult> => {
      const code = await proc.exited;
      clearTimeout(timer);
      await cleanup();
      const output = proc.output().replace(/\r/g, "");
      const setupFailed = output.match(new RegExp(`${SETUP_FAILED_MARKER}.*`));
      if (setupFailed) {
        throw new GuestSetupError(
          `${name}: the guest is not set up, test script not run: ${setupFailed[0]}\n${output.slice(-4000)}`,
        );
      }
      const results = parseResults(output);
      const done = output.includes(DONE_MARKER);
      const boot = output.match(new RegExp(`${BOOT_MARKER} ([0-9.]+)`));
      return {
        output,
        results,
        exitReason: reason ?? (done ? "done" : "exited"),
        exitCode: results.exit !== undefined ? Number(results.exit) : null,
        bootMs,
        guestBootSeconds: boot ? Number(boot[1]) : null,
        totalMs: performance.now() - t0,
        accel,
        qemuExitCode: code,
      };
    })();
    // Callers that only stop() or never look still must not see an unhandled rejection.
    result.catch(() => {});

    return {
      proc,
      accel,
      output: () => proc.output().replace(/\r/g, ""),
      waitFor: (re, ms) => proc.waitFor(re, ms),
      result,
      async stop() {
        reason ??= "stopped";
        try {
          process.kill(proc.pid, "SIGKILL");
        } catch {}
        return result;
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** Boot a VM, run `script`, wait until it powers off (or the hard timeout). Always cleans up. */
export async function runKernelPeer(opts: KernelPeerOptions): Promise<KernelPeerResult> {
  const vm = await startKernelPeer(opts);
  return vm.result;
}

export function parseResults(output: string): Record<string, string> {
  const results: Record<string, string> = {};
  for (const line of output.split("\n")) {
    const m = line.match(/RESULT=([A-Za-z0-9_.:-]+)=(.*)$/);
    if (m) results[m[1]!] = m[2]!.trimEnd();
  }
  return results;
}

/** Throw with the console tail unless the run finished with exit 0. */
export function assertOk(r: KernelPeerResult, what = "kernel peer"): void {
  if (r.exitReason !== "done" || r.exitCode !== 0) {
    throw new Error(
      `${what}: ${r.exitReason}, exit ${r.exitCode} after ${Math.round(r.totalMs)} ms\n${r.output.slice(-6000)}`,
    );
  }
}
