import type { Clock } from "../util/clock.ts";

/**
 * At most `burst` log lines per key per interval; the lines in between are counted, and the next
 * line printed reports how many were left out. A flood of events (SYNs, new mappings, refused
 * connects) then costs a bounded number of log lines per second.
 */
export class LogThrottle {
  private readonly byKey = new Map<string, { windowStart: number; printed: number; suppressed: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs = 1000,
    private readonly burst = 1,
  ) {}

  /**
   * Whether to print a line for `key` now: -1 = no (counted), otherwise the number of lines left
   * out since the last printed one (0 when none), for the caller to append.
   */
  take(key: string): number {
    const now = this.clock.now();
    let s = this.byKey.get(key);
    if (!s) {
      // Keys are a handful of fixed strings chosen by the callers: the map stays small.
      s = { windowStart: now, printed: 0, suppressed: 0 };
      this.byKey.set(key, s);
    }
    if (now - s.windowStart >= this.intervalMs) {
      s.windowStart = now;
      s.printed = 0;
    }
    if (s.printed >= this.burst) {
      s.suppressed++;
      return -1;
    }
    s.printed++;
    const left = s.suppressed;
    s.suppressed = 0;
    return left;
  }
}

/** " (+N more since the last report)" or "". */
export function moreSuffix(left: number): string {
  return left > 0 ? ` (+${left} more since the last report)` : "";
}
