import { describe, expect, test } from "bun:test";
import { REJECT_COUNTER_LIMIT } from "../../src/wireguard/constants.ts";
import { REPLAY_WINDOW_SIZE, ReplayFilter } from "../../src/wireguard/replay.ts";

const L = REJECT_COUNTER_LIMIT;

describe("RFC 6479 replay window", () => {
  test("window size is at least 2048 (8160 counters)", () => {
    expect(REPLAY_WINDOW_SIZE).toBe(8160);
  });

  test("in order, then duplicates rejected", () => {
    const f = new ReplayFilter();
    for (let i = 0; i < 20_000; i++) expect(f.validate(i, L)).toBe(true);
    expect(f.validate(19_999, L)).toBe(false);
    expect(f.validate(0, L)).toBe(false);
    expect(f.validate(15_000, L)).toBe(false);
  });

  test("out of order inside the window accepted once", () => {
    const f = new ReplayFilter();
    expect(f.validate(100, L)).toBe(true);
    expect(f.validate(50, L)).toBe(true);
    expect(f.validate(99, L)).toBe(true);
    expect(f.validate(0, L)).toBe(true);
    expect(f.validate(50, L)).toBe(false);
    expect(f.validate(0, L)).toBe(false);
    expect(f.validate(101, L)).toBe(true);
  });

  test("window edges: exactly WINDOW behind accepted, one more rejected as too old", () => {
    const f = new ReplayFilter();
    const top = 100_000;
    expect(f.validate(top, L)).toBe(true);
    expect(f.validate(top - REPLAY_WINDOW_SIZE, L)).toBe(true);
    expect(f.validate(top - REPLAY_WINDOW_SIZE - 1, L)).toBe(false);
    expect(f.validate(top - 1, L)).toBe(true);
  });

  test("a big jump clears the ring: counters in the new window are fresh", () => {
    const f = new ReplayFilter();
    for (let i = 0; i < 300; i++) f.validate(i, L);
    expect(f.validate(1_000_000, L)).toBe(true);
    // Same ring slots as 0..299, but a different block: must be accepted.
    const aliased = 1_000_000 - (1_000_000 % 8192) + 5;
    expect(f.validate(aliased, L)).toBe(true);
    expect(f.validate(aliased, L)).toBe(false);
    expect(f.validate(299, L)).toBe(false); // far behind
  });

  test("advancing block by block keeps exactly the last WINDOW counters", () => {
    const f = new ReplayFilter();
    for (let i = 0; i < 50_000; i += 3) expect(f.validate(i, L)).toBe(true);
    const last = 49_998;
    for (let i = last - REPLAY_WINDOW_SIZE; i <= last; i++) expect(f.validate(i, L)).toBe(i % 3 !== 0);
  });

  test("limit: counters at or above REJECT_AFTER_MESSAGES (our safe limit) rejected", () => {
    const f = new ReplayFilter();
    expect(f.validate(L, L)).toBe(false);
    expect(f.validate(L - 1, L)).toBe(true);
    expect(f.validate(-1, L)).toBe(false);
    expect(f.validate(10, 10)).toBe(false);
  });

  test("reset forgets everything", () => {
    const f = new ReplayFilter();
    f.validate(5, L);
    f.reset();
    expect(f.validate(5, L)).toBe(true);
  });
});
