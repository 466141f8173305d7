// Startup is all-or-nothing (issue 9, build 6) and the CLI's help/usage behaviour (issue 13):
// each option that cannot be satisfied exits 2 within 2 s with one line naming what, where and
// why, and the WireGuard UDP port is free again afterwards.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SEED from "../../fixtures/keys/seed-readme.json";
import { StartupError, startGateway } from "../../src/index.ts";
import { parseKey } from "../../src/wireguard/keys.ts";
import { quietGateway } from "./quiet-gateway.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const REFERENCE = join(import.meta.dir, "cli-startup-reference.ts");
const GW_PRIV = SEED.gateway.privateKey;
const PEER_PUB = SEED.peer.publicKey;
const tmp = mkdtempSync(join(tmpdir(), "wgslirpy-startup-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A CLI run still going after this is killed (its exit code then fails the test's assertions). */
const KILL_MS = 10_000;
// Each test waits for at most 3 runs, each bounded by KILL_MS (a run and its reference side by side
// count once): that is a test's limit, not Bun's 5 s default, which loaded 2-core machines exceed.
setDefaultTimeout(3 * KILL_MS);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

async function run(args: string[], env: Record<string, string> = {}, script: string[] = [CLI]): Promise<Run> {
  const t0 = performance.now();
  const p = Bun.spawn(["bun", ...script, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: tmp, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => p.kill("SIGKILL"), KILL_MS);
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  clearTimeout(killer);
  return { code, stdout, stderr, ms: performance.now() - t0 };
}

/**
 * The same Bun start, modules, keys and gateway, started and closed at once (cli-startup-reference.ts):
 * on a loaded machine this alone takes seconds, and it says nothing of how a failed start ends.
 */
async function startupReference(): Promise<Run> {
  const r = await run([GW_PRIV, PEER_PUB], {}, [REFERENCE]);
  if (r.code !== 0) throw new Error(`the reference run failed (exit ${r.code}): ${r.stderr}`);
  return r;
}

/** A free UDP port on 127.0.0.1 (bound then released). */
async function freeUdpPort(): Promise<number> {
  const s = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
  const port = s.port;
  s.close();
  return port;
}

function freeTcpPort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** True when the UDP port can be bound again (nothing of the failed start holds it). */
async function udpPortFree(port: number): Promise<boolean> {
  try {
    const s = await Bun.udpSocket({ hostname: "127.0.0.1", port });
    s.close();
    return true;
  } catch {
    return false;
  }
}

describe("startup is all-or-nothing", () => {
  const tcpHolder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  afterAll(() => tcpHolder.stop(true));
  const busyTcp = tcpHolder.port;

  const cases: [string, (udp: number) => string[], (udp: number) => string][] = [
    [
      "the UDP port is taken",
      () => [],
      (udp) => `cannot bind the UDP socket (-b) to 127.0.0.1:${udp}: address already in use (EADDRINUSE)`,
    ],
    [
      "--pcap in a missing directory",
      () => ["--pcap", "/nonexistent-wgslirpy/x.pcap"],
      () => 'cannot create the pcap file "/nonexistent-wgslirpy/x.pcap": no such file or directory (ENOENT)',
    ],
    [
      "--stats-listen on a busy port",
      () => ["--stats-listen", `127.0.0.1:${busyTcp}`],
      () =>
        `cannot bind the stats server (--stats-listen) to 127.0.0.1:${busyTcp}: address already in use (EADDRINUSE)`,
    ],
    [
      "-t on a busy port",
      () => ["-t", `127.0.0.1:${busyTcp},,10.0.2.15:80`],
      () => `cannot bind TCP forward (-t) to 127.0.0.1:${busyTcp}: address already in use (EADDRINUSE)`,
    ],
    [
      "-u on an address this host does not have",
      () => ["-u", "192.0.2.1:5353,,10.0.2.15:53"],
      () => "cannot bind UDP forward (-u) to 192.0.2.1:5353: address not available on this host (EADDRNOTAVAIL)",
    ],
    [
      "--stats-listen after a good -t, both opened then closed",
      () => ["-t", `127.0.0.1:${freeTcpPort()},,10.0.2.15:80`, "--stats-listen", `127.0.0.1:${busyTcp}`],
      () =>
        `cannot bind the stats server (--stats-listen) to 127.0.0.1:${busyTcp}: address already in use (EADDRINUSE)`,
    ],
  ];
  for (const [name, extra, message] of cases) {
    test(name, async () => {
      const udp = await freeUdpPort();
      const holder =
        name === "the UDP port is taken" ? await Bun.udpSocket({ hostname: "127.0.0.1", port: udp }) : null;
      // The reference runs alongside, under the same load: the 2 s are what the failure adds (the
      // failed step, the cleanup and the exit), not the start of Bun and the gateway before it.
      const [r, reference] = await Promise.all([
        run(["-k", GW_PRIV, "-K", PEER_PUB, "-b", `127.0.0.1:${udp}`, ...extra(udp)], { WGSLIRPY_LOG: "error" }),
        startupReference(),
      ]);
      holder?.close();
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
        code: 2,
        stdout: "",
        stderr: `wgslirpy: error: ${message(udp)}\n`,
      });
      expect(r.ms - reference.ms).toBeLessThan(2000);
      expect(await udpPortFree(udp)).toBe(true);
    });
  }

  test("library: startGateway rejects with StartupError and leaves the UDP port free", async () => {
    const udp = await freeUdpPort();
    const err = await startGateway({
      mode: "wireguard",
      privateKey: parseKey(GW_PRIV),
      peerPublicKey: parseKey(PEER_PUB),
      ...quietGateway(udp),
      statsListen: { address: "127.0.0.1", port: busyTcp },
    }).catch((e) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as StartupError).code).toBe("EADDRINUSE");
    expect(await udpPortFree(udp)).toBe(true);
  });

  test("--pcap is created 0600, also over an existing 0644 file", async () => {
    const file = join(tmp, "cap.pcap");
    await Bun.write(file, "old");
    const { chmodSync } = await import("node:fs");
    chmodSync(file, 0o644);
    const udp = await freeUdpPort();
    const h = await startGateway({
      mode: "gue",
      ...quietGateway(udp),
      pcap: file,
    });
    await h.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(file).size).toBe(24); // a fresh pcap header, the old bytes truncated
  });
});

describe("stats server answers any HTTP/1.x request", () => {
  /** The most one request waits for the server to close (it closes within ms; a bound, not a wait). */
  const CLOSE_MS = 10_000;
  test("GET /healthz HTTP/1.0 without Host: 200 ok, nothing logged", async () => {
    const udp = await freeUdpPort();
    const lines: string[] = [];
    const { createConsola } = await import("consola");
    const log = createConsola({
      level: 5,
      reporters: [{ log: (o) => lines.push(`${o.type} ${o.args.map(String).join(" ")}`) }],
    });
    const h = await startGateway(
      {
        mode: "gue",
        ...quietGateway(udp),
        statsListen: { address: "127.0.0.1", port: 0 },
      },
      { log },
    );
    try {
      const port = h.statsLocal?.port as number;
      // Each request asks the server to close after its answer (HTTP/1.0, or Connection: close):
      // the answer is whole once the server closes. That close is awaited, not a fixed time, and a
      // server that never closes fails here by name instead of handing back a partial answer.
      const ask = async (request: string): Promise<string> => {
        const chunks: string[] = [];
        const closed = Promise.withResolvers<void>();
        await Bun.connect({
          hostname: "127.0.0.1",
          port,
          socket: {
            open: (s) => void s.write(request),
            data: (_s, d) => void chunks.push(new TextDecoder().decode(d)),
            close: () => closed.resolve(),
            end: (s) => void s.end(),
          },
        });
        const timer = setTimeout(
          () => closed.reject(new Error(`no close within ${CLOSE_MS} ms after ${JSON.stringify(chunks.join(""))}`)),
          CLOSE_MS,
        );
        try {
          await closed.promise;
        } finally {
          clearTimeout(timer);
        }
        return chunks.join("");
      };
      const before = lines.length;
      const r10 = await ask("GET /healthz HTTP/1.0\r\n\r\n");
      expect(r10).toMatch(/^HTTP\/1\.[01] 200 /);
      expect(r10.endsWith("\r\n\r\nok\n")).toBe(true);
      const m = await ask("GET /metrics HTTP/1.0\r\n\r\n");
      expect(m).toMatch(/^HTTP\/1\.[01] 200 /);
      expect(m).toContain("wgslirpy_");
      const nf = await ask("GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(nf).toMatch(/^HTTP\/1\.1 404 /);
      expect(lines.slice(before).filter((l) => /error|Error|at /.test(l))).toEqual([]);
    } finally {
      await h.close();
    }
  });
});

describe("help and usage", () => {
  for (const args of [["--help"], ["up", "--help"], ["genkey", "--help"], ["pubkey", "-h"], ["replay", "--help"]]) {
    test(`${args.join(" ")} | cat: no escape bytes, no line over 80 columns`, async () => {
      const r = await run(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout).not.toContain("\x1b");
      const widths = r.stdout.split("\n").map((l) => l.length);
      expect(Math.max(...widths)).toBeLessThanOrEqual(80);
    });
  }

  test("every documented spelling works: up --dry-run, replay FILE listed", async () => {
    const up = await run(["up", "--help"]);
    expect(up.stdout).toContain("--print-config-only, --dry-run");
    expect(up.stdout).not.toMatch(/(^|[\s,])-dry-run/m);
    const dir = join(tmp, "dry");
    const dry = await run(["up", "--dry-run", "-b", "127.0.0.1:51999"], { WGSLIRPY_STATE_DIR: dir });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("[Interface]");
    const replay = await run(["replay", "--help"]);
    expect(replay.stdout).toContain("Usage: wgslirpy replay [OPTIONS] FILE");
  });

  test("--version", async () => {
    const pkg = await Bun.file(join(import.meta.dir, "../../package.json")).json();
    expect(await run(["--version"])).toMatchObject({ code: 0, stdout: `wgslirpy ${pkg.version}\n`, stderr: "" });
  });

  const base = ["-k", GW_PRIV, "-K", PEER_PUB, "-b", "127.0.0.1:0"];
  const bad: [string[], string][] = [
    [[...base, "--mtu", "abc"], '--mtu "abc"'],
    [[...base, "--mtu", "100"], '--mtu "100"'],
    [[...base, "--mtu"], "--mtu needs a value"],
    [[...base, "--tcp-buffer-size", "1"], '--tcp-buffer-size "1"'],
    [[...base, "--transmit-queue-capacity", "0"], '--transmit-queue-capacity "0"'],
    [[...base, "--udp-idle-timeout", "-1"], '--udp-idle-timeout "-1"'],
    [[...base, "-a", "x"], '--keepalive-interval (-a) "x"'],
    [[...base, "--log-level", "loud"], '--log-level "loud"'],
    [[...base, "--stats-listen", "localhost:1"], '--stats-listen "localhost:1"'],
    [[...base, "--pcap", ""], "--pcap"],
    [[...base, "-D", "10.0.2.1"], '--dns (-D) "10.0.2.1"'],
    [[...base, "-P", "nope"], '--pingable (-P) "nope"'],
    [[...base, "-p", "1.2.3.4:0"], '--peer-endpoint (-p) "1.2.3.4:0"'],
    [[...base, "-u", "x"], '--incoming-udp (-u) "x"'],
    [[...base, "--allow", "10.0.0.0/33"], "10.0.0.0/33"],
    [[...base, "--deny", "nope"], "nope"],
    [["-k", GW_PRIV, "-K", PEER_PUB, "-b", "127.0.0.1:99999"], '--bind-ip-port (-b) "127.0.0.1:99999"'],
    [["-k", GW_PRIV, "-K", "short", "-b", "127.0.0.1:0"], "--peer-key (-K)"],
    [[...base, "--help=yes"], "--help"],
    [[...base, "-xyz"], '"-xyz"'],
    [["up", "--public-endpoint", "nohost"], '--public-endpoint "nohost"'],
    [["up", "--state-dir", ""], "--state-dir"],
    [["replay", "--upstream", "magic", "f.pcap"], '--upstream "magic"'],
    [["replay", "--mtu", "1", "f.pcap"], '--mtu "1"'],
    [["genkey", "extra"], '"extra"'],
  ];
  for (const [args, named] of bad) {
    test(`exit 2 naming the flag: ${args.slice(args[0] === "-k" ? 6 : 0).join(" ") || args.join(" ")}`, async () => {
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.split("\n")).toHaveLength(2); // one line and the final newline
      expect(r.stderr).toStartWith("wgslirpy: error: ");
      expect(r.stderr).toContain(named);
    });
  }
});
