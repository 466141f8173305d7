import type { IpAddr } from "../netstack/types.ts";
import { LOG_LEVELS, type Logger } from "../util/log.ts";
import { formatIp, formatIpPort } from "./ip-text.ts";

/**
 * The gateway's NAT table, keyed like the seed's NatKey: TCP by both endpoints, UDP by the client
 * endpoint only (endpoint-independent mapping), ping by the address pair. The key text is also
 * what the logs print ("New NAT entry for TCP 10.0.0.2:5000 -> 1.2.3.4:80").
 */

export type NatKind = "tcp" | "udp" | "ping";

export function tcpNatKey(client: IpAddr, clientPort: number, external: IpAddr, externalPort: number): string {
  return `TCP ${formatIpPort(client, clientPort)} -> ${formatIpPort(external, externalPort)}`;
}

export function udpNatKey(client: IpAddr, clientPort: number): string {
  return `UDP ${formatIpPort(client, clientPort)} -> *`;
}

export function pingNatKey(client: IpAddr, external: IpAddr): string {
  return `Pingable ${formatIp(client)} -> ${formatIp(external)}`;
}

/** What the table holds per flow: the part of a flow the gateway can tear down and measure. */
export interface NatEntry {
  readonly kind: NatKind;
  readonly key: string;
  /** Bytes the gateway itself holds for this flow (not counting the TCP stack's buffers). */
  bufferedBytes(): number;
  /** Release every OS socket and timer of the flow, now. Must remove the entry from the table. */
  close(): void;
}

export class NatTable<E extends NatEntry = NatEntry> {
  private readonly entries = new Map<string, E>();
  private readonly live: Record<NatKind, number> = { tcp: 0, udp: 0, ping: 0 };
  /** Entries ever created (a counter, never decremented). */
  created = 0;

  /** Per-flow lines ("New NAT entry", "Finished serving") are debug: info tells the peer's story. */
  constructor(private readonly log: Logger) {}

  get(key: string): E | undefined {
    return this.entries.get(key);
  }

  /** Insert a new entry. Returns false (and leaves the table alone) if the key is taken. */
  add(entry: E): boolean {
    if (this.entries.has(entry.key)) return false;
    this.entries.set(entry.key, entry);
    this.live[entry.kind]++;
    this.created++;
    if (this.log.level >= LOG_LEVELS.debug) this.log.debug(`New NAT entry for ${entry.key}`);
    return true;
  }

  /** Remove `entry` if it is the one registered under its key (idempotent). */
  remove(entry: E): void {
    if (this.entries.get(entry.key) !== entry) return;
    this.entries.delete(entry.key);
    this.live[entry.kind]--;
    if (this.log.level >= LOG_LEVELS.debug) this.log.debug(`Finished serving ${entry.key}`);
  }

  count(kind: NatKind): number {
    return this.live[kind];
  }

  get size(): number {
    return this.entries.size;
  }

  bufferedBytes(): number {
    let sum = 0;
    for (const e of this.entries.values()) sum += e.bufferedBytes();
    return sum;
  }

  /** Close every entry (each removes itself); iterates over a snapshot since closing mutates. */
  closeAll(): void {
    for (const e of [...this.entries.values()]) e.close();
  }
}
