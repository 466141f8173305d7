#!/usr/bin/env bun
import { setSocketBuffer, socketFd } from "../src/transport/sockopt.ts";
/**
 * A lossy UDP relay for tests: sits between a peer and the gateway's outer UDP socket and drops,
 * duplicates, reorders and delays datagrams with a seeded RNG (the host kernel has no netem).
 * Works for WireGuard and GUE alike: it never looks inside a datagram.
 *
 *   bun harness/impair.ts --listen IP:PORT --upstream IP:PORT [--loss 0.01] [--dup 0.02]
 *       [--reorder 0.05] [--delay-ms 50] [--seed 1]
 *
 * Datagrams arriving on --listen from the peer go to --upstream; datagrams from upstream go back to
 * the peer address last seen. Impairments apply in both directions. Deterministic given the seed
 * and the arrival order.
 */
import { type Endpoint, parseEndpoint, unmapV4 } from "../src/util/endpoint.ts";
import { SeededRandom } from "../src/util/random.ts";

export interface ImpairmentConfig {
  loss: number;
  duplicate: number;
  reorder: number;
  delayMs: number;
  seed: number;
}

export interface ImpairmentStats {
  received: number;
  forwarded: number;
  dropped: number;
  duplicated: number;
  reordered: number;
}

/** The decision logic, separate from sockets so it is unit-testable. */
export class Impairment {
  readonly stats: ImpairmentStats = { received: 0, forwarded: 0, dropped: 0, duplicated: 0, reordered: 0 };
  private readonly rng: SeededRandom;
  private held: Uint8Array | undefined;

  constructor(private readonly cfg: ImpairmentConfig) {
    this.rng = new SeededRandom(cfg.seed);
  }

  /** Returns the datagrams to send now (in order), given one arriving. */
  process(d: Uint8Array): Uint8Array[] {
    this.stats.received++;
    if (this.rng.float() < this.cfg.loss) {
      this.stats.dropped++;
      return this.release([]);
    }
    const out: Uint8Array[] = [];
    if (this.held === undefined && this.rng.float() < this.cfg.reorder) {
      // Hold this one back until the next datagram has gone out: a swap of two neighbours.
      this.held = d;
      this.stats.reordered++;
      return out;
    }
    out.push(d);
    if (this.rng.float() < this.cfg.duplicate) {
      out.push(d);
      this.stats.duplicated++;
    }
    return this.release(out);
  }

  /** A held datagram goes out after the ones in `out`. */
  private release(out: Uint8Array[]): Uint8Array[] {
    if (this.held !== undefined && out.length > 0) {
      out.push(this.held);
      this.held = undefined;
    }
    this.stats.forwarded += out.length;
    return out;
  }

  /** Flush a datagram held for reordering when traffic pauses. */
  flushHeld(): Uint8Array[] {
    if (this.held === undefined) return [];
    const d = this.held;
    this.held = undefined;
    this.stats.forwarded++;
    return [d];
  }
}

export interface RelayHandle {
  readonly listen: Endpoint;
  stats(): { toUpstream: ImpairmentStats; toPeer: ImpairmentStats };
  close(): void;
}

export async function startImpairRelay(
  listen: Endpoint,
  upstream: Endpoint,
  cfg: ImpairmentConfig,
): Promise<RelayHandle> {
  const toUpstream = new Impairment(cfg);
  const toPeer = new Impairment({ ...cfg, seed: cfg.seed ^ 0x5bd1e995 });
  let peer: Endpoint | undefined;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const send = (sock: { send(d: Uint8Array, port: number, addr: string): boolean }, ds: Uint8Array[], to: Endpoint) => {
    for (const d of ds) {
      if (cfg.delayMs > 0) {
        const t = setTimeout(() => {
          timers.delete(t);
          sock.send(d, to.port, to.address);
        }, cfg.delayMs);
        timers.add(t);
      } else sock.send(d, to.port, to.address);
    }
  };
  // Reordered datagrams must not be held forever when traffic stops.
  const flushTimer = setInterval(() => {
    if (peer) send(front, toPeer.flushHeld(), peer);
    send(back, toUpstream.flushHeld(), upstream);
  }, 20);
  const back = await Bun.udpSocket({
    hostname: upstream.address.includes(":") ? "::" : "0.0.0.0",
    binaryType: "uint8array",
    socket: {
      data(_s, buf) {
        if (peer) send(front, toPeer.process(buf), peer);
      },
    },
  });
  const front = await Bun.udpSocket({
    hostname: listen.address,
    port: listen.port,
    binaryType: "uint8array",
    socket: {
      data(_s, buf, port, addr) {
        peer = { address: unmapV4(addr), port };
        send(back, toUpstream.process(buf), upstream);
      },
    },
  });
  // The kernel's default receive buffer (~212 KB) drops bursts before the relay sees them: those
  // would be losses nobody chose. 4 MiB each way, like the gateway's own socket.
  for (const sock of [front, back]) {
    for (const kind of ["rcv", "snd"] as const) {
      try {
        setSocketBuffer(socketFd(sock), kind, 4 << 20);
      } catch {
        // Best effort: without it the relay still works, with more incidental loss at high rates.
      }
    }
  }
  return {
    listen: { address: listen.address, port: front.port },
    stats: () => ({ toUpstream: toUpstream.stats, toPeer: toPeer.stats }),
    close() {
      clearInterval(flushTimer);
      for (const t of timers) clearTimeout(t);
      front.close();
      back.close();
    },
  };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const get = (name: string, def?: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
  };
  const cfg: ImpairmentConfig = {
    loss: Number(get("loss", "0")),
    duplicate: Number(get("dup", "0")),
    reorder: Number(get("reorder", "0")),
    delayMs: Number(get("delay-ms", "0")),
    seed: Number(get("seed", "1")),
  };
  const relay = await startImpairRelay(parseEndpoint(get("listen") ?? ""), parseEndpoint(get("upstream") ?? ""), cfg);
  console.log(`impair relay on ${relay.listen.address}:${relay.listen.port}`);
  const stop = () => {
    console.log(JSON.stringify(relay.stats()));
    relay.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
