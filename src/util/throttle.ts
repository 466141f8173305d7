/**
 * "At most once per interval, per key": for reactions that are cheap once but costly when a
 * remote party can trigger them at will (e.g. a peer that hops source ports makes the gateway scan
 * its TCP flows on every hop). Keys are held weakly.
 */
import type { Clock } from "./clock.ts";

export class KeyedThrottle<K extends object> {
  private readonly last = new WeakMap<K, number>();

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
  ) {}

  /** True (and the key's interval starts now) when `key` has not been let through within the interval. */
  allow(key: K): boolean {
    const now = this.clock.now();
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < this.intervalMs) return false;
    this.last.set(key, now);
    return true;
  }
}
