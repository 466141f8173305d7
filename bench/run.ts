// `bun run bench`: iperf3 through wgslirpy next to the same run through a kernel-routed
// wireguard-go reference, in private namespaces (peer / gw / inet). Prints figures; gates nothing.
//
//   bun bench/run.ts [--time S] [--streams N] [--only wgslirpy|reference]
import { createWorld, type World } from "../harness/fixture.ts";
import { interopSkipReason, killAll } from "../harness/netns.ts";
import { type ReferencePair, startReferencePair } from "../harness/reference.ts";
import { PORTS } from "../harness/servers.ts";
import { ADDR } from "../harness/topology.ts";
import { type IperfResult, iperf } from "./iperf.ts";

const PREFIX = "wgsibench-";
const IFP = "wgsibench";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

const seconds = Math.min(60, Math.max(1, Number(arg("time", "5"))));
const streams = Math.min(8, Math.max(1, Number(arg("streams", "1"))));
const only = arg("only", "");

interface Row {
  path: string;
  download: IperfResult;
  upload: IperfResult;
}

async function measure(path: string, ns: string): Promise<Row> {
  process.stderr.write(`${path}: download (iperf3 -R, ${seconds}s)...\n`);
  const download = await iperf(ns, ADDR.inet4, PORTS.iperf, { seconds, reverse: true, streams });
  process.stderr.write(`${path}: upload (${seconds}s)...\n`);
  const upload = await iperf(ns, ADDR.inet4, PORTS.iperf, { seconds, reverse: false, streams });
  return { path, download, upload };
}

const fmt = (r: IperfResult) => (r.error ? `error: ${r.error.slice(0, 40)}` : r.mbps.toFixed(1));
const ratio = (a: IperfResult, b: IperfResult) =>
  a.error || b.error || b.mbps === 0 ? "-" : `${((a.mbps / b.mbps) * 100).toFixed(1)}%`;

async function main(): Promise<number> {
  const skip = interopSkipReason(["wireguard-go", "wg", "ip", "ss", "iperf3", "python3"]);
  if (skip) {
    console.log(`SKIP bench: ${skip}`);
    return 0;
  }
  let world: World | null = null;
  let ref: ReferencePair | null = null;
  const rows: Row[] = [];
  const stop = async () => {
    await ref?.stop().catch(() => {});
    await world?.destroy().catch(() => {});
    await killAll();
  };
  process.on("SIGINT", () => {
    void stop().then(() => process.exit(130));
  });
  try {
    world = await createWorld(PREFIX, IFP, { files: {}, iperf: true });
    if (only !== "reference") {
      await world.startGateway({ logLevel: "warn" });
      await world.startPeer();
      if ((await world.ping(ADDR.tunGw4, 1)) !== 1) throw new Error(`no tunnel:\n${world.gateway?.log()}`);
      const row = await measure("wgslirpy", world.t.peer);
      const rss = await world.gateway!.rssKiB();
      rows.push(row);
      if (rss) process.stderr.write(`wgslirpy RSS after the runs: ${Math.round(rss / 1024)} MiB\n`);
      await world.peer.dispose();
      await world.gateway!.stop();
    }
    if (only !== "wgslirpy") {
      ref = await startReferencePair(world.t, IFP);
      rows.push(await measure("wireguard-go (kernel routing)", world.t.peer));
    }
  } finally {
    await stop();
  }
  const [a, b] = [rows.find((r) => r.path === "wgslirpy"), rows.find((r) => r.path !== "wgslirpy")];
  console.log(`\niperf3 -t ${seconds}${streams > 1 ? ` -P ${streams}` : ""}, Mbit/s (receiver side)`);
  console.log(`${"path".padEnd(32)}${"download".padStart(12)}${"upload".padStart(12)}`);
  for (const r of rows) console.log(`${r.path.padEnd(32)}${fmt(r.download).padStart(12)}${fmt(r.upload).padStart(12)}`);
  if (a && b)
    console.log(
      `${"wgslirpy / reference".padEnd(32)}${ratio(a.download, b.download).padStart(12)}${ratio(a.upload, b.upload).padStart(12)}`,
    );
  return 0;
}

process.exit(await main());
