/**
 * WireGuard layer throughput, in one process, per AEAD backend (noble = @noble/ciphers, the
 * reference; sodium-native = libsodium via N-API, when it loads):
 *  - AEAD seal/open rate for 1420-byte packets (the transport's crypto ceiling), side by side;
 *  - transport packets/s through two WireGuardTunnels over an in-memory transport pair.
 *  - the same AEAD rate inside a `bun build --compile` executable (this file compiled: it loads
 *    sodium-native the way the compiled wgslirpy does, from the addon embedded in the binary).
 * Usage: bun bench/wireguard.ts [seconds-per-case, default 2]
 */

import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { MemoryTransport } from "../src/transport/memory.ts";
import { realClock } from "../src/util/clock.ts";
import { silentLogger } from "../src/util/log.ts";
import { cryptoRandom } from "../src/util/random.ts";
import { type AeadFactory, aeadBackendName, nobleChaCha20Poly1305, selectAead } from "../src/wireguard/aead.ts";
import { sodiumAeadFactory, sodiumSource, sodiumUnavailableReason } from "../src/wireguard/aead-sodium.ts";
import { generatePrivateKey, publicKeyOf } from "../src/wireguard/keys.ts";
import { WireGuardTunnel } from "../src/wireguard/tunnel.ts";

const jsonAead = process.argv.includes("--json-aead");
const seconds = Number(process.argv.slice(2).find((a) => !a.startsWith("--")) ?? 2);
const SIZE = 1420;

/** Calls per second of `fn` over `seconds`. */
function rate(fn: () => void): number {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < seconds * 1000) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
  }
  return n / ((performance.now() - start) / 1000);
}

const fmt = (perSec: number): string => Math.round(perSec).toLocaleString().padStart(10);
const gbit = (perSec: number): string => `${((perSec * SIZE * 8) / 1e9).toFixed(2)} Gbit/s`;

function aeadRates(factory: AeadFactory): { seal: number; open: number } {
  const aead = factory(cryptoRandom.fill(new Uint8Array(32)));
  const buf = new Uint8Array(SIZE + 16);
  cryptoRandom.fill(buf.subarray(0, SIZE));
  let counter = 0;
  const seal = rate(() => aead.seal(counter++, buf.subarray(0, SIZE), buf));
  const sealed = buf.slice();
  const plain = new Uint8Array(SIZE);
  const sealedCounter = counter - 1;
  const open = rate(() => {
    if (!aead.open(sealedCounter, sealed, plain)) throw new Error("open failed");
  });
  return { seal, open };
}

function tunnelRate(factory: AeadFactory): { perSec: number; delivered: number; drops: number } {
  const [ta, tb] = MemoryTransport.pair({ address: "127.0.0.1", port: 1 }, { address: "127.0.0.1", port: 2 });
  const aPriv = generatePrivateKey();
  const bPriv = generatePrivateKey();
  const common = { clock: realClock, random: cryptoRandom, log: silentLogger, aead: factory };
  const a = new WireGuardTunnel({
    ...common,
    privateKey: aPriv,
    peerPublicKey: publicKeyOf(bPriv),
    endpoint: tb.local,
    transport: ta,
  });
  const b = new WireGuardTunnel({ ...common, privateKey: bPriv, peerPublicKey: publicKeyOf(aPriv), transport: tb });
  let received = 0;
  b.onPacket = () => received++;
  b.start();
  a.start();
  if (a.stats.handshakesCompleted !== 1) throw new Error("handshake failed");
  const packet = new Uint8Array(SIZE);
  packet[0] = 0x45;
  packet[2] = SIZE >>> 8;
  packet[3] = SIZE & 0xff;
  const perSec = rate(() => a.send(packet));
  const drops = Object.values(b.stats.drops).reduce((x, y) => x + y, 0);
  a.close();
  b.close();
  return { perSec, delivered: received, drops };
}

if (jsonAead) {
  // Inside the compiled bench: the backend the gateway would pick, and how fast it is.
  const f = selectAead();
  const source = aeadBackendName(f) === "sodium-native" ? sodiumSource() : undefined;
  console.log(JSON.stringify({ backend: aeadBackendName(f), source, ...aeadRates(f) }));
  process.exit(0);
}

/** This bench compiled like `bun run build` (host target), run for its AEAD row. */
async function compiledAeadRow(): Promise<{ backend: string; source?: string; seal: number; open: number } | string> {
  const root = resolve(import.meta.dir, "..");
  const dir = join(root, ".cache", "compiled");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, "bench-wireguard");
  const build = Bun.spawnSync(
    [
      process.execPath,
      "build",
      "--compile",
      "--minify",
      `--target=bun-linux-${process.arch}`,
      "bench/wireguard.ts",
      "--outfile",
      out,
    ],
    { cwd: root },
  );
  if (build.exitCode !== 0 || !existsSync(out)) return `build failed: ${build.stderr.toString().trim().split("\n")[0]}`;
  const run = Bun.spawnSync([out, "--json-aead", String(seconds)], { cwd: "/", env: { PATH: process.env.PATH ?? "" } });
  if (run.exitCode !== 0) return `run failed: ${run.stderr.toString().trim().split("\n")[0]}`;
  return JSON.parse(run.stdout.toString().trim().split("\n").at(-1) as string);
}

const backends: [string, AeadFactory][] = [["noble", nobleChaCha20Poly1305]];
const sodium = sodiumAeadFactory();
if (sodium) backends.push(["sodium-native", sodium]);
else console.log(`sodium-native unavailable (${sodiumUnavailableReason()}): noble only`);

const aead = backends.map(([name, f]) => ({ name, ...aeadRates(f) }));
console.log(`\nAEAD ChaCha20-Poly1305, ${SIZE} B, ${seconds} s per case`);
console.log(`${"backend".padEnd(16)} ${"seal/s".padStart(10)} ${"".padEnd(12)}  ${"open/s".padStart(10)}`);
for (const r of aead) {
  console.log(`${r.name.padEnd(16)} ${fmt(r.seal)} ${gbit(r.seal).padEnd(12)}  ${fmt(r.open)} ${gbit(r.open)}`);
}
if (aead.length === 2) {
  const [n, s] = aead as [(typeof aead)[0], (typeof aead)[0]];
  console.log(
    `${"sodium / noble".padEnd(16)} ${`${(s.seal / n.seal).toFixed(1)}x`.padStart(10)} ${"".padEnd(12)}  ${`${(s.open / n.open).toFixed(1)}x`.padStart(10)}`,
  );
}

const compiled = await compiledAeadRow();
if (typeof compiled === "string") console.log(`${"compiled binary".padEnd(16)} ${compiled}`);
else {
  const name = `${compiled.backend}${compiled.source === "embedded" ? " (embedded)" : ""}`;
  console.log(
    `${"compiled binary".padEnd(16)} ${fmt(compiled.seal)} ${gbit(compiled.seal).padEnd(12)}  ${fmt(compiled.open)} ${gbit(compiled.open)}  ${name}`,
  );
}

console.log(`\nTunnel A->B transport packets (${SIZE} B inner, in-memory transport, one process)`);
const tun = backends.map(([name, f]) => ({ name, ...tunnelRate(f) }));
for (const r of tun) {
  console.log(
    `${r.name.padEnd(16)} ${fmt(r.perSec)} packets/s  ${gbit(r.perSec)}  (delivered ${r.delivered.toLocaleString()}, drops ${r.drops})`,
  );
}
if (tun.length === 2)
  console.log(`${"sodium / noble".padEnd(16)} ${`${(tun[1]!.perSec / tun[0]!.perSec).toFixed(1)}x`.padStart(10)}`);
