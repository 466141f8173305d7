/**
 * The npm package (issue 13): `bun pm pack` holds what `bunx wgslirpy` needs (the bin launcher,
 * src/, LICENSE, README, package.json) and the CLI runs from the unpacked tarball, under Bun and
 * through the launcher under Node.
 * (Installing from the registry is not done here: tests reach no network but loopback.)
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { optionalTool } from "../../harness/gate.ts";

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
  expect(packed.bin.wgslirpy).toBe("./bin/wgslirpy.js");
  expect(readFileSync(join(dir, packed.bin.wgslirpy), "utf8")).toStartWith("#!/usr/bin/env node\n");
  expect(readFileSync(join(dir, "README.md"), "utf8")).toContain("bun run build");
  // Dependencies as an install would provide them (the repo's own node_modules).
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const run = Bun.spawnSync([process.execPath, join(dir, packed.bin.wgslirpy), "--version"], { cwd: tmp });
  expect(run.stdout.toString()).toBe(`wgslirpy ${pkg.version}\n`);
  expect(run.exitCode).toBe(0);
  // Under Node (an `npm install -g`): hands over to bun, or says what to do when there is none.
  const node = optionalTool("node");
  if (node) {
    const viaNode = Bun.spawnSync([node, join(dir, packed.bin.wgslirpy), "--version"], {
      cwd: tmp,
      env: { PATH: process.env.PATH ?? "", WGSLIRPY_BUN: process.execPath },
    });
    expect([viaNode.exitCode, viaNode.stdout.toString()]).toEqual([0, `wgslirpy ${pkg.version}\n`]);
    const noBun = Bun.spawnSync([node, join(dir, packed.bin.wgslirpy), "--version"], {
      cwd: tmp,
      env: { PATH: "/nonexistent", WGSLIRPY_BUN: "/nonexistent/bun" },
    });
    expect(noBun.exitCode).toBe(1);
    expect(noBun.stderr.toString()).toBe(
      "wgslirpy: error: needs Bun >= 1.4.4 (npm install -g bun), or use the single binary (bun run build)\n",
    );
  } else console.log("node not installed: skipped the Node launcher check");
});
