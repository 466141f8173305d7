import { afterAll, expect, test } from "bun:test";
import { Impairment, startImpairRelay } from "../../harness/impair.ts";

const d = (n: number) => Uint8Array.of(n);
const ids = (out: Uint8Array[]) => out.map((x) => x[0]);

test("no impairment forwards every datagram unchanged and in order", () => {
  const imp = new Impairment({ loss: 0, duplicate: 0, reorder: 0, delayMs: 0, seed: 1 });
  const out: number[] = [];
  for (let i = 0; i < 100; i++) out.push(...(ids(imp.process(d(i))) as number[]));
  expect(out).toEqual(Array.from({ length: 100 }, (_, i) => i));
  expect(imp.stats).toEqual({ received: 100, forwarded: 100, dropped: 0, duplicated: 0, reordered: 0 });
});

test("rates are honoured and deterministic for a seed", () => {
  const run = (seed: number) => {
    const imp = new Impairment({ loss: 0.05, duplicate: 0.02, reorder: 0.05, delayMs: 0, seed });
    const out: number[] = [];
    for (let i = 0; i < 20000; i++) out.push(...(ids(imp.process(d(i & 0xff))) as number[]));
    out.push(...(ids(imp.flushHeld()) as number[]));
    return { out, stats: { ...imp.stats } };
  };
  const a = run(7);
  const b = run(7);
  const c = run(8);
  expect(a).toEqual(b);
  expect(a.out).not.toEqual(c.out);
  expect(a.stats.dropped / 20000).toBeGreaterThan(0.04);
  expect(a.stats.dropped / 20000).toBeLessThan(0.06);
  expect(a.stats.duplicated / 20000).toBeGreaterThan(0.012);
  expect(a.stats.duplicated / 20000).toBeLessThan(0.028);
  expect(a.stats.reordered).toBeGreaterThan(500);
  expect(a.stats.forwarded).toBe(a.stats.received - a.stats.dropped + a.stats.duplicated);
});

test("a held datagram is swapped with its successor", () => {
  const imp = new Impairment({ loss: 0, duplicate: 0, reorder: 1, delayMs: 0, seed: 3 });
  expect(ids(imp.process(d(1)))).toEqual([]);
  expect(ids(imp.process(d(2)))).toEqual([2, 1]);
});

let close: (() => void) | undefined;
afterAll(() => close?.());

test("the relay carries datagrams both ways on loopback", async () => {
  const upstream = await Bun.udpSocket({
    hostname: "127.0.0.1",
    binaryType: "uint8array",
    socket: {
      data(s, buf, port, addr) {
        s.send(Uint8Array.of(...buf, 0xee), port, addr);
      },
    },
  });
  const relay = await startImpairRelay(
    { address: "127.0.0.1", port: 0 },
    { address: "127.0.0.1", port: upstream.port },
    { loss: 0, duplicate: 0, reorder: 0, delayMs: 5, seed: 1 },
  );
  const got: number[][] = [];
  const peer = await Bun.udpSocket({
    hostname: "127.0.0.1",
    binaryType: "uint8array",
    socket: { data: (_s, buf) => void got.push(Array.from(buf)) },
  });
  close = () => {
    relay.close();
    upstream.close();
    peer.close();
  };
  peer.send(Uint8Array.of(1, 2, 3), relay.listen.port, "127.0.0.1");
  for (let i = 0; i < 200 && got.length === 0; i++) await Bun.sleep(5);
  expect(got).toEqual([[1, 2, 3, 0xee]]);
  expect(relay.stats().toUpstream.forwarded).toBe(1);
  expect(relay.stats().toPeer.forwarded).toBe(1);
});
