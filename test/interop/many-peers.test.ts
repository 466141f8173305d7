// Issue 11: one gateway (`--config FILE`), three wireguard-go peers at once, cryptokey routing,
// and the UAPI socket driven by the real `wg` (show, showconf, set … allowed-ips, set … remove).
//
// All peers live in the peer namespace: each wireguard-go interface has its own tunnel address and
// a policy-routing table (`ip rule from ADDR lookup T`), so a client picks its peer by binding to
// that peer's address (curl --interface, ping -I).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { createWorld, type World } from "../../harness/fixture.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { REPO_ROOT } from "../../harness/gateway.ts";
import { type BgProcess, exec, execCheck, interopSkipReason, sleep, spawnBg } from "../../harness/netns.ts";
import { curlSha256, PORTS } from "../../harness/servers.ts";
import { ADDR } from "../../harness/topology.ts";
import { genKeyPair, type KeyPair, WireGuardGo } from "../../harness/wireguard-go.ts";

const skip = interopSkipReason(["wireguard-go", "wg", "ip", "ss", "ping", "curl", "bash", "sha256sum"]);

const PREFIX = "wgsimp-";
const IFP = "wgsimp";
const NAME = "wgsimpgw";
const GW_PORT = 51820;
const STATS_PORT = 9311;
const FILE = "256k.bin";

/** Peer i (1-based): tunnel addresses, routing table, interface, listen port. */
const peerAddr4 = (i: number) => `192.168.76.${10 + i}`;
const peerAddr6 = (i: number) => `fc00::${10 + i}`;

describeOrSkip(skip, "many peers: config file, cryptokey routing and UAPI with the real wg", () => {
  let w: World;
  let gw: BgProcess | null = null;
  let gwKeys: KeyPair;
  const keys: KeyPair[] = [];
  const peers: WireGuardGo[] = [];
  let confText = "";

  const gwLog = () => `\n--- gateway log (tail) ---\n${gw?.output().slice(-3000) ?? ""}`;

  async function startPeer(i: number): Promise<WireGuardGo> {
    const p = new WireGuardGo({
      ns: w.t.peer,
      ifname: `${IFP}${i}`,
      privateKey: keys[i - 1]!.privateKey,
      listenPort: 51830 + i,
      peerPublicKey: gwKeys.publicKey,
      endpoint: `${ADDR.gwOuter4}:${GW_PORT}`,
      addresses: [`${peerAddr4(i)}/32`, `${peerAddr6(i)}/128`],
      routes: [],
    });
    await p.start();
    for (const [fam, addr] of [
      ["-4", peerAddr4(i)],
      ["-6", peerAddr6(i)],
    ] as const) {
      await execCheck(w.t.peer, ["ip", fam, "rule", "add", "from", addr, "lookup", String(100 + i)]);
      await execCheck(w.t.peer, ["ip", fam, "route", "add", "default", "dev", p.ifname, "table", String(100 + i)]);
    }
    peers.push(p);
    return p;
  }

  async function ping(from: string, dst: string, count = 3): Promise<number> {
    const r = await exec(w.t.peer, ["ping", "-c", String(count), "-i", "0.3", "-W", "2", "-I", from, dst], {
      timeoutMs: 10_000 + count * 2500,
    });
    return Number(r.stdout.match(/(\d+) received/)?.[1] ?? 0);
  }

  const wg = (args: string[]) => execCheck(w.t.gw, ["wg", ...args]);

  async function metric(reason: string): Promise<number> {
    const r = await exec(w.t.gw, ["curl", "-sS", `http://127.0.0.1:${STATS_PORT}/metrics`]);
    const m = r.stdout.match(new RegExp(`wgslirpy_tunnel_drops\\w*\\{reason="${reason}"\\} (\\d+)`));
    if (!m) throw new Error(`no drops metric for ${reason} in:\n${r.stdout.slice(0, 2000)}`);
    return Number(m[1]);
  }

  beforeAll(async () => {
    w = await createWorld(PREFIX, IFP, { files: { [FILE]: 256 * 1024 } });
    gwKeys = w.gwKeys;
    for (let i = 0; i < 4; i++) keys.push(await genKeyPair());
    confText = [
      "# written by many-peers.test.ts",
      "[Interface]",
      `PrivateKey = ${gwKeys.privateKey}`,
      `ListenPort = ${GW_PORT}`,
      `Address = ${ADDR.tunGw4}/32`,
      "",
      "[Gateway]",
      `BindAddress = ${ADDR.gwOuter4}`,
      ...[1, 2, 3].flatMap((i) => [
        "",
        "[Peer]",
        `PublicKey = ${keys[i - 1]!.publicKey}`,
        `AllowedIPs = ${peerAddr4(i)}/32, ${peerAddr6(i)}/128`,
      ]),
      "",
    ].join("\n");
    const conf = `${w.tmp}/gw.conf`;
    writeFileSync(conf, confText, { mode: 0o600 });
    rmSync(`/var/run/wireguard/${NAME}.sock`, { force: true });
    const argv = [process.execPath, "src/cli.ts", "-c", conf, "--name", NAME, "--log-level", "debug"];
    argv.push("--stats-listen", `127.0.0.1:${STATS_PORT}`);
    gw = spawnBg(w.t.gw, "gateway", argv, {
      cwd: REPO_ROOT,
      env: { ...process.env, WGSLIRPY_LOG: undefined, NO_COLOR: "1" },
    });
    for (let i = 0; i < 150; i++) {
      if (!gw.running()) throw new Error(`gateway exited:${gwLog()}`);
      const r = await exec(w.t.gw, ["ss", "-Hlx", "src", `/var/run/wireguard/${NAME}.sock`]);
      if (r.stdout.includes(NAME)) break;
      await sleep(100);
    }
    for (let i = 1; i <= 3; i++) await startPeer(i);
  }, 90_000);

  afterAll(async () => {
    for (const p of peers) await p.dispose().catch(() => {});
    await gw?.stop(3000);
    await w?.destroy();
  }, 30_000);

  test("three peers at once: each curls (v4 and v6) and pings concurrently, with the right bytes", async () => {
    const f = w.servers.files[FILE]!;
    const results = await Promise.all(
      [1, 2, 3].map(async (i) => {
        const [c4, c6, pings] = await Promise.all([
          curlSha256(w.t.peer, `http://${ADDR.inet4}:${PORTS.http}/${FILE}`, ["--interface", peerAddr4(i)], 60_000),
          curlSha256(
            w.t.peer,
            `http://[${ADDR.inet6}]:${PORTS.http}/${FILE}`,
            ["-g", "--interface", peerAddr6(i)],
            60_000,
          ),
          ping(peerAddr4(i), ADDR.tunGw4),
        ]);
        return { i, c4: c4.sha256, c6: c6.sha256, pings, err: c4.result.stderr + c6.result.stderr };
      }),
    );
    for (const r of results) {
      expect(r, r.err + gwLog()).toEqual({ i: r.i, c4: f.sha256, c6: f.sha256, pings: 3, err: r.err });
    }
    const dump = (await wg(["show", NAME, "dump"])).stdout.trim().split("\n");
    expect(dump).toHaveLength(4);
    for (const [n, line] of dump.slice(1).entries()) {
      const [pub, , endpoint, allowed, handshake, rx, tx] = line.split("\t");
      expect(pub).toBe(keys[n]!.publicKey);
      expect(endpoint).toBe(`${ADDR.peerOuter4}:${51831 + n}`);
      expect(allowed).toBe(`${peerAddr4(n + 1)}/32,${peerAddr6(n + 1)}/128`);
      expect(Number(handshake)).toBeGreaterThan(0);
      // The gateway received requests and ACKs, and sent both files.
      expect(Number(rx)).toBeGreaterThan(1000);
      expect(Number(tx)).toBeGreaterThan(2 * 256 * 1024);
    }
  }, 120_000);

  test("a peer sending from an address outside its AllowedIPs gets nothing back (counted drop)", async () => {
    // Peer 1 owns .11; give its interface .99 too and route .99's traffic through it.
    await execCheck(w.t.peer, ["ip", "addr", "add", "192.168.76.99/32", "dev", `${IFP}1`]);
    await execCheck(w.t.peer, ["ip", "rule", "add", "from", "192.168.76.99", "lookup", "101"]);
    const before = await metric("sourceNotAllowed");
    expect(await ping("192.168.76.99", ADDR.tunGw4, 2)).toBe(0);
    expect(await metric("sourceNotAllowed")).toBeGreaterThanOrEqual(before + 2);
    // Peer 2's own address through peer 1 is refused the same way.
    await execCheck(w.t.peer, ["ip", "rule", "add", "from", peerAddr4(2), "lookup", "101", "priority", "50"]);
    expect(await ping(peerAddr4(2), ADDR.tunGw4, 2)).toBe(0);
    await execCheck(w.t.peer, ["ip", "rule", "del", "from", peerAddr4(2), "lookup", "101", "priority", "50"]);
    expect(await ping(peerAddr4(2), ADDR.tunGw4, 2), gwLog()).toBe(2);
  }, 60_000);

  test("wg show and wg showconf report the configuration", async () => {
    const show = (await wg(["show", NAME])).stdout;
    expect(show).toContain(
      `interface: ${NAME}\n  public key: ${gwKeys.publicKey}\n  private key: (hidden)\n  listening port: ${GW_PORT}\n`,
    );
    for (let i = 1; i <= 3; i++) {
      expect(show).toContain(
        `peer: ${keys[i - 1]!.publicKey}\n  endpoint: ${ADDR.peerOuter4}:${51830 + i}\n  allowed ips: ${peerAddr4(i)}/32, ${peerAddr6(i)}/128\n  latest handshake: `,
      );
    }
    const conf = (await wg(["showconf", NAME])).stdout;
    const peerBlocks = [1, 2, 3].map((i) =>
      [
        "[Peer]",
        `PublicKey = ${keys[i - 1]!.publicKey}`,
        `AllowedIPs = ${peerAddr4(i)}/32, ${peerAddr6(i)}/128`,
        `Endpoint = ${ADDR.peerOuter4}:${51830 + i}`,
      ].join("\n"),
    );
    expect(conf).toBe(
      `[Interface]\nListenPort = ${GW_PORT}\nPrivateKey = ${gwKeys.privateKey}\n\n${peerBlocks.join("\n\n")}\n`,
    );
    expect((await wg(["show", NAME, "public-key"])).stdout.trim()).toBe(gwKeys.publicKey);
  }, 30_000);

  test("wg set … allowed-ips adds a peer that then gets traffic; wg set … remove cuts it off", async () => {
    const f = w.servers.files[FILE]!;
    const k4 = keys[3]!.publicKey;
    await wg(["set", NAME, "peer", k4, "allowed-ips", `${peerAddr4(4)}/32,${peerAddr6(4)}/128`]);
    expect((await wg(["show", NAME, "allowed-ips"])).stdout).toContain(`${k4}\t${peerAddr4(4)}/32 ${peerAddr6(4)}/128`);
    await startPeer(4);
    const c = await curlSha256(
      w.t.peer,
      `http://${ADDR.inet4}:${PORTS.http}/${FILE}`,
      ["--interface", peerAddr4(4)],
      60_000,
    );
    expect(c.sha256, c.result.stderr + gwLog()).toBe(f.sha256);
    expect(await ping(peerAddr4(4), ADDR.tunGw4, 2)).toBe(2);
    await wg(["set", NAME, "peer", k4, "remove"]);
    expect((await wg(["show", NAME, "peers"])).stdout.trim().split("\n")).toEqual(
      keys.slice(0, 3).map((k) => k.publicKey),
    );
    expect(await ping(peerAddr4(4), ADDR.tunGw4, 2)).toBe(0);
    // The others are unaffected.
    expect(await ping(peerAddr4(3), ADDR.tunGw4, 2)).toBe(2);
  }, 90_000);

  test("malformed UAPI requests get errno and the gateway keeps serving", async () => {
    const ask = async (req: string): Promise<string> => {
      let text = "";
      const done = Promise.withResolvers<void>();
      const sock = await Bun.connect({
        unix: `/var/run/wireguard/${NAME}.sock`,
        socket: {
          data(_s, chunk) {
            text += chunk.toString();
            if (text.endsWith("\n\n")) done.resolve();
          },
          close: () => done.resolve(),
        },
      });
      sock.write(req);
      const timer = setTimeout(() => done.resolve(), 3000);
      await done.promise;
      clearTimeout(timer);
      sock.end();
      return text;
    };
    expect(await ask("set=1\nbogus\n\n")).toBe("errno=-71\n\n");
    expect(await ask("set=1\npublic_key=zz\n\n")).toBe("errno=-22\n\n");
    expect(
      await ask(
        `set=1\npublic_key=${Buffer.from(keys[0]!.publicKey, "base64").toString("hex")}\nallowed_ip=300.1.1.1/8\n\n`,
      ),
    ).toBe("errno=-22\n\n");
    expect(await ask("what=1\n")).toBe("errno=-22\n\n");
    expect(await ask("get=1\n\n")).toContain("errno=0\n\n");
    expect(await ping(peerAddr4(1), ADDR.tunGw4, 2), gwLog()).toBe(2);
  }, 30_000);
});
