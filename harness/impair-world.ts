// The impairment relay (harness/impair.ts) as a background process in a namespace, and a World whose
// peer reaches the gateway only through it:
//
//   peer ns: wireguard-go --endpoint--> gw ns: relay RELAY_PORT --(loss/dup/reorder/delay)--> gateway GW_PORT
//
// The relay forwards from its own (ephemeral) socket, so the gateway sees the relay as the peer and
// roams to it on the first authenticated datagram. Each relay is stopped by PID; its stats JSON
// (printed on SIGTERM) is returned by `stop()`.
import { createWorld, GW_PORT, type World } from "./fixture.ts";
import { REPO_ROOT } from "./gateway.ts";
import { type BgProcess, exec, spawnBg } from "./netns.ts";
import type { startInetServers } from "./servers.ts";
import { ADDR } from "./topology.ts";

export const RELAY_PORT = 51830;
/** Where the gateway of an ImpairWorld serves /stats (loopback inside the gw namespace). */
export const STATS_LISTEN = "127.0.0.1:9901";

/** GET /stats of a gateway started with `--stats-listen STATS_LISTEN` in `ns` (null if unavailable). */
export async function gatewayStats(ns: string, listen = STATS_LISTEN): Promise<unknown> {
  const r = await exec(ns, ["curl", "-sS", "--max-time", "3", `http://${listen}/stats`], { timeoutMs: 6000 });
  try {
    return JSON.parse(r.stdout);
  } catch {
    return null;
  }
}

export interface RelayImpairment {
  loss?: number;
  dup?: number;
  reorder?: number;
  delayMs?: number;
  seed?: number;
}

export interface RelayDirectionStats {
  received: number;
  forwarded: number;
  dropped: number;
  duplicated: number;
  reordered: number;
}

export interface RelayStats {
  toUpstream: RelayDirectionStats;
  toPeer: RelayDirectionStats;
}

export interface Relay {
  readonly proc: BgProcess;
  /** "IP:PORT" the peer should use as its endpoint. */
  readonly listen: string;
  readonly upstream: string;
  readonly impairment: Required<RelayImpairment>;
  running(): boolean;
  /** SIGTERM by PID; resolves with the stats the relay printed (null if it printed none). */
  stop(): Promise<RelayStats | null>;
}

/** A short label like "loss=1% delay=50ms" (or "clean"). */
export function describeImpairment(i: RelayImpairment): string {
  const parts: string[] = [];
  if (i.loss) parts.push(`loss=${+(i.loss * 100).toFixed(2)}%`);
  if (i.dup) parts.push(`dup=${+(i.dup * 100).toFixed(2)}%`);
  if (i.reorder) parts.push(`reorder=${+(i.reorder * 100).toFixed(2)}%`);
  if (i.delayMs) parts.push(`delay=${i.delayMs}ms/dir`);
  return parts.length ? parts.join(" ") : "clean";
}

function parseStats(out: string): RelayStats | null {
  for (const line of out.trim().split("\n").reverse()) {
    if (!line.startsWith("{")) continue;
    try {
      return JSON.parse(line) as RelayStats;
    } catch {}
  }
  return null;
}

/** Start `bun harness/impair.ts` in `ns` and wait until it has bound `listen`. */
export async function startRelay(
  ns: string,
  listen: string,
  upstream: string,
  impairment: RelayImpairment = {},
): Promise<Relay> {
  const imp: Required<RelayImpairment> = {
    loss: impairment.loss ?? 0,
    dup: impairment.dup ?? 0,
    reorder: impairment.reorder ?? 0,
    delayMs: impairment.delayMs ?? 0,
    seed: impairment.seed ?? 1,
  };
  const argv = [process.execPath, "harness/impair.ts", "--listen", listen, "--upstream", upstream];
  argv.push("--loss", String(imp.loss), "--dup", String(imp.dup), "--reorder", String(imp.reorder));
  argv.push("--delay-ms", String(imp.delayMs), "--seed", String(imp.seed));
  const proc = spawnBg(ns, `impair ${describeImpairment(imp)}`, argv, { cwd: REPO_ROOT, maxOutput: 64 * 1024 });
  try {
    await proc.waitFor(/impair relay on/, 15_000);
  } catch (e) {
    await proc.stop(1000);
    throw e;
  }
  return {
    proc,
    listen,
    upstream,
    impairment: imp,
    running: () => proc.running(),
    async stop() {
      await proc.stop(3000);
      return parseStats(proc.output());
    },
  };
}

export interface ImpairWorld {
  w: World;
  relay: Relay | null;
  /** The gateway's /stats (null for the reference gateway or when unavailable). */
  stats(): Promise<unknown>;
  /** Replace the relay (same listen address) with one applying `impairment`; returns the old one's stats. */
  setImpairment(impairment: RelayImpairment): Promise<RelayStats | null>;
  /** Stop the relay, then destroy the world. */
  destroy(): Promise<void>;
}

/**
 * createWorld + the gateway (gateway config `gatewayChanges`) + a relay in gw on RELAY_PORT in front
 * of it + the peer whose endpoint is the relay. Starts with a clean relay. The gateway serves /stats
 * on STATS_LISTEN (gw's loopback).
 */
export async function createImpairWorld(
  prefix: string,
  ifPrefix: string,
  serverOpts: Parameters<typeof startInetServers>[1] = {},
  gatewayChanges: Parameters<World["startGateway"]>[0] = {},
): Promise<ImpairWorld> {
  const w = await createWorld(prefix, ifPrefix, serverOpts);
  const listen = `${ADDR.gwOuter4}:${RELAY_PORT}`;
  const iw: ImpairWorld = {
    w,
    relay: null,
    stats: () => (w.reference ? Promise.resolve(null) : gatewayStats(w.t.gw)),
    async setImpairment(impairment) {
      const stats = (await iw.relay?.stop()) ?? null;
      iw.relay = await startRelay(w.t.gw, listen, `${ADDR.gwOuter4}:${GW_PORT}`, impairment);
      return stats;
    },
    async destroy() {
      await iw.relay?.stop().catch(() => null);
      iw.relay = null;
      await w.destroy();
    },
  };
  try {
    await w.startGateway({
      ...gatewayChanges,
      extraArgs: ["--stats-listen", STATS_LISTEN, ...(gatewayChanges.extraArgs ?? [])],
    });
    await iw.setImpairment({});
    await w.startPeer({ endpoint: listen });
  } catch (e) {
    await iw.destroy();
    throw e;
  }
  return iw;
}
