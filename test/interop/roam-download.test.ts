// Issue 9, build item 7: a download-only flow after the peer roams. The wireguard-go peer moves to
// a new UDP port in the middle of a download, and for 7 s nothing it sends from there gets through
// (an nft rule in the peer namespace: a handover to a network that is not up yet). What the gateway
// sends meanwhile goes to the old port and is lost, so its retransmission timer backs off (0.2, 0.6,
// 1.4, 3.0, 6.2, 12.6 s...). Then the peer pings from the new port (a download-only client sends
// nothing on its own until wireguard-go's 15 s rekey): the gateway roams, and the stuck flow must
// resend at once instead of waiting out the backed-off timer (until 12.6 s here).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { createWorld, PEER_PORT, type World } from "../../harness/fixture.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { exec, execCheck, interopSkipReason, sleep, spawnBg } from "../../harness/netns.ts";
import { PORTS } from "../../harness/servers.ts";
import { ADDR, HOSTS } from "../../harness/topology.ts";

const skip = interopSkipReason(["wireguard-go", "wg", "ip", "ss", "ping", "curl", "sha256sum", "nft"]);

const PREFIX = "wgsirm-";
const IFP = "wgsirm";
const FILE = "128m.bin";
/** How long the peer's packets from its new port are dropped before it pings (the timer backs off). */
const SILENT_MS = 7000;
const NEW_PORT = PEER_PORT + 7;

describeOrSkip(skip, "roaming mid-download (gateway CLI, wireguard-go peer)", () => {
  let w: World;

  beforeAll(async () => {
    w = await createWorld(PREFIX, IFP, { files: { [FILE]: 128 << 20 } });
    await w.startGateway({ logLevel: "info" });
    await w.startPeer();
  }, 120_000);

  afterAll(async () => {
    await w?.destroy();
  }, 30_000);

  const gwLog = () => `\n--- gateway log (tail) ---\n${w.gateway?.log().slice(-3000) ?? ""}`;
  const size = (path: string): number => {
    try {
      return statSync(path).size;
    } catch {
      return 0;
    }
  };

  test("the download resumes within 3 s of the gateway hearing from the new port, and finishes byte-exact", async () => {
    expect(await w.ping(ADDR.tunGw4, 2), gwLog()).toBe(2);
    const out = `${w.tmp}/download.bin`;
    const curl = spawnBg(w.t.peer, "curl", [
      "curl",
      "-sS",
      "--fail",
      "--max-time",
      "150",
      "-4",
      "-o",
      out,
      `http://${HOSTS.web}:${PORTS.http}/${FILE}`,
    ]);
    // Move once the transfer is well under way.
    for (let i = 0; i < 600 && size(out) < 8 << 20 && curl.running(); i++) await sleep(20);
    expect(size(out), `download did not start${curl.output()}${gwLog()}`).toBeGreaterThanOrEqual(8 << 20);
    expect(curl.running(), "download finished before the move: the file is too small for this machine").toBe(true);
    // The new network is not up yet: nothing the peer sends from its new port gets out.
    const table = ["inet", "wgsirm_handover"];
    await execCheck(w.t.peer, ["nft", "add", "table", ...table]);
    await execCheck(w.t.peer, ["nft", "add", "chain", ...table, "out", "{ type filter hook output priority 0 ; }"]);
    await execCheck(w.t.peer, ["nft", "add", "rule", ...table, "out", "udp", "sport", String(NEW_PORT), "drop"]);
    await w.peer.setListenPort(NEW_PORT);
    const movedAt = performance.now();
    // Bytes already on their way still land; after a second nothing more can arrive on the old port.
    await sleep(1000);
    const stalledAt = size(out);
    await sleep(SILENT_MS - 1000);
    const stalled = size(out) === stalledAt;
    await execCheck(w.t.peer, ["nft", "delete", "table", ...table]);

    const pingAt = performance.now();
    const ping = exec(w.t.peer, ["ping", "-c", "1", "-W", "2", ADDR.tunGw4], { timeoutMs: 5000 });
    let resumedAt = Number.NaN;
    for (let i = 0; i < 1500; i++) {
      if (size(out) > stalledAt || !curl.running()) {
        resumedAt = performance.now();
        break;
      }
      await sleep(10);
    }
    await ping;
    const code = await curl.exited;
    const resumeMs = Math.round(resumedAt - pingAt);
    const sum = await exec(w.t.peer, ["sha256sum", out], { timeoutMs: 30_000 });
    const stats = `moved after ${(stalledAt / 2 ** 20).toFixed(1)} MiB; silent ${Math.round(pingAt - movedAt)} ms; resumed ${resumeMs} ms after the peer's first packet from the new port`;
    console.log(`roam download: ${stats}`);

    expect(stalled, `data kept arriving while the gateway still sent to the old port?! ${stats}`).toBe(true);
    expect(code, curl.output() + gwLog()).toBe(0);
    expect(sum.stdout.split(/\s+/)[0], stats).toBe(w.servers.files[FILE]!.sha256);
    expect(w.gateway!.countLog(/roamed from/), gwLog()).toBeGreaterThanOrEqual(1);
    expect(resumeMs, stats + gwLog()).toBeLessThan(3000);
  }, 180_000);
});
