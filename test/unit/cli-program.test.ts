// The command tree is citty's (program.ts): dispatch through citty's runCommand, --help and
// --version read from the citty definitions, strict parsing kept ours.
import { expect, test } from "bun:test";
import type { CommandDef } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { MAIN_FLAGS, REPLAY_FLAGS, UP_FLAGS } from "../../src/cli/flags.ts";
import { flagSynopsis } from "../../src/cli/help.ts";
import { type CliIo, runCli } from "../../src/cli/main.ts";
import { commandHelp, defineProgram, type ProgramActions, runProgram } from "../../src/cli/program.ts";

async function cli(argv: string[], columns?: number) {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    env: {},
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    readFile: () => {
      throw new Error("no files here");
    },
    readStdin: async () => "",
    home: () => "/nonexistent",
    interfaces: () => ({}),
    columns: () => columns,
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

/** Actions that record what ran with which arguments. */
function recorder() {
  const calls: [string, string[]][] = [];
  const act = (name: string) => async (args: string[]) => {
    calls.push([name, args]);
    return 7;
  };
  const actions: ProgramActions = {
    main: act("main"),
    up: act("up"),
    status: act("status"),
    genkey: act("genkey"),
    pubkey: act("pubkey"),
    replay: act("replay"),
  };
  return { calls, actions, io: { stdout: () => {}, helpWidth: () => 80 } };
}

test("a subcommand is the first argument only; everything else is the main command's, whole", async () => {
  const cases: [string[], [string, string[]]][] = [
    [
      ["up", "--dry-run", "-b", "127.0.0.1:1"],
      ["up", ["--dry-run", "-b", "127.0.0.1:1"]],
    ],
    [
      ["replay", "x.pcap"],
      ["replay", ["x.pcap"]],
    ],
    [
      ["-b", "127.0.0.1:1", "up"],
      ["main", ["-b", "127.0.0.1:1", "up"]],
    ],
    [
      ["--", "up"],
      ["main", ["--", "up"]],
    ],
    [
      ["-k", "KEY", "stray"],
      ["main", ["-k", "KEY", "stray"]],
    ],
    [[], ["main", []]],
  ];
  for (const [argv, expected] of cases) {
    const r = recorder();
    expect(await runProgram(argv, r.actions, r.io)).toBe(7);
    expect(r.calls).toEqual([expected]);
  }
});

test("the strict parser sees what citty would have taken for a command", async () => {
  expect(await cli(["--no-uapi", "up"])).toEqual({
    code: 2,
    stdout: "",
    stderr: 'wgslirpy: error: unexpected argument "up" (see --help)\n',
  });
  expect((await cli(["--", "up"])).stderr).toBe('wgslirpy: error: unexpected argument "up" (see --help)\n');
});

test("--help before a command name is the main help; after it, the command's", async () => {
  const main = await cli(["--help", "up"]);
  expect(main.code).toBe(0);
  expect(main.stdout).toStartWith(`Expose internet access without root using WireGuard (wgslirpy ${pkg.version})\n`);
  expect(main.stdout).toContain("\nCommands:\n  up ");
  const up = await cli(["up", "--help"]);
  expect(up.stdout).toContain("\nUsage: wgslirpy up [OPTIONS]\n");
  expect(up.stdout).not.toContain("Commands:");
});

test("--version is citty's meta.version, the package version", async () => {
  expect(await cli(["--version"])).toEqual({ code: 0, stdout: `wgslirpy ${pkg.version}\n`, stderr: "" });
});

test("help is rendered from the citty definitions: every flag, command and argument", async () => {
  const { root } = defineProgram(recorder().actions, recorder().io);
  const main = await commandHelp(root);
  expect(main.name).toBe("wgslirpy");
  expect(main.commands?.map((c) => c.name)).toEqual(["up", "status", "genkey", "pubkey", "replay"]);
  expect(main.flags.map(flagSynopsis)).toEqual(MAIN_FLAGS.map(flagSynopsis));
  const subs = root.subCommands as Record<string, CommandDef>;
  const up = await commandHelp(subs.up as CommandDef, "wgslirpy");
  expect(up.name).toBe("wgslirpy up");
  expect(up.flags.map(flagSynopsis)).toEqual(UP_FLAGS.map(flagSynopsis));
  const replay = await commandHelp(subs.replay as CommandDef, "wgslirpy");
  expect(replay.flags.map(flagSynopsis)).toEqual(REPLAY_FLAGS.map(flagSynopsis));
  expect(replay.positionals?.map((p) => p.name)).toEqual(["FILE"]);
});

test("help after a run lists only the spellings the strict parser accepts (citty adds camelCase aliases when it parses)", async () => {
  const r = recorder();
  const first = await cli(["--help"]);
  await runProgram(["-b", "127.0.0.1:1", "--log-level", "debug"], r.actions, r.io);
  await runProgram(["up", "--state-dir", "/x"], r.actions, r.io);
  expect(await cli(["--help"])).toEqual(first);
  const up = await cli(["up", "--help"]);
  expect(up.stdout).not.toContain("stateDir");
  expect(first.stdout).not.toContain("bindIpPort");
});

test("help wraps to the terminal (at most 100 columns), 80 when piped, never colour", async () => {
  for (const [columns, width] of [
    [undefined, 80],
    [90, 90],
    [200, 100],
  ] as const) {
    const r = await cli(["up", "--help"], columns);
    const lines = r.stdout.split("\n");
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(width);
    expect(Math.max(...lines.map((l) => l.length))).toBeGreaterThan(width - 12);
    expect(r.stdout).not.toContain("\x1b");
  }
});
