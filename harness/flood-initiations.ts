#!/usr/bin/env bun
// A handshake-initiation flooder for the load tests: it knows the gateway's public key, so every
// initiation has a valid MAC1 (the rest is random: a random ephemeral, junk static and timestamp),
// which is the most a stranger can do. It never sends MAC2. Paced in 10 ms ticks; counts what comes
// back (64-byte type-3 cookie replies and anything else) and prints one JSON line at the end.
//
//   bun harness/flood-initiations.ts --target IP:PORT --key BASE64 [--rate N] [--seconds S]
//
// Safety: bounded (rate ≤ 50,000/s, ≤ 120 s), and it refuses to run unless the target is loopback
// or it runs inside a test's own network namespace (named wgsi…, see harness/topology.ts).
import { readdirSync, statSync } from "node:fs";
import { realClock } from "../src/util/clock.ts";
import { parseEndpoint } from "../src/util/endpoint.ts";
import { CookieGenerator } from "../src/wireguard/cookie.ts";
import { parseKey } from "../src/wireguard/keys.ts";

export interface FloodResult {
  sent: number;
  sendErrors: number;
  /** Asynchronous socket errors (ICMP unreachable for earlier sends). */
  socketErrors: number;
  cookieReplies: number;
  otherReplies: number;
  seconds: number;
}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`missing --${name}`);
  return v;
}

/** The name of the test namespace (`wgsi…` under /run/netns) this process runs in, if any. */
function testNetnsName(): string | undefined {
  try {
    const self = statSync("/proc/self/ns/net");
    for (const name of readdirSync("/run/netns")) {
      const ns = statSync(`/run/netns/${name}`);
      if (ns.ino === self.ino && ns.dev === self.dev) return name.startsWith("wgsi") ? name : undefined;
    }
  } catch {}
  return undefined;
}

async function main(): Promise<void> {
  const target = parseEndpoint(arg("target"));
  const gatewayPublic = parseKey(arg("key"), "gateway public key");
  const rate = Math.min(50_000, Math.max(1, Number(arg("rate", "5000"))));
  const seconds = Math.min(120, Math.max(0.1, Number(arg("seconds", "20"))));
  const loopback = target.address.startsWith("127.") || target.address === "::1";
  if (!loopback && !testNetnsName())
    throw new Error("refusing to flood a non-loopback target outside a wgsi* test namespace");

  const gen = new CookieGenerator(gatewayPublic, realClock);
  const result: FloodResult = {
    sent: 0,
    sendErrors: 0,
    socketErrors: 0,
    cookieReplies: 0,
    otherReplies: 0,
    seconds: 0,
  };
  const socket = await Bun.udpSocket({
    hostname: target.address.includes(":") ? "::" : "0.0.0.0",
    socket: {
      data(_s, data) {
        if (data.length === 64 && data[0] === 3) result.cookieReplies++;
        else result.otherReplies++;
      },
      // ICMP port unreachable (nothing listening) arrives as an error: count it, keep going.
      error() {
        result.socketErrors++;
      },
    },
  });
  const random = new Uint8Array(148 * 5000);
  const start = performance.now();
  const end = start + seconds * 1000;
  const tick = () => {
    const now = Math.min(performance.now(), end);
    const due = Math.floor(((now - start) / 1000) * rate) - result.sent;
    const n = Math.min(due, 5000);
    if (n <= 0) return;
    for (let off = 0; off < 148 * n; off += 65536)
      crypto.getRandomValues(random.subarray(off, Math.min(148 * n, off + 65536)));
    const batch: (Uint8Array | number | string)[] = [];
    for (let i = 0; i < n; i++) {
      const m = random.slice(148 * i, 148 * (i + 1));
      m[0] = 1;
      m[1] = 0;
      m[2] = 0;
      m[3] = 0;
      gen.addMacs(m);
      batch.push(m, target.port, target.address);
    }
    try {
      const sent = socket.sendMany(batch);
      result.sent += n;
      result.sendErrors += n - sent;
    } catch {
      result.sent += n;
      result.sendErrors += n;
    }
  };
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      tick();
      if (performance.now() >= end) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  // Late cookie replies.
  await Bun.sleep(300);
  socket.close();
  result.seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify(result));
}

if (import.meta.main) {
  main().catch((e) => {
    console.error(`flood-initiations: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  });
}
