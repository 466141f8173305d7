/**
 * Our initiator <-> our responder over real UDP sockets on 127.0.0.1 with the real clock and
 * randomness: handshake, then 10,000 transport packets each way (IPv4-shaped, 60..1420 bytes),
 * paced by a sliding window so the kernel's socket buffers are not overrun. Every packet must
 * arrive byte-exact and in order; UDP may still drop, so losses are counted (and must stay rare).
 * Runs once per available AEAD backend and prints packets/s.
 */
import { describe, expect, test } from "bun:test";
import { ipv4 } from "../../fixtures/wireguard/fixtures.ts";
import { openUdpTransport, type UdpTransport } from "../../src/transport/udp.ts";
import { realClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { cryptoRandom } from "../../src/util/random.ts";
import { type AeadFactory, nobleChaCha20Poly1305 } from "../../src/wireguard/aead.ts";
import { sodiumAvailable, sodiumChaCha20Poly1305 } from "../../src/wireguard/aead-sodium.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { WireGuardTunnel } from "../../src/wireguard/tunnel.ts";

const N = 10_000;
/** Packets in flight per direction (well under the ~200 KiB default socket buffer at 1420 B). */
const WINDOW = 96;
/** No progress for this long with packets outstanding: count them lost and move on. */
const STALL_MS = 1500;

const sizeOf = (i: number): number => 60 + ((i * 131) % 1361);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Receiver side of one direction: checks order and bytes, counts gaps as losses. */
class Sink {
  next = 0; // next sequence number expected
  delivered = 0;
  bytes = 0;
  lost = 0;
  errors: string[] = [];

  accept(pkt: Uint8Array): void {
    const seq = ((pkt[20]! << 24) | (pkt[21]! << 16) | (pkt[22]! << 8) | pkt[23]!) >>> 0;
    if (seq < this.next) {
      this.errors.push(`out of order or duplicate: ${seq} after ${this.next - 1}`);
      return;
    }
    const want = ipv4(sizeOf(seq), seq);
    if (pkt.length !== want.length || Buffer.compare(pkt, want) !== 0) {
      this.errors.push(`packet ${seq} differs (${pkt.length} vs ${want.length} bytes)`);
    }
    this.lost += seq - this.next;
    this.next = seq + 1;
    this.delivered++;
    this.bytes += pkt.length;
  }
}

const backends: [string, AeadFactory][] = [["noble", nobleChaCha20Poly1305]];
if (sodiumAvailable()) backends.push(["sodium-native", sodiumChaCha20Poly1305]);

describe("WireGuard over loopback UDP", () => {
  for (const [name, aead] of backends) {
    test(`${name}: handshake + ${N.toLocaleString()} packets each way, byte-exact and in order`, async () => {
      const transports: UdpTransport[] = [];
      let initiator: WireGuardTunnel | undefined;
      let responder: WireGuardTunnel | undefined;
      try {
        const ui = await openUdpTransport({ address: "127.0.0.1", port: 0 });
        transports.push(ui);
        const ur = await openUdpTransport({ address: "127.0.0.1", port: 0 });
        transports.push(ur);
        const iPriv = generatePrivateKey(cryptoRandom);
        const rPriv = generatePrivateKey(cryptoRandom);
        const common = { clock: realClock, random: cryptoRandom, log: silentLogger, aead };
        initiator = new WireGuardTunnel({
          ...common,
          privateKey: iPriv,
          peerPublicKey: publicKeyOf(rPriv),
          endpoint: ur.local,
          transport: ui,
        });
        responder = new WireGuardTunnel({
          ...common,
          privateKey: rPriv,
          peerPublicKey: publicKeyOf(iPriv),
          transport: ur,
        });
        const atR = new Sink(); // initiator -> responder
        const atI = new Sink(); // responder -> initiator
        responder.onPacket = (p) => atR.accept(p);
        initiator.onPacket = (p) => atI.accept(p);
        responder.start();
        initiator.start();

        // Handshake: the responder completes on the initiator's confirming keepalive.
        const hsDeadline = performance.now() + 5000;
        while (
          (initiator.stats.handshakesCompleted < 1 || responder.stats.handshakesCompleted < 1) &&
          performance.now() < hsDeadline
        ) {
          await sleep(1);
        }
        expect(initiator.stats.handshakesCompleted).toBe(1);
        expect(responder.stats.handshakesCompleted).toBe(1);
        expect(responder.endpoint).toEqual(ui.local);

        const t0 = performance.now();
        let sentI = 0;
        let sentR = 0;
        let lastProgress = t0;
        let progressMark = 0;
        let stalls = 0;
        while (atR.next < N || atI.next < N) {
          // Sliding window per direction, on the highest sequence seen (gaps do not block).
          while (sentI < N && sentI - atR.next < WINDOW) initiator.send(ipv4(sizeOf(sentI), sentI++));
          while (sentR < N && sentR - atI.next < WINDOW) responder.send(ipv4(sizeOf(sentR), sentR++));
          await tick();
          const mark = atR.delivered + atI.delivered;
          const now = performance.now();
          if (mark !== progressMark) {
            progressMark = mark;
            lastProgress = now;
          } else if (now - lastProgress > STALL_MS) {
            // The window's tail was lost: count it and resume past it.
            stalls++;
            atR.lost += sentI - atR.next;
            atR.next = sentI;
            atI.lost += sentR - atI.next;
            atI.next = sentR;
            lastProgress = now;
          }
        }
        const secs = (performance.now() - t0) / 1000;
        const total = atR.delivered + atI.delivered;
        console.log(
          `[loopback ${name}] ${total.toLocaleString()} packets in ${secs.toFixed(2)} s = ${Math.round(total / secs).toLocaleString()} packets/s ` +
            `(${(((atR.bytes + atI.bytes) * 8) / secs / 1e6).toFixed(0)} Mbit/s inner, lost ${atR.lost}+${atI.lost}, stalls ${stalls}, ` +
            `udp drops ${ui.stats.queueDrops + ur.stats.queueDrops}, send errors ${ui.stats.sendErrors + ur.stats.sendErrors})`,
        );

        expect(atR.errors).toEqual([]);
        expect(atI.errors).toEqual([]);
        expect(atR.delivered + atR.lost).toBe(N);
        expect(atI.delivered + atI.lost).toBe(N);
        // Loopback with a window this small should lose nothing; allow a sliver for a loaded host.
        expect(atR.lost + atI.lost).toBeLessThanOrEqual(N / 100);
        expect(responder.stats.rxPackets).toBe(atR.delivered);
        expect(initiator.stats.rxPackets).toBe(atI.delivered);
        expect(initiator.stats.txPackets).toBe(N);
        expect(responder.stats.txPackets).toBe(N);
        const drops = (t: WireGuardTunnel) => Object.values(t.stats.drops).reduce((a, b) => a + b, 0);
        expect(drops(initiator)).toBe(0);
        expect(drops(responder)).toBe(0);
      } finally {
        initiator?.close();
        responder?.close();
        for (const t of transports) t.close();
      }
    }, 30_000);
  }
});
