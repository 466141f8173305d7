import { closeSync, fchmodSync, openSync } from "node:fs";
import type { FileSink } from "bun";
import type { IpLink } from "../link.ts";
import type { Clock } from "../util/clock.ts";

/** LINKTYPE_RAW: each record is a bare IPv4 or IPv6 packet (what travels inside the tunnel). */
export const LINKTYPE_RAW = 101;
const SNAPLEN = 65535;

/** The 24-byte classic pcap global header (microsecond timestamps, little-endian). */
export function pcapFileHeader(linktype = LINKTYPE_RAW): Uint8Array {
  const h = new Uint8Array(24);
  const v = new DataView(h.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setInt32(8, 0, true); // thiszone
  v.setUint32(12, 0, true); // sigfigs
  v.setUint32(16, SNAPLEN, true);
  v.setUint32(20, linktype, true);
  return h;
}

/** A 16-byte record header for a packet of `length` bytes captured at `wallMs`. */
export function pcapRecordHeader(wallMs: number, length: number, into = new Uint8Array(16)): Uint8Array {
  const v = new DataView(into.buffer, into.byteOffset, 16);
  const sec = Math.floor(wallMs / 1000);
  const usec = Math.floor((wallMs - sec * 1000) * 1000);
  const caplen = Math.min(length, SNAPLEN);
  v.setUint32(0, sec, true);
  v.setUint32(4, usec, true);
  v.setUint32(8, caplen, true);
  v.setUint32(12, length, true);
  return into;
}

/**
 * Appends packets to a pcap file through Bun's buffered FileSink (one write per record header and
 * one per packet; the sink batches them into large writes).
 */
export class PcapWriter {
  private readonly sink: FileSink;
  private readonly fd: number;
  private closed = false;
  packets = 0;

  /** Creates (or truncates) `path` mode 0600: it holds decrypted traffic. Throws the OS error. */
  constructor(
    path: string,
    private readonly clock: Clock,
  ) {
    this.fd = openSync(path, "w", 0o600);
    try {
      fchmodSync(this.fd, 0o600); // an existing file keeps its mode through open(O_TRUNC)
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
    this.sink = Bun.file(this.fd).writer({ highWaterMark: 1 << 20 });
    this.sink.write(pcapFileHeader());
  }

  write(packet: Uint8Array): void {
    this.sink.write(pcapRecordHeader(this.clock.wallNow(), packet.length));
    this.sink.write(packet.length > SNAPLEN ? packet.subarray(0, SNAPLEN) : packet);
    this.packets++;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sink.end();
    closeSync(this.fd);
  }
}

/**
 * Wraps an IpLink so every inner packet, both directions, is also written to `writer`.
 * The netstack sees the returned link; the tunnel keeps its own. The wrapped link's room and
 * ownership pass through: the record is written (FileSink copies it) before the link encrypts the
 * packet in place.
 */
export function tapLink(link: IpLink, writer: PcapWriter): IpLink {
  const tapped: IpLink = {
    headroom: link.headroom,
    tailroom: link.tailroom,
    send(packet, owned) {
      writer.write(packet);
      link.send(packet, owned);
    },
    onPacket: () => {},
  };
  link.onPacket = (packet) => {
    writer.write(packet);
    tapped.onPacket(packet);
  };
  return tapped;
}

/** Parse a pcap file (either byte order, µs or ns) into records: for replay and tests. */
export function readPcap(data: Uint8Array): { linktype: number; records: { timeMs: number; packet: Uint8Array }[] } {
  if (data.length < 24) throw new Error("pcap: file shorter than its 24-byte header");
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magicLE = v.getUint32(0, true);
  let le: boolean;
  let nanos: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nanos = magicLE === 0xa1b23c4d;
  } else {
    const magicBE = v.getUint32(0, false);
    if (magicBE !== 0xa1b2c3d4 && magicBE !== 0xa1b23c4d) throw new Error("pcap: bad magic (pcapng is not supported)");
    le = false;
    nanos = magicBE === 0xa1b23c4d;
  }
  const linktype = v.getUint32(20, le) & 0x0fffffff;
  const records: { timeMs: number; packet: Uint8Array }[] = [];
  let off = 24;
  while (off + 16 <= data.length) {
    const sec = v.getUint32(off, le);
    const frac = v.getUint32(off + 4, le);
    const caplen = v.getUint32(off + 8, le);
    off += 16;
    if (off + caplen > data.length) throw new Error(`pcap: record at byte ${off - 16} runs past the end of the file`);
    records.push({ timeMs: sec * 1000 + (nanos ? frac / 1e6 : frac / 1e3), packet: data.subarray(off, off + caplen) });
    off += caplen;
  }
  return { linktype, records };
}
