import { afterEach, describe, expect, test } from "bun:test";
import { RealClock, VirtualClock } from "../../src/util/clock.ts";

/** Counts setTimeout/clearTimeout calls made while installed (the RealTimer calls the globals). */
function spyTimers() {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const counts = { set: 0, clear: 0 };
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    counts.set++;
    return realSet(fn, ms);
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((h: ReturnType<typeof setTimeout>) => {
    counts.clear++;
    realClear(h);
  }) as typeof clearTimeout;
  return {
    counts,
    restore() {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    },
  };
}

let restore = () => {};
afterEach(() => restore());

describe("RealTimer is lazy", () => {
  test("clear then set again, 1,000 times, uses one setTimeout and no clearTimeout; fires once", async () => {
    const clock = new RealClock();
    let fired = 0;
    const spy = spyTimers();
    restore = spy.restore;
    const t = clock.timer(() => fired++);
    for (let i = 0; i < 1000; i++) {
      t.set(30);
      t.clear();
    }
    t.set(30);
    expect(spy.counts).toEqual({ set: 1, clear: 0 });
    await Bun.sleep(80);
    expect(fired).toBe(1);
    expect(t.deadline).toBe(-1);
  });

  test("a cleared timer does not fire; re-arming later reschedules only when the old OS timer fires", async () => {
    const clock = new RealClock();
    let fired = 0;
    let firedAt = -1;
    const firing = Promise.withResolvers<void>();
    const spy = spyTimers();
    restore = spy.restore;
    const t = clock.timer(() => {
      fired++;
      firedAt = clock.now();
      firing.resolve();
    });
    t.set(10);
    t.clear();
    await Bun.sleep(40);
    expect(fired).toBe(0);
    // Pending OS timer at +10 ms, deadline moved to +40: no OS timer call now; the early wake-up
    // reschedules (unless a loaded machine wakes it after +40 ms), then the real one fires. The test
    // waits for the firing and compares its time with the deadline, not a sleep of 25 ms with a count
    // of wake-ups; the timer may fire up to 0.5 ms early (RealTimer.fire).
    t.set(10);
    t.set(40);
    expect(spy.counts).toEqual({ set: 2, clear: 0 });
    const due = t.deadline;
    await Promise.race([firing.promise, Bun.sleep(5000)]);
    expect(firedAt).toBeGreaterThanOrEqual(due - 0.5);
    expect(fired).toBe(1);
    expect(spy.counts.clear).toBe(0);
  });

  test("an earlier deadline replaces the pending OS timer; cancel() drops it at once", async () => {
    const clock = new RealClock();
    let fired = 0;
    const spy = spyTimers();
    restore = spy.restore;
    const t = clock.timer(() => fired++);
    t.set(1000);
    t.set(10);
    expect(spy.counts).toEqual({ set: 2, clear: 1 });
    await Bun.sleep(40);
    expect(fired).toBe(1);
    t.set(10);
    t.cancel();
    expect(spy.counts.clear).toBe(2);
    await Bun.sleep(40);
    expect(fired).toBe(1);
  });
});

describe("afterTurn", () => {
  test("RealClock: work queued during one turn runs once, after the turn, in order", async () => {
    const clock = new RealClock();
    const log: string[] = [];
    const last = Promise.withResolvers<void>();
    clock.afterTurn(() => log.push("a"));
    clock.afterTurn(() => {
      log.push("b");
      // Queued while running: the next turn, not this run.
      clock.afterTurn(() => {
        log.push("d");
        last.resolve();
      });
    });
    clock.afterTurn(() => log.push("c"));
    expect(log).toEqual([]);
    // Waits for "d" itself: a 5 ms sleep can end between the two turns on a loaded machine.
    await Promise.race([last.promise, Bun.sleep(5000)]);
    expect(log).toEqual(["a", "b", "c", "d"]);
  });

  test("VirtualClock: the turn ends after each timer callback and on endTurn()", () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const t1 = clock.timer(() => {
      log.push("t1");
      clock.afterTurn(() => log.push("after t1"));
    });
    const t2 = clock.timer(() => log.push("t2"));
    t1.set(5);
    t2.set(5);
    clock.advance(10);
    expect(log).toEqual(["t1", "after t1", "t2"]);
    clock.afterTurn(() => log.push("direct"));
    expect(log.length).toBe(3);
    clock.endTurn();
    expect(log).toEqual(["t1", "after t1", "t2", "direct"]);
    clock.endTurn();
    expect(log.length).toBe(4);
  });
});
