// Builds the initramfs of the kernel-peer VM (see /work/shared/notes/kernel-peer.md).
//
// The base image (cached by content hash under cacheDir()) holds a static busybox, dash, iproute2
// `ip`/`tc`, `wg`, `socat`, iputils `ping`, `curl` (plus optional extras such as `dig`) with the
// shared libraries `ldd` lists, the decompressed kernel modules in dependency order, and an /init that
// loads them, mounts /proc,/sys,/dev, the 9p share (tag "share" → /share) and runs /test.sh. A test's
// script is a second, tiny gzipped cpio appended after the base (the kernel unpacks both).
//
// Guest conventions: /test.sh runs under dash (so `ip` is iproute2, not the busybox applet; busybox
// applets that exec other programs, e.g. `timeout`, still prefer applets: use full paths there).
// Lines `RESULT=<key>=<value>` on the console are results; /init prints `RESULT=exit=<rc>` and
// `WGSLIRPY-VM-DONE` after the script, then powers off.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { gzipSync } from "node:zlib";

export const DONE_MARKER = "WGSLIRPY-VM-DONE";
export const BOOT_MARKER = "WGSLIRPY-VM-BOOTED";
/** /init prints this (and the reason) instead of running /test.sh when the guest is not set up. */
export const SETUP_FAILED_MARKER = "WGSLIRPY-VM-SETUP-FAILED";
/** Per-run file (in the script cpio) listing what /init must find: "eth0", "share". */
export const EXPECT_FILE = "etc/wgslirpy-expect";

/** Where built artefacts are cached: $WGSLIRPY_CACHE, else /var/cache/wgslirpy (root) or ~/.cache/wgslirpy. */
export function cacheDir(): string {
  const dir =
    process.env.WGSLIRPY_CACHE ??
    (process.getuid?.() === 0 ? "/var/cache/wgslirpy" : join(homedir(), ".cache", "wgslirpy"));
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface GuestKernel {
  version: string;
  vmlinuz: string;
  modulesDir: string;
}

/**
 * The kernel version Debian's `linux-image-amd64` metapackage depends on (e.g. "6.1.0-57-amd64"),
 * from dpkg's status: a string saying why not when dpkg has no installed linux-image-amd64.
 */
export function debianKernelVersion(): { version: string } | { problem: string } {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format syntax, not a template
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}|${Depends}", "linux-image-amd64"], { encoding: "utf8" });
  if (r.error) return { problem: `dpkg-query failed: ${r.error.message}` };
  if (r.status !== 0 || !r.stdout.includes("install ok installed")) {
    return { problem: "linux-image-amd64 not installed (harness/kernel/install.sh)" };
  }
  const m = r.stdout.match(/linux-image-([0-9][^\s,|]*)/);
  if (!m) return { problem: `linux-image-amd64 depends on no linux-image-<version>: ${r.stdout}` };
  return { version: m[1]! };
}

function kernelAt(vmlinuz: string): GuestKernel | string {
  const version = basename(vmlinuz).replace(/^vmlinuz-/, "");
  if (!existsSync(vmlinuz)) return `${vmlinuz} missing (harness/kernel/install.sh)`;
  for (const root of ["/usr/lib/modules", "/lib/modules"]) {
    const modulesDir = `${root}/${version}`;
    if (existsSync(`${modulesDir}/kernel/drivers/net/wireguard`)) return { version, vmlinuz, modulesDir };
  }
  return `${vmlinuz} has no WireGuard module under /lib/modules/${version}`;
}

/**
 * The guest kernel, or why there is none. $WGSLIRPY_KERNEL=/boot/vmlinuz-X overrides; else, with
 * dpkg, the kernel `linux-image-amd64` depends on — never whatever else /boot holds (another kernel,
 * e.g. one with a built-in virtio_pci, would make the suite pass or fail depending on the machine).
 * Without dpkg (not Debian): the newest /boot kernel with a WireGuard module.
 */
export function resolveGuestKernel(): GuestKernel | string {
  if (process.env.WGSLIRPY_KERNEL) return kernelAt(process.env.WGSLIRPY_KERNEL);
  if (Bun.which("dpkg-query")) {
    const deb = debianKernelVersion();
    return "problem" in deb ? deb.problem : kernelAt(`/boot/vmlinuz-${deb.version}`);
  }
  if (!existsSync("/boot")) return "no /boot";
  for (const f of readdirSync("/boot").sort().reverse()) {
    if (!f.startsWith("vmlinuz-")) continue;
    const k = kernelAt(`/boot/${f}`);
    if (typeof k !== "string") return k;
  }
  return "no kernel with WireGuard modules under /boot";
}

/** The guest kernel (see resolveGuestKernel); null when there is none. */
export function findGuestKernel(): GuestKernel | null {
  const k = resolveGuestKernel();
  return typeof k === "string" ? null : k;
}

/** Binaries always in the image (must exist on the host) and ones included when present. */
const REQUIRED_BINS = ["wg", "ip", "socat"];
const DEFAULT_OPTIONAL_BINS = ["ping", "curl", "tc", "dash"];
/** Modules always loaded (with their dependencies) and ones loaded when the kernel has them. */
// virtio_pci first: it is the transport virtio_net and 9pnet_virtio sit on, yet nothing depends on it
// by symbol, so `--show-depends virtio_net` never lists it; where it is a module (Debian 12's 6.1) and
// not loaded, the guest has no eth0 and no 9p share. Where it is built in, modprobe says `builtin`.
const REQUIRED_MODULES = ["virtio_pci", "virtio_net", "9pnet_virtio", "9p", "wireguard", "fou", "fou6", "ipip", "sit"];
const OPTIONAL_MODULES = ["sch_netem", "tun"];

export interface InitramfsOptions {
  /** More host binaries to include (e.g. "dig", "iperf3", "tcpdump"); each must be on PATH. */
  extraBins?: string[];
  kernel?: GuestKernel;
}

export interface BaseInitramfs {
  path: string;
  hash: string;
  kernel: GuestKernel;
  /** Guest paths of the included programs, e.g. { ip: "/usr/sbin/ip" }. */
  bins: Record<string, string>;
  modules: string[];
  cached: boolean;
  buildMs: number;
}

interface Entry {
  path: string; // inside the image, no leading slash
  mode: number; // full st_mode
  data: Uint8Array;
}

function which(bin: string): string | null {
  return Bun.which(bin, { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" });
}

/** Shared libraries (and the ELF interpreter) `ldd` lists for a binary; [] for static ones. */
function lddLibs(bin: string): string[] {
  const r = spawnSync("ldd", [bin], { encoding: "utf8" });
  if (r.status !== 0) return [];
  const libs: string[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = line.match(/=>\s+(\/\S+)/) ?? line.match(/^\s*(\/\S+)\s+\(/);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/** Module files in load order for `names` (skipping builtins); throws if a required one is missing. */
function moduleOrder(kernel: GuestKernel, required: string[], optional: string[]): string[] {
  const order: string[] = [];
  const add = (name: string, must: boolean) => {
    const r = spawnSync("modprobe", ["-S", kernel.version, "--show-depends", name], { encoding: "utf8" });
    if (r.status !== 0) {
      if (must) throw new Error(`modprobe --show-depends ${name} failed for ${kernel.version}: ${r.stderr}`);
      return;
    }
    for (const line of r.stdout.split("\n")) {
      const m = line.match(/^insmod\s+(\S+)/);
      if (!m) continue;
      // modprobe prints /lib/modules/...; on merged-/usr systems the files live under modulesDir.
      const file = m[1]!.replace(/^\/(usr\/)?lib\/modules\/[^/]+/, kernel.modulesDir);
      if (!order.includes(file)) order.push(file);
    }
  };
  for (const n of required) add(n, true);
  for (const n of optional) add(n, false);
  return order;
}

function decompressModule(file: string): Uint8Array {
  if (file.endsWith(".ko")) return readFileSync(file);
  const tool = file.endsWith(".xz") ? ["xz", "-dc"] : file.endsWith(".zst") ? ["zstd", "-dcq"] : ["gzip", "-dc"];
  const r = spawnSync(tool[0]!, [...tool.slice(1), file], { maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`cannot decompress ${file}: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}

const INIT = `#!/bin/busybox sh
# wgslirpy kernel-peer init (generated by harness/kernel/initramfs.ts)
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /share /var/run /etc
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
/bin/busybox mount -t tmpfs tmp /tmp
/bin/busybox mount -t tmpfs run /run
/bin/busybox --install -s /bin
[ -x /usr/bin/dash ] && ln -sf /usr/bin/dash /bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root WG_COLOR_MODE=never
mkdir -p /root
setup_failed() {
  echo "${SETUP_FAILED_MARKER} $*"
  echo "RESULT=exit=254"
  poweroff -f
  sleep 60
}
expects() { grep -qx "$1" /${EXPECT_FILE} 2>/dev/null; }
failed_mods=""
while read -r m; do
  [ -n "$m" ] && { insmod "/lib/modules/$m" || failed_mods="$failed_mods $m"; }
done < /lib/modules/load-order
[ -z "$failed_mods" ] || setup_failed "insmod failed:$failed_mods"
/usr/sbin/ip link set lo up
if expects eth0; then
  i=0
  while [ ! -e /sys/class/net/eth0 ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -e /sys/class/net/eth0 ] || setup_failed "no eth0 (interfaces: $(ls /sys/class/net | tr '\\n' ' ')); virtio_pci loaded?"
fi
share_err=$(mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /share 2>&1)
if expects share; then
  grep -q " /share 9p " /proc/mounts || setup_failed "9p share not mounted: $share_err"
fi
hostname kernelpeer
echo "${BOOT_MARKER} $(cut -d' ' -f1 /proc/uptime)"
rc=255
if [ -f /test.sh ]; then
  cd /root
  /bin/sh /test.sh </dev/null 2>&1
  rc=$?
fi
echo "RESULT=exit=$rc"
sync
[ -d /share ] && umount /share 2>/dev/null
echo "${DONE_MARKER}"
poweroff -f
`;

const NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n";

function collectEntries(kernel: GuestKernel, extraBins: string[]) {
  const entries = new Map<string, Entry>();
  const dirs = new Set<string>();
  const addDirOf = (p: string) => {
    let d = dirname(p);
    while (d && d !== "." && d !== "/") {
      dirs.add(d);
      d = dirname(d);
    }
  };
  const addFile = (path: string, data: Uint8Array, mode = 0o100755) => {
    const p = path.replace(/^\/+/, "");
    addDirOf(p);
    entries.set(p, { path: p, mode, data });
  };
  const busybox = which("busybox");
  if (!busybox) throw new Error("busybox not found (apt-get install busybox-static)");
  if (lddLibs(busybox).length > 0) throw new Error(`${busybox} is not static (apt-get install busybox-static)`);
  addFile("bin/busybox", readFileSync(busybox));

  const bins: Record<string, string> = { busybox: "/bin/busybox" };
  const libs = new Set<string>();
  const wanted: [string, boolean][] = [
    ...REQUIRED_BINS.map((b): [string, boolean] => [b, true]),
    ...DEFAULT_OPTIONAL_BINS.map((b): [string, boolean] => [b, false]),
    ...extraBins.map((b): [string, boolean] => [b, true]),
  ];
  for (const [name, must] of wanted) {
    const host = which(name);
    if (!host) {
      if (must) throw new Error(`${name} not found on the host`);
      continue;
    }
    const real = realpathSync(host);
    // Keep sbin tools in /usr/sbin and the rest in /usr/bin (never /bin: that is busybox's).
    const guest = /\/sbin\//.test(host) || /\/sbin\//.test(real) ? `/usr/sbin/${name}` : `/usr/bin/${name}`;
    addFile(guest, readFileSync(real));
    bins[name] = guest;
    for (const l of lddLibs(real)) libs.add(l);
  }
  for (const l of libs) {
    // Merged-/usr layout: /lib and /lib64 are symlinks to usr/lib and usr/lib64 (added below), so
    // the library is found both under the path ldd printed and the canonical one.
    addFile(l.replace(/^\/(lib|lib64)\//, "/usr/$1/"), readFileSync(realpathSync(l)), 0o100755);
  }

  const order = moduleOrder(kernel, REQUIRED_MODULES, OPTIONAL_MODULES);
  const loadOrder: string[] = [];
  for (const file of order) {
    const name = basename(file).replace(/\.(xz|zst|gz)$/, "");
    addFile(`usr/lib/modules/${name}`, decompressModule(file), 0o100644);
    loadOrder.push(name);
  }
  addFile("usr/lib/modules/load-order", new TextEncoder().encode(`${loadOrder.join("\n")}\n`), 0o100644);
  addFile("lib", new TextEncoder().encode("usr/lib"), 0o120777);
  addFile("lib64", new TextEncoder().encode("usr/lib64"), 0o120777);
  addFile("init", new TextEncoder().encode(INIT));
  addFile("etc/nsswitch.conf", new TextEncoder().encode(NSSWITCH), 0o100644);
  addFile("etc/passwd", new TextEncoder().encode("root:x:0:0:root:/root:/bin/sh\n"), 0o100644);
  addFile("etc/group", new TextEncoder().encode("root:x:0:\n"), 0o100644);
  addFile("etc/hosts", new TextEncoder().encode("127.0.0.1 localhost kernelpeer\n::1 localhost\n"), 0o100644);
  addFile("etc/resolv.conf", new TextEncoder().encode("nameserver 127.0.0.1\n"), 0o100644);
  for (const d of ["proc", "sys", "dev", "tmp", "run", "share", "root", "etc", "var/run", "sbin", "usr/local/bin"]) {
    dirs.add(d);
    addDirOf(d);
  }
  dirs.add("usr/lib64");
  return { entries, dirs, bins, modules: loadOrder };
}

// ---------------------------------------------------------------------------------------------
// cpio "newc" writer

function cpioHeader(name: string, mode: number, size: number, ino: number, nlink: number): Uint8Array {
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  const nameBytes = new TextEncoder().encode(name);
  const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, nameBytes.length + 1, 0];
  const head = `070701${fields.map(hex).join("")}`;
  const total = pad4(110 + nameBytes.length + 1);
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode(head), 0);
  out.set(nameBytes, 110);
  return out;
}

const pad4 = (n: number) => (n + 3) & ~3;

/** A newc cpio archive of `files` (directories are created for every parent path). */
export function makeCpio(
  files: { path: string; mode: number; data: Uint8Array }[],
  extraDirs: string[] = [],
): Uint8Array {
  const dirs = new Set<string>(extraDirs.map((d) => d.replace(/^\/+/, "")));
  for (const f of files) {
    let d = dirname(f.path.replace(/^\/+/, ""));
    while (d && d !== "." && d !== "/") {
      dirs.add(d);
      d = dirname(d);
    }
  }
  const chunks: Uint8Array[] = [];
  let ino = 1;
  for (const d of [...dirs].sort((a, b) => a.split("/").length - b.split("/").length || a.localeCompare(b))) {
    chunks.push(cpioHeader(d, 0o040755, 0, ino++, 2));
  }
  for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    const p = f.path.replace(/^\/+/, "");
    chunks.push(cpioHeader(p, f.mode, f.data.length, ino++, 1));
    chunks.push(f.data);
    const padding = pad4(f.data.length) - f.data.length;
    if (padding) chunks.push(new Uint8Array(padding));
  }
  chunks.push(cpioHeader("TRAILER!!!", 0, 0, 0, 1));
  const len = chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(len);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

const memo = new Map<string, BaseInitramfs>();

/** Build (or reuse from the cache) the base initramfs. Cheap when cached: hashes the inputs only. */
export function buildBaseInitramfs(opts: InitramfsOptions = {}): BaseInitramfs {
  const t0 = performance.now();
  const kernel = opts.kernel ?? findGuestKernel();
  if (!kernel) throw new Error("no kernel with WireGuard modules under /boot (run harness/kernel/install.sh)");
  const extra = [...new Set(opts.extraBins ?? [])].sort();
  const memoKey = `${kernel.vmlinuz}|${extra.join(",")}`;
  const hit = memo.get(memoKey);
  if (hit && existsSync(hit.path)) return hit;

  const { entries, dirs, bins, modules } = collectEntries(kernel, extra);
  const files = [...entries.values()];
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update("wgslirpy-initramfs-v1\0");
  for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    hasher.update(`${f.path}\0${f.mode}\0${f.data.length}\0`);
    hasher.update(f.data);
  }
  const hash = hasher.digest("hex").slice(0, 24);
  const path = join(cacheDir(), `initramfs-${hash}.cpio.gz`);
  let cached = true;
  if (!existsSync(path) || statSync(path).size === 0) {
    cached = false;
    const gz = gzipSync(makeCpio(files, [...dirs]), { level: 6 });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, gz);
    renameSync(tmp, path);
  }
  const result: BaseInitramfs = { path, hash, kernel, bins, modules, cached, buildMs: performance.now() - t0 };
  memo.set(memoKey, result);
  return result;
}

/** A gzipped cpio holding /test.sh (mode 755) and any extra files, to append after the base. */
export function scriptCpio(script: string, files: Record<string, string | Uint8Array> = {}): Uint8Array {
  const enc = new TextEncoder();
  const list: { path: string; mode: number; data: Uint8Array }[] = [
    { path: "test.sh", mode: 0o100755, data: enc.encode(script) },
  ];
  for (const [p, content] of Object.entries(files)) {
    list.push({
      path: p.replace(/^\/+/, ""),
      mode: 0o100755,
      data: typeof content === "string" ? enc.encode(content) : content,
    });
  }
  return gzipSync(makeCpio(list), { level: 1 });
}
