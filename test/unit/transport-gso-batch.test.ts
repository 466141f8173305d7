// GSO batching without sockets: the segment size, the runs, the regrouping and the bounds of a
// super-datagram (GsoBatcher). The same on loopback sockets: transport-gso.test.ts.
import { describe, expect, test } from "bun:test";
import {
  chooseSegmentSize,
  GSO_ARENA_MAX_BYTES,
  GSO_MAX_BYTES,
  GSO_MAX_SEGMENTS,
  GSO_MIN_RUN_BYTES,
  GsoBatcher,
  type SendArgs,
} from "../../src/transport/gso.ts";
import { FULL, numbered } from "./gso-datagrams.ts";

describe("GSO batching (pure)", () => {
  const to = (port: number, address = "127.0.0.1") => ({ port, address });
  function queue(items: [number, { port: number; address: string }][]): SendArgs {
    const q: SendArgs = [];
    items.forEach(([size, dst], i) => {
      q.push(numbered(i, size), dst.port, dst.address);
    });
    return q;
  }

  test("chooseSegmentSize: the largest size when a run of it exists, else only ever raised", () => {
    const a = to(1000);
    const b = to(1001);
    expect(chooseSegmentSize(queue([[100, a]]), 1, 0)).toBe(0);
    expect(
      chooseSegmentSize(
        queue([
          [148, a],
          [148, b],
        ]),
        2,
        0,
      ),
    ).toBe(0);
    expect(
      chooseSegmentSize(
        queue([
          [FULL, a],
          [FULL, a],
          [60, a],
        ]),
        3,
        0,
      ),
    ).toBe(FULL);
    // A run below the largest size does not count.
    expect(
      chooseSegmentSize(
        queue([
          [1200, a],
          [1200, a],
          [FULL, b],
        ]),
        3,
        0,
      ),
    ).toBe(0);
    // Set already and large enough: kept; too small: raised even without a run.
    expect(chooseSegmentSize(queue([[100, a]]), 1, FULL)).toBe(FULL);
    expect(
      chooseSegmentSize(
        queue([
          [1200, a],
          [60, a],
        ]),
        2,
        1000,
      ),
    ).toBe(1200);
    // A run at a smaller largest size lowers it (e.g. QUIC inside the tunnel).
    expect(
      chooseSegmentSize(
        queue([
          [1250, a],
          [1250, a],
        ]),
        2,
        FULL,
      ),
    ).toBe(1250);
    // A run of short datagrams (ACKs) neither switches GSO on nor lowers it: not worth 2 syscalls.
    const acks = queue([
      [GSO_MIN_RUN_BYTES - 1, a],
      [GSO_MIN_RUN_BYTES - 1, a],
      [GSO_MIN_RUN_BYTES - 1, a],
    ]);
    expect(chooseSegmentSize(acks, 3, 0)).toBe(0);
    expect(chooseSegmentSize(acks, 3, FULL)).toBe(FULL);
    expect(
      chooseSegmentSize(
        queue([
          [GSO_MIN_RUN_BYTES, a],
          [GSO_MIN_RUN_BYTES, a],
        ]),
        2,
        FULL,
      ),
    ).toBe(GSO_MIN_RUN_BYTES);
    // Too large for two segments in one super-datagram: off.
    expect(
      chooseSegmentSize(
        queue([
          [40_000, a],
          [40_000, a],
        ]),
        2,
        FULL,
      ),
    ).toBe(0);
    expect(
      chooseSegmentSize(
        queue([
          [0, a],
          [0, a],
        ]),
        2,
        0,
      ),
    ).toBe(0);
  });

  test("runs: same destination, all but the last exactly the segment size, never an empty one", () => {
    const a = to(1000);
    const b = to(1000, "127.0.0.2");
    const q = queue([
      [FULL, a],
      [FULL, a],
      [FULL, a],
      [500, a], // ends the run
      [FULL, a],
      [FULL, b], // other address
      [FULL, b],
      [0, b], // empty: alone
      [FULL, b],
      [FULL, to(0)], // bad port: alone
      [FULL, to(0)],
    ]);
    const g = new GsoBatcher();
    const n = g.build(q, 0, 11, FULL, 100);
    expect(g.segments).toEqual([4, 1, 2, 1, 1, 1, 1]);
    expect(n).toBe(7);
    const first = g.args[0] as Uint8Array;
    expect(first.length).toBe(3 * FULL + 500);
    expect(Buffer.from(first.subarray(FULL, 2 * FULL)).equals(Buffer.from(q[3] as Uint8Array))).toBe(true);
    expect(Buffer.from(first.subarray(3 * FULL)).equals(Buffer.from(q[9] as Uint8Array))).toBe(true);
    expect(g.args[1]).toBe(1000);
    expect(g.args[2]).toBe("127.0.0.1");
    // Singles are the queue's own buffers (no copy).
    expect(g.args[3]).toBe(q[12]);
    // From an offset, and at most maxMessages.
    expect(g.build(q, 4, 11, FULL, 2)).toBe(2);
    expect(g.segments).toEqual([1, 2]);
  });

  test("regroup: interleaved endpoints grouped, each endpoint's order kept; null when not worth it", () => {
    const a = to(1000);
    const b = to(1001);
    const c = to(1000, "::1");
    const g = new GsoBatcher();
    const q = queue([
      [10, a],
      [11, b],
      [12, a],
      [13, c],
      [14, b],
      [15, a],
    ]);
    const out = g.regroup(q, 6) as SendArgs;
    const sizes = (x: SendArgs) => Array.from({ length: x.length / 3 }, (_, i) => (x[i * 3] as Uint8Array).length);
    expect(sizes(out)).toEqual([10, 12, 15, 11, 14, 13]);
    expect(out.filter((_, i) => i % 3 === 1)).toEqual([1000, 1000, 1000, 1001, 1001, 1000]);
    expect(out.filter((_, i) => i % 3 === 2)).toEqual([
      "127.0.0.1",
      "127.0.0.1",
      "127.0.0.1",
      "127.0.0.1",
      "127.0.0.1",
      "::1",
    ]);
    // The same buffers, not copies.
    expect(out[0]).toBe(q[0]);
    // Already in runs (one change in 8), one endpoint, all different, or too many endpoints: null.
    const runs = queue([
      ...Array.from({ length: 4 }, () => [FULL, a] as [number, typeof a]),
      ...Array.from({ length: 4 }, () => [FULL, b] as [number, typeof a]),
    ]);
    expect(g.regroup(runs, 8)).toBeNull();
    expect(
      g.regroup(
        queue([
          [1, a],
          [2, a],
        ]),
        2,
      ),
    ).toBeNull();
    expect(
      g.regroup(
        queue([
          [1, a],
          [2, b],
          [3, c],
        ]),
        3,
      ),
    ).toBeNull();
    const many = queue(Array.from({ length: 40 }, (_, i) => [FULL, to(2000 + (i % 17))] as [number, typeof a]));
    expect(g.regroup(many, 40)).toBeNull();
    const sixteen = queue(Array.from({ length: 40 }, (_, i) => [FULL, to(2000 + (i % 16))] as [number, typeof a]));
    expect(g.regroup(sixteen, 40)?.length).toBe(120);
  });

  test("a super-datagram holds at most 64 segments and 65,000 bytes", () => {
    const a = to(1000);
    const g = new GsoBatcher();
    const small = queue(Array.from({ length: 150 }, () => [100, a] as [number, typeof a]));
    g.build(small, 0, 150, 100, 1000);
    expect(g.segments).toEqual([GSO_MAX_SEGMENTS, GSO_MAX_SEGMENTS, 150 - 2 * GSO_MAX_SEGMENTS]);
    const big = queue(Array.from({ length: 100 }, () => [FULL, a] as [number, typeof a]));
    g.build(big, 0, 100, FULL, 1000);
    const per = Math.floor(GSO_MAX_BYTES / FULL);
    expect(g.segments).toEqual([per, per, 100 - 2 * per]);
    for (let m = 0; m < 3; m++) expect((g.args[m * 3] as Uint8Array).length).toBe((g.segments[m] as number) * FULL);
  });

  test("the super-datagram buffer is bounded: a bigger flush is built in rounds", () => {
    const a = to(1000);
    const count = Math.ceil((GSO_ARENA_MAX_BYTES * 1.5) / FULL);
    const q = queue(Array.from({ length: count }, () => [FULL, a] as [number, typeof a]));
    const g = new GsoBatcher();
    let head = 0;
    let rounds = 0;
    const seen: Uint8Array[] = [];
    while (head < count && rounds < 10) {
      const n = g.build(q, head, count, FULL, count);
      for (let m = 0; m < n; m++) {
        const buf = g.args[m * 3] as Uint8Array;
        for (let s = 0; s < (g.segments[m] as number); s++) seen.push(buf.slice(s * FULL, (s + 1) * FULL));
        head += g.segments[m] as number;
      }
      expect(g.bufferBytes).toBeLessThanOrEqual(GSO_ARENA_MAX_BYTES);
      rounds++;
    }
    expect(rounds).toBe(2);
    expect(seen.length).toBe(count);
    for (let i = 0; i < count; i += 97)
      expect(Buffer.from(seen[i] as Uint8Array).equals(Buffer.from(q[i * 3] as Uint8Array))).toBe(true);
  });
});
