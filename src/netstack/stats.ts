/** Counters of the netstack's IP layer. Drops are keyed by reason (e.g. "ipv4-bad-checksum"). */
export interface NetstackStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  drops: Record<string, number>;
}

export function newNetstackStats(): NetstackStats {
  return { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, drops: {} };
}

export function countDrop(stats: NetstackStats, reason: string): void {
  stats.drops[reason] = (stats.drops[reason] ?? 0) + 1;
}
