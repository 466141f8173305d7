// Issue 13: the single-file executable of `bun run build` as the gateway, with a real wireguard-go
// peer in namespaces: handshake, ping, DNS-by-name curl byte-exact, and the start line naming the
// embedded native AEAD. (test/e2e/compiled.test.ts covers --version, genkey/pubkey without root.)
import { afterAll, beforeAll, expect, test } from "bun:test";
import { compiledBinary } from "../../harness/compiled.ts";
import { createWorld, type World } from "../../harness/fixture.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { interopSkipReason, sysctl } from "../../harness/netns.ts";
import { curlSha256, PORTS } from "../../harness/servers.ts";
import { ADDR, HOSTS } from "../../harness/topology.ts";

const skip = interopSkipReason(["wireguard-go", "wg", "ip", "ss", "python3", "ping", "curl", "bash", "sha256sum"]);

const PREFIX = "wgsicb-";
const IFP = "wgsicb";
const MiB = 1 << 20;

describeOrSkip(skip, "the compiled binary as the gateway, wireguard-go as the peer", () => {
  let w: World;
  let bin = "";

  beforeAll(async () => {
    const b = await compiledBinary();
    bin = b.path;
    console.log(`compiled binary ${b.built ? `built in ${(b.buildMs / 1000).toFixed(1)} s` : "from the cache"}`);
    w = await createWorld(PREFIX, IFP, { files: { "4m.bin": 4 * MiB } });
    // Ping sockets allowed: echo to other hosts goes through the binary's ping worker.
    await sysctl(w.t.gw, "net.ipv4.ping_group_range", "0 2147483647");
    await w.startGateway({ command: [bin], logLevel: "info" });
    await w.startPeer();
  }, 120_000);

  afterAll(async () => {
    await w?.destroy();
  }, 30_000);

  const gwLog = () => `\n--- gateway log (tail) ---\n${w.gateway?.log().slice(-3000) ?? ""}`;

  test("ping the pingable address", async () => {
    expect(await w.ping(ADDR.tunGw4, 3), gwLog()).toBe(3);
  }, 30_000);

  test("ping an inet host (ICMP datagram sockets polled by the worker inside the binary)", async () => {
    expect(await w.ping(ADDR.inet4, 3), gwLog()).toBe(3);
    expect(await w.ping(ADDR.inet6, 2), gwLog()).toBe(2);
  }, 30_000);

  test("curl by name (DNS through the gateway), IPv4 and IPv6, byte-exact", async () => {
    const f = w.servers.files["4m.bin"]!;
    for (const fam of ["-4", "-6"]) {
      const r = await curlSha256(w.t.peer, `http://${HOSTS.web}:${PORTS.http}/${f.name}`, [fam], 60_000);
      expect(r.sha256, `${fam}: ${r.result.stderr}${gwLog()}`).toBe(f.sha256);
    }
  }, 90_000);

  test("the log tells the story: started with the embedded AEAD, the peer's session with its endpoint", () => {
    const log = w.gateway?.log() ?? "";
    expect(log, gwLog()).toMatch(/ started: WireGuard mode on UDP [0-9.]+:\d+, AEAD sodium-native \(embedded\),/);
    expect(log, gwLog()).toMatch(
      new RegExp(`: session established with ${ADDR.peerOuter4.replaceAll(".", "\\.")}:\\d+`),
    );
    expect(log).not.toContain(w.gwKeys.privateKey);
  });
});
