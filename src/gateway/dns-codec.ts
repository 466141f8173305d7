/**
 * The DNS wire format, as little of it as the gateway needs, on bytes (RFC 1035 §4).
 *
 * The question is never decoded to text and re-encoded: replies copy the query's question bytes
 * verbatim, so labels with any octet (0xFF, dots, 63-byte labels) come back exactly as sent. Names
 * are turned into text only to ask the host resolver and for logs.
 */

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;

export const HEADER_LENGTH = 12;
export const FLAG_QR = 0x8000;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_CD = 0x0010;
/** The largest UDP reply to a client that sent no EDNS OPT record (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
/** Pointer to offset 12, where the question's name starts. */
const NAME_POINTER = [0xc0, 0x0c] as const;

export interface ParsedQuery {
  id: number;
  flags: number;
  opcode: number;
  qdcount: number;
  /** Offset just after the question section (= its end when qdcount is 1). */
  questionEnd: number;
  /** The question's name as text (labels joined by dots, lower case kept), for the resolver and logs. */
  name: string;
  qtype: number;
  qclass: number;
  /** The UDP payload size from an EDNS OPT record in the additional section, 0 when there is none. */
  ednsSize: number;
  /** The DO bit of the OPT record (DNSSEC answers wanted): part of the cache key. */
  dnssecOk: boolean;
}

export type QueryParse = { ok: true; query: ParsedQuery } | { ok: false; why: "short" | "response" | "malformed" };

/** Walk a name starting at `off` (no compression pointers: a question's name is the first one). */
export function skipQuestionName(msg: Uint8Array, off: number): number {
  let length = 0;
  for (;;) {
    if (off >= msg.length) return -1;
    const n = msg[off]!;
    if (n === 0) return off + 1;
    if (n > 63) return -1;
    length += n + 1;
    if (length > 254) return -1;
    off += n + 1;
  }
}

/** Skip a name that may end in a compression pointer (records in a response). */
export function skipName(msg: Uint8Array, off: number): number {
  for (let labels = 0; labels < 128; labels++) {
    if (off >= msg.length) return -1;
    const n = msg[off]!;
    if (n === 0) return off + 1;
    if ((n & 0xc0) === 0xc0) return off + 2 <= msg.length ? off + 2 : -1;
    if (n > 63) return -1;
    off += n + 1;
  }
  return -1;
}

/** The name's labels as text; bytes outside printable ASCII and dots are escaped like dig does. */
export function nameText(msg: Uint8Array, off: number): string {
  const labels: string[] = [];
  while (off < msg.length && msg[off]! !== 0) {
    const n = msg[off]!;
    let label = "";
    for (let i = off + 1; i <= off + n && i < msg.length; i++) {
      const c = msg[i]!;
      if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) label += String.fromCharCode(c);
      else label += `\\${c.toString().padStart(3, "0")}`;
    }
    labels.push(label);
    off += n + 1;
  }
  return labels.join(".");
}

const u16 = (msg: Uint8Array, off: number) => (msg[off]! << 8) | msg[off + 1]!;
const u32 = (msg: Uint8Array, off: number) =>
  ((msg[off]! << 24) | (msg[off + 1]! << 16) | (msg[off + 2]! << 8) | msg[off + 3]!) >>> 0;

export function parseQuery(msg: Uint8Array): QueryParse {
  if (msg.length < HEADER_LENGTH) return { ok: false, why: "short" };
  const flags = u16(msg, 2);
  if (flags & FLAG_QR) return { ok: false, why: "response" };
  const query: ParsedQuery = {
    id: u16(msg, 0),
    flags,
    opcode: (flags >> 11) & 0xf,
    qdcount: u16(msg, 4),
    questionEnd: HEADER_LENGTH,
    name: "",
    qtype: 0,
    qclass: 0,
    ednsSize: 0,
    dnssecOk: false,
  };
  let off = HEADER_LENGTH;
  for (let i = 0; i < query.qdcount; i++) {
    const end = skipQuestionName(msg, off);
    if (end < 0 || end + 4 > msg.length) return { ok: false, why: "malformed" };
    if (i === 0) {
      query.name = nameText(msg, off);
      query.qtype = u16(msg, end);
      query.qclass = u16(msg, end + 2);
    }
    off = end + 4;
  }
  query.questionEnd = off;
  // EDNS (RFC 6891): an OPT pseudo-record among the additional records.
  const skip = u16(msg, 6) + u16(msg, 8);
  const arcount = u16(msg, 10);
  for (let i = 0; i < skip + arcount; i++) {
    const nameEnd = skipName(msg, off);
    if (nameEnd < 0 || nameEnd + 10 > msg.length) return { ok: false, why: "malformed" };
    const rdlength = u16(msg, nameEnd + 8);
    if (i >= skip && u16(msg, nameEnd) === TYPE.OPT) {
      query.ednsSize = Math.max(CLASSIC_UDP_SIZE, u16(msg, nameEnd + 2));
      query.dnssecOk = (msg[nameEnd + 6]! & 0x80) !== 0;
    }
    off = nameEnd + 10 + rdlength;
    if (off > msg.length) return { ok: false, why: "malformed" };
  }
  return { ok: true, query };
}

/**
 * A reply to `msg` (a query that parsed as far as `questionEnd`, or not at all: questionEnd 12 and
 * qdcount 0): its ID, opcode, RD and CD flags, QR and RA set, the question bytes copied verbatim,
 * then `answers` (each a complete record, see addressRecord / ptrRecord). Answers that would take
 * the reply past `maxSize` are left out and TC is set.
 */
export function buildReply(
  msg: Uint8Array,
  questionEnd: number,
  qdcount: number,
  rcode: number,
  answers: readonly Uint8Array[] = [],
  maxSize = 65535,
  truncated = false,
): Uint8Array {
  let size = questionEnd;
  let count = 0;
  for (const a of answers) {
    if (size + a.length > maxSize) break;
    size += a.length;
    count++;
  }
  const out = new Uint8Array(size);
  out.set(msg.subarray(0, questionEnd));
  const flags = u16(msg, 2);
  const tc = truncated || count < answers.length ? FLAG_TC : 0;
  const replyFlags = FLAG_QR | (flags & (0x7800 | FLAG_RD | FLAG_CD)) | FLAG_RA | tc | (rcode & 0xf);
  out[2] = replyFlags >> 8;
  out[3] = replyFlags & 0xff;
  out[4] = qdcount >> 8;
  out[5] = qdcount & 0xff;
  out[6] = count >> 8;
  out[7] = count & 0xff;
  out.fill(0, 8, 12);
  let off = questionEnd;
  for (let i = 0; i < count; i++) {
    out.set(answers[i]!, off);
    off += answers[i]!.length;
  }
  return out;
}

/** An A or AAAA record for the question's name (a pointer to it). */
export function addressRecord(address: Uint8Array, ttl: number): Uint8Array {
  const rec = new Uint8Array(12 + address.length);
  rec.set(NAME_POINTER, 0);
  writeRecordHeader(rec, address.length === 4 ? TYPE.A : TYPE.AAAA, ttl, address.length);
  rec.set(address, 12);
  return rec;
}

/** A PTR record for the question's name pointing at `target` (dotted text, plain labels). */
export function ptrRecord(target: string, ttl: number): Uint8Array {
  const labels = target.split(".").filter(Boolean);
  const rdlength = labels.reduce((n, l) => n + l.length + 1, 1);
  const rec = new Uint8Array(12 + rdlength);
  rec.set(NAME_POINTER, 0);
  writeRecordHeader(rec, TYPE.PTR, ttl, rdlength);
  let off = 12;
  for (const label of labels) {
    rec[off++] = label.length;
    for (let i = 0; i < label.length; i++) rec[off++] = label.charCodeAt(i) & 0x7f;
  }
  rec[off] = 0;
  return rec;
}

function writeRecordHeader(rec: Uint8Array, type: number, ttl: number, rdlength: number): void {
  rec[2] = type >> 8;
  rec[3] = type & 0xff;
  rec[4] = 0;
  rec[5] = CLASS_IN;
  rec[6] = (ttl >>> 24) & 0xff;
  rec[7] = (ttl >> 16) & 0xff;
  rec[8] = (ttl >> 8) & 0xff;
  rec[9] = ttl & 0xff;
  rec[10] = rdlength >> 8;
  rec[11] = rdlength & 0xff;
}

export interface ResponseShape {
  id: number;
  flags: number;
  rcode: number;
  truncated: boolean;
  questionEnd: number;
  /** Offsets of every record's TTL field (OPT excluded), for cache aging. */
  ttlOffsets: number[];
  /** The TTL the answer may be cached for: the least record TTL, or for a negative answer the SOA's. */
  cacheTtl: number;
}

/** Walk a response's records (no rdata decoding); null when it does not parse. */
export function parseResponse(msg: Uint8Array): ResponseShape | null {
  if (msg.length < HEADER_LENGTH) return null;
  const flags = u16(msg, 2);
  if (!(flags & FLAG_QR)) return null;
  const counts = [u16(msg, 4), u16(msg, 6), u16(msg, 8), u16(msg, 10)] as const;
  let off = HEADER_LENGTH;
  for (let i = 0; i < counts[0]; i++) {
    const end = skipQuestionName(msg, off);
    if (end < 0 || end + 4 > msg.length) return null;
    off = end + 4;
  }
  const questionEnd = off;
  const ttlOffsets: number[] = [];
  let minTtl = Number.POSITIVE_INFINITY;
  let soaTtl = -1;
  for (let section = 1; section <= 3; section++) {
    for (let i = 0; i < counts[section]!; i++) {
      const nameEnd = skipName(msg, off);
      if (nameEnd < 0 || nameEnd + 10 > msg.length) return null;
      const type = u16(msg, nameEnd);
      const rdlength = u16(msg, nameEnd + 8);
      const rdata = nameEnd + 10;
      if (rdata + rdlength > msg.length) return null;
      if (type !== TYPE.OPT) {
        const ttl = u32(msg, nameEnd + 4);
        ttlOffsets.push(nameEnd + 4);
        minTtl = Math.min(minTtl, ttl);
        if (section === 2 && type === TYPE.SOA) {
          // RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM); MINIMUM is rdata's last field.
          soaTtl = rdlength >= 20 ? Math.min(ttl, u32(msg, rdata + rdlength - 4)) : ttl;
        }
      }
      off = rdata + rdlength;
    }
  }
  const rcode = flags & 0xf;
  const hasAnswers = counts[1] > 0;
  const cacheTtl = hasAnswers ? minTtl : soaTtl;
  return {
    id: u16(msg, 0),
    flags,
    rcode,
    truncated: (flags & FLAG_TC) !== 0,
    questionEnd,
    ttlOffsets,
    cacheTtl: Number.isFinite(cacheTtl) ? Math.max(-1, cacheTtl) : -1,
  };
}

/** Same question (ASCII case-insensitive, RFC 4343), bytes 12..end of both. */
export function sameQuestion(a: Uint8Array, aEnd: number, b: Uint8Array, bEnd: number): boolean {
  if (aEnd !== bEnd || u16(a, 4) !== u16(b, 4)) return false;
  for (let i = HEADER_LENGTH; i < aEnd; i++) {
    let x = a[i]!;
    let y = b[i]!;
    if (x >= 0x41 && x <= 0x5a) x |= 0x20;
    if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    if (x !== y) return false;
  }
  return true;
}

/** The reverse-lookup name of an address: "4.3.2.1.in-addr.arpa" / nibbles ".ip6.arpa", lower case. */
export function reverseName(addr: Uint8Array): string {
  if (addr.length === 4) return `${addr[3]}.${addr[2]}.${addr[1]}.${addr[0]}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = addr.length - 1; i >= 0; i--) nibbles.push((addr[i]! & 0xf).toString(16), (addr[i]! >> 4).toString(16));
  return `${nibbles.join(".")}.ip6.arpa`;
}

export function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >> 8) & 0xff;
  buf[off + 1] = v & 0xff;
}

export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 24) & 0xff;
  buf[off + 1] = (v >> 16) & 0xff;
  buf[off + 2] = (v >> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}

export { u16 as readU16, u32 as readU32 };
