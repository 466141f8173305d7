// The harness proven without wgslirpy: wireguard-go (peer ns) <-> wireguard-go (gw ns, kernel
// forwarding) <-> servers in the inet ns. If this fails, the harness or the machine is broken, not
// the gateway.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { describeOrSkip } from "../../harness/gate.ts";
import { exec, interopSkipReason } from "../../harness/netns.ts";
import { type ReferencePair, startReferencePair } from "../../harness/reference.ts";
import {
  curlSha256,
  halfClose,
  type InetServers,
  PORTS,
  startInetServers,
  tcpConnectProbe,
  udpRequest,
} from "../../harness/servers.ts";
import { ADDR, createTopology, type Topology } from "../../harness/topology.ts";
import { sweepWgSockets } from "../../harness/wireguard-go.ts";

const skip = interopSkipReason(["wireguard-go", "wg", "ip", "python3", "curl", "ping"]);

const PREFIX = "wgsiref-";
const IFP = "wgsiref";

describeOrSkip(skip, "reference path: wireguard-go <-> wireguard-go through the namespaces", () => {
  let t: Topology;
  let pair: ReferencePair;
  let servers: InetServers;

  beforeAll(async () => {
    await sweepWgSockets(IFP);
    t = await createTopology(PREFIX);
    servers = await startInetServers(t.inet, { files: { "1m.bin": 1 << 20 } });
    pair = await startReferencePair(t, IFP);
  }, 60_000);

  afterAll(async () => {
    await pair?.stop();
    await servers?.stop();
    await t?.destroy();
  }, 30_000);

  test("ping over IPv4 and IPv6 through the tunnel", async () => {
    const r4 = await exec(t.peer, ["ping", "-c", "2", "-i", "0.2", "-W", "2", ADDR.tunGw4], { timeoutMs: 15_000 });
    expect(r4.stdout).toContain("2 received");
    const r6 = await exec(t.peer, ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", ADDR.tunGw6], {
      timeoutMs: 15_000,
    });
    expect(r6.stdout).toContain("2 received");
    const hs = await pair.peer.show();
    expect(hs.peers[0]!.latestHandshake).toBeGreaterThan(0);
  }, 30_000);

  test("HTTP download over IPv4 and IPv6 has the right sha256", async () => {
    const f = servers.files["1m.bin"]!;
    const a = await curlSha256(t.peer, `http://${ADDR.inet4}:${PORTS.http}/1m.bin`);
    expect(a.sha256).toBe(f.sha256);
    const b = await curlSha256(t.peer, `http://[${ADDR.inet6}]:${PORTS.http}/1m.bin`);
    expect(b.sha256).toBe(f.sha256);
  }, 60_000);

  test("half-close: upload, shut write side, read the sha256 computed after EOF", async () => {
    const r = await halfClose(t.peer, ADDR.inet4, PORTS.sink, 1 << 20, 3);
    expect(r.reply?.trim()).toBe(`${r.sentSha256} ${1 << 20}`);
  }, 60_000);

  test("UDP echo v4/v6 and a reply from another port", async () => {
    const e4 = await udpRequest(t.peer, ADDR.inet4, PORTS.udpEcho, "68656c6c6f");
    expect(e4.reply).toBe("68656c6c6f");
    const e6 = await udpRequest(t.peer, ADDR.inet6, PORTS.udpEcho, "0001020304");
    expect(e6.reply).toBe("0001020304");
    const o = await udpRequest(t.peer, ADDR.inet4, PORTS.udpOther, "abcd");
    expect(o.fromPort).toBe(PORTS.udpOtherReply);
  }, 60_000);

  test("TCP to a closed port is refused quickly", async () => {
    const r = await tcpConnectProbe(t.peer, ADDR.inet4, PORTS.closed);
    expect(r.result).toBe("refused");
    expect(r.ms).toBeLessThan(1000);
  }, 30_000);
});
