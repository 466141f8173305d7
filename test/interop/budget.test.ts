// The descriptor budget against floods, with real peers: the gateway CLI runs under
// `prlimit --nofile=256` in gw; a raw-IP sender in the peer namespace pushes 5,000 SYNs to a
// black-holed test address (a port inet drops with nftables) and 5,000 UDP datagrams from 5,000
// source ports through the wireguard-go tunnel, while a legitimate curl downloads through it. The
// gateway must stay below its descriptor limit, serve the curl, free every mapping and pending
// connect afterwards, keep its RSS bounded and its log short.
//
// Every destination is a test host: inet's 10.202.0.2 (web server, and ports 8081/8082 which
// inet drops). The sender is bounded in count (5,000 each) and time (~5 s each).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { createWorld, type World } from "../../harness/fixture.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { exec, execCheck, interopSkipReason, sleep } from "../../harness/netns.ts";
import { useReferenceGateway } from "../../harness/reference.ts";
import { curlSha256, PORTS } from "../../harness/servers.ts";
import { ADDR } from "../../harness/topology.ts";

const skip =
  interopSkipReason(["wireguard-go", "wg", "ip", "ss", "python3", "curl", "bash", "sha256sum", "nft", "prlimit"]) ??
  (useReferenceGateway ? "the reference gateway has no flow budget" : null);

const PREFIX = "wgsibu-";
const IFP = "wgsibu";
const MiB = 1 << 20;
const NOFILE = 256;
const STATS_PORT = 9191;
/** inet drops TCP to the first and UDP to the second (nftables in the inet namespace). */
const SYN_HOLE_PORT = 8081;
const UDP_HOLE_PORT = 8082;
const FLOOD = 5000;
const RATE = 1000;
const UDP_IDLE_S = 3;

/** Raw IPv4 SYNs or UDP datagrams from `count` source ports, paced at `rate`/s (IP_HDRINCL). */
const SENDER = `
import socket, struct, sys, time

def csum(b):
    if len(b) % 2:
        b += b"\\0"
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return (~t) & 0xFFFF

def packet(kind, src, dst, sport, dport, ident):
    sb, db = socket.inet_aton(src), socket.inet_aton(dst)
    if kind == "syn":
        opts = struct.pack("!BBH", 2, 4, 1360)
        hdr = struct.pack("!HHIIBBHHH", sport, dport, ident * 7919, 0, (20 + len(opts)) // 4 << 4, 0x02, 65535, 0, 0) + opts
        proto = 6
        c = csum(sb + db + struct.pack("!BBH", 0, proto, len(hdr)) + hdr)
        l4 = hdr[:16] + struct.pack("!H", c) + hdr[18:]
    else:
        payload = b"wgsibu-udp-flood"
        hdr = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
        proto = 17
        c = csum(sb + db + struct.pack("!BBH", 0, proto, len(hdr) + len(payload)) + hdr + payload) or 0xFFFF
        l4 = hdr[:6] + struct.pack("!H", c) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0x4000, 64, proto, 0, sb, db)
    return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + l4

kind, src, dst, dport, first, count, rate = sys.argv[1:8]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
t0 = time.time()
n = 0
for i in range(int(count)):
    s.sendto(packet(kind, src, dst, int(first) + i, int(dport), i + 1), (dst, 0))
    n += 1
    ahead = t0 + n / float(rate) - time.time()
    if ahead > 0:
        time.sleep(ahead)
    if time.time() - t0 > 30:
        break
print(f"sent {n} in {time.time() - t0:.2f} s", flush=True)
`;

interface BudgetStats {
  maxFlows: number;
  maxPendingConnects: number;
  maxUdpMappings: number;
  hostSockets: number;
  pendingConnects: number;
  udpMappings: number;
  denied: Record<string, number>;
  evicted: number;
}
interface GwStats {
  liveTcp: number;
  liveUdp: number;
  gateway: { budget: BudgetStats; drops: Record<string, number> };
}

describeOrSkip(skip, `flow budget under prlimit --nofile=${NOFILE} (gateway CLI, real peer)`, () => {
  let w: World;
  let sender: string;
  const gwLog = () => `\n--- gateway log (tail) ---\n${w.gateway?.log().slice(-3000) ?? ""}`;

  async function stats(): Promise<GwStats> {
    const r = await execCheck(w.t.gw, ["curl", "-sS", "--max-time", "5", `http://127.0.0.1:${STATS_PORT}/stats`]);
    return JSON.parse(r.stdout) as GwStats;
  }

  const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

  beforeAll(async () => {
    w = await createWorld(PREFIX, IFP, { files: { "1m.bin": MiB } });
    sender = `${w.tmp}/wgsibu_sender.py`;
    writeFileSync(sender, SENDER);
    await execCheck(w.t.inet, ["nft", "add", "table", "inet", "wgsibu"]);
    await execCheck(w.t.inet, [
      "nft",
      "add",
      "chain",
      "inet",
      "wgsibu",
      "in",
      "{ type filter hook input priority 0; }",
    ]);
    await execCheck(w.t.inet, [
      "nft",
      "add",
      "rule",
      "inet",
      "wgsibu",
      "in",
      "tcp",
      "dport",
      String(SYN_HOLE_PORT),
      "drop",
    ]);
    await execCheck(w.t.inet, [
      "nft",
      "add",
      "rule",
      "inet",
      "wgsibu",
      "in",
      "udp",
      "dport",
      String(UDP_HOLE_PORT),
      "drop",
    ]);
    await w.startGateway({
      command: ["prlimit", `--nofile=${NOFILE}`, process.execPath, "src/cli.ts"],
      logLevel: "info",
      extraArgs: ["--stats-listen", `127.0.0.1:${STATS_PORT}`, "--udp-idle-timeout", String(UDP_IDLE_S)],
    });
    await w.startPeer();
    expect(await w.ping(ADDR.tunGw4, 1)).toBe(1);
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  });

  test("5,000 SYNs to a black hole + 5,000 UDP source ports: within the fd budget, curl served, nothing leaked", async () => {
    const pid = w.gateway!.pid;
    const limits = await Bun.file(`/proc/${pid}/limits`).text();
    expect(limits).toMatch(new RegExp(`Max open files\\s+${NOFILE}\\s+${NOFILE}`));
    const fdsBefore = fdCount(pid);
    const rssBefore = (await w.gateway!.rssKiB()) ?? 0;
    const linesBefore = w.gateway!.log().split("\n").length;
    const b0 = (await stats()).gateway.budget;
    console.log(`budget: ${JSON.stringify(b0)}; fds before ${fdsBefore}; RSS ${Math.round(rssBefore / 1024)} MiB`);
    expect(b0.maxFlows).toBeLessThan(NOFILE);

    const t0 = performance.now();
    const run = (kind: string, port: number, first: number) =>
      exec(
        w.t.peer,
        ["python3", sender, kind, ADDR.tunPeer4, ADDR.inet4, String(port), String(first), String(FLOOD), String(RATE)],
        { timeoutMs: 60_000 },
      );
    const syns = run("syn", SYN_HOLE_PORT, 20000);
    const udps = run("udp", UDP_HOLE_PORT, 30000);
    // Sample the gateway while the floods run; a legitimate download goes through in the middle.
    let peakFds = fdsBefore;
    let peakRss = rssBefore;
    let peakSockets = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakFds = Math.max(peakFds, fdCount(pid));
        peakRss = Math.max(peakRss, (await w.gateway!.rssKiB()) ?? 0);
        const s = await stats().catch(() => null);
        if (s) peakSockets = Math.max(peakSockets, s.gateway.budget.hostSockets);
        await sleep(100);
      }
    })();
    await sleep(1500);
    const dl = await curlSha256(w.t.peer, `http://${ADDR.inet4}:${PORTS.http}/1m.bin`, [], 30_000);
    const curlMs = Math.round(performance.now() - t0);
    const [rs, ru] = await Promise.all([syns, udps]);
    const floodMs = Math.round(performance.now() - t0);
    const during = await stats();
    sampling = false;
    await sampler;
    console.log(
      `flood: ${rs.stdout.trim()} / ${ru.stdout.trim()} (${floodMs} ms); curl done at ${curlMs} ms; ` +
        `peak fds ${peakFds} (limit ${NOFILE}), peak host sockets ${peakSockets} of ${b0.maxFlows}, ` +
        `peak RSS ${Math.round(peakRss / 1024)} MiB; budget ${JSON.stringify(during.gateway.budget)}; ` +
        `drops ${JSON.stringify(during.gateway.drops)}`,
    );
    expect(rs.stdout, rs.stderr).toContain(`sent ${FLOOD}`);
    expect(ru.stdout, ru.stderr).toContain(`sent ${FLOOD}`);
    expect(dl.sha256, dl.result.stderr + gwLog()).toBe(w.servers.files["1m.bin"]!.sha256);
    // Never at the descriptor limit: the budget held, no EMFILE anywhere.
    expect(peakFds).toBeLessThan(NOFILE);
    expect(peakSockets).toBeLessThanOrEqual(b0.maxFlows);
    const drops = during.gateway.drops;
    expect(
      Object.keys(drops).filter((k) => /EMFILE|ENFILE/.test(k)),
      JSON.stringify(drops),
    ).toEqual([]);
    // The caps were hit and counted: connects given up for newer ones, mappings refused.
    expect(during.gateway.budget.evicted).toBeGreaterThan(FLOOD / 2);
    expect(during.gateway.budget.denied.udp).toBeGreaterThan(FLOOD / 2);
    expect(peakRss - rssBefore, `RSS grew from ${rssBefore} to ${peakRss} KiB`).toBeLessThan(100 * 1024);

    // Afterwards: every pending connect times out (10 s) and is cancelled, every mapping expires.
    let after = await stats();
    const deadline = performance.now() + 20_000;
    while (performance.now() < deadline) {
      after = await stats();
      const b = after.gateway.budget;
      if (after.liveUdp === 0 && after.liveTcp === 0 && b.hostSockets === 0 && b.pendingConnects === 0) break;
      await sleep(250);
    }
    const fdsAfter = fdCount(pid);
    console.log(
      `after: ${JSON.stringify(after.gateway.budget)}; live tcp ${after.liveTcp} udp ${after.liveUdp}; fds ${fdsAfter}`,
    );
    expect(after.liveUdp, gwLog()).toBe(0);
    expect(after.liveTcp).toBe(0);
    expect(after.gateway.budget).toMatchObject({ hostSockets: 0, pendingConnects: 0, udpMappings: 0 });
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore + 2);

    // The log stayed short: rate-limited warnings and NAT-entry lines, not one line per packet.
    const lines = w.gateway!.log().split("\n").length - linesBefore;
    const natLines = w.gateway!.countLog(/New NAT entry/);
    console.log(`log: ${lines} lines during and after the flood (${natLines} "New NAT entry")`);
    expect(lines, gwLog()).toBeLessThan(100);
    expect(w.gateway!.countLog(/flow budget spent|mapping budget spent/)).toBeGreaterThan(0);
    expect(w.gateway!.running()).toBe(true);
  }, 120_000);
});
