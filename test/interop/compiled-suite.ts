/**
 * The single-file executable of `bun run build` (issue 13) as the gateway, for one CPU, with a real
 * wireguard-go peer in namespaces: handshake, ping, DNS-by-name curl byte-exact, and the start line
 * naming the embedded native AEAD. `runner` runs the binary (an emulator for another CPU's build:
 * compiled-arm64.test.ts); `slow` scales the time bounds for it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { compiledBinary } from "../../harness/compiled.ts";
import { createWorld, type World } from "../../harness/fixture.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { interopSkipReason, sysctl } from "../../harness/netns.ts";
import { curlSha256, PORTS } from "../../harness/servers.ts";
import { ADDR, HOSTS } from "../../harness/topology.ts";

const MiB = 1 << 20;
/** ELF e_machine values. */
const ELF_X86_64 = 62;
const ELF_AARCH64 = 183;

export interface CompiledGatewaySuite {
  arch: "x64" | "arm64";
  /** Namespace prefix and wireguard-go interface prefix, unique to the test file. */
  prefix: string;
  ifPrefix: string;
  /** Prepended to the binary's path (e.g. [qemu-aarch64-static]); [] runs it directly. */
  runner: string[];
  slow: number;
  /** A prerequisite beyond the interop ones is missing (the reason), or null. */
  missing: string | null;
}

export function compiledGatewaySuite(s: CompiledGatewaySuite): void {
  const skip =
    interopSkipReason(["wireguard-go", "wg", "ip", "ss", "python3", "ping", "curl", "bash", "sha256sum"]) ?? s.missing;

  describeOrSkip(skip, `the compiled linux-${s.arch} binary as the gateway, wireguard-go as the peer`, () => {
    let w: World;
    let binPath = "";

    beforeAll(async () => {
      const b = await compiledBinary(s.arch);
      binPath = b.path;
      console.log(
        `compiled linux-${s.arch} binary ${b.built ? `built in ${(b.buildMs / 1000).toFixed(1)} s` : "from the cache"}`,
      );
      w = await createWorld(s.prefix, s.ifPrefix, { files: { "4m.bin": 4 * MiB } });
      // Ping sockets allowed: echo to other hosts goes through the binary's ping worker.
      await sysctl(w.t.gw, "net.ipv4.ping_group_range", "0 2147483647");
      await w.startGateway({ command: [...s.runner, b.path], logLevel: "info" });
      await w.startPeer();
    }, 180_000 * s.slow);

    afterAll(async () => {
      await w?.destroy();
    }, 30_000);

    const gwLog = () => `\n--- gateway log (tail) ---\n${w.gateway?.log().slice(-3000) ?? ""}`;

    test(`the gateway runs the linux-${s.arch} ELF executable (e_machine), through the runner`, async () => {
      const head = new Uint8Array(await Bun.file(binPath).slice(0, 20).arrayBuffer());
      expect([...head.subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
      expect(head[18]! | (head[19]! << 8)).toBe(s.arch === "arm64" ? ELF_AARCH64 : ELF_X86_64);
      const cmdline = await Bun.file(`/proc/${w.gateway!.pid}/cmdline`).text();
      expect(cmdline.split("\0").slice(0, s.runner.length + 1)).toEqual([...s.runner, binPath]);
    });

    test(
      "ping the pingable address",
      async () => {
        expect(await w.ping(ADDR.tunGw4, 3), gwLog()).toBe(3);
      },
      30_000 * s.slow,
    );

    test(
      "ping an inet host (ICMP datagram sockets polled by the worker inside the binary)",
      async () => {
        expect(await w.ping(ADDR.inet4, 3), gwLog()).toBe(3);
        expect(await w.ping(ADDR.inet6, 2), gwLog()).toBe(2);
      },
      30_000 * s.slow,
    );

    test(
      "curl by name (DNS through the gateway), IPv4 and IPv6, byte-exact",
      async () => {
        const f = w.servers.files["4m.bin"]!;
        for (const fam of ["-4", "-6"]) {
          const r = await curlSha256(w.t.peer, `http://${HOSTS.web}:${PORTS.http}/${f.name}`, [fam], 60_000 * s.slow);
          expect(r.sha256, `${fam}: ${r.result.stderr}${gwLog()}`).toBe(f.sha256);
        }
      },
      90_000 * s.slow,
    );

    test("the log tells the story: started with the embedded AEAD, the peer's session with its endpoint", () => {
      const log = w.gateway?.log() ?? "";
      expect(log, gwLog()).toMatch(/ started: WireGuard mode on UDP [0-9.]+:\d+, AEAD sodium-native \(embedded\),/);
      expect(log, gwLog()).toMatch(
        new RegExp(`: session established with ${ADDR.peerOuter4.replaceAll(".", "\\.")}:\\d+`),
      );
      expect(log).not.toContain(w.gwKeys.privateKey);
    });
  });
}
