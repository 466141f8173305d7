/**
 * TIME-WAIT as a few numbers per 4-tuple instead of the whole connection, as Linux keeps an
 * inet_timewait_sock. Once both FINs are through and the app has heard onClosed, a connection in
 * TIME-WAIT hands its sequence state to this table and is released: its buffers, its timers and the
 * app's handlers (and what they hold: the gateway's relay, the host socket object) go with it.
 *
 * Why: the gateway is the side that closes first whenever the host closes first (HTTP/1.0, most
 * request/response protocols), so a client opening connections leaves one TIME-WAIT per connection
 * for 2*MSL. Kept whole, each held ~20 KB (buffer storage, the RACK log, three timers, the relay):
 * at 1,000 connections/s the gateway's memory grew by ~20 MB/s until TIME-WAIT expiries caught up,
 * and the GC's marking of 10,000 dead-but-waiting flows cost ~10 % of the CPU per connection.
 *
 * What TIME-WAIT does here is what TcpConnection did in TIME-WAIT (RFC 9293 §3.10.7.4): a SYN past
 * the old incarnation reopens the 4-tuple (reopenIss); a retransmitted FIN is ACKed and restarts the
 * 2*MSL wait; other unacceptable segments are ACKed (pure ACKs rate-limited, RFC 5961 §7); an exact
 * RST ends the wait, other RSTs and SYNs get a challenge ACK (RFC 5961 §3.2, §4.2); an ACK of data
 * never sent, or too old, gets an ACK. No SACK blocks: nothing is held out of order any more.
 *
 * Entries expire in the order they came (2*MSL is one constant) under one timer; an entry whose wait
 * a FIN restarted goes to the back of the line when it reaches the front.
 */
import type { Clock, Timer } from "../../util/clock.ts";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../../wire/tcp.ts";
import type { IpAddr, IpOutput } from "../types.ts";
import { TIME_WAIT_MS } from "./constants.ts";
import { emitSegment, scratchHeader, segmentAcceptable, type TcpSegmentIn } from "./segment.ts";
import { seqAdd, seqGe, seqGt, seqLe, seqLt } from "./seq.ts";
import type { TcpStats } from "./stats.ts";
import { OOW_ACK_INTERVAL_MS } from "./tcb.ts";

/** What a 4-tuple in TIME-WAIT remembers of its connection. */
export interface TimeWaitState {
  local: IpAddr;
  localPort: number;
  remote: IpAddr;
  remotePort: number;
  /** Everything we sent ends here (our FIN included): the SEQ of our ACKs. */
  sndMax: number;
  /** The peer's FIN included: the ACK of our ACKs. */
  rcvNxt: number;
  /** Bytes past rcvNxt a segment may reach and still be acceptable (the window we advertised). */
  rcvWnd: number;
  /** The window field of our ACKs (rcvWnd, scaled). */
  windowField: number;
  /** Largest window the peer advertised: ACKs older than sndMax minus this are answered. */
  maxSndWnd: number;
  tsEnabled: boolean;
  tsRecent: number;
  /** Added to the clock for our TSval (the connection's random offset, kept so TSval stays monotonic). */
  tsOffset: number;
  /** When the wait ends (clock ms). */
  expiresAt: number;
}

/** A 4-tuple's place in the table: its state, and the table's bookkeeping. */
export class TimeWaitEntry {
  lastOowAck = Number.NEGATIVE_INFINITY;
  /** A FIN restarted the wait after the entry took its place in line. */
  restarted = false;
  /** Left the table (expired, reopened, reset, evicted); its place in line is skipped. */
  gone = false;

  constructor(
    readonly key: string,
    readonly tw: TimeWaitState,
  ) {}
}

export class TimeWaitTable {
  private readonly map = new Map<string, TimeWaitEntry>();
  /** Entries in the order they expire (restarted ones are re-queued when they reach the front). */
  private line: TimeWaitEntry[] = [];
  private head = 0;
  private readonly timer: Timer;

  constructor(
    private readonly clock: Clock,
    private readonly output: IpOutput,
    private readonly stats: TcpStats,
  ) {
    this.timer = clock.timer(() => this.expire());
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): TimeWaitEntry | undefined {
    return this.map.get(key);
  }

  values(): IterableIterator<TimeWaitEntry> {
    return this.map.values();
  }

  /** The 4-tuple `key` enters TIME-WAIT (replacing any entry it had). */
  add(key: string, s: TimeWaitState): void {
    const old = this.map.get(key);
    if (old) this.remove(old);
    const e = new TimeWaitEntry(key, s);
    this.map.set(key, e);
    this.line.push(e);
    this.stats.timeWaitFlows = this.map.size;
    if (this.timer.deadline < 0) this.timer.setAt(e.tw.expiresAt);
  }

  /** Make room for a new connection: the entry closest to expiring leaves. False when empty. */
  evictOldest(): boolean {
    while (this.head < this.line.length) {
      const e = this.line[this.head++] as TimeWaitEntry;
      if (e.gone) continue;
      this.remove(e);
      this.stats.timeWaitEvicted++;
      return true;
    }
    return false;
  }

  clear(): void {
    for (const e of this.map.values()) e.gone = true;
    this.map.clear();
    this.line = [];
    this.head = 0;
    this.stats.timeWaitFlows = 0;
    this.timer.cancel();
  }

  /**
   * A new SYN for the 4-tuple (the peer reuses its port, as a client making many connections does
   * within seconds) that cannot belong to the old incarnation (RFC 9293 §3.10.7.4: its sequence
   * number is past it, RFC 1122 §4.2.2.13, or its timestamp is newer, RFC 6191, as Linux): the entry
   * leaves and the answer is the ISS for the new connection, above everything the old one sent. -1
   * otherwise (then input() gives the challenge ACK, which costs the client a RST and a SYN
   * retransmission).
   */
  reopenIss(e: TimeWaitEntry, seg: TcpSegmentIn): number {
    const t = e.tw;
    if ((seg.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) !== TCP_SYN) return -1;
    const newerTs = t.tsEnabled && seg.options.hasTimestamp && seqGt(seg.options.tsVal, t.tsRecent);
    if (!seqGt(seg.seq, t.rcvNxt) && !newerTs) return -1;
    this.stats.timeWaitReopens++;
    this.remove(e);
    return seqAdd(t.sndMax, 65535 + 2);
  }

  /** Any other segment for the 4-tuple (RFC 9293 §3.10.7.4 in TIME-WAIT). */
  input(e: TimeWaitEntry, seg: TcpSegmentIn): void {
    const t = e.tw;
    const f = seg.flags;
    const stats = this.stats;
    const segLen = seg.payloadLength + (f & TCP_SYN ? 1 : 0) + (f & TCP_FIN ? 1 : 0);
    if (!segmentAcceptable(seg.seq, segLen, t.rcvNxt, t.rcvWnd)) {
      if (f & TCP_RST) {
        stats.drop("tcp-rst-out-of-window");
        return;
      }
      stats.drop("tcp-out-of-window");
      const now = this.clock.now();
      // A retransmitted FIN (our ACK of it was lost) restarts the wait (§3.10.7.4, eighth check).
      if (f & TCP_FIN) {
        t.expiresAt = now + TIME_WAIT_MS;
        e.restarted = true;
      }
      if (segLen > 0 || now - e.lastOowAck >= OOW_ACK_INTERVAL_MS) {
        if (segLen === 0) e.lastOowAck = now;
        this.sendAck(e);
      }
      return;
    }
    if (f & TCP_RST) {
      if (seg.seq === t.rcvNxt) this.remove(e);
      else {
        stats.drop("tcp-rst-challenged");
        this.sendAck(e);
      }
      return;
    }
    if (f & TCP_SYN) {
      stats.drop("tcp-syn-challenged");
      this.sendAck(e);
      return;
    }
    if (!(f & TCP_ACK)) {
      stats.drop("tcp-no-ack");
      return;
    }
    // RFC 7323 §4.3: the timestamp to echo, from a segment at the left edge.
    if (t.tsEnabled && seg.options.hasTimestamp && seqLe(seg.seq, t.rcvNxt) && seqGe(seg.options.tsVal, t.tsRecent))
      t.tsRecent = seg.options.tsVal;
    if (seqGt(seg.ack, t.sndMax)) {
      stats.drop("tcp-ack-unsent");
      this.sendAck(e);
    } else if (seqLt(seg.ack, seqAdd(t.sndMax, -t.maxSndWnd))) {
      stats.drop("tcp-ack-too-old");
      this.sendAck(e);
    }
  }

  private sendAck(e: TimeWaitEntry): void {
    const t = e.tw;
    const h = scratchHeader;
    h.resetOptions();
    h.srcPort = t.localPort;
    h.dstPort = t.remotePort;
    h.seq = t.sndMax;
    h.ack = t.rcvNxt;
    h.flags = TCP_ACK;
    h.window = t.windowField;
    if (t.tsEnabled) {
      h.hasTimestamp = true;
      h.tsVal = (Math.floor(this.clock.now()) + t.tsOffset) >>> 0;
      h.tsEcr = t.tsRecent;
    }
    emitSegment(this.output, t.local, t.remote, 0, null);
    this.stats.segmentsOut++;
  }

  private remove(e: TimeWaitEntry): void {
    if (e.gone) return;
    e.gone = true;
    if (this.map.get(e.key) === e) this.map.delete(e.key);
    this.stats.timeWaitFlows = this.map.size;
  }

  /** The timer: entries whose wait is over leave, in order; then the timer waits for the next one. */
  private expire(): void {
    const now = this.clock.now();
    const line = this.line;
    // Bounded by the line: each step consumes an entry (a restarted one is re-queued once per restart).
    while (this.head < line.length) {
      const e = line[this.head] as TimeWaitEntry;
      if (e.gone) {
        this.head++;
        continue;
      }
      if (e.restarted) {
        e.restarted = false;
        this.head++;
        line.push(e);
        continue;
      }
      if (e.tw.expiresAt > now) break;
      this.head++;
      this.remove(e);
    }
    // Drop the consumed front once it is most of the array.
    if (this.head > 64 && this.head * 2 > line.length) {
      this.line = line.slice(this.head);
      this.head = 0;
    }
    const next = this.line[this.head];
    if (next) this.timer.setAt(next.tw.expiresAt);
  }
}
