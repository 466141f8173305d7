import { describe, expect, test } from "bun:test";
import { KEEPALIVE_IDLE_MS, KEEPALIVE_INTERVAL_MS, KEEPALIVE_PROBES } from "../../src/netstack/tcp/constants.ts";
import { TCP_ACK, TCP_PSH, TCP_RST } from "../../src/wire/tcp.ts";
import { bytes, establish, harness, PEER_ISS } from "./tcp-harness.ts";

const D = PEER_ISS + 1;

describe("TCP keepalive toward a silent peer", () => {
  test("an idle flow whose peer vanished: probes <SEQ=SND.NXT-1>, then RST and closed after the documented time", () => {
    const h = harness();
    const { conn, iss, rec } = establish(h);
    const start = h.clock.now();
    h.clock.advance(KEEPALIVE_IDLE_MS - 1);
    expect(h.out.take()).toEqual([]);
    h.clock.advance(1);
    // The first look finds the handshake's ACK: nothing to probe yet. The next idle period is silent.
    expect(h.out.take()).toEqual([]);
    h.clock.advance(KEEPALIVE_IDLE_MS);
    const probes = [h.out.one()];
    for (let i = 1; i < KEEPALIVE_PROBES; i++) {
      h.clock.advance(KEEPALIVE_INTERVAL_MS);
      probes.push(h.out.one());
    }
    for (const p of probes) expect(p).toMatchObject({ flags: TCP_ACK, seq: iss, ack: D, payload: new Uint8Array(0) });
    expect(rec.closed).toEqual([]);
    h.clock.advance(KEEPALIVE_INTERVAL_MS);
    expect(h.out.one()).toMatchObject({ flags: TCP_RST | TCP_ACK, seq: iss + 1 });
    expect(rec.closed).toEqual(["timeout"]);
    expect(conn.state).toBe("CLOSED");
    expect(h.layer.liveConnections).toBe(0);
    expect(h.layer.stats).toMatchObject({ keepaliveProbes: KEEPALIVE_PROBES, keepaliveTimeouts: 1 });
    expect(h.clock.now() - start).toBe(2 * KEEPALIVE_IDLE_MS + KEEPALIVE_PROBES * KEEPALIVE_INTERVAL_MS);
    expect(h.clock.nextDeadline()).toBe(-1);
  });

  test("a live peer answers the probes: the idle flow stays open for hours", () => {
    const h = harness();
    const { conn, iss, rec } = establish(h);
    for (let hour = 0; hour < 3 * 3_600_000; hour += KEEPALIVE_INTERVAL_MS) {
      h.clock.advance(KEEPALIVE_INTERVAL_MS);
      for (const s of h.out.take()) {
        expect(s).toMatchObject({ flags: TCP_ACK, seq: iss, ack: D });
        // What the peer's kernel does with a probe: ACK with its own SND.NXT.
        h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK });
      }
    }
    expect(rec.closed).toEqual([]);
    expect(conn.state).toBe("ESTABLISHED");
    expect(h.layer.stats.keepaliveProbes).toBeGreaterThan(0);
    expect(h.layer.stats.keepaliveTimeouts).toBe(0);
  });

  test("traffic from the peer keeps a flow from being probed at all", () => {
    const h = harness();
    const { iss, rec } = establish(h);
    let seq = D;
    for (let t = 0; t < 4 * KEEPALIVE_IDLE_MS; t += 60_000) {
      h.clock.advance(60_000);
      h.peer({ seq, ack: iss + 1, flags: TCP_ACK | TCP_PSH, payload: bytes(10) });
      seq += 10;
      for (const s of h.out.take()) expect(s.seq).toBe(iss + 1); // ACKs of the data only
    }
    expect(rec.closed).toEqual([]);
    expect(h.layer.stats.keepaliveProbes).toBe(0);
  });

  test("a peer gone while our window toward it is closed (zero-window probing) is given up too", () => {
    const h = harness();
    const { conn, iss, rec } = establish(h);
    // The peer closes its window, then vanishes: zero-window probes alone would repeat forever.
    h.peer({ seq: D, ack: iss + 1, flags: TCP_ACK, window: 0 });
    conn.write(bytes(100));
    let t = 0;
    while (rec.closed.length === 0 && t < 3_600_000) {
      h.clock.advance(1000);
      t += 1000;
      h.out.take();
    }
    expect(rec.closed).toEqual(["timeout"]);
    expect(t).toBeLessThanOrEqual(2 * KEEPALIVE_IDLE_MS + KEEPALIVE_PROBES * KEEPALIVE_INTERVAL_MS);
    expect(h.layer.liveConnections).toBe(0);
  });
});
