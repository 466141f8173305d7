import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SEED from "../../fixtures/keys/seed-readme.json";
import { run as runCommand } from "../../harness/netns.ts";
import { parseUpArgs, upGatewayOptions } from "../../src/cli/up.ts";
import {
  GATEWAY_KEY_FILE,
  loadOrCreateKeys,
  PEER_KEY_FILE,
  resolveStateDir,
  StateError,
} from "../../src/state/keys.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { keyToBase64, parseKey, publicKeyOf } from "../../src/wireguard/keys.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const GW_PRIV = SEED.gateway.privateKey;
const GW_PUB = SEED.gateway.publicKey;
const PEER_PRIV = SEED.peer.privateKey;
const PEER_PUB = SEED.peer.publicKey;

const tmp = mkdtempSync(join(tmpdir(), "wgslirpy-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}): Promise<Run> {
  const r = await runCommand(["bun", CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: tmp, NO_COLOR: "1", ...opts.env },
    input: opts.stdin,
  });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

describe("wgslirpy: bad input exits 2 with one stderr line", () => {
  const keyFile = join(tmp, "short.key");
  writeFileSync(keyFile, "AAECAwQFBgcICQoLDA0ODw==\n");
  const ok = ["-K", PEER_PUB, "-b", "127.0.0.1:51820"];
  const cases: [string, string[], string][] = [
    ["no arguments", [], "missing --peer-key (-K)"],
    ["neither -k nor -f", ok, "set exactly one of --private-key (-k) or --private-key-file (-f)"],
    [
      "both -k and -f",
      ["-k", GW_PRIV, "-f", keyFile, ...ok],
      "set exactly one of --private-key (-k) or --private-key-file (-f)",
    ],
    [
      "wrong base64",
      ["-k", "%%%", ...ok],
      "invalid --private-key (-k): expected a base64 32-byte key (44 characters), got not base64",
    ],
    [
      "wrong key length in a file",
      ["-f", keyFile, ...ok],
      `invalid key in --private-key-file (-f) "${keyFile}": expected a base64 32-byte key (44 characters), got 16 bytes instead of 32`,
    ],
    ["missing -K", ["-k", GW_PRIV, "-b", "127.0.0.1:1"], "missing --peer-key (-K)"],
    ["missing -b", ["-k", GW_PRIV, "-K", PEER_PUB], "missing --bind-ip-port (-b)"],
    [
      "bad socket address",
      ["-k", GW_PRIV, "-K", PEER_PUB, "-b", "1.2.3.4"],
      'invalid --bind-ip-port (-b) "1.2.3.4": expected IP:PORT or [IPv6]:PORT',
    ],
    [
      "bad triplet",
      ["-k", GW_PRIV, ...ok, "-t", "1.2.3.4:5,,nowhere"],
      'invalid --incoming-tcp (-t) "1.2.3.4:5,,nowhere": DST "nowhere" is not a socket address (IP:PORT or [IPv6]:PORT)',
    ],
    ["unknown flag", ["--nope"], 'unknown option "--nope" (see --help)'],
    ["up with a key flag", ["up", "-K", PEER_PUB], 'unknown option "-K" (see --help)'],
    [
      "garbage WGSLIRPY_LOG",
      ["-k", GW_PRIV, ...ok],
      'invalid WGSLIRPY_LOG "chatty": expected one of error, warn, info, debug, trace',
    ],
  ];
  for (const [name, args, message] of cases) {
    test(name, async () => {
      const r = await run(args, { env: name === "garbage WGSLIRPY_LOG" ? { WGSLIRPY_LOG: "chatty" } : {} });
      expect(r).toEqual({ code: 2, stdout: "", stderr: `wgslirpy: error: ${message}\n` });
    });
  }

  test("pubkey with garbage on stdin", async () => {
    const r = await run(["pubkey"], { stdin: "hello\n" });
    expect(r).toEqual({
      code: 2,
      stdout: "",
      stderr:
        "wgslirpy: error: invalid private key on stdin: expected a base64 32-byte key (44 characters), got 3 bytes instead of 32\n",
    });
  });

  test("corrupt state file", async () => {
    const dir = join(tmp, "corrupt");
    loadOrCreateKeys(dir);
    writeFileSync(join(dir, PEER_KEY_FILE), "garbage\n");
    const r = await run(["up", "--print-config-only"], { env: { WGSLIRPY_STATE_DIR: dir } });
    expect(r).toEqual({
      code: 2,
      stdout: "",
      stderr: `wgslirpy: error: ${join(dir, PEER_KEY_FILE)} does not hold a base64 32-byte key; fix or delete it\n`,
    });
  });
});

describe("wgslirpy: helpers", () => {
  test("--help exits 0 and lists every seed flag", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    for (const f of [
      "-k, --private-key",
      "-f, --private-key-file",
      "-K, --peer-key",
      "-p, --peer-endpoint",
      "-a, --keepalive-interval",
      "-b, --bind-ip-port",
      "-D, --dns",
      "-P, --pingable",
      "--mtu",
      "--tcp-buffer-size",
      "--transmit-queue-capacity",
      "-u, --incoming-udp",
      "-t, --incoming-tcp",
      "--preshared-key-file",
      "--udp-idle-timeout",
      "--log-level",
      "--pcap",
    ]) {
      expect(r.stdout).toContain(f);
    }
  });

  test("pubkey matches wg pubkey on the seed README's keys", async () => {
    expect(await run(["pubkey"], { stdin: `${GW_PRIV}\n` })).toEqual({ code: 0, stdout: `${GW_PUB}\n`, stderr: "" });
    expect(await run(["pubkey"], { stdin: PEER_PRIV })).toEqual({ code: 0, stdout: `${PEER_PUB}\n`, stderr: "" });
  });

  test("genkey prints a clamped key that pubkey accepts", async () => {
    const r = await run(["genkey"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    const k = parseKey(r.stdout);
    expect((k[0] as number) & 7).toBe(0);
    expect((k[31] as number) & 0xc0).toBe(0x40);
    const two = await run(["genkey"]);
    expect(two.stdout).not.toBe(r.stdout);
  });
});

function configValue(config: string, key: string): string {
  const m = new RegExp(`^${key} = (.*)$`, "m").exec(config);
  if (!m) throw new Error(`no ${key} in config`);
  return m[1] as string;
}

describe("wgslirpy up", () => {
  test("prints a peer config matching the kept keys, stable across runs, files 0600", async () => {
    const dir = join(tmp, "state-a");
    const env = { WGSLIRPY_STATE_DIR: dir, WGSLIRPY_LOG: "error" };
    const first = await run(["up", "--print-config-only", "-b", "127.0.0.1:51999"], { env });
    expect(first.code).toBe(0);
    expect(first.stderr).toBe("");
    const gwPriv = parseKey(readFileSync(join(dir, GATEWAY_KEY_FILE), "utf8"));
    const peerPriv = parseKey(readFileSync(join(dir, PEER_KEY_FILE), "utf8"));
    expect(first.stdout).toBe(
      [
        `# wgslirpy quick start: wg-quick config for the peer (keys kept in ${dir})`,
        "[Interface]",
        `PrivateKey = ${keyToBase64(peerPriv)}`,
        "Address = 10.0.2.15/32, fd00::15/128",
        "DNS = 10.0.2.1",
        "MTU = 1420",
        "",
        "[Peer]",
        `PublicKey = ${keyToBase64(publicKeyOf(gwPriv))}`,
        "Endpoint = 127.0.0.1:51999",
        "AllowedIPs = 0.0.0.0/0, ::/0",
        "PersistentKeepalive = 25",
        "",
      ].join("\n"),
    );
    // What the gateway is started with: its private key and the public key of the config's PrivateKey.
    const keys = loadOrCreateKeys(dir);
    const opts = upGatewayOptions(parseUpArgs(["-b", "127.0.0.1:51999"], {}), keys);
    expect(opts.peerPublicKey).toEqual(publicKeyOf(parseKey(configValue(first.stdout, "PrivateKey"))));
    expect(publicKeyOf(opts.privateKey as Uint8Array)).toEqual(parseKey(configValue(first.stdout, "PublicKey")));
    expect(opts.bind).toEqual({ address: "127.0.0.1", port: 51999 });
    expect(opts.dns).toEqual({ address: "10.0.2.1", port: 53 });
    expect(opts.pingable).toBe("10.0.2.1");

    const second = await run(["up", "--dry-run", "-b", "127.0.0.1:51999"], { env });
    expect(second).toEqual(first);
    expect(statSync(join(dir, GATEWAY_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, PEER_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  test("state dir from XDG_STATE_HOME, --public-endpoint, overridden DNS", async () => {
    const xdg = join(tmp, "xdg");
    const r = await run(
      ["up", "--print-config-only", "--public-endpoint", "vpn.example.org:4500", "-D", "10.7.0.1:53", "--mtu", "1380"],
      { env: { XDG_STATE_HOME: xdg, WGSLIRPY_LOG: "error" } },
    );
    expect(r.code).toBe(0);
    expect(configValue(r.stdout, "Endpoint")).toBe("vpn.example.org:4500");
    expect(configValue(r.stdout, "DNS")).toBe("10.7.0.1");
    expect(configValue(r.stdout, "MTU")).toBe("1380");
    const peerPriv = readFileSync(join(xdg, "wgslirpy", PEER_KEY_FILE), "utf8").trim();
    expect(configValue(r.stdout, "PrivateKey")).toBe(peerPriv);
  });

  test("logs key creation on stderr, not stdout", async () => {
    const dir = join(tmp, "state-log");
    const r = await run(["up", "--print-config-only", "-b", "127.0.0.1:1"], {
      env: { WGSLIRPY_STATE_DIR: dir, WGSLIRPY_LOG: "info" },
    });
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith("# wgslirpy quick start")).toBe(true);
    expect(r.stderr).toContain(`created gateway.key and peer.key in ${dir}`);
  });
});

describe("state directory", () => {
  test("resolution order", () => {
    expect(resolveStateDir({ WGSLIRPY_STATE_DIR: "/a", XDG_STATE_HOME: "/b" }, "/home/u")).toBe("/a");
    expect(resolveStateDir({ XDG_STATE_HOME: "/b" }, "/home/u")).toBe("/b/wgslirpy");
    expect(resolveStateDir({}, "/home/u")).toBe("/home/u/.local/state/wgslirpy");
  });

  test("creates once, then reuses; deterministic with a seeded Random", () => {
    const dir = join(tmp, "seeded");
    const a = loadOrCreateKeys(dir, new SeededRandom(1));
    expect(a.created).toEqual([GATEWAY_KEY_FILE, PEER_KEY_FILE]);
    const b = loadOrCreateKeys(dir, new SeededRandom(2));
    expect(b.created).toEqual([]);
    expect(b.gatewayPrivate).toEqual(a.gatewayPrivate);
    expect(b.peerPrivate).toEqual(a.peerPrivate);
    expect(b.peerPublic).toEqual(publicKeyOf(a.peerPrivate));
    expect(a.gatewayPrivate).not.toEqual(a.peerPrivate);
    const again = loadOrCreateKeys(join(tmp, "seeded-2"), new SeededRandom(1));
    expect(again.gatewayPrivate).toEqual(a.gatewayPrivate);
    expect(readFileSync(join(dir, GATEWAY_KEY_FILE), "utf8")).toBe(`${keyToBase64(a.gatewayPrivate)}\n`);
  });

  test("a missing peer key is created next to an existing gateway key", () => {
    const dir = join(tmp, "half");
    loadOrCreateKeys(dir);
    rmSync(join(dir, PEER_KEY_FILE));
    const k = loadOrCreateKeys(dir);
    expect(k.created).toEqual([PEER_KEY_FILE]);
  });

  test("group-readable key files are reported", async () => {
    const dir = join(tmp, "loose");
    loadOrCreateKeys(dir);
    const { chmodSync } = await import("node:fs");
    chmodSync(join(dir, GATEWAY_KEY_FILE), 0o644);
    expect(loadOrCreateKeys(dir).looseFiles).toEqual([join(dir, GATEWAY_KEY_FILE)]);
  });

  test("an unusable directory is a StateError", () => {
    const file = join(tmp, "plainfile");
    writeFileSync(file, "x");
    expect(() => loadOrCreateKeys(join(file, "sub"))).toThrow(StateError);
  });
});
