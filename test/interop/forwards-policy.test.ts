// Issue 4 with real peers: reverse forwards (-t/-u), destination policy (--allow/--deny), ICMP errors
// toward the peer, and GUE mode with a raw-IP socat peer. wireguard-go runs in the peer namespace,
// the gateway CLI in gw, clients and servers in inet (see harness/README.md).
//
// Every destination is a test host: inet's 10.202.0.2/.3 (+ v6), gw's own loopback, 10.202.0.99
// (inside inet's subnet, owned by nobody: neighbour resolution in gw fails), and 10.209.0.0/24 /
// 10.210.0.0/24, for which this test adds an `unreachable` / `throw` route in gw (so the gateway's
// kernel refuses them at once; gw has no other routes at all), plus a port on 10.202.0.2 whose SYNs
// inet drops (nftables inside the inet namespace).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createWorld, type World } from "../../harness/fixture.ts";
import {
  BANNER,
  BLACKHOLE_PORT,
  connLines,
  FWD,
  type Fw,
  forwardArgs,
  fwHelpers,
  GW_LOOPBACK_PORT,
  GW_VETH_PORT,
  NOBODY,
  PEER_TCP,
  STATS_PORT,
  setUpForwardsWorld,
  THROW_HOST,
  UNREACH_HOST,
} from "../../harness/forwards.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { Gateway } from "../../harness/gateway.ts";
import { type BgProcess, exec, execCheck, interopSkipReason, spawnBg, waitUntil } from "../../harness/netns.ts";
import { useReferenceGateway } from "../../harness/reference.ts";
import { curlSha256, PORTS, udpRequest } from "../../harness/servers.ts";
import { ADDR, HOSTS } from "../../harness/topology.ts";

const skip =
  interopSkipReason([
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
    "socat",
    "nft",
  ]) ?? (useReferenceGateway ? "the reference gateway has no -t/-u/--allow/--deny/GUE" : null);

const PREFIX = "wgsifw-";
const IFP = "wgsifw";
const GUE_TUN = "wgsifwgue";
const MiB = 1 << 20;

describeOrSkip(skip, "reverse forwards, policy, ICMP errors, GUE (gateway CLI, real peers)", () => {
  let w: World;
  let fw: Fw;
  let peerTcp: BgProcess;
  let peerUdp: BgProcess;
  let gwLoopback: BgProcess;
  const procs: BgProcess[] = [];
  const extraGateways: Gateway[] = [];

  /** (Re)start the gateway with `extraArgs` and a fresh peer (new handshake at once). */
  async function restart(extraArgs: string[]): Promise<void> {
    await w.startGateway({ extraArgs });
    await w.startPeer();
  }

  beforeAll(async () => {
    w = await createWorld(PREFIX, IFP, { files: { "1m.bin": MiB } });
    fw = fwHelpers();
    await w.startGateway({ extraArgs: forwardArgs });
    await w.startPeer();
    ({ peerTcp, peerUdp, gwLoopback } = await setUpForwardsWorld(w.t, fw, procs));
    // Handshake now, so the first test does not pay for it.
    expect(await w.ping(ADDR.tunGw4, 1)).toBe(1);
  }, 90_000);

  afterAll(async () => {
    for (const g of extraGateways) await g.stop().catch(() => {});
    for (const p of procs) await p.stop(1000).catch(() => {});
    await w?.destroy();
  }, 30_000);

  const gwLog = () => `\n--- gateway log (tail) ---\n${w.gateway?.log().slice(-3000) ?? ""}`;
  const j = (x: unknown) => JSON.stringify(x);

  test("reverse TCP -t HOST,SRC:0,DST: inet client -> peer server, 1 MiB echoed byte-exact, half-close, round-robin source ports", async () => {
    const before = connLines(peerTcp).length;
    const a = await fw.tcpClient(w.t.inet, ADDR.gwInet4, FWD.tcpSrc, MiB, 1, ADDR.inet4);
    expect(a.ok, j(a) + gwLog()).toBe(true);
    expect(a.echoLen).toBe(MiB);
    expect(a.echoSha256).toBe(a.sentSha256!);
    // The reply the peer's server computed after the inet client shut its write side.
    expect(a.trailer).toBe(`${a.sentSha256} ${MiB}\n`);
    const b = await fw.tcpClient(w.t.inet, ADDR.gwInet4, FWD.tcpSrc, 64 * 1024, 2, ADDR.inet4);
    expect(b.ok, j(b) + gwLog()).toBe(true);
    expect(b.trailer).toBe(`${b.sentSha256} ${64 * 1024}\n`);
    const seen = connLines(peerTcp).slice(before);
    console.log(`forwards: -t with SRC ${ADDR.tunGw4}:0, peer saw ${j(seen)}; 1 MiB round trip ${a.seconds} s`);
    expect(seen.length, peerTcp.output()).toBe(2);
    expect(seen.map((c) => c.ip)).toEqual([ADDR.tunGw4, ADDR.tunGw4]);
    expect(seen[0]!.port).toBeGreaterThanOrEqual(1024);
    expect(seen[1]!.port).toBe(seen[0]!.port + 1);
  }, 60_000);

  test("reverse TCP -t HOST,,DST: the peer sees the inet client's own address and port (v4 and v6)", async () => {
    const before = connLines(peerTcp).length;
    const a = await fw.tcpClient(w.t.inet, ADDR.gwInet4, FWD.tcpNoSrc, MiB, 3, ADDR.inet4, 40123);
    expect(a.ok, j(a) + gwLog()).toBe(true);
    expect(a.echoSha256).toBe(a.sentSha256!);
    expect(a.trailer).toBe(`${a.sentSha256} ${MiB}\n`);
    const b = await fw.tcpClient(w.t.inet, ADDR.gwInet6, FWD.tcp6, 256 * 1024, 4, ADDR.inet6, 40124);
    expect(b.ok, j(b) + gwLog()).toBe(true);
    expect(b.echoSha256).toBe(b.sentSha256!);
    expect(b.trailer).toBe(`${b.sentSha256} ${256 * 1024}\n`);
    const seen = connLines(peerTcp).slice(before);
    console.log(`forwards: -t with empty SRC, peer saw ${j(seen)}`);
    expect(seen, peerTcp.output()).toEqual([
      { ip: ADDR.inet4, port: 40123 },
      { ip: ADDR.inet6, port: 40124 },
    ]);
  }, 60_000);

  test("reverse UDP -u: two inet senders each get their own replies (SRC:0 and empty SRC)", async () => {
    const check = (r: Awaited<ReturnType<Fw["udpClients"]>>, port: number) => {
      expect(r.ok, j(r) + `\n${peerUdp.output().slice(-2000)}` + gwLog()).toBe(true);
      const seenBy = r.replies.map((rs, i) => {
        for (const x of rs) {
          expect(x.from).toBe(`${ADDR.gwInet4}:${port}`);
          expect(x.text).toMatch(new RegExp(`\\|sender${i}-msg\\d$`));
        }
        return new Set(rs.map((x) => x.text.split("|")[0]));
      });
      // Each sender was seen by the peer as one stable source.
      for (const s of seenBy) expect(s.size).toBe(1);
      return seenBy.map((s) => [...s][0]!);
    };
    const a = await fw.udpClients(w.t.inet, ADDR.gwInet4, FWD.udpSrc, ADDR.inet4, [41001, 41002]);
    const sa = check(a, FWD.udpSrc);
    console.log(`forwards: -u with SRC ${ADDR.tunGw4}:0, peer saw ${j(sa)}`);
    expect(sa[0]!.split(" ")[0]).toBe(ADDR.tunGw4);
    expect(sa[1]!.split(" ")[0]).toBe(ADDR.tunGw4);
    expect(sa[0]).not.toBe(sa[1]); // one round-robin source port per sender
    const b = await fw.udpClients(w.t.inet, ADDR.gwInet4, FWD.udpNoSrc, ADDR.inet4, [41003, 41004]);
    const sb = check(b, FWD.udpNoSrc);
    console.log(`forwards: -u with empty SRC, peer saw ${j(sb)}`);
    expect(sb).toEqual([`${ADDR.inet4} 41003`, `${ADDR.inet4} 41004`]);
  }, 60_000);

  test("ICMP errors reach the peer's kernel: UDP port/host unreachable; TCP to unreachable hosts fails fast", async () => {
    // A SYN black hole in inet (nftables in the test's own namespace): the gateway's own connect
    // timer (10 s) answers with ICMP host unreachable. Runs alongside the rest.
    const blackhole = fw.tcpErr(w.t.peer, ADDR.inet4, BLACKHOLE_PORT, 20);
    // UDP to a closed port: ICMP port unreachable (v4 3/3, v6 1/4) -> ECONNREFUSED.
    const u4 = await fw.udpErr(w.t.peer, ADDR.inet4, PORTS.closed);
    expect(u4.errno, j(u4) + gwLog()).toBe("ECONNREFUSED");
    expect([u4.icmpType, u4.icmpCode]).toEqual([3, 3]);
    const u6 = await fw.udpErr(w.t.peer, ADDR.inet6, PORTS.closed);
    expect(u6.errno, j(u6) + gwLog()).toBe("ECONNREFUSED");
    expect([u6.icmpType, u6.icmpCode]).toEqual([1, 4]);
    // UDP to an address nobody owns: gw's neighbour resolution fails (~3 s), its kernel reports
    // EHOSTUNREACH on the gateway's socket, the peer gets host unreachable 3/1.
    const ux = await fw.udpErr(w.t.peer, NOBODY, 7000, 2.5);
    expect(ux.errno, j(ux) + gwLog()).toBe("EHOSTUNREACH");
    expect([ux.icmpType, ux.icmpCode]).toEqual([3, 1]);
    // TCP: unreachable route, throw route, nobody home (neighbour fails ~3 s): the peer's connect
    // fails fast instead of retrying SYNs for two minutes. (Bun 1.4.4 reports every connect failure
    // as ECONNREFUSED, so the peer gets a RST here, not ICMP: see the README's ICMP table.)
    const th = await fw.tcpErr(w.t.peer, UNREACH_HOST, 80);
    const tn = await fw.tcpErr(w.t.peer, THROW_HOST, 80);
    const tx = await fw.tcpErr(w.t.peer, NOBODY, 80);
    const curl = await exec(w.t.peer, ["curl", "-sS", "--max-time", "12", `http://${UNREACH_HOST}:8080/`], {
      timeoutMs: 20_000,
    });
    const bh = await blackhole;
    console.log(
      `icmp: udp closed port v4 ${j(u4)}\nicmp: udp closed port v6 ${j(u6)}\nicmp: udp ${NOBODY} ${j(ux)}\n` +
        `icmp: tcp ${UNREACH_HOST} ${j(th)}; ${THROW_HOST} ${j(tn)}; ${NOBODY} ${j(tx)}; ` +
        `black hole ${ADDR.inet4}:${BLACKHOLE_PORT} ${j(bh)}\nicmp: curl ${Math.round(curl.ms)} ms: ${curl.stderr.trim()}`,
    );
    const failed = /^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH)$/;
    expect(th.result, j(th) + gwLog()).toMatch(failed);
    expect(th.ms).toBeLessThan(2000);
    expect(tn.result, j(tn) + gwLog()).toMatch(failed);
    expect(tn.ms).toBeLessThan(2000);
    expect(tx.result, j(tx) + gwLog()).toMatch(failed);
    expect(tx.ms).toBeLessThan(5000);
    expect(curl.code, curl.stderr).toBe(7);
    expect(curl.ms).toBeLessThan(5000);
    expect(bh.result, j(bh) + gwLog()).toBe("EHOSTUNREACH");
    expect(bh.ms).toBeGreaterThan(8000);
    expect(bh.ms).toBeLessThan(14_000);
  }, 60_000);

  // A route in gw that refuses at once makes the host socket's send() itself throw: the gateway
  // turns that into the same ICMP as an error reported later through the socket.
  test("ICMP errors: UDP send refused at once by gw's routes -> host / net unreachable to the peer", async () => {
    const uh = await fw.udpErr(w.t.peer, UNREACH_HOST, 7000, 1);
    const un = await fw.udpErr(w.t.peer, THROW_HOST, 7000, 1);
    console.log(`icmp (udp send-time): ${UNREACH_HOST} ${j(uh)}; ${THROW_HOST} ${j(un)}`);
    expect(uh.errno, j(uh) + gwLog()).toBe("EHOSTUNREACH");
    expect([uh.icmpType, uh.icmpCode]).toEqual([3, 1]);
    expect(un.errno, j(un) + gwLog()).toBe("ENETUNREACH");
    expect([un.icmpType, un.icmpCode]).toEqual([3, 0]);
  }, 30_000);

  test("policy (a) default: inet reachable, the gateway's loopback refused (raw SYN to 127.0.0.1 through the tunnel)", async () => {
    const ok = await fw.tcpErr(w.t.peer, ADDR.inet4, PORTS.http);
    expect(ok.result, j(ok) + gwLog()).toBe("ok");
    const dl = await curlSha256(w.t.peer, `http://${ADDR.inet4}:${PORTS.http}/1m.bin`);
    expect(dl.sha256, dl.result.stderr + gwLog()).toBe(w.servers.files["1m.bin"]!.sha256);
    const lo = await fw.rawTcp(w.t.peer, w.peer.ifname, ADDR.tunPeer4, "127.0.0.1", GW_LOOPBACK_PORT);
    console.log(`policy default: loopback ${j(lo)}`);
    expect(lo.result, j(lo) + gwLog()).toBe("rst");
    expect(lo.rstAck).toBe(true);
    expect(connLines(gwLoopback).length).toBe(0);
  }, 60_000);

  test("policy (b) --deny 10.202.0.2/32:8080 and :7000: TCP reset fast, UDP gets ICMP admin-prohibited; others pass", async () => {
    await restart(["--deny", `${ADDR.inet4}/32:${PORTS.http}`, "--deny", `${ADDR.inet4}/32:${PORTS.udpEcho}`]);
    const denied = await fw.tcpErr(w.t.peer, ADDR.inet4, PORTS.http);
    expect(denied.result, j(denied) + gwLog()).toBe("ECONNREFUSED");
    expect(denied.ms).toBeLessThan(1000);
    const otherHost = await fw.tcpErr(w.t.peer, ADDR.inet4b, PORTS.http);
    expect(otherHost.result, j(otherHost) + gwLog()).toBe("ok");
    const otherPort = await fw.tcpErr(w.t.peer, ADDR.inet4, PORTS.sink);
    expect(otherPort.result, j(otherPort) + gwLog()).toBe("ok");
    const ud = await fw.udpErr(w.t.peer, ADDR.inet4, PORTS.udpEcho);
    console.log(`policy deny: tcp ${j(denied)}; udp ${j(ud)}`);
    expect(ud.errno, j(ud) + gwLog()).toBe("EHOSTUNREACH");
    expect([ud.icmpType, ud.icmpCode]).toEqual([3, 13]);
    const echo = await udpRequest(w.t.peer, ADDR.inet4b, PORTS.udpEcho, "c0ffee", "4");
    expect(echo.reply, j(echo) + gwLog()).toBe("c0ffee");
    expect(w.gateway!.countLog(/den(y|ied)/i), gwLog()).toBeGreaterThan(0);
  }, 60_000);

  test("policy (c) first match wins: --deny /24 --allow /32 denies; --allow /32 --deny /24 allows only the /32", async () => {
    await restart(["--deny", "10.202.0.0/24", "--allow", `${ADDR.inet4}/32`]);
    const a2 = await fw.tcpErr(w.t.peer, ADDR.inet4, PORTS.http);
    const a3 = await fw.tcpErr(w.t.peer, ADDR.inet4b, PORTS.http);
    expect(a2.result, j(a2) + gwLog()).toBe("ECONNREFUSED");
    expect(a3.result, j(a3) + gwLog()).toBe("ECONNREFUSED");
    await restart(["--allow", `${ADDR.inet4}/32`, "--deny", "10.202.0.0/24"]);
    const b2 = await fw.tcpErr(w.t.peer, ADDR.inet4, PORTS.http);
    const b3 = await fw.tcpErr(w.t.peer, ADDR.inet4b, PORTS.http);
    console.log(`policy order: deny,allow -> ${a2.result}/${a3.result}; allow,deny -> ${b2.result}/${b3.result}`);
    expect(b2.result, j(b2) + gwLog()).toBe("ok");
    expect(b3.result, j(b3) + gwLog()).toBe("ECONNREFUSED");
  }, 60_000);

  test("policy (d) --allow 127.0.0.1/32: the gateway's loopback service is reachable through the tunnel", async () => {
    await restart(["--allow", "127.0.0.1/32"]);
    const lo = await fw.rawTcp(w.t.peer, w.peer.ifname, ADDR.tunPeer4, "127.0.0.1", GW_LOOPBACK_PORT);
    console.log(`policy allow loopback: ${j(lo)}`);
    expect(lo.result, j(lo) + gwLog()).toBe("synack");
    expect(lo.ackOk).toBe(true);
    expect(lo.data).toBe(`${BANNER}\n`);
    expect(connLines(gwLoopback).length).toBe(1);
  }, 60_000);

  test("policy (e) built-in denials: gw's own veth address (also as ::ffff:), the stats port, 10.0.2.1:80 and UDP; --allow opens them", async () => {
    // A service on gw's inet-facing address, and one at 10.0.2.1:80 in inet (gw routes 10.0.2.1 there),
    // so "allowed" shows as a real connection.
    await execCheck(w.t.inet, ["ip", "addr", "add", "10.0.2.1/32", "dev", "lo"]);
    await execCheck(w.t.gw, ["ip", "route", "add", "10.0.2.1/32", "via", ADDR.inet4]);
    // The peer's own kernel would answer the gateway's SYN-ACK from ::ffff:10.202.0.1 with a RST
    // (no socket of its own): it drops IPv4-mapped sources instead; the raw client reads them first.
    await execCheck(w.t.peer, ["nft", "add", "table", "ip6", "wgsifwpeer"]);
    await execCheck(w.t.peer, [
      "nft",
      "add",
      "chain",
      "ip6",
      "wgsifwpeer",
      "in",
      "{ type filter hook input priority 0; }",
    ]);
    await execCheck(w.t.peer, [
      "nft",
      "add",
      "rule",
      "ip6",
      "wgsifwpeer",
      "in",
      "ip6",
      "saddr",
      "::ffff:0.0.0.0/96",
      "drop",
    ]);
    const veth = await fw.bannerServer(w.t.gw, ADDR.gwInet4, GW_VETH_PORT, "wgsifw-gw-veth-service");
    const own = await fw.bannerServer(w.t.inet, "10.0.2.1", 80, "wgsifw-10.0.2.1-service");
    procs.push(veth, own);
    const start = async (extraArgs: string[]) => {
      await w.startGateway({ dns: "10.0.2.1:53", pingable: "10.0.2.1", extraArgs });
      await w.startPeer();
      expect(await w.ping("10.0.2.1", 1)).toBe(1);
    };
    const probe = async () => ({
      veth: await fw.tcpErr(w.t.peer, ADDR.gwInet4, GW_VETH_PORT, 5),
      mapped: await fw.rawTcp(w.t.peer, w.peer.ifname, ADDR.tunPeer6, `::ffff:${ADDR.gwInet4}`, GW_VETH_PORT),
      stats: await fw.tcpErr(w.t.peer, ADDR.gwInet4, STATS_PORT, 5),
      own80: await fw.tcpErr(w.t.peer, "10.0.2.1", 80, 5),
    });
    try {
      await start(["--stats-listen", `0.0.0.0:${STATS_PORT}`]);
      const d = await probe();
      const udp = await fw.udpErr(w.t.peer, "10.0.2.1", 123);
      console.log(`policy built-in (default): ${j(d)}; udp 10.0.2.1:123 ${j(udp)}`);
      expect(d.veth.result, j(d.veth) + gwLog()).toBe("ECONNREFUSED");
      expect(d.mapped.result, j(d.mapped) + gwLog()).toBe("rst");
      expect(d.stats.result, j(d.stats) + gwLog()).toBe("ECONNREFUSED");
      expect(d.own80.result, j(d.own80) + gwLog()).toBe("ECONNREFUSED");
      expect(d.own80.ms).toBeLessThan(1000);
      // Not a service of the gateway's own address: "port unreachable", nothing forwarded.
      expect(udp.errno, j(udp) + gwLog()).toBe("ECONNREFUSED");
      expect([udp.icmpType, udp.icmpCode]).toEqual([3, 3]);
      expect(connLines(veth).length).toBe(0);
      expect(connLines(own).length).toBe(0);
      expect(w.gateway!.countLog(/an address of the gateway host/), gwLog()).toBeGreaterThan(0);

      await start([
        "--stats-listen",
        `0.0.0.0:${STATS_PORT}`,
        "--allow",
        `${ADDR.gwInet4}/32`,
        "--allow",
        "10.0.2.1/32:80",
      ]);
      const a = await probe();
      console.log(`policy built-in (--allow): ${j(a)}`);
      expect(a.veth.result, j(a.veth) + gwLog()).toBe("ok");
      expect(a.mapped.result, j(a.mapped) + gwLog()).toBe("synack");
      expect(a.mapped.data).toBe("wgsifw-gw-veth-service\n");
      expect(a.stats.result, j(a.stats) + gwLog()).toBe("ok");
      expect(a.own80.result, j(a.own80) + gwLog()).toBe("ok");
      await waitUntil("the allowed connections", async () => connLines(own).length >= 1, 5000, 100);
      expect(connLines(veth).length).toBe(2);
    } finally {
      await exec(w.t.gw, ["ip", "route", "del", "10.0.2.1/32"]);
      await exec(w.t.inet, ["ip", "addr", "del", "10.0.2.1/32", "dev", "lo"]);
      await exec(w.t.peer, ["nft", "delete", "table", "ip6", "wgsifwpeer"]);
    }
  }, 90_000);

  test("GUE mode with a raw-IP socat peer: ping, DNS, curl sha256, UDP echo, reverse TCP", async () => {
    const gue = new Gateway({
      ns: w.t.gw,
      privateKey: "INSECURE",
      peerPublicKey: "GUE",
      bindPort: 6556,
      peerEndpoint: `${ADDR.peerOuter4}:6555`,
      keepaliveInterval: 0,
      dns: "10.0.2.1:53",
      pingable: "10.0.2.1",
      extraArgs: ["-t", `${ADDR.gwInet4}:${FWD.gueTcp},,10.0.2.15:${PEER_TCP}`],
    });
    extraGateways.push(gue);
    await gue.start();
    const socat = spawnBg(w.t.peer, "socat-gue", [
      "socat",
      `TUN:10.0.2.15/24,up,iff-no-pi,tun-name=${GUE_TUN}`,
      `UDP:${ADDR.gwOuter4}:6556,sourceport=6555`,
    ]);
    procs.push(socat);
    await waitUntil(
      `${GUE_TUN} up`,
      async () => (await exec(w.t.peer, ["ip", "addr", "show", GUE_TUN])).stdout.includes("10.0.2.15"),
      10_000,
      100,
    );
    await execCheck(w.t.peer, ["ip", "link", "set", GUE_TUN, "mtu", "1400"]);
    // Only the inet subnet goes through socat; the WireGuard peer keeps its default route.
    await execCheck(w.t.peer, ["ip", "route", "add", "10.202.0.0/24", "dev", GUE_TUN]);
    const gueServer = await fw.tcpServer(w.t.peer, PEER_TCP, ["10.0.2.15"]);
    procs.push(gueServer);
    const glog = () => `\n--- GUE gateway log ---\n${gue.log().slice(-3000)}\n--- socat ---\n${socat.output()}`;

    const ping = await exec(w.t.peer, ["ping", "-c", "3", "-i", "0.3", "-W", "2", "10.0.2.1"], { timeoutMs: 15_000 });
    expect(ping.stdout, glog()).toContain("3 received");
    const dig = await exec(w.t.peer, ["dig", "@10.0.2.1", "+time=2", "+tries=2", "+short", HOSTS.web, "A"], {
      timeoutMs: 15_000,
    });
    expect(dig.stdout.trim(), dig.stdout + glog()).toBe(ADDR.inet4);
    const dl = await curlSha256(w.t.peer, `http://${ADDR.inet4}:${PORTS.http}/1m.bin`);
    expect(dl.sha256, dl.result.stderr + glog()).toBe(w.servers.files["1m.bin"]!.sha256);
    const echo = await udpRequest(w.t.peer, ADDR.inet4, PORTS.udpEcho, "9ae0c0de", "4");
    expect(echo.reply, j(echo) + glog()).toBe("9ae0c0de");
    const rev = await fw.tcpClient(w.t.inet, ADDR.gwInet4, FWD.gueTcp, 256 * 1024, 5, ADDR.inet4, 40125);
    expect(rev.ok, j(rev) + glog()).toBe(true);
    expect(rev.trailer).toBe(`${rev.sentSha256} ${256 * 1024}\n`);
    expect(connLines(gueServer)).toEqual([{ ip: ADDR.inet4, port: 40125 }]);
    expect(gue.running()).toBe(true);
  }, 60_000);
});
