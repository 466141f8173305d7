import { describe, expect, test } from "bun:test";
import { MAX_SACK_RANGES, SackScoreboard } from "../../src/netstack/tcp/sack.ts";

const MSS = 1000;
/** Ranges as [left, right] pairs relative to `base`. */
function ranges(sb: SackScoreboard, base: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < sb.count; i++) out.push([(sb.left(i) - base) >>> 0, (sb.right(i) - base) >>> 0]);
  return out;
}

describe("SACK scoreboard (RFC 6675 §3-4)", () => {
  test("merges overlapping and adjacent blocks, counts only new bytes, clips to (una, max]", () => {
    const sb = new SackScoreboard();
    const una = 1000;
    const max = una + 10_000;
    expect(sb.add(una + 2000, una + 3000, una, max)).toBe(1000);
    expect(sb.add(una + 5000, una + 6000, una, max)).toBe(1000);
    expect(sb.add(una + 2000, una + 3000, una, max)).toBe(0); // duplicate
    expect(sb.add(una + 3000, una + 4000, una, max)).toBe(1000); // adjacent: merges
    expect(ranges(sb, una)).toEqual([
      [2000, 4000],
      [5000, 6000],
    ]);
    expect(sb.add(una + 3500, una + 5500, una, max)).toBe(1000); // bridges both
    expect(ranges(sb, una)).toEqual([[2000, 6000]]);
    expect(sb.add(una - 500, una + 100, una, max)).toBe(100); // clipped at SND.UNA (D-SACK-like)
    expect(sb.add(una + 9500, una + 12_000, una, max)).toBe(500); // clipped at SND.MAX
    expect(sb.add(una + 7000, una + 7000, una, max)).toBe(0);
    expect(sb.sackedBytes).toBe(4600);
    expect(ranges(sb, una)).toEqual([
      [0, 100],
      [2000, 6000],
      [9500, 10_000],
    ]);
    expect(sb.highSacked).toBe(max);
  });

  test("cumulative ACK trims and drops ranges; sequence wrap-around", () => {
    const sb = new SackScoreboard();
    const una = 0xffff_f000;
    const max = (una + 20_000) >>> 0;
    sb.add(una + 1000, una + 2000, una, max);
    sb.add((una + 4000) >>> 0, (una + 6000) >>> 0, una, max);
    expect(ranges(sb, una)).toEqual([
      [1000, 2000],
      [4000, 6000],
    ]);
    sb.ackTo((una + 5000) >>> 0);
    expect(ranges(sb, una)).toEqual([[5000, 6000]]);
    expect(sb.sackedBytes).toBe(1000);
    sb.ackTo((una + 6000) >>> 0);
    expect(sb.empty).toBe(true);
    expect(sb.sackedBytes).toBe(0);
  });

  test("holes, IsLost and pipe", () => {
    const sb = new SackScoreboard();
    const una = 0;
    const max = 10 * MSS; // segments 0..9 outstanding
    // Segments 1, 3, 4 and 6 SACKed: holes 0, 2, 5, and 7-9 above HighSACK.
    sb.add(1 * MSS, 2 * MSS, una, max);
    sb.add(3 * MSS, 5 * MSS, una, max);
    sb.add(6 * MSS, 7 * MSS, una, max);
    // Above segment 0: 3 ranges (4 segments) -> lost. Above 2: 3 segments (> 2 MSS) -> lost.
    // Above 5: one segment -> not lost. Above HighSACK: never.
    expect(sb.isLost(0, MSS)).toBe(true);
    expect(sb.isLost(2 * MSS, MSS)).toBe(true);
    expect(sb.isLost(5 * MSS, MSS)).toBe(false);
    expect(sb.isLost(8 * MSS, MSS)).toBe(false);
    expect(sb.isSacked(3 * MSS + 5)).toBe(true);
    expect(sb.isSacked(2 * MSS)).toBe(false);
    expect(sb.skipSacked(3 * MSS)).toBe(5 * MSS);
    expect(sb.nextSackedAfter(2 * MSS, max)).toBe(3 * MSS);
    expect(sb.sackedBetween(0, 4 * MSS)).toBe(2 * MSS);
    // pipe: not-lost holes 5 (1 seg) and 7-9 (3 segs) = 4 segments, nothing retransmitted.
    expect(sb.pipe(una, max, una, MSS)).toBe(4 * MSS);
    // Retransmitting segment 0 adds it back (lost + retransmitted counts once).
    expect(sb.pipe(una, max, MSS, MSS)).toBe(5 * MSS);
    // Segments RACK found lost leave a hole IsLost spares (8, and 5's last byte), not again the lost
    // holes (0, 2); a resent one (0) still counts once.
    const marks = new SackScoreboard();
    marks.add(0, 3 * MSS, una, max);
    marks.add(6 * MSS - 1, 6 * MSS, una, max);
    marks.add(8 * MSS, 9 * MSS, una, max);
    expect(sb.pipe(una, max, MSS, MSS, marks)).toBe(4 * MSS - 1);
    expect(sb.pipe(una, max, MSS, MSS, new SackScoreboard())).toBe(5 * MSS);
    // NextSeg rule 1: first lost hole at or above HighRxt.
    expect(sb.findHole(0, una, MSS, true)).toBe(0);
    expect(sb.holeEnd).toBe(MSS);
    expect(sb.findHole(MSS, una, MSS, true)).toBe(2 * MSS);
    expect(sb.holeEnd).toBe(3 * MSS);
    expect(sb.findHole(3 * MSS, una, MSS, true)).toBe(-1);
    // Rule 3: first hole not yet lost (below HighSACK).
    expect(sb.findHole(3 * MSS, una, MSS, false)).toBe(5 * MSS);
    expect(sb.holeEnd).toBe(6 * MSS);
  });

  test("a small SACKed tail is not enough to call the hole lost (reordering tolerance)", () => {
    const sb = new SackScoreboard();
    sb.add(MSS, 3 * MSS, 0, 10 * MSS); // two segments above the hole: reordering depth 2
    expect(sb.isLost(0, MSS)).toBe(false);
    sb.add(3 * MSS, 3 * MSS + 1, 0, 10 * MSS); // one byte more than (DupThresh-1)*SMSS
    expect(sb.isLost(0, MSS)).toBe(true);
  });

  test("bounded number of ranges; extra islands are ignored", () => {
    const sb = new SackScoreboard();
    const max = 1_000_000;
    for (let i = 0; i < MAX_SACK_RANGES + 10; i++) sb.add(10 + 20 * i, 20 + 20 * i, 0, max);
    expect(sb.count).toBe(MAX_SACK_RANGES);
    expect(sb.sackedBytes).toBe(10 * MAX_SACK_RANGES);
    // A block touching an existing range still merges.
    expect(sb.add(20, 25, 0, max)).toBe(5);
  });
});
