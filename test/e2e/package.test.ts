/**
 * The npm package (issue 13): `bun pm pack` holds what `bunx wgslirpy` needs (the bin with its
 * shebang, src/, LICENSE, README, package.json) and the CLI runs from the unpacked tarball.
 * (Installing from the registry is not done here: tests reach no network but loopback.)
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const tmp = mkdtempSync(join(tmpdir(), "wgslirpy-pack-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("packed tarball: metadata, LICENSE, bin; the CLI runs from it", async () => {
  const pack = Bun.spawnSync([process.execPath, "pm", "pack", "--destination", tmp, "--quiet"], { cwd: ROOT });
  expect(pack.exitCode, pack.stderr.toString()).toBe(0);
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const tgz = join(tmp, `${pkg.name}-${pkg.version}.tgz`);
  const untar = Bun.spawnSync(["tar", "xzf", tgz, "-C", tmp]);
  expect(untar.exitCode).toBe(0);
  const dir = join(tmp, "package");
  const packed = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  expect(packed.license).toBe("MIT");
  expect(readFileSync(join(dir, "LICENSE"), "utf8")).toStartWith("MIT License");
  expect(packed.keywords).toContain("wireguard");
  expect(packed.engines.bun).toMatch(/^>=\d/);
  expect(packed.bin.wgslirpy).toBe("./src/cli.ts");
  expect(readFileSync(join(dir, packed.bin.wgslirpy), "utf8")).toStartWith("#!/usr/bin/env bun\n");
  expect(readFileSync(join(dir, "README.md"), "utf8")).toContain("bun run build");
  // Dependencies as an install would provide them (the repo's own node_modules).
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const run = Bun.spawnSync([process.execPath, join(dir, packed.bin.wgslirpy), "--version"], { cwd: tmp });
  expect(run.stdout.toString()).toBe(`wgslirpy ${pkg.version}\n`);
  expect(run.exitCode).toBe(0);
});
