import type { IpAddr } from "../netstack/types.ts";
import type { Clock, Timer } from "../util/clock.ts";
import { ipEquals } from "./ip-text.ts";
import { type NatEntry, type NatTable, pingNatKey } from "./nat-table.ts";

/** The seed keeps a pinger's entry for 10 s; here the 10 s restart with every echo request. */
export const PING_ENTRY_LINGER_MS = 10_000;

/**
 * Echo requests to the pingable address (`-P`) are answered by the netstack; this decides which and
 * keeps a NAT entry per address pair so the log says "New NAT entry for Pingable a -> b" once.
 */
export class PingTracker {
  constructor(
    private readonly pingable: IpAddr,
    private readonly table: NatTable,
    private readonly clock: Clock,
  ) {}

  onEchoRequest(src: IpAddr, dst: IpAddr): boolean {
    if (!ipEquals(dst, this.pingable)) return false;
    const key = pingNatKey(src, dst);
    const entry = this.table.get(key);
    if (entry instanceof PingEntry) entry.touch();
    else this.table.add(new PingEntry(key, this.table, this.clock));
    return true;
  }
}

class PingEntry implements NatEntry {
  readonly kind = "ping";
  private readonly linger: Timer;

  constructor(
    readonly key: string,
    private readonly table: NatTable,
    clock: Clock,
  ) {
    this.linger = clock.timer(() => this.close());
    this.linger.set(PING_ENTRY_LINGER_MS);
  }

  touch(): void {
    this.linger.set(PING_ENTRY_LINGER_MS);
  }

  bufferedBytes(): number {
    return 0;
  }

  close(): void {
    this.linger.cancel();
    this.table.remove(this);
  }
}
