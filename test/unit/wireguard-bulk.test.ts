import { expect, test } from "bun:test";
import { ipv4, makePair, typeOf } from "../../fixtures/wireguard/fixtures.ts";
import { REKEY_AFTER_TIME } from "../../src/wireguard/constants.ts";

test("10,000 transport packets each way with rekeys driven by virtual time", () => {
  const p = makePair({ seed: 99 });
  let initiations = 0;
  p.ti.filter = (d) => {
    if (typeOf(d) === 1) initiations++;
    return true;
  };
  p.responder.start();
  p.initiator.start();
  const N = 10_000;
  const seenI: number[] = [];
  const seenR: number[] = [];
  p.initiator.onPacket = (pkt) => {
    expect(pkt.length).toBe(100 + (seenI.length % 7));
    seenI.push((pkt[20]! << 24) | (pkt[21]! << 16) | (pkt[22]! << 8) | pkt[23]!);
  };
  p.responder.onPacket = (pkt) => {
    expect(pkt.length).toBe(1400 - (seenR.length % 11));
    seenR.push((pkt[20]! << 24) | (pkt[21]! << 16) | (pkt[22]! << 8) | pkt[23]!);
    // Spot-check the body bytes survive exactly.
    const k = pkt.length - 1;
    expect(pkt[k]).toBe((seenR.at(-1)! + k) & 0xff);
  };
  for (let i = 0; i < N; i++) {
    p.initiator.send(ipv4(1400 - (i % 11), i));
    p.responder.send(ipv4(100 + (i % 7), i));
    if (i % 100 === 99) p.clock.advance(3000); // 300 s of virtual time overall
  }
  expect(seenR.length).toBe(N);
  expect(seenI.length).toBe(N);
  for (let i = 0; i < N; i++) {
    if (seenR[i] !== i || seenI[i] !== i) throw new Error(`order broken at ${i}: ${seenR[i]} ${seenI[i]}`);
  }
  // 300 s with rekeys every REKEY_AFTER_TIME: the first handshake plus two renewals.
  expect(initiations).toBe(1 + Math.floor(300_000 / (REKEY_AFTER_TIME + 3000)));
  expect(p.initiator.stats.handshakesCompleted).toBe(3);
  expect(p.responder.stats.handshakesCompleted).toBe(3);
  const drops = Object.values(p.responder.stats.drops).reduce((a, b) => a + b, 0);
  expect(drops).toBe(0);
  expect(Object.values(p.initiator.stats.drops).reduce((a, b) => a + b, 0)).toBe(0);
  expect(p.initiator.stats.txPackets).toBe(N);
  expect(p.responder.stats.rxPackets).toBe(N);
});
