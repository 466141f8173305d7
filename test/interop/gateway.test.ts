// Issue "netstack and gateway": real clients (ping, dig, curl, python sockets) in the peer namespace,
// through wireguard-go and the gateway CLI, to servers in the inet namespace.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { createWorld, type World } from "../../harness/fixture.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { exec, interopSkipReason, sleep } from "../../harness/netns.ts";
import { curlSha256, halfClose, PORTS, sha256Hex, tcpConnectProbe, udpRequest } from "../../harness/servers.ts";
import { ADDR, HOSTS } from "../../harness/topology.ts";

const skip = interopSkipReason([
  "wireguard-go",
  "wg",
  "ip",
  "ss",
  "python3",
  "ping",
  "curl",
  "dig",
  "bash",
  "sha256sum",
]);

const PREFIX = "wgsigw-";
const IFP = "wgsigw";
const MiB = 1 << 20;

describeOrSkip(skip, "netstack and gateway (curl/dig/ping/UDP through the gateway CLI)", () => {
  let w: World;

  beforeAll(async () => {
    w = await createWorld(PREFIX, IFP, {
      files: { "1m.bin": MiB, "256k.bin": 256 * 1024, "32m.bin": 32 * MiB, "96m.bin": 96 * MiB },
    });
    await w.startGateway();
    await w.startPeer();
  }, 90_000);

  afterAll(async () => {
    await w?.destroy();
  }, 30_000);

  const gwLog = () => `\n--- gateway log (tail) ---\n${w.gateway?.log().slice(-3000) ?? ""}`;
  const web = `http://${HOSTS.web}:${PORTS.http}`;

  test("ping the pingable address", async () => {
    expect(await w.ping(ADDR.tunGw4, 2), gwLog()).toBe(2);
  }, 30_000);

  /** dig @the -D address; returns status and [type, value] answers. */
  async function dig(name: string, type: "A" | "AAAA") {
    const r = await exec(w.t.peer, ["dig", `@${ADDR.tunGw4}`, "+time=2", "+tries=2", name, type], {
      timeoutMs: 15_000,
    });
    const status = r.stdout.match(/status: ([A-Z]+)/)?.[1] ?? `no reply (exit ${r.code})`;
    const answers = r.stdout
      .split("\n")
      .filter((l) => l && !l.startsWith(";"))
      .map((l) => l.split(/\s+/))
      .filter((f) => f.length >= 5 && f[2] === "IN")
      .map((f) => [f[3]!, f[4]!] as const);
    return { status, answers, raw: r.stdout };
  }

  test("DNS: A and AAAA from the gateway's hosts file; an unknown name has no answers", async () => {
    const a = await dig(HOSTS.web, "A");
    expect(a.status, a.raw + gwLog()).toBe("NOERROR");
    expect(a.answers).toEqual([["A", ADDR.inet4]]);
    const aaaa = await dig(HOSTS.web, "AAAA");
    expect(aaaa.status, aaaa.raw).toBe("NOERROR");
    expect(aaaa.answers).toEqual([["AAAA", ADDR.inet6]]);
    const v4only = await dig(HOSTS.v4only, "AAAA");
    expect(v4only.answers).toEqual([]);
    const missing = await dig(HOSTS.missing, "A");
    expect(["NXDOMAIN", "SERVFAIL"], missing.raw).toContain(missing.status);
    expect(missing.answers).toEqual([]);
  }, 30_000);

  test("curl by name over IPv4 and IPv6 (the peer resolves through the gateway's DNS)", async () => {
    const f = w.servers.files["1m.bin"]!;
    const v4 = await curlSha256(w.t.peer, `${web}/1m.bin`, ["-4"]);
    expect(v4.sha256, v4.result.stderr + gwLog()).toBe(f.sha256);
    const v6 = await curlSha256(w.t.peer, `${web}/1m.bin`, ["-6"]);
    expect(v6.sha256, v6.result.stderr + gwLog()).toBe(f.sha256);
  }, 60_000);

  test("32 MiB download: sha256 matches", async () => {
    const f = w.servers.files["32m.bin"]!;
    const r = await curlSha256(w.t.peer, `${web}/32m.bin`, [], 180_000);
    expect(r.sha256, r.result.stderr + gwLog()).toBe(f.sha256);
  }, 200_000);

  test("16 MiB upload (HTTP POST): the server's sha256 matches", async () => {
    const data = new Uint8Array(16 * MiB);
    for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
    const path = `${w.tmp}/upload.bin`;
    writeFileSync(path, data);
    const r = await exec(
      w.t.peer,
      ["curl", "-sS", "--fail", "--max-time", "170", "--data-binary", `@${path}`, "-H", "Expect:", `${web}/upload`],
      { timeoutMs: 180_000 },
    );
    expect(r.stdout.trim(), r.stderr + gwLog()).toBe(`${sha256Hex(data)} ${data.length}`);
  }, 200_000);

  test("half-close: upload, shut the write side, read the reply computed after EOF (v4 and v6)", async () => {
    const r4 = await halfClose(w.t.peer, HOSTS.web, PORTS.sink, 4 * MiB, 11, "4");
    expect(r4.reply?.trim(), JSON.stringify(r4) + gwLog()).toBe(`${r4.sentSha256} ${4 * MiB}`);
    const r6 = await halfClose(w.t.peer, HOSTS.web, PORTS.sink, 100_000, 12, "6");
    expect(r6.reply?.trim(), JSON.stringify(r6) + gwLog()).toBe(`${r6.sentSha256} 100000`);
  }, 120_000);

  test("UDP echo over IPv4 and IPv6", async () => {
    const p4 = "c0ffee0001";
    const e4 = await udpRequest(w.t.peer, HOSTS.web, PORTS.udpEcho, p4, "4");
    expect(e4.reply, JSON.stringify(e4) + gwLog()).toBe(p4);
    expect(e4.fromPort).toBe(PORTS.udpEcho);
    const p6 = Buffer.from("hello over v6 ".repeat(50)).toString("hex");
    const e6 = await udpRequest(w.t.peer, HOSTS.web, PORTS.udpEcho, p6, "6");
    expect(e6.reply, JSON.stringify(e6) + gwLog()).toBe(p6);
    expect(e6.from).toBe(ADDR.inet6);
  }, 30_000);

  test("UDP: a reply from a different remote port reaches the client (hole punching)", async () => {
    const r = await udpRequest(w.t.peer, HOSTS.web, PORTS.udpOther, "0102030405", "4");
    expect(r.ok, JSON.stringify(r) + gwLog()).toBe(true);
    expect(r.fromPort).toBe(PORTS.udpOtherReply);
    expect(r.reply).toBe(Buffer.from(`from-${PORTS.udpOtherReply}:`).toString("hex") + "0102030405");
  }, 30_000);

  test("TCP to a closed port is refused in under 1 s", async () => {
    const r = await tcpConnectProbe(w.t.peer, ADDR.inet4, PORTS.closed);
    expect(r.result, JSON.stringify(r) + gwLog()).toBe("refused");
    expect(r.ms).toBeLessThan(1000);
    const r6 = await tcpConnectProbe(w.t.peer, ADDR.inet6, PORTS.closed);
    expect(r6.result, JSON.stringify(r6)).toBe("refused");
    expect(r6.ms).toBeLessThan(1000);
  }, 30_000);

  test("40 parallel connections all succeed with the right bytes", async () => {
    const f = w.servers.files["256k.bin"]!;
    const out = `${w.tmp}/par`;
    const script = [
      `mkdir -p ${out}`,
      `for i in $(seq 1 40); do (curl -sS --fail --max-time 60 '${web}/256k.bin?n='$i | sha256sum > ${out}/$i) & done`,
      "wait",
      `cat ${out}/*`,
    ].join("\n");
    const r = await exec(w.t.peer, ["bash", "-c", script], { timeoutMs: 90_000 });
    const sums = r.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(/\s+/)[0]);
    expect(sums.length, r.stderr + gwLog()).toBe(40);
    expect(sums.filter((s) => s === f.sha256).length, r.stderr + gwLog()).toBe(40);
  }, 120_000);

  test("a slow reader does not grow the gateway's memory without bound", async () => {
    if (w.reference) return; // wireguard-go has no per-flow buffer to measure
    await sleep(500);
    const base = (await w.gateway!.rssKiB())!;
    expect(base).toBeGreaterThan(0);
    // 96 MiB offered by the server, read at 256 KiB/s for 6 s: at most ~1.5 MiB consumed. A gateway
    // that kept reading from the server regardless of the reader would hold most of the 96 MiB.
    const reader = exec(
      w.t.peer,
      [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "--limit-rate",
        "256k",
        "--max-time",
        "6",
        "-w",
        "%{size_download}",
        `${web}/32m.bin`,
      ],
      { timeoutMs: 20_000 },
    );
    let peak = base;
    for (let i = 0; i < 28; i++) {
      await sleep(250);
      const rss = await w.gateway!.rssKiB();
      if (rss) peak = Math.max(peak, rss);
    }
    const r = await reader;
    const got = Number(r.stdout.trim());
    expect(got, r.stderr).toBeGreaterThan(256 * 1024); // the flow was alive...
    expect(got).toBeLessThan(8 * MiB); // ...and really slow
    const growthMiB = (peak - base) / 1024;
    console.log(`slow reader: RSS ${Math.round(base / 1024)} MiB -> peak ${Math.round(peak / 1024)} MiB`);
    expect(growthMiB, gwLog()).toBeLessThan(32);
  }, 60_000);

  test("after all flows end the gateway has no live TCP flows", async () => {
    if (w.reference) return; // the reference has no NAT log
    const opened = () => w.gateway!.countLog(/New NAT entry for TCP/i);
    const finished = () => w.gateway!.countLog(/Finished serving TCP/i);
    // A few more complete flows of our own, so the count is meaningful even when run alone.
    const before = opened();
    for (let i = 0; i < 3; i++) {
      const r = await curlSha256(w.t.peer, `${web}/256k.bin?flows=${i}`);
      expect(r.sha256).toBe(w.servers.files["256k.bin"]!.sha256);
    }
    expect(opened() - before, gwLog()).toBeGreaterThanOrEqual(3);
    for (let i = 0; i < 60 && finished() < opened(); i++) await sleep(250);
    expect(finished(), gwLog()).toBe(opened());
    expect(w.gateway!.running()).toBe(true);
  }, 30_000);
});
