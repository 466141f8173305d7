import { describe, expect, test } from "bun:test";
import { ipv4, makePair, type Pair, typeOf } from "../../fixtures/wireguard/fixtures.ts";
import {
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME,
  REKEY_ON_RECEIVE_AGE,
  REKEY_SEND_COUNTER,
  REKEY_TIMEOUT,
} from "../../src/wireguard/constants.ts";

/** Record [time, type, length] of every datagram a side sends; `pass` decides delivery. */
function recorder(p: Pair, side: "ti" | "tr", pass: () => boolean = () => true): number[][] {
  const log: number[][] = [];
  p[side].filter = (d) => {
    log.push([p.clock.now(), typeOf(d), d.length]);
    return pass();
  };
  return log;
}

function connected(opts: Parameters<typeof makePair>[0] = {}): Pair {
  const p = makePair(opts);
  p.responder.start();
  p.initiator.start();
  expect(p.initiator.stats.handshakesCompleted).toBe(1);
  expect(p.responder.stats.handshakesCompleted).toBe(1);
  return p;
}

describe("WireGuard timers on a VirtualClock", () => {
  test("REKEY_TIMEOUT retransmissions with jitter, give-up after REKEY_ATTEMPT_TIME, then key erasure armed", () => {
    const p = makePair();
    const sent = recorder(p, "ti", () => false); // the responder never hears us
    p.initiator.start();
    p.initiator.send(ipv4(40, 1));
    p.clock.advance(200_000);
    const initiations = sent.filter((s) => s[1] === 1).map((s) => s[0]!);
    expect(initiations.length).toBe(1 + MAX_TIMER_HANDSHAKES + 1); // 20, as wireguard-go
    expect(initiations[0]).toBe(0);
    for (let i = 1; i < initiations.length; i++) {
      const gap = initiations[i]! - initiations[i - 1]!;
      expect(gap).toBeGreaterThanOrEqual(REKEY_TIMEOUT);
      expect(gap).toBeLessThanOrEqual(REKEY_TIMEOUT + 333);
    }
    expect(p.initiator.stats.drops.noSession).toBe(1);
    const last = initiations[initiations.length - 1]!;
    const giveUp = p.initiator.timers.deadlines().zeroKeyMaterial - 3 * REJECT_AFTER_TIME;
    expect(giveUp).toBeGreaterThanOrEqual(last + REKEY_TIMEOUT);
    expect(giveUp).toBeLessThanOrEqual(last + REKEY_TIMEOUT + 333);
    expect(p.clock.nextDeadline()).toBe(giveUp + 3 * REJECT_AFTER_TIME);
  });

  test("passive keepalive: data received and nothing to send -> keepalive after exactly KEEPALIVE_TIMEOUT", () => {
    const p = connected();
    const fromResponder = recorder(p, "tr");
    p.clock.advance(1000);
    p.initiator.send(ipv4(40, 1));
    p.clock.advance(30_000);
    expect(fromResponder).toEqual([[1000 + KEEPALIVE_TIMEOUT, 4, 32]]);
    // The keepalive reached the initiator before its 15 s "no reply" timer: no new handshake.
    expect(p.initiator.stats.handshakeInitiationsSent).toBe(1);
  });

  test("no passive keepalive when the receiver answers with data", () => {
    const p = connected();
    const fromResponder = recorder(p, "tr");
    p.clock.advance(1000);
    p.initiator.send(ipv4(40, 1));
    p.clock.advance(4000);
    p.responder.send(ipv4(40, 2));
    p.clock.advance(30_000);
    // The responder's data at 5 s; then the *initiator* owes a keepalive at 15 s, not the responder.
    expect(fromResponder).toEqual([[5000, 4, 80]]);
    expect(p.initiator.stats.keepalivesSent).toBe(2); // session confirmation + passive at 15 s
  });

  test("data sent and nothing back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (+jitter) -> new handshake", () => {
    const p = connected();
    recorder(p, "tr", () => false); // responder silenced
    const fromInitiator = recorder(p, "ti");
    p.clock.advance(1000);
    p.initiator.send(ipv4(40, 1));
    p.clock.advance(17_000);
    const inits = fromInitiator.filter((s) => s[1] === 1);
    expect(inits.length).toBe(1);
    expect(inits[0]![0]).toBeGreaterThanOrEqual(1000 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT);
    expect(inits[0]![0]).toBeLessThanOrEqual(1000 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + 333);
  });

  test("persistent keepalive every N seconds of silence", () => {
    const p = makePair({ initiator: { persistentKeepalive: 25 } });
    p.responder.start();
    p.initiator.start();
    expect(p.initiator.stats.keepalivesSent).toBe(1);
    const fromInitiator = recorder(p, "ti");
    p.clock.advance(100_000);
    expect(fromInitiator).toEqual([
      [25_000, 4, 32],
      [50_000, 4, 32],
      [75_000, 4, 32],
      [100_000, 4, 32],
    ]);
    // Traffic restarts the countdown.
    p.clock.advance(10_000);
    p.initiator.send(ipv4(40, 1));
    expect(fromInitiator.slice(4)).toEqual([[110_000, 4, 80]]);
    expect(p.initiator.timers.deadlines().persistentKeepalive).toBe(135_000);
  });

  test("initiator rekeys when sending after REKEY_AFTER_TIME; the old session stays as previous", () => {
    const p = connected();
    const first = p.initiator.keypairs.current!;
    p.clock.advance(REKEY_AFTER_TIME - 1);
    p.initiator.send(ipv4(40, 1));
    expect(p.initiator.stats.handshakeInitiationsSent).toBe(1);
    p.clock.advance(2);
    p.initiator.send(ipv4(40, 2));
    expect(p.initiator.stats.handshakeInitiationsSent).toBe(2);
    expect(p.initiator.stats.handshakesCompleted).toBe(2);
    expect(p.initiator.keypairs.current).not.toBe(first);
    expect(p.initiator.keypairs.previous).toBe(first);
    expect(p.atResponder.map((x) => x[23])).toEqual([1, 2]);
    // Both sides now use the new session.
    p.responder.send(ipv4(40, 3));
    expect(p.atInitiator.map((x) => x[23])).toEqual([3]);
    expect(p.responder.keypairs.current!.localIndex).toBe(p.initiator.keypairs.current!.remoteIndex);
  });

  test("initiator rekeys on receive once its key is older than 165 s (once)", () => {
    const p = connected();
    p.clock.advance(REKEY_ON_RECEIVE_AGE - 1000);
    p.responder.send(ipv4(40, 1));
    expect(p.initiator.stats.handshakeInitiationsSent).toBe(1);
    p.clock.advance(1001);
    recorder(p, "ti", () => false); // keep the renewal from completing
    p.responder.send(ipv4(40, 2));
    expect(p.initiator.stats.handshakeInitiationsSent).toBe(2);
    p.responder.send(ipv4(40, 3));
    expect(p.initiator.stats.handshakeInitiationsSent).toBe(2);
    expect(p.atInitiator.length).toBe(3);
  });

  test("REJECT_AFTER_TIME: old packets dropped as expired; sending on an expired session re-handshakes", () => {
    const p = connected();
    let held: Uint8Array | undefined;
    p.ti.filter = (d) => {
      held = d.slice();
      return true;
    };
    p.clock.advance(1000);
    p.initiator.send(ipv4(40, 1));
    p.ti.filter = undefined;
    expect(p.atResponder.length).toBe(1);
    p.clock.runUntil(REJECT_AFTER_TIME);
    p.responder.onDatagram(held!, { address: "127.0.0.1", port: 51820 });
    expect(p.responder.stats.drops.expired).toBe(1);
    // The responder's session is expired: it queues, initiates itself, and delivers after.
    p.responder.send(ipv4(40, 9));
    expect(p.responder.stats.handshakeInitiationsSent).toBe(1);
    expect(p.atInitiator.map((x) => x[23])).toEqual([9]);
    expect(p.responder.stats.handshakesCompleted).toBe(2);
  });

  test("rekey after messages: a send counter past the limit triggers a handshake", () => {
    const p = connected();
    p.initiator.keypairs.current!.sendCounter = REKEY_SEND_COUNTER + 1;
    recorder(p, "ti", () => false);
    p.clock.advance(REKEY_TIMEOUT);
    p.initiator.send(ipv4(40, 1));
    expect(p.initiator.stats.handshakeInitiationsSent).toBe(2);
  });

  test("keys erased after 3 × REJECT_AFTER_TIME without a new session", () => {
    const p = connected();
    p.clock.runUntil(3 * REJECT_AFTER_TIME - 1);
    expect(p.initiator.keypairs.current).toBeDefined();
    p.clock.runUntil(3 * REJECT_AFTER_TIME);
    expect(p.initiator.keypairs.current).toBeUndefined();
    expect(p.responder.keypairs.current).toBeUndefined();
    expect(p.initiator.keypairs.previous).toBeUndefined();
  });
});
