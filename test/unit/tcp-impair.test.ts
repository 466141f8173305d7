import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { type Impairment, type TransferOptions, transfer } from "./tcp-transfer.ts";

// Each transfer runs on a virtual clock and stops at a bounded number of steps and of virtual time
// (transfer()), so it cannot hang: the wall-clock limit only has to exceed the CPU time of up to six
// transfers (0.1 s each idle) on a loaded machine, which Bun's 5 s default did not always.
setDefaultTimeout(60_000);

const SIZE = 4 << 20;
/** A 16 Mbit/s bottleneck with a 64 KiB drop-tail queue and 10 ms one-way delay, each direction. */
const LINK: Impairment = { rateBytesPerMs: 2000, queueBytes: 65536, delayMs: 10 };

function bulk(name: string, imp: Impairment, extra: Partial<TransferOptions> = {}) {
  const r = transfer({
    sizeAtoB: SIZE,
    sizeBtoA: SIZE,
    seed: 42,
    bufferSize: 4 << 20,
    aToB: { ...LINK, ...imp },
    bToA: { ...LINK, ...imp },
    ...extra,
  });
  const sa = r.layerA.stats;
  const sb = r.layerB.stats;
  const line =
    `${name}: 4 MiB each way in ${(r.doneAt / 1000).toFixed(2)} s virtual; ` +
    `drops ${r.aToB.dropped + r.bToA.dropped}, retransmits ${sa.retransmits + sb.retransmits}, ` +
    `fast recoveries ${sa.fastRecoveries + sb.fastRecoveries}, RTOs ${sa.rtoExpirations + sb.rtoExpirations}`;
  console.log(line);
  expect(r.intact).toBe(true);
  expect([r.a.eof, r.b.eof]).toEqual([true, true]);
  expect([r.a.closed, r.b.closed]).toEqual([["closed"], ["closed"]]);
  expect([r.layerA.liveConnections, r.layerB.liveConnections]).toEqual([0, 0]);
  // Every buffered-bytes counter returns to zero once the flows are gone.
  for (const s of [sa, sb]) expect([s.sendBufferedBytes, s.receiveBufferedBytes, s.outOfOrderBytes]).toEqual([0, 0, 0]);
  return { r, sa, sb };
}

describe("TCP bulk, 4 MiB each way between two TcpLayers (SACK + CUBIC unless stated)", () => {
  test("clean bottleneck: window scaling reaches past 64 KiB", () => {
    const { r } = bulk("clean", {});
    // 16 Mbit/s: 8 MiB over one shared-nothing pair of directions takes at least 2.1 s.
    expect(r.doneAt).toBeGreaterThan(2000);
    expect(r.doneAt).toBeLessThan(4000);
  });

  test("1% loss", () => {
    const { sa, sb } = bulk("1% loss", { loss: 0.01 });
    expect(sa.fastRecoveries + sb.fastRecoveries).toBeGreaterThan(sa.rtoExpirations + sb.rtoExpirations);
  });

  test("5% loss", () => {
    bulk("5% loss", { loss: 0.05 });
  });

  test("5% reordering", () => {
    bulk("5% reordering", { reorder: 0.05, reorderDepth: 3 });
  });

  test("2% duplication", () => {
    const { r } = bulk("2% duplication", { duplicate: 0.02 });
    expect(r.aToB.duplicated + r.bToA.duplicated).toBeGreaterThan(100);
  });

  test("50 ms one-way delay", () => {
    const { r } = bulk("50 ms delay", { delayMs: 50 });
    expect(r.doneAt).toBeLessThan(10_000);
  });

  test("5% loss: SACK + CUBIC against NewReno without SACK", () => {
    const seeds = [42, 43, 44];
    let fast = 0;
    let slow = 0;
    for (const seed of seeds) {
      const a = bulk(`  seed ${seed} SACK+CUBIC`, { loss: 0.05 }, { seed });
      const b = bulk(
        `  seed ${seed} NewReno, no SACK`,
        { loss: 0.05 },
        { seed, sack: false, congestionControl: "newreno" },
      );
      fast += a.r.doneAt;
      slow += b.r.doneAt;
    }
    console.log(
      `5% loss, mean over ${seeds.length} seeds: SACK+CUBIC ${(fast / seeds.length / 1000).toFixed(2)} s, ` +
        `NewReno ${(slow / seeds.length / 1000).toFixed(2)} s`,
    );
    expect(fast).toBeLessThan(slow);
  });
});
