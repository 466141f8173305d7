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

describe("FairShare (the layer's output, round robin)", () => {
  test("a burst of FAIR_SHARE_BURST, then the waiting flows in turn, FAIR_SHARE_QUANTUM each", () => {
    expect([FAIR_SHARE_BURST, FAIR_SHARE_QUANTUM, FAIR_SHARE_RATE]).toEqual([64, 4, 128]);
    const clock = new VirtualClock();
    const stats = { fairShareWaits: 0, fairShareRate: 0, retransmits: 0 };
    const share = new FairShare(clock, stats);
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
    expect(log.length).toBe(64);
    log.length = 0;
    // 1 ms later the bucket is full again (128/ms, capped at 64): the line in order, 4 at a time;
    // b is done after 6 and leaves the line.
    clock.advance(1);
    expect(log.join("")).toBe(`aaaabbbbccccaaaabbccccaaaa${"ccccaaaa".repeat(4)}ccccaa`);
    expect(share.waiting).toBe(2);
    log.length = 0;
    // A newcomer does not jump the line, even with tokens in the bucket: 0.25 ms of refill is 32
    // tokens, and c and a (ahead of d) have their turns first.
    clock.advance(0.25);
    const d = new FakeFlow("d", share, log, 1);
    d.resumeSend();
    expect(log).toEqual([]);
    clock.endTurn();
    expect(log.join("")).toBe(`ccccaaaad${"ccccaaaa".repeat(2)}ccccaaa`);
    log.length = 0;
    clock.advance(1);
    expect(log.slice(0, 12).join("")).toBe("ccccaaaacccc");
    expect(stats.fairShareWaits).toBeGreaterThan(0);
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

  test("the bucket refills at the lowered rate once an epoch of heavy loss is over", () => {
    const clock = new VirtualClock();
    const stats = { fairShareWaits: 0, fairShareRate: 0, retransmits: 0 };
    const share = new FairShare(clock, stats);
    const log: string[] = [];
    const flows = Array.from({ length: 10 }, (_, i) => new FakeFlow(String(i), share, log, 1e9));
    // Every flow keeps sending; a tenth of what leaves is retransmissions.
    for (let t = 0; t <= SHARE_EPOCH_MS; t++) {
      for (const f of flows) f.resumeSend();
      clock.advance(1);
      stats.retransmits = Math.round(log.length / 10);
    }
    expect(stats.fairShareRate).toBeLessThan(FAIR_SHARE_RATE);
    const rate = stats.fairShareRate;
    // Served once per ms, a full bucket (64) per ms went out: the rate is 0.8 of that.
    expect(rate).toBeCloseTo(0.8 * FAIR_SHARE_BURST, 0);
    log.length = 0;
    clock.advance(10);
    // 10 ms at the new rate (the bucket was empty; the line is served each ms).
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
  test("at most FAIR_SHARE_BURST data segments leave at once; the rest take turns, flow by flow", () => {
    const h = harness({ pacing: true, bufferSize: 1 << 20 });
    const conns = Array.from({ length: 40 }, (_, i) => establishFrom(h, 40000 + i));
    // Each flow's pacer allows a burst of 4 segments (IW 10 over a 100 ms RTT): 160 in all.
    for (const c of conns) c.write(bytes(64 * 1024));
    h.clock.endTurn();
    const perFlow = (segs: { dstPort: number; payload: Uint8Array }[]) => {
      const m = new Map<number, number>();
      for (const s of segs) if (s.payload.length > 0) m.set(s.dstPort - 40000, (m.get(s.dstPort - 40000) ?? 0) + 1);
      return [...m.entries()];
    };
    const first = perFlow(h.out.take());
    expect(first).toEqual(Array.from({ length: 16 }, (_, i) => [i, 4]));
    // 1 ms later: the next 16 flows in the order they came; then the last 8.
    h.clock.advance(1);
    expect(perFlow(h.out.take())).toEqual(Array.from({ length: 16 }, (_, i) => [16 + i, 4]));
    h.clock.advance(1);
    expect(perFlow(h.out.take())).toEqual(Array.from({ length: 8 }, (_, i) => [32 + i, 4]));
    expect(h.layer.stats.fairShareWaits).toBe(24);
  });
});
