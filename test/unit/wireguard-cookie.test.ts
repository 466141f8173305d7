import { describe, expect, test } from "bun:test";
import { ipv4, makePair, typeOf } from "../../fixtures/wireguard/fixtures.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { COOKIE_REFRESH_TIME, REKEY_TIMEOUT } from "../../src/wireguard/constants.ts";
import { CookieChecker, CookieGenerator, cookieSource } from "../../src/wireguard/cookie.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { parseCookieReply } from "../../src/wireguard/messages.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("cookies (DoS protection)", () => {
  test("under load: cookie reply -> initiator retries with MAC2 -> session", () => {
    const p = makePair({ responder: { underLoad: () => true } });
    const seen: number[][] = [];
    p.ti.filter = (d) => {
      seen.push([p.clock.now(), typeOf(d), d.length]);
      return true;
    };
    p.tr.filter = (d) => {
      seen.push([p.clock.now(), typeOf(d), d.length]);
      return true;
    };
    p.responder.start();
    p.initiator.start();
    expect(seen).toEqual([
      [0, 1, 148],
      [0, 3, 64],
    ]);
    expect(p.responder.stats.drops.badMac2).toBe(1);
    expect(p.responder.stats.cookieRepliesSent).toBe(1);
    expect(p.initiator.stats.handshakesCompleted).toBe(0);
    // The initiator does not resend at once (no amplification); it retries on REKEY_TIMEOUT.
    p.clock.advance(REKEY_TIMEOUT + 333);
    expect(seen.slice(2).map((s) => s.slice(1))).toEqual([
      [1, 148],
      [2, 92],
      [4, 32],
    ]);
    expect(p.initiator.stats.handshakesCompleted).toBe(1);
    expect(p.responder.stats.handshakesCompleted).toBe(1);
    p.initiator.send(ipv4(40, 4));
    expect(p.atResponder.length).toBe(1);
  });

  test("MAC2 is bound to the source address: a cookie from one port does not work from another", () => {
    const clock = new VirtualClock(0);
    const random = new SeededRandom(5);
    const responderPub = publicKeyOf(generatePrivateKey(random));
    const checker = new CookieChecker(responderPub, clock, random);
    const gen = new CookieGenerator(responderPub, clock);
    const msg = random.fill(new Uint8Array(148));
    msg.set([1, 0, 0, 0]);
    gen.addMacs(msg);
    expect(checker.checkMac1(msg)).toBe(true);
    const src = cookieSource({ address: "127.0.0.1", port: 1000 });
    expect(checker.checkMac2(msg, src)).toBe(false);
    const reply = parseCookieReply(checker.createReply(msg, 77, src));
    if (typeof reply === "string") throw new Error(reply);
    expect(reply.receiver).toBe(77);
    expect(gen.consumeReply(reply)).toBe(true);
    expect(gen.consumeReply(reply)).toBe(false); // bound to one MAC1, consumed once
    gen.addMacs(msg);
    expect(checker.checkMac2(msg, src)).toBe(true);
    expect(checker.checkMac2(msg, cookieSource({ address: "127.0.0.1", port: 1001 }))).toBe(false);
    // IPv4-mapped IPv6 is the same source.
    expect(checker.checkMac2(msg, cookieSource({ address: "::ffff:127.0.0.1", port: 1000 }))).toBe(true);
    // Tampering with the MAC1-covered bytes breaks MAC1.
    const bad = msg.slice();
    bad[10]! ^= 1;
    expect(checker.checkMac1(bad)).toBe(false);
    // The secret and the cookie expire after two minutes.
    clock.advance(COOKIE_REFRESH_TIME + 1);
    expect(checker.checkMac2(msg, src)).toBe(false);
    gen.addMacs(msg);
    expect(hex(msg.subarray(132))).toBe("00".repeat(16));
  });

  test("cookie replies with an unknown receiver or bad ciphertext are counted drops", () => {
    const p = makePair({ responder: { underLoad: () => true } });
    let reply: Uint8Array | undefined;
    p.tr.filter = (d) => {
      if (typeOf(d) === 3) reply = d.slice();
      return false;
    };
    p.responder.start();
    p.initiator.start();
    const from = { address: "127.0.0.1", port: 51821 };
    const wrongIndex = reply!.slice();
    wrongIndex[4]! ^= 0xff;
    p.initiator.onDatagram(wrongIndex, from);
    expect(p.initiator.stats.drops.unknownIndex).toBe(1);
    const corrupt = reply!.slice();
    corrupt[40]! ^= 1;
    p.initiator.onDatagram(corrupt, from);
    expect(p.initiator.stats.drops.badCookie).toBe(1);
    p.initiator.onDatagram(reply!, from);
    expect(p.initiator.stats.drops.badCookie).toBe(1);
  });
});
