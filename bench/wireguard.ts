/**
 * WireGuard layer throughput, in one process:
 *  - AEAD seal/open rate for 1420-byte packets (the transport's crypto ceiling);
 *  - transport packets/s through two WireGuardTunnels over an in-memory transport pair.
 * Usage: bun bench/wireguard.ts [seconds-per-case, default 2]
 */
import { MemoryTransport } from "../src/transport/memory.ts";
import { realClock } from "../src/util/clock.ts";
import { silentLogger } from "../src/util/log.ts";
import { cryptoRandom } from "../src/util/random.ts";
import { nobleChaCha20Poly1305 } from "../src/wireguard/aead.ts";
import { generatePrivateKey, publicKeyOf } from "../src/wireguard/keys.ts";
import { WireGuardTunnel } from "../src/wireguard/tunnel.ts";

const seconds = Number(process.argv[2] ?? 2);
const SIZE = 1420;

function rate(label: string, fn: () => void): number {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < seconds * 1000) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
  }
  const perSec = n / ((performance.now() - start) / 1000);
  const gbit = (perSec * SIZE * 8) / 1e9;
  console.log(`${label.padEnd(40)} ${Math.round(perSec).toLocaleString().padStart(10)} /s  ${gbit.toFixed(2)} Gbit/s`);
  return perSec;
}

const aead = nobleChaCha20Poly1305(cryptoRandom.fill(new Uint8Array(32)));
const buf = new Uint8Array(SIZE + 16);
cryptoRandom.fill(buf.subarray(0, SIZE));
let counter = 0;
rate("AEAD seal 1420 B (in place)", () => aead.seal(counter++, buf.subarray(0, SIZE), buf));
const sealed = buf.slice();
const plain = new Uint8Array(SIZE);
const sealedCounter = counter - 1;
rate("AEAD open 1420 B", () => {
  if (!aead.open(sealedCounter, sealed, plain)) throw new Error("open failed");
});

const [ta, tb] = MemoryTransport.pair({ address: "127.0.0.1", port: 1 }, { address: "127.0.0.1", port: 2 });
const aPriv = generatePrivateKey();
const bPriv = generatePrivateKey();
const common = { clock: realClock, random: cryptoRandom, log: silentLogger };
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
rate("tunnel A->B transport packets (1420 B)", () => a.send(packet));
console.log(`delivered ${received.toLocaleString()} packets, drops ${JSON.stringify(b.stats.drops.decrypt)}`);
a.close();
b.close();
