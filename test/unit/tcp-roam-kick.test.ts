// Issue 9, build item 7: when the peer roams, flows stuck on a backed-off retransmission timer
// resend at once with a fresh backoff instead of waiting out the timer.

import { describe, expect, test } from "bun:test";
import { KEEPALIVE_INTERVAL_MS } from "../../src/netstack/tcp/constants.ts";
import { TCP_ACK, TCP_SYN } from "../../src/wire/tcp.ts";
import { bytes, type Harness, harness, PEER, PEER_ISS } from "./tcp-harness.ts";

const D = PEER_ISS + 1;

/** Passive handshake with a 100 ms RTT on the SYN-ACK: RTO 300 ms. */
function establishRtt100(h: Harness) {
  h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 65535, mss: 1460 });
  const { conn } = h.connects[0]!;
  conn.accept();
  const iss = h.out.one().seq;
  h.clock.advance(100);
  h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, window: 65535 });
  return { conn, iss, rto: () => (conn as unknown as { debug: { rto: number } }).debug.rto };
}

/** Run the clock to `until`, returning the times (relative to `start`) at which segments left. */
function sendTimes(h: Harness, start: number, until: number): number[] {
  const times: number[] = [];
  for (;;) {
    const next = h.clock.nextDeadline();
    if (next < 0 || next > until) break;
    h.clock.runUntil(next);
    for (const _ of h.out.take()) times.push(h.clock.now() - start);
  }
  h.clock.runUntil(until);
  return times;
}

describe("TCP: kickRetransmissions after the peer roams", () => {
  test("a backed-off flow resends at once with the backoff reset; without the kick it would wait until 9.3 s", () => {
    const h = harness();
    const { conn, iss, rto } = establishRtt100(h);
    const start = h.clock.now();
    conn.write(bytes(100));
    expect(h.out.one().seq).toBe(iss + 1);
    // Lost on the old path: expiries at 0.3, 0.9, 2.1 and 4.5 s; the next would be at 9.3 s.
    expect(sendTimes(h, start, start + 5000)).toEqual([300, 900, 2100, 4500]);
    expect(rto()).toBe(4800);
    expect(h.layer.kickRetransmissions()).toBe(1);
    expect(h.layer.stats.roamKicks).toBe(1);
    h.clock.advance(0);
    const resent = h.out.one();
    expect([resent.seq, resent.payload.length]).toEqual([iss + 1, 100]);
    expect(h.clock.now() - start).toBe(5000);
    // The RTO starts over from its base: one expiry's worth of backoff (600 ms), not 9.6 s.
    expect(rto()).toBe(600);
    expect(sendTimes(h, start, start + 5700)).toEqual([5600]);
    // The new path works: the ACK clears the backoff and the timer.
    h.peer({ seq: D, ack: iss + 101, flags: TCP_ACK, window: 65535 });
    expect(conn.sendBuffered).toBe(0);
    expect(rto()).toBe(300);
    // No retransmission pending: only the keepalive timer (minutes away) is armed.
    expect(h.clock.nextDeadline() - h.clock.now()).toBeGreaterThan(KEEPALIVE_INTERVAL_MS);
  });

  test("the retry count starts over too: a kicked flow is not given up on the old schedule", () => {
    const h = harness();
    const { conn } = establishRtt100(h);
    const start = h.clock.now();
    conn.write(bytes(10));
    h.out.take();
    // 9 expiries (the 10th retransmit would be the last before giving up at 256.5 s).
    expect(sendTimes(h, start, start + 140_000).length).toBe(9);
    expect(h.layer.kickRetransmissions()).toBe(1);
    expect(sendTimes(h, start, start + 260_000).length).toBeGreaterThanOrEqual(4);
    expect(h.layer.liveConnections).toBe(1);
  });

  test("flows that lost nothing (no backoff), or belong to another peer, are left alone", () => {
    const h = harness();
    const { conn, iss } = establishRtt100(h);
    expect(h.layer.kickRetransmissions()).toBe(0); // idle
    conn.write(bytes(100));
    h.out.take();
    expect(h.layer.kickRetransmissions()).toBe(0); // in flight, timer not expired yet: no spurious resend
    h.clock.advance(0);
    expect(h.out.sent.length).toBe(0);
    h.clock.advance(300);
    expect(h.out.one().seq).toBe(iss + 1);
    const otherPeer = (a: Uint8Array) => a[3] !== PEER[3];
    expect(h.layer.kickRetransmissions(otherPeer)).toBe(0);
    expect(h.layer.kickRetransmissions((a) => a[3] === PEER[3])).toBe(1);
    h.clock.advance(0);
    expect(h.out.one().seq).toBe(iss + 1);
  });
});
