// The single-file executable of `bun run build`, built once per source state: the build is keyed by
// a hash of everything that goes into it (src/, package.json, bun.lock, the Bun version), cached in
// .cache/compiled/, and written under a temporary name then renamed, so test files that ask for it
// at the same time share one build.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./gateway.ts";

function hashTree(h: ReturnType<typeof createHash>, dir: string): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) hashTree(h, p);
    else h.update(p.slice(REPO_ROOT.length)).update("\0").update(readFileSync(p)).update("\0");
  }
}

export function sourceHash(arch: string = process.arch): string {
  const h = createHash("sha256");
  hashTree(h, join(REPO_ROOT, "src"));
  for (const f of ["package.json", "bun.lock"]) h.update(f).update(readFileSync(join(REPO_ROOT, f)));
  h.update(Bun.version).update(arch);
  return h.digest("hex").slice(0, 16);
}

/**
 * Path of the compiled binary for `arch` (default: this host's CPU; "arm64" is what `bun run build`
 * ships for linux-arm64), built when the cache has none.
 */
export async function compiledBinary(
  arch: "x64" | "arm64" = process.arch as "x64" | "arm64",
): Promise<{ path: string; built: boolean; buildMs: number }> {
  const dir = join(REPO_ROOT, ".cache", "compiled");
  const path = join(dir, `wgslirpy-${arch}-${sourceHash(arch)}`);
  if (existsSync(path)) return { path, built: false, buildMs: 0 };
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const t0 = performance.now();
  // The same command as `bun run build`, for this host's target only.
  const p = Bun.spawn(
    [process.execPath, "build", "--compile", "--minify", `--target=bun-linux-${arch}`, "src/cli.ts", "--outfile", tmp],
    { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" },
  );
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0 || !existsSync(tmp)) {
    rmSync(tmp, { force: true });
    throw new Error(`bun build --compile failed (exit ${code}):\n${out}\n${err}`);
  }
  renameSync(tmp, path);
  // Older builds are dead weight (110 MB each): keep only this one per CPU.
  for (const name of readdirSync(dir)) {
    if (name.startsWith(`wgslirpy-${arch}-`) && join(dir, name) !== path && !name.endsWith(".tmp"))
      rmSync(join(dir, name), { force: true });
  }
  return { path, built: true, buildMs: performance.now() - t0 };
}

/**
 * How to run the linux-arm64 build here: directly on an arm64 host, else under qemu-user
 * (qemu-user-static with Debian's libc6:arm64). `slow` scales time bounds under emulation;
 * `missing` names what is not installed (the suite's skip reason; a failure under CI).
 */
export function arm64Runner(): { runner: string[]; slow: number; missing: string | null } {
  if (process.arch === "arm64") return { runner: [], slow: 1, missing: null };
  const qemu = Bun.which("qemu-aarch64-static");
  if (qemu === null) return { runner: [], slow: 1, missing: "qemu-aarch64-static (Debian package qemu-user-static)" };
  const missing = existsSync("/lib/ld-linux-aarch64.so.1")
    ? null
    : "/lib/ld-linux-aarch64.so.1 (Debian package libc6:arm64, after dpkg --add-architecture arm64)";
  return { runner: [qemu], slow: 5, missing };
}
