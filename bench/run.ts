// `bun run bench`: iperf3 through wgslirpy next to the same run through a kernel-routed
// wireguard-go reference, in private namespaces (peer / gw / inet). Prints figures; gates nothing.
//
// Scenarios, each a download (iperf3 -R) and an upload for both paths:
//   direct IPv4, direct IPv6 (peer → gw's WireGuard port),
//   and through the seeded UDP impairment relay (harness/impair.ts) in the gw namespace, in front of
//   both paths alike: clean (the relay's own cost), 1% loss each way, +50 ms each way (~100 ms RTT).
//
//   bun bench/run.ts [--time S] [--streams N] [--only wgslirpy|reference] [--no-impair] [--no-ipv6] [--tcp-buffer-size N]
import { createWorld, GW_PORT, type World } from "../harness/fixture.ts";
import { describeImpairment, type Relay, type RelayImpairment, startRelay } from "../harness/impair-world.ts";
import { execCheck, interopSkipReason, killAll } from "../harness/netns.ts";
import { type ReferencePair, startReferencePair } from "../harness/reference.ts";
import { PORTS } from "../harness/servers.ts";
import { ADDR } from "../harness/topology.ts";
import type { WireGuardGo } from "../harness/wireguard-go.ts";
import { type IperfResult, iperf } from "./iperf.ts";

const PREFIX = "wgsibench-";
const IFP = "wgsibench";
const REF_GW_PORT = 51900;
const RELAY_PORT = { wgslirpy: 51830, reference: 51930 } as const;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

const seconds = Math.min(60, Math.max(1, Number(arg("time", "5"))));
const streams = Math.min(8, Math.max(1, Number(arg("streams", "1"))));
const only = arg("only", "");
const withImpair = !flag("no-impair");
const withV6 = !flag("no-ipv6");
/** The gateway's --tcp-buffer-size (per flow and direction); default: the CLI's (the seed's 65535). */
const tcpBuffer = arg("tcp-buffer-size", "");

interface Scenario {
  name: string;
  /** Server address for iperf3. */
  host: string;
  /** Through the relay with this impairment; absent = peer talks to the gateway directly. */
  relay?: RelayImpairment;
}

const SCENARIOS: Scenario[] = [
  { name: "direct IPv4", host: ADDR.inet4 },
  ...(withV6 ? [{ name: "direct IPv6", host: ADDR.inet6 }] : []),
  ...(withImpair
    ? [
        { name: "relay, clean", host: ADDR.inet4, relay: { seed: 7 } },
        { name: "relay, 1% loss", host: ADDR.inet4, relay: { loss: 0.01, seed: 7 } },
        { name: "relay, +50 ms/dir", host: ADDR.inet4, relay: { delayMs: 50, seed: 7 } },
      ]
    : []),
];

type PathName = "wgslirpy" | "reference";
interface Cell {
  download: IperfResult;
  upload: IperfResult;
}
const results = new Map<string, Partial<Record<PathName, Cell>>>();

/** Point the running wireguard-go peer at `endpoint` (the gateway roams on the next datagram). */
async function setEndpoint(peer: WireGuardGo, endpoint: string): Promise<void> {
  const c = peer.config;
  await execCheck(c.ns, ["wg", "set", c.ifname, "peer", c.peerPublicKey, "endpoint", endpoint]);
  c.endpoint = endpoint;
}

/**
 * Run every scenario on one path. `ping` proves the tunnel after each endpoint change (the first
 * datagrams through a new relay make the gateway roam to it).
 */
async function measurePath(
  path: PathName,
  w: World,
  peer: WireGuardGo,
  gwPort: number,
  ping: () => Promise<boolean>,
): Promise<void> {
  const direct = `${ADDR.gwOuter4}:${gwPort}`;
  for (const s of SCENARIOS) {
    let relay: Relay | null = null;
    try {
      if (s.relay) {
        const listen = `${ADDR.gwOuter4}:${RELAY_PORT[path]}`;
        relay = await startRelay(w.t.gw, listen, direct, s.relay);
        await setEndpoint(peer, listen);
      } else if (peer.config.endpoint !== direct) await setEndpoint(peer, direct);
      if (!(await ping())) throw new Error(`${path}/${s.name}: no ping through the tunnel`);
      process.stderr.write(`${path} / ${s.name}${s.relay ? ` [${describeImpairment(s.relay)}]` : ""}: download...\n`);
      const download = await iperf(w.t.peer, s.host, PORTS.iperf, { seconds, reverse: true, streams });
      process.stderr.write(`${path} / ${s.name}: upload...\n`);
      const upload = await iperf(w.t.peer, s.host, PORTS.iperf, { seconds, reverse: false, streams });
      const row = results.get(s.name) ?? {};
      row[path] = { download, upload };
      results.set(s.name, row);
    } finally {
      const stats = await relay?.stop();
      if (stats) {
        const d = (x: { dropped: number; received: number }) => `${x.dropped}/${x.received}`;
        process.stderr.write(`  relay dropped up ${d(stats.toUpstream)}, down ${d(stats.toPeer)}\n`);
      }
    }
  }
  if (peer.config.endpoint !== direct) await setEndpoint(peer, direct);
}

const fmt = (r: IperfResult | undefined) =>
  !r ? "-" : r.error ? `err: ${r.error.replace(/\s+/g, " ").slice(0, 20)}` : r.mbps.toFixed(1);
const ratio = (a: IperfResult | undefined, b: IperfResult | undefined) =>
  !a || !b || a.error || b.error || b.mbps === 0 ? "-" : `${((a.mbps / b.mbps) * 100).toFixed(1)}%`;

async function main(): Promise<number> {
  const skip = interopSkipReason(["wireguard-go", "wg", "ip", "ss", "iperf3", "python3"]);
  if (skip) {
    console.log(`SKIP bench: ${skip}`);
    return 0;
  }
  let world: World | null = null;
  let ref: ReferencePair | null = null;
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
    const w = world;
    if (only !== "reference") {
      await w.startGateway({ logLevel: "warn", extraArgs: tcpBuffer ? ["--tcp-buffer-size", tcpBuffer] : [] });
      await w.startPeer();
      const ping = async () => {
        for (let i = 0; i < 5; i++) if ((await w.ping(ADDR.tunGw4, 2)) > 0) return true;
        return false;
      };
      await measurePath("wgslirpy", w, w.peer, GW_PORT, ping);
      const rss = await w.gateway!.rssKiB();
      if (rss) process.stderr.write(`wgslirpy RSS after the runs: ${Math.round(rss / 1024)} MiB\n`);
      await w.peer.dispose();
      await w.gateway!.stop();
    }
    if (only !== "wgslirpy") {
      ref = await startReferencePair(w.t, IFP, REF_GW_PORT);
      const pair = ref;
      const ping = async () => {
        for (let i = 0; i < 5; i++) if ((await w.ping(ADDR.tunGw4, 2)) > 0) return true;
        return false;
      };
      await measurePath("reference", w, pair.peer, REF_GW_PORT, ping);
    }
  } finally {
    await stop();
  }

  const head =
    `iperf3 -t ${seconds}${streams > 1 ? ` -P ${streams}` : ""}, Mbit/s (receiver side)` +
    `; wgslirpy --tcp-buffer-size ${tcpBuffer || "65535 (default)"}`;
  const cols = ["wgslirpy down", "wgslirpy up", "ref down", "ref up", "ratio down", "ratio up"];
  console.log(`\n${head}; ref = wireguard-go + kernel routing; ratio = wgslirpy / ref`);
  console.log(`${"scenario".padEnd(22)}${cols.map((c) => c.padStart(15)).join("")}`);
  for (const s of SCENARIOS) {
    const r = results.get(s.name) ?? {};
    const a = r.wgslirpy;
    const b = r.reference;
    const cells = [
      fmt(a?.download),
      fmt(a?.upload),
      fmt(b?.download),
      fmt(b?.upload),
      ratio(a?.download, b?.download),
      ratio(a?.upload, b?.upload),
    ];
    console.log(`${s.name.padEnd(22)}${cells.map((c) => c.padStart(15)).join("")}`);
  }
  if (withImpair)
    console.log(
      "relay rows: bun harness/impair.ts in the gw namespace between peer and WireGuard port (both paths; seed 7)",
    );
  return 0;
}

process.exit(await main());
