// Self-time shares of a `bun --cpu-prof` profile (Chrome .cpuprofile): by function and by source
// file, the top entries. Native work shows up as the builtin that called it (see
// /work/shared/notes/performance.md).
//
//   bun bench/profile.ts FILE.cpuprofile [--top N]
import { readFileSync } from "node:fs";
import { basename } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file) {
  console.error("usage: bun bench/profile.ts FILE.cpuprofile [--top N]");
  process.exit(2);
}
const ti = process.argv.indexOf("--top");
const top = ti > 0 ? Number(process.argv[ti + 1]) : 15;
const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i] ?? 0;
  const id = p.samples[i] as number;
  selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  total += dt;
}
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
let idle = 0;
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  if (!n) continue;
  const f = n.callFrame;
  if (f.functionName === "(idle)" || f.functionName === "(program)") {
    idle += us;
    continue;
  }
  const where = f.url ? basename(f.url) : "(native)";
  const fn = `${f.functionName || "(anonymous)"} ${where}${f.url ? `:${f.lineNumber + 1}` : ""}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  byFile.set(where, (byFile.get(where) ?? 0) + us);
}
const busy = total - idle;
const show = (title: string, m: Map<string, number>) => {
  console.log(
    `\n${title} (share of ${(busy / 1e6).toFixed(1)} s busy, ${((100 * idle) / Math.max(1, total)).toFixed(0)}% idle)`,
  );
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * v) / Math.max(1, busy)).toFixed(1).padStart(6)}%  ${k}`);
  }
};
show("self time by function", byFunction);
show("self time by file", byFile);
