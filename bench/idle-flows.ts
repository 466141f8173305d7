// Memory per idle TCP flow: a gateway process (the CLI, on loopback) carries N idle TCP connections
// from the in-process test client to a loopback server; prints the gateway's RSS before and after.
//
//   bun bench/idle-flows.ts [--flows 1000]
import { generatePrivateKey, keyToBase64, publicKeyOf } from "../src/wireguard/keys.ts";
import { TestClient, until } from "../test/e2e/client.ts";

const flowsArg = process.argv.indexOf("--flows");
const FLOWS = Math.min(5000, Math.max(1, Number(flowsArg >= 0 ? process.argv[flowsArg + 1] : 1000)));

function rssKiB(pid: number): number {
  const status = require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8") as string;
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

const gwKey = generatePrivateKey();
const clientKey = generatePrivateKey();
const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
const probe = await Bun.udpSocket({ hostname: "127.0.0.1" });
const gwPort = probe.port;
probe.close();
const gw = Bun.spawn(
  [
    "bun",
    "src/cli.ts",
    "-k",
    keyToBase64(gwKey),
    "-K",
    keyToBase64(publicKeyOf(clientKey)),
    "-b",
    `127.0.0.1:${gwPort}`,
    "--allow",
    "127.0.0.1/32",
    "--log-level",
    "warn",
  ],
  { stdout: "inherit", stderr: "inherit" },
);
let client: TestClient | undefined;
try {
  await Bun.sleep(800);
  client = await TestClient.connect({
    privateKey: clientKey,
    gatewayPublicKey: publicKeyOf(gwKey),
    gateway: { address: "127.0.0.1", port: gwPort },
    bufferSize: 65535,
  });
  await client.handshake();
  Bun.gc(true);
  await Bun.sleep(300);
  const before = rssKiB(gw.pid);
  let open = 0;
  for (let i = 0; i < FLOWS; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(FLOWS, i + 50); j++) batch.push(client.tcpConnect("127.0.0.1", server.port, 15000));
    open += (await Promise.all(batch)).length;
  }
  await until(() => open === FLOWS, 1000, "all flows open");
  await Bun.sleep(1500);
  const after = rssKiB(gw.pid);
  console.log(`idle TCP flows: ${FLOWS}`);
  console.log(`gateway RSS before: ${(before / 1024).toFixed(1)} MiB, with flows: ${(after / 1024).toFixed(1)} MiB`);
  console.log(`per flow: ${(((after - before) * 1024) / FLOWS / 1024).toFixed(1)} KiB`);
} finally {
  client?.close();
  gw.kill();
  await gw.exited;
  server.stop(true);
}
