import { describe, expect, test } from "bun:test";
import SEED from "../../fixtures/keys/seed-readme.json";
import { type CliIo, EXIT_USAGE, runCli } from "../../src/cli/main.ts";
import { parseGatewayArgs } from "../../src/cli/parse.ts";
import { parseUpArgs } from "../../src/cli/up.ts";

const GW_PRIV = SEED.gateway.privateKey;
const PEER_PUB = SEED.peer.publicKey;
const BASE = ["-k", GW_PRIV, "-K", PEER_PUB, "-b", "127.0.0.1:0"];
const ctx = { env: {}, readFile: () => "" };

describe("--allow / --deny", () => {
  test("keep command-line order across both flags", () => {
    const o = parseGatewayArgs(
      [...BASE, "--deny", "10.0.0.5", "--allow=10.0.0.0/8", "--deny", "0.0.0.0/0:25", "--allow", "[::1]:53"],
      ctx,
    );
    expect(o.policy).toEqual([
      { action: "deny", rule: "10.0.0.5" },
      { action: "allow", rule: "10.0.0.0/8" },
      { action: "deny", rule: "0.0.0.0/0:25" },
      { action: "allow", rule: "[::1]:53" },
    ]);
  });

  test("absent when not given", () => {
    expect("policy" in parseGatewayArgs(BASE, ctx)).toBe(false);
  });

  test("also on `up`", () => {
    const a = parseUpArgs(["--allow", "127.0.0.1/32:8080"], {});
    expect(a.options.policy).toEqual([{ action: "allow", rule: "127.0.0.1/32:8080" }]);
  });

  test("a bad rule is one line on stderr and exit status 2", async () => {
    const err: string[] = [];
    const io: CliIo = {
      env: {},
      stdout: () => {},
      stderr: (t) => err.push(t),
      readFile: () => "",
      readStdin: async () => "",
      home: () => "/nonexistent",
      interfaces: () => ({}),
    };
    for (const [flag, rule, msg] of [
      ["--allow", "10.0.0.0/33", 'invalid --allow "10.0.0.0/33": prefix length must be 0..32'],
      ["--deny", "example.com", 'invalid --deny "example.com": expected CIDR[:PORTS]'],
      ["--deny", "1.2.3.4:99999", 'invalid --deny "1.2.3.4:99999": bad port or range "99999"'],
    ] as const) {
      err.length = 0;
      expect(await runCli([...BASE, flag, rule], io)).toBe(EXIT_USAGE);
      expect(err.length).toBe(1);
      expect(err[0]!.startsWith(`wgslirpy: error: ${msg}`)).toBe(true);
      expect(err[0]!.trimEnd().includes("\n")).toBe(false);
    }
  });
});
