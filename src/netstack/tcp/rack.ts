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
import { seqGe, seqGt, seqLe, seqLt } from "./seq.ts";

/** Bound on logged transmissions per flow (a window of 8 MiB in ~128-byte segments). */
export const MAX_RACK_ENTRIES = 65536;
/**
 * Recoveries without a D-SACK after which a widened reordering window shrinks back to min_RTT/4
 * (RFC 8985 §6.2 step 4, Linux's TCP_RACK_RECOVERY_THRESH).
 */
export const REO_WND_PERSIST = 16;
/** Bound on the reordering window's multiplier (Linux keeps it in a byte). */
const MAX_REO_WND_MULT = 255;

const RETRANSMITTED = 1;
const DELIVERED = 2;
const STALE = 4;
const LOST = 8;

/**
 * Entries a new log has room for: a request/response flow has a few segments in flight, so its log
 * never grows (8 entries: 360 bytes where 64 took 2.9 KB per connection); a bulk flow doubles it
 * within its first flight.
 */
const INITIAL_ENTRIES = 8;
/** A log emptied at more than this many entries shrinks back to this size. */
const SHRUNK_ENTRIES = 64;

export class RackLog {
  private st = new Uint32Array(INITIAL_ENTRIES);
  private en = new Uint32Array(INITIAL_ENTRIES);
  private tm = new Float64Array(INITIAL_ENTRIES);
  private fl = new Uint8Array(INITIAL_ENTRIES);
  // Delivery-rate snapshots at each transmission (draft-cheng-iccrg-delivery-rate-estimation):
  // the sender's delivered count, its time, and the first send time of the flight.
  private dv = new Float64Array(INITIAL_ENTRIES);
  private dt = new Float64Array(INITIAL_ENTRIES);
  private fs = new Float64Array(INITIAL_ENTRIES);
  /**
   * Transmission numbers: which of two segments left later, even within one clock tick (RFC 8985's
   * RACK_sent_after breaks time ties by sequence, which misorders a retransmission sent in the same
   * tick as new data above it).
   */
  private nr = new Float64Array(INITIAL_ENTRIES);
  private sent = 0;
  private head = 0;
  /** Entries in the log. */
  size = 0;
  /** RACK.xmit_ts / RACK.end_seq: the most recently sent segment known delivered (-1: none). */
  xmitTs = -1;
  endSeq = 0;
  /** That segment's transmission number (-1: none). */
  xmitNo = -1;
  /** RACK.rtt: the RTT of that segment's delivery. */
  rtt = 0;
  /** That segment was a retransmission (its RTT is ambiguous: Karn's rule keeps it from estimators). */
  rttAmbiguous = false;
  /** That segment's delivery-rate snapshot (see onSend). */
  rsDelivered = 0;
  rsDeliveredTime = 0;
  rsFirstSent = 0;
  /** RACK.fack: the highest end sequence delivered (cumulatively or by SACK). */
  fack = 0;
  private fackValid = false;
  /** RACK.reord: an original transmission was delivered below RACK.fack (the path reorders). */
  reord = false;
  /** Smallest RTT of a delivered first transmission, on the sender's clock (finer than timestamps). */
  minRtt = Number.POSITIVE_INFINITY;
  /** RACK.reo_wnd_mult, RACK.reo_wnd_persist and RACK.dsack_round (when set) of RFC 8985 §6.2 step 4. */
  reoWndMult = 1;
  reoWndPersist = 0;
  private dsackRound = 0;
  private dsackRoundSet = false;

  /**
   * RFC 8985 §6.2 step 4 (RACK_update_reo_wnd), the D-SACK half: per round trip (until SND.UNA
   * passes the SND.NXT of the first one), an ACK carrying a D-SACK widens the window by one more
   * min_RTT/4, and the widening persists for REO_WND_PERSIST recoveries.
   */
  onDsack(una: number, sndNxt: number): void {
    if (this.dsackRoundSet && seqGe(una, this.dsackRound)) this.dsackRoundSet = false;
    if (this.dsackRoundSet) return;
    this.dsackRoundSet = true;
    this.dsackRound = sndNxt;
    if (this.reoWndMult < MAX_REO_WND_MULT) this.reoWndMult++;
    this.reoWndPersist = REO_WND_PERSIST;
  }

  /** A fast or timeout recovery ended: after REO_WND_PERSIST of them without a D-SACK, min_RTT/4 again. */
  onRecoveryEnd(): void {
    if (this.reoWndPersist > 0) this.reoWndPersist--;
    if (this.reoWndPersist <= 0) this.reoWndMult = 1;
  }

  /**
   * RACK.reo_wnd (RFC 8985 §6.2 step 4, Linux's tcp_rack_reo_wnd): while the path has not been seen
   * to reorder, none during recovery or once DupThresh segments are SACKed (RACK then acts as
   * quickly as the duplicate-ACK rule would); else min_RTT/4 per D-SACKed round, at most SRTT.
   */
  reoWnd(recovering: boolean, sackedSegments: number, dupThresh: number, srtt: number, fallbackMinRtt: number): number {
    if (!this.reord && (recovering || sackedSegments >= dupThresh)) return 0;
    const minRtt = Number.isFinite(this.minRtt) ? this.minRtt : fallbackMinRtt;
    if (!Number.isFinite(minRtt)) return 0;
    return Math.min((minRtt / 4) * this.reoWndMult, Math.max(srtt, 0));
  }

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
        // Every earlier transmission this one covers: segments sent smaller (app-limited) or cut at
        // other boundaries are replaced too, else RACK would later call them lost and resend them
        // while this copy is still on its way.
        if (
          seqGe(this.st[j] as number, start) &&
          seqLe(this.en[j] as number, end) &&
          !((this.fl[j] as number) & (DELIVERED | STALE))
        )
          this.fl[j]! |= STALE;
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
    this.nr[j] = this.sent++;
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
   * RFC 8985 §6.2 step 5: report every outstanding segment (above `una`) sent before RACK.xmit_ts
   * whose time is up (`lost(start, end)`, once per transmission it accepts). Returns the ms until
   * the last of the others would be (the reordering timer, RFC 8985 §6.3: RACK_detect_loss's
   * timeout is the largest remaining time), or -1 when none waits.
   */
  detectLoss(
    now: number,
    una: number,
    reoWnd: number,
    lost: (start: number, end: number, retransmitted: boolean) => boolean,
  ): number {
    if (this.xmitTs < 0) return -1;
    let timeout = -1;
    for (let i = 0; i < this.size; i++) {
      const j = this.index(i);
      // Transmission order: everything from here on was sent after the delivered segment.
      if ((this.nr[j] as number) >= this.xmitNo) break;
      const t = this.tm[j] as number;
      const f = this.fl[j] as number;
      if (f & (STALE | DELIVERED | LOST) || seqLe(this.en[j] as number, una)) continue;
      const left = t + this.rtt + reoWnd - now;
      if (left <= 0) {
        // A full queue refuses it: it stays unmarked, to be reported again once there is room.
        if (lost(this.st[j] as number, this.en[j] as number, (f & RETRANSMITTED) !== 0)) this.fl[j]! |= LOST;
      } else if (left > timeout) timeout = left;
    }
    return timeout;
  }

  /**
   * The end of a retransmission of the data at `seq` that is still on its way (neither delivered nor
   * found lost), or -1. RFC 6675's hole search forgets at each new recovery what the last one resent,
   * and its DupThresh counts SACKs of segments sent before that copy: without this it resends it.
   */
  retransmissionInFlight(seq: number): number {
    // Newest first: retransmissions sit near the tail of the log.
    for (let i = this.size - 1; i >= 0; i--) {
      const j = this.index(i);
      const f = this.fl[j] as number;
      if (!(f & RETRANSMITTED) || f & (STALE | DELIVERED | LOST)) continue;
      const en = this.en[j] as number;
      if (seqLe(this.st[j] as number, seq) && seqLt(seq, en)) return en;
    }
    return -1;
  }

  /** Forget everything (after a retransmission timeout every segment is resent anyway). */
  clear(): void {
    this.head = 0;
    this.size = 0;
  }

  private delivered(j: number, now: number, minRtt: number): void {
    const t = this.tm[j] as number;
    const rtt = now - t;
    const retransmitted = ((this.fl[j] as number) & RETRANSMITTED) !== 0;
    // RFC 8985 §6.2 step 3: an original transmission delivered below the highest delivered sequence
    // arrived out of order.
    const end = this.en[j] as number;
    if (!this.fackValid || seqGt(end, this.fack)) {
      this.fack = end;
      this.fackValid = true;
    } else if (!retransmitted && seqLt(end, this.fack)) this.reord = true;
    if (!retransmitted && rtt < this.minRtt) this.minRtt = rtt;
    // A retransmitted segment "delivered" faster than any RTT seen: the original was (ambiguous).
    if (retransmitted && rtt < minRtt) return;
    if ((this.nr[j] as number) > this.xmitNo) {
      this.xmitNo = this.nr[j] as number;
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
    this.st = new Uint32Array(SHRUNK_ENTRIES);
    this.en = new Uint32Array(SHRUNK_ENTRIES);
    this.tm = new Float64Array(SHRUNK_ENTRIES);
    this.fl = new Uint8Array(SHRUNK_ENTRIES);
    this.dv = new Float64Array(SHRUNK_ENTRIES);
    this.dt = new Float64Array(SHRUNK_ENTRIES);
    this.fs = new Float64Array(SHRUNK_ENTRIES);
    this.nr = new Float64Array(SHRUNK_ENTRIES);
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
    const nr = new Float64Array(n);
    for (let i = 0; i < this.size; i++) {
      const j = this.index(i);
      st[i] = this.st[j] as number;
      en[i] = this.en[j] as number;
      tm[i] = this.tm[j] as number;
      fl[i] = this.fl[j] as number;
      dv[i] = this.dv[j] as number;
      dt[i] = this.dt[j] as number;
      fs[i] = this.fs[j] as number;
      nr[i] = this.nr[j] as number;
    }
    this.st = st;
    this.en = en;
    this.tm = tm;
    this.fl = fl;
    this.dv = dv;
    this.dt = dt;
    this.fs = fs;
    this.nr = nr;
    this.head = 0;
  }
}
