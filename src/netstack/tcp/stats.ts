/** Counters of the TCP layer, shared by the layer and its connections. */
export class TcpStats {
  segmentsIn = 0;
  segmentsOut = 0;
  /** Segments sent again (RTO, fast retransmit, SYN/SYN-ACK and zero-window probe repeats). */
  retransmits = 0;
  /** Segments discarded, by reason. */
  readonly drops: Record<string, number> = {};

  drop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }
}
