import { expect, test } from "bun:test";
import { MAIN_FLAGS, UP_FLAGS } from "../../src/cli/flags.ts";
import { flagSynopsis, helpWidth, renderHelp, wrap } from "../../src/cli/help.ts";

test("helpWidth: the terminal's columns, capped at 100; 80 when not a terminal", () => {
  expect([undefined, 0, 50, 80, 132, 250].map(helpWidth)).toEqual([80, 80, 50, 80, 100, 100]);
  expect(helpWidth(20)).toBe(40);
});

test("wrap keeps words whole and lines within the width", () => {
  expect(wrap("a bb ccc dddd eeeee", 7)).toEqual(["a bb", "ccc", "dddd", "eeeee"]);
  expect(wrap("averyveryverylongword x", 5)).toEqual(["averyveryverylongword", "x"]);
});

test("synopsis names every spelling: short, long, alias", () => {
  const dry = UP_FLAGS.find((f) => f.long === "print-config-only");
  expect(dry && flagSynopsis(dry)).toBe("--print-config-only, --dry-run");
  const b = MAIN_FLAGS.find((f) => f.long === "bind-ip-port");
  expect(b && flagSynopsis(b)).toBe("-b, --bind-ip-port <IP:PORT>");
});

for (const width of [40, 60, 80, 100]) {
  test(`rendered at ${width} columns: no line wider (but a long flag name or word), every flag listed`, () => {
    const text = renderHelp({ name: "wgslirpy", description: "d", usage: "[OPTIONS]", flags: MAIN_FLAGS }, width);
    for (const line of text.split("\n")) {
      // Only a flag's own synopsis line or one unbreakable word (an example) may be wider.
      if (line.length > width) expect(line.startsWith("  -") || !line.trim().includes(" "), line).toBe(true);
    }
    for (const f of MAIN_FLAGS) expect(text).toContain(`--${f.long}`);
    expect(text).not.toContain("\x1b");
  });
}
