// harness/gate.ts: a suite whose prerequisite is missing skips on a developer's machine and fails,
// naming the prerequisite, under CI. Checked by running bun test on a throwaway suite both ways.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "wgslirpy-gate-"));
const gate = join(import.meta.dir, "../../harness/gate.ts");
writeFileSync(
  join(dir, "gated.test.ts"),
  `import { expect, test } from "bun:test";
import { describeOrSkip, optionalTool, testOrSkip } from ${JSON.stringify(gate)};
describeOrSkip("frobnicator missing", "needs a frobnicator", () => { test("runs", () => expect(1).toBe(1)); });
describeOrSkip(null, "needs nothing", () => { test("runs", () => expect(1).toBe(1)); });
testOrSkip("libfrob cannot load")("uses libfrob", () => expect(1).toBe(1));
test("optional tool", () => { expect(optionalTool("wgslirpy-no-such-tool")).toBeNull(); });
`,
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function bunTest(ci: string | undefined) {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  if (ci !== undefined) env.CI = ci;
  const p = Bun.spawn([process.execPath, "test", "gated.test.ts"], { cwd: dir, env, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code: await p.exited, text: out + err };
}

test("without CI: the gated suite and test skip, the run passes", async () => {
  for (const ci of [undefined, "", "false", "0"]) {
    const r = await bunTest(ci);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/^ 2 pass$/m);
    expect(r.text).toMatch(/^ 2 skip$/m);
  }
});

test("under CI: each missing prerequisite is a failing test that names it", async () => {
  const r = await bunTest("true");
  expect(r.code, r.text).not.toBe(0);
  expect(r.text).toContain("(fail) needs a frobnicator > prerequisite missing: frobnicator missing");
  expect(r.text).toContain("(fail) uses libfrob (prerequisite missing: libfrob cannot load)");
  expect(r.text).toContain("prerequisite missing: wgslirpy-no-such-tool");
  expect(r.text).toMatch(/^ 1 pass$/m);
  expect(r.text).toMatch(/^ 3 fail$/m);
  expect(r.text).not.toMatch(/ skip$/m);
});
