/** Drop counters by reason, shared by the gateway's parts and reported in stats(). */
export class DropCounter {
  readonly byReason: Record<string, number> = {};

  count(reason: string, n = 1): void {
    this.byReason[reason] = (this.byReason[reason] ?? 0) + n;
  }

  snapshot(): Record<string, number> {
    return { ...this.byReason };
  }
}
