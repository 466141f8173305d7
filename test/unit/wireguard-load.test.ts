import { describe, expect, test } from "bun:test";
import { ipv4, makePair, typeOf } from "../../fixtures/wireguard/fixtures.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import type { Endpoint } from "../../src/util/endpoint.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { COOKIE_REFRESH_TIME, REKEY_TIMEOUT } from "../../src/wireguard/constants.ts";
import { CookieChecker, CookieGenerator, cookieSource } from "../../src/wireguard/cookie.ts";
import {
  HandshakeQueue,
  type HandshakeQueueOptions,
  type HandshakeRejection,
} from "../../src/wireguard/handshake-queue.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { parseCookieReply } from "../../src/wireguard/messages.ts";
import { HandshakeRateLimiter, sourceKey } from "../../src/wireguard/ratelimiter.ts";

const FLOODER: Endpoint = { address: "127.0.0.9", port: 4000 };

describe("handshake rate limiter (wireguard-go ratelimiter: 20/s, burst 5)", () => {
  test("a burst of 5, then one message per 50 ms; sources are separate", () => {
    const clock = new VirtualClock(0);
    const rl = new HandshakeRateLimiter(clock);
    const burst = Array.from({ length: 7 }, () => rl.allow("10.0.0.1"));
    expect(burst).toEqual([true, true, true, true, true, false, false]);
    expect(rl.stats.limited).toBe(2);
    expect(rl.allow("10.0.0.2")).toBe(true); // another /32
    clock.advance(49);
    expect(rl.allow("10.0.0.1")).toBe(false);
    clock.advance(1);
    expect(rl.allow("10.0.0.1")).toBe(true);
    expect(rl.allow("10.0.0.1")).toBe(false);
    // Over 10 s at 100 messages/s, 20/s get through (+ the refill carried over).
    let ok = 0;
    for (let i = 0; i < 1000; i++) {
      clock.advance(10);
      if (rl.allow("10.0.0.1")) ok++;
    }
    expect(ok).toBe(200);
  });

  test("IPv6 sources share a bucket per /64; IPv4-mapped is IPv4", () => {
    expect(sourceKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2");
    expect(sourceKey("2001:db8:1:2::ffff:1")).toBe("2001:db8:1:2");
    expect(sourceKey("2001:0db8:0001:0002:0:0:0:1")).toBe("2001:db8:1:2");
    expect(sourceKey("::1")).toBe("0:0:0:0");
    expect(sourceKey("fe80::1%eth0")).toBe("fe80:0:0:0");
    expect(sourceKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(sourceKey("64:ff9b::192.0.2.7")).toBe("64:ff9b:0:0");
    const clock = new VirtualClock(0);
    const rl = new HandshakeRateLimiter(clock);
    for (let i = 0; i < 5; i++) expect(rl.allow(`2001:db8:1:2::${i + 1}`)).toBe(true);
    expect(rl.allow("2001:db8:1:2:ffff::9")).toBe(false);
    expect(rl.allow("2001:db8:1:3::1")).toBe(true);
    for (let i = 0; i < 5; i++) expect(rl.allow("192.0.2.7")).toBe(true);
    expect(rl.allow("::ffff:192.0.2.7")).toBe(false);
  });

  test("the table is bounded: a new source is refused and counted while it is full of active ones", () => {
    const clock = new VirtualClock(0);
    const rl = new HandshakeRateLimiter(clock, 3);
    expect([rl.allow("10.0.0.1"), rl.allow("10.0.0.2"), rl.allow("10.0.0.3")]).toEqual([true, true, true]);
    expect(rl.allow("10.0.0.4")).toBe(false);
    expect(rl.stats).toEqual({ limited: 0, tableFull: 1, entries: 3 });
    clock.advance(500);
    expect(rl.allow("10.0.0.1")).toBe(true); // known sources keep working
    clock.advance(501); // 10.0.0.2 and .3 idle > 1 s: swept
    expect(rl.allow("10.0.0.4")).toBe(true);
    expect(rl.stats.entries).toBe(2);
  });
});

/** A HandshakeQueue with a recording process hook and MAC1-valid messages to feed it. */
function rig(opts: HandshakeQueueOptions = {}) {
  const clock = new VirtualClock(0);
  const random = new SeededRandom(7);
  const pub = publicKeyOf(generatePrivateKey(random));
  const gen = new CookieGenerator(pub, clock);
  const processed: number[] = [];
  const rejected: HandshakeRejection[] = [];
  const cookies: { reply: Uint8Array; to: Endpoint }[] = [];
  const q = new HandshakeQueue(
    clock,
    new CookieChecker(pub, clock, random),
    {
      process: (data) => processed.push(data[8]!),
      reject: (r) => rejected.push(r),
      sendCookieReply: (reply, to) => cookies.push({ reply, to }),
    },
    opts,
  );
  let n = 0;
  /** An initiation-sized message numbered in byte 8, MAC1 (and MAC2 with a cookie) filled in. */
  const message = (): Uint8Array => {
    const m = random.fill(new Uint8Array(148));
    m.set([1, 0, 0, 0]);
    m[8] = n++ & 0xff;
    gen.addMacs(m);
    return m;
  };
  return { clock, q, gen, processed, rejected, cookies, message };
}

describe("cookie checker: the last source's cookie is remembered, never across sources or secrets", () => {
  test("MAC2 checks per source, and a rotated secret invalidates the old cookie", () => {
    const clock = new VirtualClock(0);
    const random = new SeededRandom(11);
    const pub = publicKeyOf(generatePrivateKey(random));
    const checker = new CookieChecker(pub, clock, random);
    const genA = new CookieGenerator(pub, clock);
    const genB = new CookieGenerator(pub, clock);
    const a = cookieSource({ address: "10.0.0.1", port: 1 });
    const b = cookieSource({ address: "10.0.0.2", port: 1 });
    const msg = (gen: CookieGenerator) => {
      const m = random.fill(new Uint8Array(148));
      m.set([1, 0, 0, 0]);
      gen.addMacs(m);
      return m;
    };
    const take = (gen: CookieGenerator, source: Uint8Array) => {
      const reply = parseCookieReply(checker.createReply(msg(gen), 1, source));
      if (typeof reply === "string") throw new Error(reply);
      expect(gen.consumeReply(reply)).toBe(true);
    };
    take(genB, b); // the secret is made now (t = 0)
    clock.advance(100_000);
    take(genA, a); // A's cookie, from that secret, is fresh until t = 220 s on A's side
    // Alternating sources: each message is checked against its own source's cookie.
    for (let i = 0; i < 3; i++) {
      expect(checker.checkMac2(msg(genA), a)).toBe(true);
      expect(checker.checkMac2(msg(genA), b)).toBe(false);
      expect(checker.checkMac2(msg(genB), b)).toBe(true);
      expect(checker.checkMac2(msg(genB), a)).toBe(false);
    }
    // At t = 121 s the secret is too old; the next reply makes a new one. A still holds a cookie it
    // thinks fresh, made from the old secret: the remembered cookie for A must not accept it.
    clock.advance(COOKIE_REFRESH_TIME - 100_000 + 1000);
    checker.createReply(msg(genB), 1, a); // a reply to A's address, under the new secret
    expect(checker.checkMac2(msg(genA), a)).toBe(false);
    take(genA, a);
    expect(checker.checkMac2(msg(genA), a)).toBe(true);
  });
});

describe("handshake queue", () => {
  test("per-turn budget: the first messages run at once, the rest one budget per turn, in order", () => {
    const r = rig({ turnBudget: 3, turnBudgetMs: Number.POSITIVE_INFINITY, underLoadRate: 1e9 });
    for (let i = 0; i < 8; i++) r.q.submit(r.message(), FLOODER);
    expect(r.processed).toEqual([0, 1, 2]);
    expect(r.q.stats.queued).toBe(5);
    r.clock.advance(1);
    expect(r.processed).toEqual([0, 1, 2, 3, 4, 5]);
    r.clock.advance(1);
    expect(r.processed).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(r.q.stats).toMatchObject({ queued: 0, queuePeak: 5, processedAtOnce: 3, processedQueued: 5 });
    // A new turn: the budget is fresh again.
    r.clock.advance(1);
    r.q.submit(r.message(), FLOODER);
    expect(r.processed.length).toBe(9);
  });

  test("overflow is a counted drop; bad MAC1 never reaches the queue", () => {
    const r = rig({ turnBudget: 1, capacity: 4, underLoadDepth: 100, underLoadRate: 1e9 });
    for (let i = 0; i < 7; i++) r.q.submit(r.message(), FLOODER);
    expect(r.processed.length).toBe(1);
    expect(r.q.stats.queued).toBe(4);
    expect(r.rejected).toEqual(["handshakeQueueFull", "handshakeQueueFull"]);
    const bad = r.message();
    bad[20]! ^= 1;
    r.q.submit(bad, FLOODER);
    expect(r.rejected.at(-1)).toBe("badMac1");
    expect(r.q.stats.queued).toBe(4);
  });

  test("under load when the queue backs up; MAC2-less messages then get a cookie reply and no processing; the state ends 1 s after", () => {
    const r = rig({ turnBudget: 1, underLoadDepth: 4, underLoadRate: 1e9, underLoadHoldMs: 1000 });
    for (let i = 0; i < 4; i++) r.q.submit(r.message(), FLOODER);
    expect(r.q.stats.queued).toBe(3);
    expect(r.q.stats.underLoad).toBe(false);
    r.q.submit(r.message(), FLOODER);
    expect(r.q.stats.queued).toBe(4);
    expect(r.q.stats.underLoad).toBe(true); // depth 4
    r.q.submit(r.message(), FLOODER);
    expect(r.q.stats.underLoadEpisodes).toBe(1);
    expect(r.rejected).toEqual(["badMac2"]);
    expect(r.cookies.length).toBe(1);
    expect(r.cookies[0]!.to).toEqual(FLOODER);
    expect(r.cookies[0]!.reply.length).toBe(64);
    expect(r.q.stats.queued).toBe(4); // not queued
    // The initiator takes the cookie; its next message carries MAC2 and is accepted (queued).
    const reply = parseCookieReply(r.cookies[0]!.reply);
    if (typeof reply === "string") throw new Error(reply);
    expect(r.gen.consumeReply(reply)).toBe(true);
    const withMac2 = r.message();
    r.q.submit(withMac2, FLOODER);
    expect(r.q.stats.queued).toBe(5);
    for (let i = 0; i < 6; i++) r.clock.advance(1);
    expect(r.processed).toEqual([0, 1, 2, 3, 4, 6]);
    // The queue is empty but the state holds for 1 s after the last sign of load (at t = 0).
    r.clock.advance(993);
    expect(r.clock.now()).toBe(999);
    expect(r.q.stats.underLoad).toBe(true);
    r.clock.advance(1);
    expect(r.q.stats.underLoad).toBe(false);
    r.gen.addMacs(withMac2); // no effect on acceptance out of load
    const plain = r.message();
    r.q.submit(plain, FLOODER);
    expect(r.processed.at(-1)).toBe(plain[8]!);
  });

  test("under load when MAC1-valid messages arrive faster than underLoadRate per second", () => {
    const r = rig({ underLoadRate: 10, turnBudgetMs: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 10; i++) {
      r.q.submit(r.message(), FLOODER);
      r.clock.advance(50);
    }
    expect(r.processed.length).toBe(10);
    expect(r.q.stats.underLoad).toBe(false);
    r.q.submit(r.message(), FLOODER); // the 11th within one second
    expect(r.processed.length).toBe(10);
    expect(r.rejected).toEqual(["badMac2"]);
    expect(r.q.stats.underLoad).toBe(true);
    // At 5/s the rate sign goes away and, 1 s later, the state.
    for (let i = 0; i < 10; i++) {
      r.clock.advance(200);
      r.q.submit(r.message(), FLOODER);
    }
    expect(r.q.stats.underLoad).toBe(false);
    expect(r.processed.length).toBeGreaterThan(10);
  });

  test("under load, MAC2-valid messages pass the per-source rate limit (burst 5, then 20/s)", () => {
    const r = rig({ underLoad: () => true, turnBudgetMs: Number.POSITIVE_INFINITY, turnBudget: 100 });
    r.q.submit(r.message(), FLOODER);
    const reply = parseCookieReply(r.cookies[0]!.reply);
    if (typeof reply === "string") throw new Error(reply);
    r.gen.consumeReply(reply);
    for (let i = 0; i < 8; i++) r.q.submit(r.message(), FLOODER);
    expect(r.processed.length).toBe(5);
    expect(r.rejected).toEqual(["badMac2", "rateLimited", "rateLimited", "rateLimited"]);
    // The cookie is bound to the source port: from another port it is a cookie reply again.
    r.q.submit(r.message(), { address: FLOODER.address, port: FLOODER.port + 1 });
    expect(r.rejected.at(-1)).toBe("badMac2");
    expect(r.cookies.length).toBe(2);
    r.clock.advance(50);
    r.q.submit(r.message(), FLOODER);
    expect(r.processed.length).toBe(6);
  });
});

describe("tunnel under a MAC1-valid initiation flood (virtual clock)", () => {
  /** Initiations for the responder's key with random ephemerals: MAC1 valid, the rest junk. */
  function junkInitiations(responderPublic: Uint8Array, clock: VirtualClock, n: number, seed: number) {
    const gen = new CookieGenerator(responderPublic, clock);
    const random = new SeededRandom(seed);
    return Array.from({ length: n }, () => {
      const m = random.fill(new Uint8Array(148));
      m.set([1, 0, 0, 0]);
      gen.addMacs(m);
      return m;
    });
  }

  test("the flood puts the responder under load: junk gets cookie replies and no DH; a real initiator gets in with MAC2 after REKEY_TIMEOUT", () => {
    const p = makePair({ responder: { handshakeQueue: { underLoadRate: 50 } } });
    const responderPublic = publicKeyOf(p.responderPrivate);
    const cookiesToFlooder: Uint8Array[] = [];
    const seen: number[] = [];
    p.tr.filter = (d, to) => {
      if (to.port === FLOODER.port) {
        if (typeOf(d) === 3) cookiesToFlooder.push(d);
        return false;
      }
      seen.push(typeOf(d));
      return true;
    };
    p.responder.start();
    const junk = junkInitiations(responderPublic, p.clock, 200, 3);
    for (const [i, m] of junk.entries()) {
      p.responder.onDatagram(m, FLOODER);
      if (i % 20 === 19) p.clock.advance(10);
    }
    const rs = p.responder.stats;
    // The first 50 within the second ran the handshake (and failed to decrypt); the rest got cookies.
    expect(rs.drops.handshakeDecrypt).toBe(50);
    expect(rs.drops.badMac2).toBe(150);
    expect(rs.cookieRepliesSent).toBe(150);
    expect(cookiesToFlooder.length).toBe(150);
    expect(cookiesToFlooder.every((c) => c.length === 64)).toBe(true);
    expect(rs.handshakeLoad.underLoad).toBe(true);

    // Flood continues while the real initiator starts.
    const keepFlooding = () => {
      for (const m of junkInitiations(responderPublic, p.clock, 60, p.clock.now())) p.responder.onDatagram(m, FLOODER);
    };
    p.initiator.start();
    expect(seen).toEqual([3]); // cookie reply, no response
    expect(p.initiator.stats.handshakesCompleted).toBe(0);
    for (let t = 0; t < REKEY_TIMEOUT + 400; t += 100) {
      keepFlooding();
      p.clock.advance(100);
      if (p.initiator.stats.handshakesCompleted > 0) break;
    }
    expect(p.initiator.stats.handshakesCompleted).toBe(1);
    expect(seen).toEqual([3, 2]); // cookie reply, then the response to the retry with MAC2
    expect(p.clock.now()).toBeGreaterThanOrEqual(REKEY_TIMEOUT);
    expect(p.clock.now()).toBeLessThanOrEqual(REKEY_TIMEOUT + 400);
    expect(rs.handshakesCompleted).toBe(1);
    expect(rs.drops.handshakeDecrypt).toBe(50); // no junk reached the DH under load
    p.initiator.send(ipv4(40, 9));
    expect(p.atResponder.length).toBe(1);
  });

  test("transport packets are handled while handshake work waits in the queue", () => {
    const p = makePair({
      responder: {
        handshakeQueue: {
          turnBudget: 4,
          turnBudgetMs: Number.POSITIVE_INFINITY,
          underLoadRate: 1e9,
          underLoadDepth: 1000,
        },
      },
    });
    p.responder.start();
    p.initiator.start();
    p.clock.advance(1);
    expect(p.responder.stats.handshakesCompleted).toBe(1);
    const junk = junkInitiations(publicKeyOf(p.responderPrivate), p.clock, 30, 5);
    for (const m of junk) p.responder.onDatagram(m, FLOODER);
    expect(p.responder.stats.handshakeLoad.queued).toBe(26);
    p.initiator.send(ipv4(40, 1));
    expect(p.atResponder.length).toBe(1); // not behind the 26 queued initiations
    expect(p.responder.stats.drops.handshakeDecrypt).toBe(4);
    p.clock.advance(1);
    expect(p.responder.stats.drops.handshakeDecrypt).toBe(8);
    for (let i = 0; i < 10; i++) p.clock.advance(1);
    expect(p.responder.stats.drops.handshakeDecrypt).toBe(30);
    expect(p.responder.stats.handshakeLoad.queued).toBe(0);
  });
});
