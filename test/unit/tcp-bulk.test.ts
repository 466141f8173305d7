import { describe, expect, test } from "bun:test";
import { transfer } from "./tcp-transfer.ts";

/** 1 MiB each way between two TcpLayers over a link with 5 ms delay and `loss` each way. */
function run(loss: number, seed: number) {
  const impairment = { loss, delayMs: 5 };
  return transfer({
    sizeAtoB: 1 << 20,
    sizeBtoA: 1 << 20,
    seed,
    aToB: impairment,
    bToA: impairment,
    bufferSize: 65536,
  });
}

describe("TCP bulk transfer between two TcpLayers", () => {
  test("1 MiB each way over a link losing 5% of packets in each direction", () => {
    const { a, b, layerA, layerB, aToB, bToA, clock } = run(0.05, 1234);
    expect(aToB.dropped).toBeGreaterThan(20);
    expect(bToA.dropped).toBeGreaterThan(20);
    expect(a.receivedLen).toBe(1 << 20);
    expect(b.receivedLen).toBe(1 << 20);
    expect(Buffer.from(a.received).equals(Buffer.from(b.toSend))).toBe(true);
    expect(Buffer.from(b.received).equals(Buffer.from(a.toSend))).toBe(true);
    expect([a.eof, b.eof]).toEqual([true, true]);
    expect(a.closed).toEqual(["closed"]);
    expect(b.closed).toEqual(["closed"]);
    expect([layerA.liveConnections, layerB.liveConnections]).toEqual([0, 0]);
    expect(layerA.stats.retransmits + layerB.stats.retransmits).toBeGreaterThan(0);
    // Bounded time: well under a minute of virtual time despite the loss.
    expect(clock.now()).toBeLessThan(60_000);
  });

  test("20% loss each way still completes (no ACK ping-pong after go-back-N)", () => {
    const { a, b } = run(0.2, 7);
    expect(Buffer.from(a.received).equals(Buffer.from(b.toSend))).toBe(true);
    expect(Buffer.from(b.received).equals(Buffer.from(a.toSend))).toBe(true);
    expect([a.closed, b.closed]).toEqual([["closed"], ["closed"]]);
  });

  test("lossless: 1 MiB each way without a single retransmission", () => {
    const { a, b, layerA, layerB } = run(0, 99);
    expect(Buffer.from(a.received).equals(Buffer.from(b.toSend))).toBe(true);
    expect(Buffer.from(b.received).equals(Buffer.from(a.toSend))).toBe(true);
    expect(layerA.stats.retransmits + layerB.stats.retransmits).toBe(0);
    expect([a.closed, b.closed]).toEqual([["closed"], ["closed"]]);
  });
});
