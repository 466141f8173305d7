import { describe, expect, test } from "bun:test";
import {
  FAIR_SHARE_BURST,
  FAIR_SHARE_QUANTUM,
  FAIR_SHARE_RATE,
  FairShare,
  type FairShareFlow,
  SHARE_EPOCH_MS,
  SHARE_MIN_RATE,
  ShareRate,
} from "../../src/netstack/tcp/fair-share.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { TCP_ACK, TCP_SYN } from "../../src/wire/tcp.ts";
import { bytes, type Harness, harness, PEER_ISS } from "./tcp-harness.ts";

/** A flow that sends up to `want` segments whenever it may, logging each under its name. */
class FakeFlow implements FairShareFlow {
  fairShareWaiting = false;
  fairShareEpoch = 0;
  constructor(
    readonly name: string,
    private readonly share: FairShare,
    private readonly log: string[],
    public want: number,
  ) {}
  resumeSend(): void {
    while (this.want > 0 && this.share.take(this)) {
      this.want--;
      this.log.push(this.name);
    }
  }
}

/** Ten flows send one segment each in an epoch, one of them a retransmission: the rate drops to the floor. */
function engage(clock: VirtualClock, share: FairShare, stats: { retransmits: number }): void {
  const log: string[] = [];
  for (let i = 0; i < 10; i++) new FakeFlow(`x${i}`, share, log, 1).resumeSend();
  stats.retransmits++;
  clock.advance(SHARE_EPOCH_MS);
  // The next segment ends the epoch.
  new FakeFlow("y", share, log, 1).resumeSend();
  expect(log.length).toBe(11);
}

describe("FairShare (the layer's output, round robin)", () => {
  test("at the ceiling rate nothing waits and nothing is bounded", () => {
    const clock = new VirtualClock();
    const stats = { fairShareWaits: 0, fairShareRate: 0, retransmits: 0 };
    const share = new FairShare(clock, stats);
    const log: string[] = [];
    for (const n of ["a", "b", "c"]) new FakeFlow(n, share, log, 1000).resumeSend();
    expect(log.length).toBe(3000);
    expect(stats.fairShareWaits).toBe(0);
    expect(stats.fairShareRate).toBe(FAIR_SHARE_RATE);
  });

  test("engaged: a burst of FAIR_SHARE_BURST, then the waiting flows in turn, FAIR_SHARE_QUANTUM each", () => {
    expect([FAIR_SHARE_BURST, FAIR_SHARE_QUANTUM, FAIR_SHARE_RATE]).toEqual([64, 4, 128]);
    const clock = new VirtualClock();
    const stats = { fairShareWaits: 0, fairShareRate: 0, retransmits: 0 };
    const share = new FairShare(clock, stats);
    engage(clock, share, stats);
    expect(stats.fairShareRate).toBe(SHARE_MIN_RATE);
    const log: string[] = [];
    const a = new FakeFlow("a", share, log, 200);
    const b = new FakeFlow("b", share, log, 6);
    const c = new FakeFlow("c", share, log, 200);
    // a comes first, takes the whole burst and waits for more; then b and c wait behind it.
    a.resumeSend();
    b.resumeSend();
    c.resumeSend();
    expect(log.join("")).toBe("a".repeat(64));
    expect(share.waiting).toBe(3);
    // The end of the turn finds no tokens: nothing more leaves until time passes.
    clock.endTurn();
    log.length = 0;
    // 4 tokens per ms: one flow's quantum per ms, in the order of the line; b is done after 6.
    for (let t = 0; t < 7; t++) clock.advance(1);
    expect(log.join("")).toBe("aaaabbbbccccaaaabbccaaaacccc");
    // A newcomer does not jump the line: d waits behind a and c; the rest of its ms goes to a.
    const d = new FakeFlow("d", share, log, 1);
    d.resumeSend();
    clock.endTurn();
    log.length = 0;
    for (let t = 0; t < 3; t++) clock.advance(1);
    expect(log.join("")).toBe("aaaaccccdaaa");
    expect(stats.fairShareWaits).toBeGreaterThan(0);
  });

  test("engaged, one flow alone in the line takes every token (the quantum is for taking turns)", () => {
    const clock = new VirtualClock();
    const stats = { fairShareWaits: 0, fairShareRate: 0, retransmits: 0 };
    const share = new FairShare(clock, stats);
    engage(clock, share, stats);
    const log: string[] = [];
    const a = new FakeFlow("a", share, log, 1000);
    a.resumeSend();
    expect(log.length).toBe(64);
    clock.advance(10);
    // 10 ms at 4 per ms, none lost to the quantum.
    expect(log.length).toBe(64 + 10 * SHARE_MIN_RATE);
  });
});

describe("ShareRate (the bucket's rate from every flow's losses)", () => {
  test("heavy loss over many flows: 0.8 x what was sent; light loss: +25 % per epoch up to the ceiling", () => {
    const r = new ShareRate();
    expect(r.rate).toBe(FAIR_SHARE_RATE);
    // 3,000 segments in 100 ms (30/ms), 10 % of them retransmissions, 200 flows: 24/ms.
    expect(r.onEpoch(3000, 300, 200, 100)).toBe(24);
    // The same loss from fewer than 8 flows is their own congestion controls' business.
    expect(new ShareRate().onEpoch(3000, 300, 7, 100)).toBe(FAIR_SHARE_RATE);
    // 3 % (between the thresholds): held. 1 %: up a quarter, capped at the ceiling.
    expect(r.onEpoch(2400, 72, 200, 100)).toBe(24);
    expect(r.onEpoch(2400, 24, 200, 100)).toBe(30);
    for (let i = 0; i < 20; i++) r.onEpoch(2400, 0, 200, 100);
    expect(r.rate).toBe(FAIR_SHARE_RATE);
    // Never below the floor.
    for (let i = 0; i < 20; i++) r.onEpoch(10, 5, 200, 100);
    expect(r.rate).toBe(SHARE_MIN_RATE);
  });

  test("the bucket refills at the lowered rate once epochs of heavy loss are over", () => {
    const clock = new VirtualClock();
    const stats = { fairShareWaits: 0, fairShareRate: 0, retransmits: 0 };
    const share = new FairShare(clock, stats);
    const log: string[] = [];
    const flows = Array.from({ length: 10 }, (_, i) => new FakeFlow(String(i), share, log, 0));
    // Every flow wants 20 segments a ms; a tenth of what leaves is retransmissions.
    let epochs = 0;
    while (stats.fairShareRate >= FAIR_SHARE_BURST && epochs++ < 50) {
      for (let t = 0; t < SHARE_EPOCH_MS; t++) {
        for (const f of flows) {
          f.want = 20;
          f.resumeSend();
        }
        clock.advance(1);
        stats.retransmits = Math.round(log.length / 10);
      }
    }
    // 200 a ms went out: 0.8 x 128 (the ceiling); then, served once per ms, a full bucket (64) per
    // ms: 0.8 x 64.
    expect(epochs).toBe(2);
    const rate = stats.fairShareRate;
    expect(rate).toBeCloseTo(0.8 * FAIR_SHARE_BURST, 0);
    for (const f of flows) f.want = 1e6;
    clock.advance(1);
    log.length = 0;
    clock.advance(10);
    // 10 ms at the new rate, round robin.
    expect(Math.abs(log.length - 10 * rate)).toBeLessThanOrEqual(FAIR_SHARE_QUANTUM + 1);
  });
});

/** Passive handshake from the peer's port `port` with a 100 ms RTT (the pacer needs an SRTT). */
function establishFrom(h: Harness, port: number) {
  h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 65535, mss: 1460, srcPort: port });
  const { conn } = h.connects[h.connects.length - 1]!;
  conn.accept();
  const iss = h.out.one().seq;
  h.clock.advance(100);
  h.peer({ seq: PEER_ISS + 1, ack: iss + 1, flags: TCP_ACK, window: 65535, srcPort: port });
  return conn;
}

describe("many flows writing in the same turn", () => {
  test("a healthy layer (no heavy loss) holds nothing back: every flow's burst leaves at once", () => {
    const h = harness({ pacing: true, bufferSize: 1 << 20 });
    const conns = Array.from({ length: 40 }, (_, i) => establishFrom(h, 40000 + i));
    // Each flow's pacer allows a burst of 4 segments (IW 10 over a 100 ms RTT): 160 in all.
    for (const c of conns) c.write(bytes(64 * 1024));
    h.clock.endTurn();
    const data = h.out.take().filter((s) => s.payload.length > 0);
    expect(data.length).toBe(160);
    expect(new Set(data.map((s) => s.dstPort)).size).toBe(40);
    expect(h.layer.stats.fairShareWaits).toBe(0);
    expect(h.layer.stats.fairShareRate).toBe(FAIR_SHARE_RATE);
  });
});
