#!/usr/bin/env node
// The package's command. wgslirpy runs on Bun: under Bun this loads the CLI directly; under Node
// (e.g. after `npm install -g`) it hands over to `bun` when one is installed, and otherwise says
// what to do instead of failing with "/usr/bin/env: 'bun': No such file or directory".
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
if (process.versions.bun) {
  await import(cli);
} else {
  const r = spawnSync(process.env.WGSLIRPY_BUN || "bun", [cli, ...process.argv.slice(2)], { stdio: "inherit" });
  if (r.error && r.error.code === "ENOENT") {
    process.stderr.write(
      "wgslirpy: error: needs Bun >= 1.4.4 (npm install -g bun), or use the single binary (bun run build)\n",
    );
    process.exit(1);
  }
  if (r.error) {
    process.stderr.write(`wgslirpy: error: cannot start bun: ${r.error.message}\n`);
    process.exit(1);
  }
  process.exit(r.status ?? (r.signal === "SIGINT" ? 130 : 1));
}
