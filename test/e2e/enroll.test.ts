// `wgslirpy up --add-peer NAME --qr FILE`: the config it prints equals what Debian's zbarimg decodes
// from the PNG and from the terminal QR code; --show-config NAME prints it again; --list and
// --remove-peer manage the state directory; `up` then serves the enrolled peers.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { testOrSkip } from "../../harness/gate.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const dir = mkdtempSync(join(tmpdir(), "wgslirpy-enroll-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Each run of the CLI is a whole Bun start (~0.1 s idle, seconds on a loaded 2-core machine): every
 * spawn is bounded by SPAWN_MS on its own (a hang fails that step with exit -1), and a test's limit is
 * its number of spawns times that bound, not a guess of the whole test's wall time.
 */
const SPAWN_MS = 10_000;
const spawnBudget = (spawns: number, extraMs = 0) => spawns * SPAWN_MS + extraMs;
/** Bounds of the running gateway's steps: a handshake, an echo reply that comes, one that must not. */
const HANDSHAKE_MS = 10_000;
const REPLY_MS = 10_000;
const NO_REPLY_MS = 1500;

/** `bun src/cli.ts ARGS` to completion, bounded by SPAWN_MS (killed after it: exit code -1). */
function spawnCli(args: string[], env: Record<string, string>): { code: number; stdout: string; stderr: string } {
  const p = Bun.spawnSync(["bun", CLI, ...args], { env, timeout: SPAWN_MS });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  return spawnCli(["up", ...args], { PATH: process.env.PATH ?? "", WGSLIRPY_STATE_DIR: join(dir, "state") });
}

/** zbarimg's decoding of a PNG (the raw text, no symbology prefix). */
function zbar(png: string): string {
  const p = Bun.spawnSync(["zbarimg", "--raw", "-q", png], { timeout: SPAWN_MS });
  if (p.exitCode !== 0) throw new Error(`zbarimg exit ${p.exitCode}: ${p.stderr.toString()}`);
  // zbarimg ends the symbol's text with one newline of its own.
  return p.stdout.toString().replace(/\n$/, "");
}

/** Draw the terminal QR code (two modules per character: █ light, ▀ light above, ▄ light below). */
function terminalQrToPng(text: string, file: string): void {
  const rows = text.split("\n").filter((l) => l.length > 0);
  const width = Math.max(...rows.map((r) => [...r].length));
  const scale = 6;
  const png = new PNG({
    width: (width + 8) * scale,
    height: (rows.length * 2 + 8) * scale,
    colorType: 0,
    inputColorType: 0,
    inputHasAlpha: false,
  });
  png.data = Buffer.alloc(png.width * png.height, 0xff);
  const dark = (mx: number, my: number) => {
    for (let dy = 0; dy < scale; dy++) {
      const start = ((my + 4) * scale + dy) * png.width + (mx + 4) * scale;
      png.data.fill(0, start, start + scale);
    }
  };
  rows.forEach((row, y) => {
    [...row].forEach((ch, x) => {
      const upperLight = ch === "█" || ch === "▀";
      const lowerLight = ch === "█" || ch === "▄";
      if (!upperLight) dark(x, 2 * y);
      if (!lowerLight) dark(x, 2 * y + 1);
    });
  });
  writeFileSync(file, PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }));
}

const zbarSkip = Bun.which("zbarimg") ? null : "zbarimg (Debian zbar-tools)";

testOrSkip(zbarSkip)(
  "up --add-peer: the QR codes (PNG and terminal) decode to exactly the printed config",
  () => {
    const qr = join(dir, "phone.png");
    const r = cli(["--add-peer", "phone", "--qr", qr, "--no-uapi", "-b", "127.0.0.1:51999"]);
    expect(r.code, r.stderr).toBe(0);
    const printed = r.stdout.slice(0, r.stdout.indexOf("\n\n", r.stdout.indexOf("PersistentKeepalive")) + 1);
    expect(printed).toMatch(/^# wgslirpy peer phone: wg-quick config/);
    expect(printed).toContain("\nAddress = 10.0.2.16/32, fd00::16/128\n");
    expect(printed).toContain("\nEndpoint = 127.0.0.1:51999\n");
    expect(printed).toMatch(/\nPrivateKey = [A-Za-z0-9+/]{43}=\n/);
    expect(statSync(qr).mode & 0o777).toBe(0o600);
    expect(zbar(qr)).toBe(printed);
    const drawn = join(dir, "terminal.png");
    terminalQrToPng(r.stdout.slice(printed.length), drawn);
    expect(zbar(drawn)).toBe(printed);
    expect(r.stderr).toContain("peer phone enrolled (10.0.2.16/32, fd00::16/128)");
    expect(r.stderr).not.toContain(printed.match(/PrivateKey = (\S+)/)![1]!);

    // Shown again on request, identical; the private key stays in a 0600 file.
    const again = cli(["--show-config", "phone", "--no-uapi", "-b", "127.0.0.1:51999"]);
    expect(again.stdout.startsWith(printed)).toBe(true);
    expect(statSync(join(dir, "state", "peers", "phone.conf")).mode & 0o777).toBe(0o600);
  },
  spawnBudget(4), // 2 CLI runs, 2 zbarimg
);

test(
  "up --list / --remove-peer / next free address; bad names and combinations exit 2",
  () => {
    expect(cli(["--add-peer", "laptop", "--no-uapi"]).code).toBe(0);
    expect(cli(["--add-peer", "tablet", "--no-uapi"]).code).toBe(0);
    const list = cli(["--list"]).stdout.trim().split("\n");
    expect(list.map((l) => [l.split("\t")[0], l.split("\t")[2]])).toEqual([
      ["quick-start", "10.0.2.15/32, fd00::15/128"],
      ["laptop", "10.0.2.17/32, fd00::17/128"],
      ["phone", "10.0.2.16/32, fd00::16/128"],
      ["tablet", "10.0.2.18/32, fd00::18/128"],
    ]);
    expect(cli(["--remove-peer", "laptop", "--no-uapi"]).code).toBe(0);
    expect(cli(["--add-peer", "watch", "--no-uapi"]).stdout).toContain("Address = 10.0.2.17/32, fd00::17/128");
    const dup = cli(["--add-peer", "phone", "--no-uapi"]);
    expect([dup.code, dup.stderr.trim()]).toEqual([2, 'wgslirpy: error: a peer named "phone" exists already']);
    expect(cli(["--remove-peer", "nobody"]).stderr.trim()).toBe(
      'wgslirpy: error: no peer named "nobody" (see up --list)',
    );
    expect(cli(["--add-peer", "../x"]).code).toBe(2);
    expect(cli(["--list", "--add-peer", "x"]).stderr.trim()).toBe(
      "wgslirpy: error: --add-peer and --list cannot be combined",
    );
    expect(cli(["--qr", "x.png"]).stderr.trim()).toBe("wgslirpy: error: --qr needs --add-peer or --show-config NAME");
    const bad = join(dir, "state", "peers", "broken.conf");
    writeFileSync(bad, "nonsense\n", { mode: 0o600 });
    expect(cli(["--list"]).stderr.trim()).toBe(`wgslirpy: error: ${bad}: not a wgslirpy peer file; fix or delete it`);
    rmSync(bad);
    expect(readFileSync(join(dir, "state", "peers", "tablet.conf"), "utf8")).toMatch(
      /^# wgslirpy peer tablet\nPrivateKey = /,
    );
  },
  spawnBudget(11), // 11 CLI runs
);

test(
  "a running `up` serves enrolled peers: --add-peer applies at once over UAPI, --remove-peer cuts the peer off",
  async () => {
    const { TestClient } = await import("./client.ts");
    const { parseKey, publicKeyOf } = await import("../../src/wireguard/keys.ts");
    const { until } = await import("./client.ts");
    const sock = join(dir, "up.sock");
    const env = { PATH: process.env.PATH ?? "", WGSLIRPY_STATE_DIR: join(dir, "state2") };
    // Enrolled before the start: served from the state directory.
    const first = spawnCli(["up", "--add-peer", "early", "--no-uapi"], env);
    expect(first.code).toBe(0);
    const gw = Bun.spawn(["bun", CLI, "up", "-b", "127.0.0.1:0", "--uapi", sock], {
      env,
      stdout: "pipe",
      stderr: "pipe",
    });
    let log = "";
    const reader = gw.stderr.getReader();
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        log += new TextDecoder().decode(value);
      }
    })();
    const clients: { close(): void }[] = [];
    try {
      await until(
        () => /started: .* UDP 127\.0\.0\.1:(\d+)/.test(log) && log.includes("UAPI on"),
        SPAWN_MS,
        `gateway start:\n${log}`,
      );
      expect(log).toContain("serving 1 enrolled peer(s): early");
      const port = Number(log.match(/UDP 127\.0\.0\.1:(\d+)/)![1]);
      const gwPublic = publicKeyOf(parseKey(readFileSync(join(dir, "state2", "gateway.key"), "utf8")));
      const keyOf = (name: string) => {
        const text = readFileSync(join(dir, "state2", "peers", `${name}.conf`), "utf8");
        return parseKey(text.match(/PrivateKey = (\S+)/)![1]!);
      };
      const connect = async (name: string, host: number) => {
        const c = await TestClient.connect({
          privateKey: keyOf(name),
          gatewayPublicKey: gwPublic,
          gateway: { address: "127.0.0.1", port },
        });
        c.source = { v4: `10.0.2.${host}`, v6: `fd00::${host}` };
        clients.push(c);
        return c;
      };
      // An answered ping returns at its reply (waiting up to REPLY_MS on a slow machine); a ping that
      // must go unanswered is given NO_REPLY_MS, far above an idle round trip (~1 ms).
      const pings = async (c: Awaited<ReturnType<typeof connect>>, seq: number, expectReply: boolean) => {
        const before = c.rawReceived.length;
        c.ping("10.0.2.1", 9, seq, new TextEncoder().encode("hello"));
        try {
          await until(() => c.rawReceived.length > before, expectReply ? REPLY_MS : NO_REPLY_MS, "echo reply");
          return true;
        } catch {
          return false;
        }
      };
      const early = await connect("early", 16);
      await early.handshake(HANDSHAKE_MS);
      expect(await pings(early, 1, true)).toBe(true);

      const added = spawnCli(["up", "--add-peer", "late", "--uapi", sock], env);
      expect(added.stderr).toContain(
        `peer late enrolled (10.0.2.17/32, fd00::17/128): applied to the running gateway (${sock})`,
      );
      const late = await connect("late", 17);
      await late.handshake(HANDSHAKE_MS);
      expect(await pings(late, 1, true)).toBe(true);
      // Its address is its own: from early's address the packets are dropped.
      late.source = { v4: "10.0.2.16", v6: "fd00::16" };
      expect(await pings(late, 2, false)).toBe(false);
      late.source = { v4: "10.0.2.17", v6: "fd00::17" };

      // `status` names the peers from the state directory and shows their handshakes and transfer.
      const status = spawnCli(["status", "--uapi", sock], env);
      const text = status.stdout;
      expect(status.code, status.stderr).toBe(0);
      expect(text).toContain(
        `interface: ${sock}\n  public key: ${Buffer.from(gwPublic).toString("base64")}\n  listening port: ${port}\n  peers: 3 (2 with a handshake in the last 3 minutes)\n`,
      );
      const earlyKey = Buffer.from(publicKeyOf(keyOf("early"))).toString("base64");
      expect(text).toMatch(
        new RegExp(
          `peer: ${earlyKey.replace(/[+/]/g, "\\$&")} \\(early\\)\n  endpoint: 127\\.0\\.0\\.1:${early.transport.local.port}\n  allowed ips: 10\\.0\\.2\\.16/32, fd00::16/128\n  latest handshake: \\d+ s ago\n  transfer: \\d+ B received, \\d+ B sent`,
        ),
      );
      expect(text).toContain(
        "(quick-start)\n  endpoint: (none)\n  allowed ips: 0.0.0.0/0, ::/0\n  latest handshake: never\n  transfer: 0 B received, 0 B sent",
      );
      const nobody = spawnCli(["status", "--uapi", join(dir, "nothing.sock")], env);
      expect([nobody.code, nobody.stderr]).toEqual([
        2,
        `wgslirpy: error: cannot connect to ${join(dir, "nothing.sock")}: ENOENT (is the gateway running, with this --name?)\n`,
      ]);

      const removed = spawnCli(["up", "--remove-peer", "late", "--uapi", sock], env);
      expect(removed.stderr).toContain("peer late removed: applied to the running gateway");
      expect(await pings(late, 3, false)).toBe(false);
      expect(await pings(early, 2, true)).toBe(true);
    } finally {
      for (const c of clients) c.close();
      gw.kill("SIGTERM");
      await gw.exited;
      await pump;
    }
  },
  // 5 CLI runs and the gateway's start (each bounded by SPAWN_MS), 2 handshakes, 3 answered pings, 2 not.
  spawnBudget(6, 2 * HANDSHAKE_MS + 3 * REPLY_MS + 2 * NO_REPLY_MS),
);
