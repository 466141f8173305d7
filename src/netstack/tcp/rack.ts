/**
 * RACK loss detection (RFC 8985 §6): a segment is lost once a segment sent after it has been
 * delivered (cumulatively or by SACK) and more than RACK.rtt + reo_wnd has passed since it was
 * sent. Unlike the duplicate-ACK count of RFC 6675, this also catches lost retransmissions and
 * losses near the tail, without waiting for the retransmission timer.
 *
 * The transmission log is a ring of [start, end, time] in transmission order (so in time order):
 * every data segment, first transmission or retransmission, is appended. A retransmission makes the
 * earlier entry for the same start stale. Entries leave from the head once acknowledged. Detection
 * scans from the head and stops at the first entry sent after RACK.xmit_ts, so its cost follows the
 * segments in question, not the window. Bounded by MAX_RACK_ENTRIES (oldest dropped beyond it: those
 * fall back to SACK/RTO recovery).
 */
import type { SackScoreboard } from "./sack.ts";
import { seqGe, seqGt, seqLe } from "./seq.ts";

/** Bound on logged transmissions per flow (a window of 8 MiB in ~128-byte segments). */
export const MAX_RACK_ENTRIES = 65536;

const RETRANSMITTED = 1;
const DELIVERED = 2;
const STALE = 4;
const LOST = 8;

export class RackLog {
  private st = new Uint32Array(64);
  private en = new Uint32Array(64);
  private tm = new Float64Array(64);
  private fl = new Uint8Array(64);
  // Delivery-rate snapshots at each transmission (draft-cheng-iccrg-delivery-rate-estimation):
  // the sender's delivered count, its time, and the first send time of the flight.
  private dv = new Float64Array(64);
  private dt = new Float64Array(64);
  private fs = new Float64Array(64);
  private head = 0;
  /** Entries in the log. */
  size = 0;
  /** RACK.xmit_ts / RACK.end_seq: the most recently sent segment known delivered (-1: none). */
  xmitTs = -1;
  endSeq = 0;
  /** RACK.rtt: the RTT of that segment's delivery. */
  rtt = 0;
  /** That segment was a retransmission (its RTT is ambiguous: Karn's rule keeps it from estimators). */
  rttAmbiguous = false;
  /** That segment's delivery-rate snapshot (see onSend). */
  rsDelivered = 0;
  rsDeliveredTime = 0;
  rsFirstSent = 0;

  /**
   * A data segment [start, end) left at `now`, when the sender had seen `delivered` bytes delivered,
   * the last at `deliveredTime`, in a flight whose first segment left at `firstSent`.
   */
  onSend(
    start: number,
    end: number,
    now: number,
    retransmit: boolean,
    delivered = 0,
    deliveredTime = 0,
    firstSent = 0,
  ): void {
    if (retransmit) {
      for (let i = 0; i < this.size; i++) {
        const j = this.index(i);
        if (this.st[j] === start && !((this.fl[j] as number) & (DELIVERED | STALE))) this.fl[j]! |= STALE;
      }
    }
    if (this.size === this.st.length) {
      if (this.size >= MAX_RACK_ENTRIES) {
        this.head = this.index(1);
        this.size--;
      } else this.grow();
    }
    const j = this.index(this.size);
    this.st[j] = start;
    this.en[j] = end;
    this.tm[j] = now;
    this.fl[j] = retransmit ? RETRANSMITTED : 0;
    this.dv[j] = delivered;
    this.dt[j] = deliveredTime;
    this.fs[j] = firstSent;
    this.size++;
  }

  /**
   * An ACK arrived: cumulative up to `una`, SACKed ranges in `sb` (scanned only when `sacked`, i.e.
   * when the ACK reported new SACKed bytes). Updates RACK.xmit_ts from what was delivered;
   * `minRtt` guards against ambiguous retransmissions (RFC 8985 §6.2 step 2).
   */
  onAck(una: number, sb: SackScoreboard, sacked: boolean, now: number, minRtt: number): void {
    if (this.size === 0 && this.st.length > 1024) this.shrink();
    while (this.size > 0) {
      const j = this.head;
      const f = this.fl[j] as number;
      if (!(f & (STALE | DELIVERED))) {
        if (!seqLe(this.en[j] as number, una)) break;
        this.delivered(j, now, minRtt);
      }
      this.head = this.index(1);
      this.size--;
    }
    if (!sacked || sb.empty) return;
    for (let i = 0; i < this.size; i++) {
      const j = this.index(i);
      if ((this.fl[j] as number) & (STALE | DELIVERED)) continue;
      const s = this.st[j] as number;
      if (sb.isSacked(s) && seqGe(sb.skipSacked(s), this.en[j] as number)) {
        this.fl[j]! |= DELIVERED;
        this.delivered(j, now, minRtt);
      }
    }
  }

  /**
   * RFC 8985 §6.2 step 5: report every outstanding segment sent before RACK.xmit_ts whose time is
   * up (`lost(start, end)`, once per transmission it accepts). Returns the ms until the next one would be
   * (the reordering timer), or -1.
   */
  detectLoss(
    now: number,
    reoWnd: number,
    retransmittedOnly: boolean,
    lost: (start: number, end: number, retransmitted: boolean) => boolean,
  ): number {
    if (this.xmitTs < 0) return -1;
    let next = -1;
    for (let i = 0; i < this.size; i++) {
      const j = this.index(i);
      const t = this.tm[j] as number;
      // Time order: everything from here on was sent after the delivered segment.
      if (t > this.xmitTs) break;
      const f = this.fl[j] as number;
      if (f & (STALE | DELIVERED | LOST) || (retransmittedOnly && !(f & RETRANSMITTED))) continue;
      if (t === this.xmitTs && !seqGt(this.endSeq, this.en[j] as number)) continue;
      const left = t + this.rtt + reoWnd - now;
      if (left <= 0) {
        // A full queue refuses it: it stays unmarked, to be reported again once there is room.
        if (lost(this.st[j] as number, this.en[j] as number, (f & RETRANSMITTED) !== 0)) this.fl[j]! |= LOST;
      } else if (next < 0 || left < next) next = left;
    }
    return next;
  }

  /** Forget everything (after a retransmission timeout every segment is resent anyway). */
  clear(): void {
    this.head = 0;
    this.size = 0;
  }

  private delivered(j: number, now: number, minRtt: number): void {
    const t = this.tm[j] as number;
    const rtt = now - t;
    // A retransmitted segment "delivered" faster than any RTT seen: the original was (ambiguous).
    if ((this.fl[j] as number) & RETRANSMITTED && rtt < minRtt) return;
    if (t > this.xmitTs || (t === this.xmitTs && seqGt(this.en[j] as number, this.endSeq))) {
      this.xmitTs = t;
      this.endSeq = this.en[j] as number;
      this.rtt = rtt;
      this.rttAmbiguous = ((this.fl[j] as number) & RETRANSMITTED) !== 0;
      this.rsDelivered = this.dv[j] as number;
      this.rsDeliveredTime = this.dt[j] as number;
      this.rsFirstSent = this.fs[j] as number;
    }
  }

  private shrink(): void {
    this.st = new Uint32Array(64);
    this.en = new Uint32Array(64);
    this.tm = new Float64Array(64);
    this.fl = new Uint8Array(64);
    this.dv = new Float64Array(64);
    this.dt = new Float64Array(64);
    this.fs = new Float64Array(64);
    this.head = 0;
  }

  private index(i: number): number {
    return (this.head + i) & (this.st.length - 1);
  }

  private grow(): void {
    const n = this.st.length * 2;
    const st = new Uint32Array(n);
    const en = new Uint32Array(n);
    const tm = new Float64Array(n);
    const fl = new Uint8Array(n);
    const dv = new Float64Array(n);
    const dt = new Float64Array(n);
    const fs = new Float64Array(n);
    for (let i = 0; i < this.size; i++) {
      const j = this.index(i);
      st[i] = this.st[j] as number;
      en[i] = this.en[j] as number;
      tm[i] = this.tm[j] as number;
      fl[i] = this.fl[j] as number;
      dv[i] = this.dv[j] as number;
      dt[i] = this.dt[j] as number;
      fs[i] = this.fs[j] as number;
    }
    this.st = st;
    this.en = en;
    this.tm = tm;
    this.fl = fl;
    this.dv = dv;
    this.dt = dt;
    this.fs = fs;
    this.head = 0;
  }
}
