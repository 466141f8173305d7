// Capture the fixtures/pcap/ captures from a real Linux kernel: the peer namespace's own TCP/IP stack
// (curl, ping, dig, a fragmenting UDP sender) talking through wireguard-go to the gateway CLI;
// tcpdump records the inner packets on the wireguard-go interface (LINKTYPE_RAW).
//
//   bun harness/capture-fixtures.ts [OUTDIR]     (root; default OUTDIR = fixtures/pcap/)
import { resolve } from "node:path";
import { createWorld } from "./fixture.ts";
import { exec, interopSkipReason, spawnBg, sweepNs } from "./netns.ts";
import { PORTS } from "./servers.ts";
import { ADDR } from "./topology.ts";

const outDir = resolve(process.argv[2] ?? `${import.meta.dir}/../fixtures/pcap`);
const skip = interopSkipReason(["wireguard-go", "wg", "tcpdump", "curl", "dig", "ping", "python3"]);
if (skip) {
  console.error(`cannot capture: ${skip}`);
  process.exit(1);
}
await sweepNs("wgsicap-");
const w = await createWorld("wgsicap-", "wgsicap", { files: { "hello.txt": 1000 } });
try {
  await w.startGateway({ pingable: ADDR.tunGw4, dns: `${ADDR.tunGw4}:53`, logLevel: "info" });
  await w.peer.start();
  await w.peer.waitHandshake(10_000);
  const ifname = w.peer.ifname;

  async function capture(name: string, traffic: () => Promise<unknown>): Promise<void> {
    const file = `${outDir}/${name}.pcap`;
    const td = spawnBg(w.t.peer, `tcpdump ${name}`, [
      "tcpdump",
      "--immediate-mode",
      "-Z",
      "root",
      "-i",
      ifname,
      "-U",
      "-s",
      "0",
      "-w",
      file,
    ]);
    await td.waitFor(/listening on/, 5000);
    await traffic();
    await Bun.sleep(300);
    await td.stop(2000);
    console.log(`captured ${file}: ${td.output().trim().split("\n").slice(-3).join(" | ")}`);
  }
  const run = (argv: string[]) => exec(w.t.peer, argv, { timeoutMs: 15_000 });

  await capture("ping4", () => run(["ping", "-c", "2", "-i", "0.2", ADDR.tunGw4]));
  await capture("tcp4-http", () =>
    run(["curl", "-sS", "-o", "/dev/null", `http://${ADDR.inet4}:${PORTS.http}/hello.txt`]),
  );
  await capture("tcp6-http", () =>
    run(["curl", "-sS", "-o", "/dev/null", `http://[${ADDR.inet6}]:${PORTS.http}/hello.txt`]),
  );
  await capture("dns4", async () => {
    await run(["dig", "+tries=1", "+time=2", `@${ADDR.tunGw4}`, "web.test", "A"]);
    await run(["dig", "+tries=1", "+time=2", `@${ADDR.tunGw4}`, "web.test", "AAAA"]);
    await run(["dig", "+tries=1", "+time=2", `@${ADDR.tunGw4}`, "nosuchhost.test", "A"]);
  });
  // 3000-byte datagrams: the kernel fragments them at the tunnel MTU (1420), v4 and v6.
  const sendBig = (dst: string) =>
    run([
      "python3",
      "-c",
      "import socket,sys; f=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET; " +
        "s=socket.socket(f,socket.SOCK_DGRAM); s.settimeout(2); s.sendto(bytes(range(256))*11+bytes(184),(sys.argv[1],int(sys.argv[2])))\n" +
        "try:\n  s.recv(65535)\nexcept Exception: pass",
      dst,
      String(PORTS.udpEcho),
    ]);
  await capture("udp4-frag", () => sendBig(ADDR.inet4));
  await capture("udp6-frag", () => sendBig(ADDR.inet6));
  await w.startGateway({ pingable: ADDR.tunGw6, dns: null, logLevel: "info" });
  await Bun.sleep(500);
  await capture("ping6", () => run(["ping", "-6", "-c", "2", "-i", "0.2", ADDR.tunGw6]));
} finally {
  await w.destroy();
}
