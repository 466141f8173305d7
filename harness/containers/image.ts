// Builds the container image for WireGuard/GUE peer containers locally (no registry is reachable):
// debootstrap a minimal Debian bookworm with the peer tools → tar → `docker import`. Cached twice:
// the image by tag in docker, and the rootfs tarball under cacheDir() (re-import takes seconds when
// docker's storage was wiped). See /work/shared/notes/containers.md.
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { cacheDir } from "../kernel/initramfs.ts";
import { check, run, sleep } from "../netns.ts";

/** Bump the suffix whenever PACKAGES changes. */
export const PEER_IMAGE = "wgslirpy-peer:bookworm-1";

export const PACKAGES = [
  "wireguard-tools",
  "wireguard-go",
  "iproute2",
  "iputils-ping",
  "curl",
  "dnsutils",
  "iperf3",
  "tcpdump",
  "socat",
  "ca-certificates",
  "procps",
];

/** Why container tests cannot run here (null = they can). */
export async function dockerSkipReason(): Promise<string | null> {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not root";
  if (!Bun.which("docker")) return "docker missing (harness/containers/install.sh)";
  if (!existsSync("/var/run/docker.sock")) return "dockerd not running (harness/containers/install.sh)";
  const r = await run(["docker", "info", "--format", "{{.ServerVersion}}"], { timeoutMs: 15_000 });
  if (r.code !== 0) return `docker info failed: ${r.stderr.trim().split("\n")[0]}`;
  if (!existsSync("/dev/net/tun")) return "no /dev/net/tun";
  return null;
}

export async function imageExists(tag: string): Promise<boolean> {
  const r = await run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], { timeoutMs: 15_000 });
  return r.code === 0;
}

export interface EnsureImageResult {
  tag: string;
  /** "docker": already there; "tarball": re-imported the cached rootfs; "debootstrap": built from scratch. */
  source: "docker" | "tarball" | "debootstrap";
  ms: number;
}

/**
 * Make sure the peer image exists (builds it the first time: ~40 s and the Debian mirror; needs
 * debootstrap, see harness/containers/install.sh). Concurrent callers wait on a lock directory.
 */
export async function ensurePeerImage(tag = PEER_IMAGE): Promise<EnsureImageResult> {
  const t0 = performance.now();
  if (await imageExists(tag)) return { tag, source: "docker", ms: performance.now() - t0 };
  const dir = cacheDir();
  const safe = tag.replace(/[^A-Za-z0-9_.-]/g, "_");
  const tarball = join(dir, `rootfs-${safe}.tar`);
  const lock = join(dir, `rootfs-${safe}.lock`);
  // A lock directory (mkdir is atomic); a stale one (> 15 min) is taken over.
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 15 * 60_000) rmSync(lock, { recursive: true, force: true });
      } catch {}
      if (i > 1200) throw new Error(`timed out waiting for ${lock}`);
      await sleep(500);
      if (await imageExists(tag)) return { tag, source: "docker", ms: performance.now() - t0 };
    }
  }
  try {
    let source: EnsureImageResult["source"] = "tarball";
    if (!existsSync(tarball)) {
      source = "debootstrap";
      await buildRootfsTarball(tarball);
    }
    await check(
      [
        "docker",
        "import",
        "-c",
        'CMD ["sleep","infinity"]',
        "-c",
        "LABEL org.wgslirpy.image=peer",
        "-m",
        `wgslirpy peer (${PACKAGES.join(" ")})`,
        tarball,
        tag,
      ],
      { timeoutMs: 300_000 },
    );
    return { tag, source, ms: performance.now() - t0 };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function buildRootfsTarball(tarball: string): Promise<void> {
  if (!Bun.which("debootstrap")) throw new Error("debootstrap missing (harness/containers/install.sh)");
  const rootfs = `${tarball}.rootfs-${process.pid}`;
  rmSync(rootfs, { recursive: true, force: true });
  try {
    await check(["debootstrap", "--variant=minbase", `--include=${PACKAGES.join(",")}`, "bookworm", rootfs], {
      timeoutMs: 600_000,
    });
    for (const p of [
      "var/cache/apt/archives",
      "var/lib/apt/lists",
      "usr/share/doc",
      "usr/share/man",
      "usr/share/info",
      "usr/share/locale",
    ]) {
      rmSync(join(rootfs, p), { recursive: true, force: true });
      mkdirSync(join(rootfs, p), { recursive: true });
    }
    const tmp = `${tarball}.tmp-${process.pid}`;
    await check(["tar", "-C", rootfs, "--numeric-owner", "-cf", tmp, "."], { timeoutMs: 300_000 });
    renameSync(tmp, tarball);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
}
