// Issue 12: ping / ping -6 / traceroute -I to test hosts beyond the gateway (ICMP datagram
// sockets), and DNS of every type relayed to a test nameserver in the inet namespace (dig from the
// wireguard-go peer), DNS over TCP, the offline NOERROR case, and ping_group_range closed.
//
//   peer ── wg ── gw (wgslirpy) ── inet (router, nameserver 10.202.0.2:53) ── far (10.203.0.2)
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createWorld, type World } from "../../harness/fixture.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import {
  addAddr,
  addRoute,
  type BgProcess,
  createNs,
  deleteNs,
  exec,
  interopSkipReason,
  spawnBg,
  sysctl,
  veth,
  writeNsFile,
} from "../../harness/netns.ts";
import { PY_DIR } from "../../harness/servers.ts";
import { ADDR, HOSTS } from "../../harness/topology.ts";

const skip = interopSkipReason(["wireguard-go", "wg", "ip", "ss", "python3", "ping", "dig", "traceroute"]);

const PREFIX = "wgsidi-";
const IFP = "wgsidi";
const FAR = `${PREFIX}far`;
const FAR4 = "10.203.0.2";
const FAR6 = "fd00:203::2";
const INET_FAR4 = "10.203.0.1";
const INET_FAR6 = "fd00:203::1";
const PING_OPEN = "0 2147483647";

describeOrSkip(skip, "ICMP echo to any host and DNS of every type (issue 12)", () => {
  let w: World;
  let authDns: BgProcess | undefined;

  beforeAll(async () => {
    w = await createWorld(PREFIX, IFP);
    // A host one router further: inet forwards between gw and far.
    await deleteNs(FAR);
    await createNs(FAR, { resolvConf: "nameserver 127.0.0.1\n" });
    await veth(w.t.inet, "v-far", FAR, "v-inet");
    await addAddr(w.t.inet, "v-far", `${INET_FAR4}/24`);
    await addAddr(w.t.inet, "v-far", `${INET_FAR6}/64`);
    await addAddr(FAR, "v-inet", `${FAR4}/24`);
    await addAddr(FAR, "v-inet", `${FAR6}/64`);
    await sysctl(w.t.inet, "net.ipv4.ip_forward", 1);
    await sysctl(w.t.inet, "net.ipv6.conf.all.forwarding", 1);
    await addRoute(FAR, ["default", "via", INET_FAR4]);
    await addRoute(FAR, ["default", "via", INET_FAR6]);
    await addRoute(w.t.gw, ["10.203.0.0/24", "via", ADDR.inet4]);
    await addRoute(w.t.gw, ["fd00:203::/64", "via", ADDR.inet6]);
    // The nameserver the gateway relays to, inside the test world.
    authDns = spawnBg(w.t.inet, "authdns", ["python3", "-u", `${PY_DIR}/wgs_authd.py`, ADDR.inet4, "53"]);
    await authDns.waitFor(/READY/, 10_000);
    writeNsFile(w.t.gw, "resolv.conf", `nameserver ${ADDR.inet4}\n`);
    await sysctl(w.t.gw, "net.ipv4.ping_group_range", PING_OPEN);
    await w.startGateway();
    await w.startPeer();
  }, 90_000);

  afterAll(async () => {
    await authDns?.stop(1000);
    await w?.destroy();
    await deleteNs(FAR);
  }, 30_000);

  const gwLog = () => `\n--- gateway log (tail) ---\n${w.gateway?.log().slice(-3000) ?? ""}`;

  async function ping(args: string[], timeoutMs = 20_000) {
    const r = await exec(w.t.peer, ["ping", ...args], { timeoutMs });
    return r.stdout + r.stderr;
  }

  test("ping and ping -6 to inet hosts (not -P): every reply, matching id/seq, no duplicates", async () => {
    for (const [flag, dst] of [
      ["-4", ADDR.inet4],
      ["-6", ADDR.inet6],
      ["-4", FAR4],
      ["-6", FAR6],
    ] as const) {
      const out = await ping([flag, "-c", "3", "-i", "0.3", "-W", "3", "-p", "c0ffee", "-s", "100", dst]);
      expect(out, out + gwLog()).toMatch(/3 packets transmitted, 3 received/);
      for (const seq of [1, 2, 3]) expect(out).toMatch(new RegExp(`108 bytes from ${dst}: icmp_seq=${seq} `));
      expect(out).not.toMatch(/DUP!|wrong data/);
    }
  }, 60_000);

  test("traceroute -I shows the inet router hop, then the far host (v4 and v6)", async () => {
    // inet's router answers from either of its addresses on that link; the first hop is the
    // gateway itself (its pingable address; IPv6 has none here, so the destination stands in).
    for (const [flag, dst, routers, first] of [
      ["-4", FAR4, [ADDR.inet4, ADDR.inet4b], ADDR.tunGw4],
      ["-6", FAR6, [ADDR.inet6, ADDR.inet6b], FAR6],
    ] as const) {
      const r = await exec(w.t.peer, ["traceroute", flag, "-I", "-n", "-q", "1", "-w", "2", "-m", "5", dst], {
        timeoutMs: 40_000,
      });
      const hops = r.stdout
        .split("\n")
        .slice(1)
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => /^\d+$/.test(f[0] ?? ""))
        .map((f) => f[1]);
      expect(hops.length, r.stdout + r.stderr + gwLog()).toBe(3);
      expect(hops[0]).toBe(first);
      expect(routers as readonly string[]).toContain(hops[1]!);
      expect(hops[2]).toBe(dst);
    }
  }, 90_000);

  test("ping to an unreachable test address gets Destination Host Unreachable", async () => {
    const out = await ping(["-c", "1", "-W", "6", "10.202.0.99"]);
    expect(out, out + gwLog()).toMatch(/Destination Host Unreachable/);
  }, 30_000);

  /** dig @the -D address; status and answer lines (name ttl class type data). */
  async function dig(args: string[]) {
    const r = await exec(w.t.peer, ["dig", `@${ADDR.tunGw4}`, "+time=3", "+tries=1", ...args], { timeoutMs: 20_000 });
    const status = r.stdout.match(/status: ([A-Z]+)/)?.[1] ?? `no reply (exit ${r.code})`;
    const answers = r.stdout
      .split("\n")
      .filter((l) => l && !l.startsWith(";"))
      .map((l) => l.trim().split(/\s+/).join(" "));
    return { status, answers, raw: r.stdout + r.stderr };
  }

  test("dig MX / TXT / SRV / PTR / CAA get the test nameserver's exact answers", async () => {
    const cases: [string[], string[]][] = [
      [["mx.test", "MX"], ["mx.test. 300 IN MX 10 mail.mx.test."]],
      [["txt.test", "TXT"], ['txt.test. 300 IN TXT "hello from the test zone" "second string"']],
      [["_xmpp._tcp.srv.test", "SRV"], ["_xmpp._tcp.srv.test. 300 IN SRV 5 0 5222 xmpp.srv.test."]],
      [["-x", ADDR.inet4], ["2.0.202.10.in-addr.arpa. 300 IN PTR web.test."]],
      [["caa.test", "CAA"], ['caa.test. 300 IN CAA 0 issue "letsencrypt.org"']],
    ];
    for (const [args, expected] of cases) {
      const d = await dig(args);
      expect(d.status, d.raw + gwLog()).toBe("NOERROR");
      expect(d.answers, d.raw).toEqual(expected);
    }
  }, 60_000);

  test("a >512-byte TXT: truncated over UDP, complete after dig's retry over TCP; dig +tcp", async () => {
    const d = await dig(["+noedns", "big.test", "TXT"]);
    expect(d.raw, gwLog()).toContain("Truncated, retrying in TCP mode");
    expect(d.status).toBe("NOERROR");
    expect(d.answers.length).toBe(1);
    expect(d.answers[0]).toContain('"004-xxxxx');
    expect(d.raw).toMatch(/MSG SIZE\s+rcvd: (\d{4})/);
    const t = await dig(["+tcp", "txt.test", "TXT"]);
    expect(t.status, t.raw + gwLog()).toBe("NOERROR");
    expect(t.answers).toEqual(['txt.test. 300 IN TXT "hello from the test zone" "second string"']);
    expect(t.raw).toContain(`(TCP)`);
    const a = await dig(["+tcp", HOSTS.web, "A"]);
    expect(a.answers).toEqual([`${HOSTS.web}. 60 IN A ${ADDR.inet4}`]);
  }, 60_000);

  test("NXDOMAIN and SERVFAIL pass through", async () => {
    const nx = await dig(["nosuch.test", "TXT"]);
    expect(nx.status, nx.raw + gwLog()).toBe("NXDOMAIN");
    const sf = await dig(["servfail.test", "MX"]);
    expect(sf.status, sf.raw + gwLog()).toBe("SERVFAIL");
  }, 30_000);

  test("PTR of the gateway's own DNS address answers locally", async () => {
    const d = await dig(["-x", ADDR.tunGw4]);
    expect(d.answers, d.raw + gwLog()).toEqual([
      `${ADDR.tunGw4.split(".").reverse().join(".")}.in-addr.arpa. 60 IN PTR gateway.wgslirpy.internal.`,
    ]);
  }, 30_000);

  test("offline resolver: AAAA of a name /etc/hosts has only as IPv4 is NOERROR with no answer", async () => {
    // No route to this nameserver from gw: every DNS lookup fails at once.
    writeNsFile(w.t.gw, "resolv.conf", "nameserver 10.77.0.1\n");
    try {
      await w.startGateway();
      await w.startPeer();
      const aaaa = await dig([HOSTS.v4only, "AAAA"]);
      expect(aaaa.status, aaaa.raw + gwLog()).toBe("NOERROR");
      expect(aaaa.answers).toEqual([]);
      const a = await dig([HOSTS.v4only, "A"]);
      expect(a.answers).toEqual([`${HOSTS.v4only}. 60 IN A ${ADDR.inet4}`]);
      const mx = await dig(["mx.test", "MX"]);
      expect(mx.status).toBe("SERVFAIL");
    } finally {
      writeNsFile(w.t.gw, "resolv.conf", `nameserver ${ADDR.inet4}\n`);
    }
  }, 60_000);

  test("ping_group_range closed: one info line naming the sysctl; -P still answers, others do not", async () => {
    await sysctl(w.t.gw, "net.ipv4.ping_group_range", "1 0");
    try {
      const g = await w.startGateway();
      await w.startPeer();
      const other = await ping(["-c", "2", "-i", "0.3", "-W", "1", ADDR.inet4]);
      expect(other).toMatch(/2 packets transmitted, 0 received/);
      await ping(["-6", "-c", "1", "-W", "1", ADDR.inet6]);
      expect(await w.ping(ADDR.tunGw4, 3), gwLog()).toBe(3);
      expect(g.countLog(/ping_group_range/), gwLog()).toBe(1);
      expect(g.log()).toContain('sysctl -w net.ipv4.ping_group_range="0 2147483647"');
    } finally {
      await sysctl(w.t.gw, "net.ipv4.ping_group_range", PING_OPEN);
    }
  }, 60_000);
});
