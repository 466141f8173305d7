import { expect, test } from "bun:test";
import { VirtualClock } from "../../src/util/clock.ts";
import { KeyedThrottle } from "../../src/util/throttle.ts";

test("KeyedThrottle: once per interval per key, keys independent", () => {
  const clock = new VirtualClock(0);
  const t = new KeyedThrottle<object>(clock, 1000);
  const a = {};
  const b = {};
  expect([t.allow(a), t.allow(a), t.allow(b)]).toEqual([true, false, true]);
  clock.advance(999);
  expect(t.allow(a)).toBe(false);
  clock.advance(1);
  expect([t.allow(a), t.allow(a), t.allow(b)]).toEqual([true, false, true]);
});
