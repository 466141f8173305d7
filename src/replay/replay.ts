/**
 * `wgslirpy replay FILE.pcap`: feed the peer-side packets of a capture through the netstack and
 * print what the stack does — for debugging a user's report without their network.
 *
 * Upstreams: "capture" (default; a stub server accepts each TCP connection, reads what the peer
 * sends, and answers with the bytes the original server sent in the capture, FIN included, so the
 * conversation replays coherently), "accept" (accept, read and discard), "refuse" (every TCP
 * connect is refused), or "live" (the real gateway with OS sockets, in real time). UDP is only
 * reported in stub modes. Stub modes run on a virtual clock set to each packet's capture time, so
 * the output is deterministic.
 */
import { Gateway } from "../gateway/gateway.ts";
import type { IpLink } from "../link.ts";
import { Netstack } from "../netstack/stack.ts";
import type { TcpConnectionApi } from "../netstack/tcp/api.ts";
import { TcpLayer } from "../netstack/tcp/layer.ts";
import type { FlowAddrs, IpAddr, NetstackHandlers } from "../netstack/types.ts";
import { readPcap } from "../pcap/writer.ts";
import { type Clock, realClock, VirtualClock } from "../util/clock.ts";
import type { Endpoint } from "../util/endpoint.ts";
import { silentLogger } from "../util/log.ts";
import { cryptoRandom, SeededRandom } from "../util/random.ts";
import { describePacket } from "../wire/describe.ts";
import { formatIp, ipEquals, parseIp } from "../wire/ipaddr.ts";
import { TCP_ACK, TCP_SYN, TcpOptions, TcpView, writeTcpChecksum } from "../wire/tcp.ts";

export type ReplayUpstream = "capture" | "accept" | "refuse" | "live";

export interface ReplayOptions {
  /** Peer-side source addresses; default: the source of the first IPv4 and of the first IPv6 packet. */
  peers?: string[];
  upstream?: ReplayUpstream;
  pingable?: string;
  dns?: Endpoint;
  mtu?: number;
  tcpBufferSize?: number;
  /** Called with each output line. */
  out?: (line: string) => void;
}

export interface ReplayResult {
  /** Packets taken from the capture and fed to the stack. */
  fed: number;
  /** Packets in the capture not from a peer address (the other direction), skipped. */
  skipped: number;
  /** What the stack sent toward the peer, in order. */
  emitted: Uint8Array[];
  /** Bytes the stub upstream received per TCP flow ("src.port > dst.port"). */
  tcpBytes: Map<string, number>;
  /** UDP datagrams the stub upstream received (after reassembly): flow and length. */
  udp: { flow: string; length: number }[];
  drops: Record<string, number>;
}

/** Strip the link-layer header of the capture's link type; null for an unsupported frame. */
export function ipPayload(linktype: number, frame: Uint8Array): Uint8Array | null {
  switch (linktype) {
    case 101: // LINKTYPE_RAW
    case 228: // LINKTYPE_IPV4
    case 229: // LINKTYPE_IPV6
      return frame;
    case 0: // LINKTYPE_NULL: 4-byte host-order family
      return frame.subarray(4);
    case 1: {
      // Ethernet (+ one 802.1Q tag)
      let off = 12;
      let type = ((frame[off] ?? 0) << 8) | (frame[off + 1] ?? 0);
      if (type === 0x8100) {
        off += 4;
        type = ((frame[off] ?? 0) << 8) | (frame[off + 1] ?? 0);
      }
      return type === 0x0800 || type === 0x86dd ? frame.subarray(off + 2) : null;
    }
    case 113: // Linux cooked v1
      return frame.subarray(16);
    case 276: // Linux cooked v2
      return frame.subarray(20);
    default:
      return null;
  }
}

function srcOf(p: Uint8Array): IpAddr | null {
  const v = (p[0] ?? 0) >> 4;
  if (v === 4 && p.length >= 20) return p.subarray(12, 16);
  if (v === 6 && p.length >= 40) return p.subarray(8, 24);
  return null;
}

export async function replayPcap(data: Uint8Array, opts: ReplayOptions = {}): Promise<ReplayResult> {
  const out = opts.out ?? (() => {});
  const { linktype, records } = readPcap(data);
  const packets: { timeMs: number; packet: Uint8Array }[] = [];
  for (const r of records) {
    const p = ipPayload(linktype, r.packet);
    if (p) packets.push({ timeMs: r.timeMs, packet: p });
  }
  if (packets.length === 0) throw new Error(`no IP packets in the capture (link type ${linktype})`);

  const peers: IpAddr[] = [];
  if (opts.peers?.length) {
    for (const t of opts.peers) {
      const a = parseIp(t);
      if (!a) throw new Error(`invalid peer address "${t}"`);
      peers.push(a);
    }
  } else {
    for (const fam of [4, 6]) {
      const first = packets.find((p) => (p.packet[0] ?? 0) >> 4 === fam);
      const s = first && srcOf(first.packet);
      if (s) peers.push(s.slice());
    }
  }
  const isPeer = (p: Uint8Array) => {
    const s = srcOf(p);
    return s !== null && peers.some((a) => ipEquals(a, s));
  };

  const upstream = opts.upstream ?? "capture";
  const t0 = packets[0]!.timeMs;
  const clock: Clock = upstream === "live" ? realClock : new VirtualClock(0, t0);
  const startedAt = clock.now();
  const rel = () => ((clock.now() - startedAt) / 1000).toFixed(6);
  let ended = false;
  const result: ReplayResult = { fed: 0, skipped: 0, emitted: [], tcpBytes: new Map(), udp: [], drops: {} };

  // The capture's peer acknowledges the ORIGINAL responder's sequence numbers; ours differ. Learn
  // both SYN-ACKs per flow and shift the peer's acks so the replayed conversation stays coherent.
  const capturedSynAck = new Map<string, { isn: number; tsVal: number }>();
  for (const { packet } of packets) {
    if (isPeer(packet)) continue;
    const id = synAckIdentity(packet);
    const key = id && tcpFlowId(packet, false);
    if (id && key && !capturedSynAck.has(key)) capturedSynAck.set(key, id);
  }
  const ourSynAck = new Map<string, { isn: number; tsVal: number }>();
  const serverBytes = collectServerBytes(packets.filter((p) => !isPeer(p.packet)).map((p) => p.packet));

  const link: IpLink = {
    send(p) {
      if (ended) return;
      const copy = p.slice();
      result.emitted.push(copy);
      const id = synAckIdentity(copy);
      const key = id && tcpFlowId(copy, false);
      if (id && key) ourSynAck.set(key, id);
      out(`${rel()} < ${describePacket(copy)}`);
    },
    onPacket: () => {},
  };
  const flowName = (f: FlowAddrs) => `${formatIp(f.src)}.${f.srcPort} > ${formatIp(f.dst)}.${f.dstPort}`;
  const stubHandlers: NetstackHandlers = {
    onTcpConnect(flow: FlowAddrs, conn: TcpConnectionApi) {
      const name = flowName(flow);
      if (upstream === "refuse") {
        out(`${rel()}   upstream: refuse TCP ${name}`);
        conn.refuse();
        return;
      }
      out(`${rel()}   upstream: accept TCP ${name}`);
      result.tcpBytes.set(name, 0);
      const reply =
        upstream === "capture"
          ? serverBytes.get(`${formatIp(flow.src)}.${flow.srcPort}>${formatIp(flow.dst)}.${flow.dstPort}`)
          : undefined;
      let replyOff = 0;
      let replying = false;
      const sendReply = () => {
        if (!reply || !replying) return;
        while (replyOff < reply.data.length) {
          const n = conn.write(reply.data.subarray(replyOff));
          if (n === 0) break;
          replyOff += n;
        }
        if (replyOff >= reply.data.length && reply.fin) {
          replying = false;
          conn.shutdown();
        }
      };
      conn.onWritable = sendReply;
      conn.onReadable = () => {
        if (reply && !replying && replyOff === 0 && conn.peek().length > 0) {
          out(
            `${rel()}   upstream: answering with the original server's ${reply.data.length} bytes${reply.fin ? " and FIN" : ""}`,
          );
          replying = true;
          queueMicrotask(sendReply);
        }
        for (let v = conn.peek(); v.length > 0; v = conn.peek()) {
          result.tcpBytes.set(name, (result.tcpBytes.get(name) ?? 0) + v.length);
          conn.consume(v.length);
        }
        if (conn.readEof) {
          out(`${rel()}   upstream: EOF from peer on ${name} after ${result.tcpBytes.get(name)} bytes`);
          if (!reply) conn.shutdown();
        }
      };
      conn.onClosed = (reason) => out(`${rel()}   upstream: ${name} closed (${reason})`);
      conn.accept();
    },
    onUdp(flow, payload) {
      result.udp.push({ flow: flowName(flow), length: payload.length });
      out(`${rel()}   upstream: UDP ${flowName(flow)} ${payload.length} bytes (not forwarded in stub mode)`);
    },
    onEchoRequest: (_src, dst) => opts.pingable !== undefined && formatIp(dst) === opts.pingable,
  };
  const mtu = opts.mtu ?? 1420;
  const bufferSize = opts.tcpBufferSize ?? 65535;
  const gateway =
    upstream === "live"
      ? new Gateway({ clock, log: silentLogger, dns: opts.dns, pingable: opts.pingable, tcpBufferSize: bufferSize })
      : undefined;
  const netstack = new Netstack({ link, mtu, clock, log: silentLogger, handlers: gateway ?? stubHandlers });
  const tcp = new TcpLayer({
    output: netstack.output,
    clock,
    random: upstream === "live" ? cryptoRandom : new SeededRandom(1),
    log: silentLogger,
    mss4: mtu - 40,
    mss6: mtu - 60,
    bufferSize,
    onConnect: (flow, conn) => (gateway ?? stubHandlers).onTcpConnect(flow, conn),
  });
  netstack.setTcp(tcp);
  gateway?.attach(netstack);

  try {
    let last = t0;
    for (const { timeMs, packet } of packets) {
      if (!isPeer(packet)) {
        result.skipped++;
        continue;
      }
      if (clock instanceof VirtualClock) clock.runUntil(timeMs - t0);
      else await Bun.sleep(Math.min(1000, Math.max(0, timeMs - last)));
      last = timeMs;
      const copy = packet.slice();
      const key = tcpFlowId(copy, true);
      const theirs = key ? capturedSynAck.get(key) : undefined;
      const ours = key ? ourSynAck.get(key) : undefined;
      if (theirs && ours) translateAcks(copy, (ours.isn - theirs.isn) >>> 0, (ours.tsVal - theirs.tsVal) >>> 0);
      out(`${rel()} > ${describePacket(copy)}`);
      result.fed++;
      link.onPacket(copy);
      // Let the stub upstream's deferred writes run before the next captured packet.
      await Promise.resolve();
    }
    // Let timers (retransmissions, closes) play out for a moment after the last packet.
    if (clock instanceof VirtualClock) clock.advance(1000);
    else await Bun.sleep(1000);
  } finally {
    ended = true;
    Object.assign(result.drops, netstack.stats.drops);
    gateway?.close();
    tcp.close();
    netstack.close();
  }
  return result;
}

interface TcpLocator {
  src: Uint8Array;
  dst: Uint8Array;
  tcpOff: number;
  tcpEnd: number;
}

/** Find the TCP header of an unfragmented IPv4 / IPv6 (no extension headers) packet. */
function locateTcp(p: Uint8Array): TcpLocator | null {
  const v = (p[0] ?? 0) >> 4;
  if (v === 4 && p.length >= 20 && p[9] === 6) {
    const flagsOff = ((p[6] as number) << 8) | (p[7] as number);
    if ((flagsOff & 0x3fff) !== 0) return null;
    const hl = ((p[0] as number) & 0x0f) * 4;
    const total = ((p[2] as number) << 8) | (p[3] as number);
    if (total > p.length || hl + 20 > total) return null;
    return { src: p.subarray(12, 16), dst: p.subarray(16, 20), tcpOff: hl, tcpEnd: total };
  }
  if (v === 6 && p.length >= 60 && p[6] === 6) {
    const total = 40 + (((p[4] as number) << 8) | (p[5] as number));
    if (total > p.length) return null;
    return { src: p.subarray(8, 24), dst: p.subarray(24, 40), tcpOff: 40, tcpEnd: total };
  }
  return null;
}

/** "a.port>b.port" for a TCP packet, oriented peer -> gateway when `fromPeer`, else reversed. */
function tcpFlowId(p: Uint8Array, fromPeer: boolean): string | null {
  const t = locateTcp(p);
  if (!t) return null;
  const sp = ((p[t.tcpOff] as number) << 8) | (p[t.tcpOff + 1] as number);
  const dp = ((p[t.tcpOff + 2] as number) << 8) | (p[t.tcpOff + 3] as number);
  const a = `${formatIp(t.src)}.${sp}`;
  const b = `${formatIp(t.dst)}.${dp}`;
  return fromPeer ? `${a}>${b}` : `${b}>${a}`;
}

/** The initial sequence number and first timestamp value of a SYN-ACK. */
function synAckIdentity(p: Uint8Array): { isn: number; tsVal: number } | null {
  const t = locateTcp(p);
  if (!t) return null;
  const seg = p.subarray(t.tcpOff, t.tcpEnd);
  if (TcpView.check(seg) !== null) return null;
  const view = new TcpView(seg);
  if ((view.flags & (TCP_SYN | TCP_ACK)) !== (TCP_SYN | TCP_ACK)) return null;
  const o = new TcpOptions();
  view.options(o);
  return { isn: view.seq, tsVal: o.hasTimestamp ? o.tsVal : 0 };
}

/**
 * Rewrite a captured peer segment so it acknowledges OUR sequence space instead of the original
 * responder's: ack, SACK edges and the timestamp echo move by the differences, checksum redone.
 */
function translateAcks(p: Uint8Array, seqDelta: number, tsDelta: number): void {
  const t = locateTcp(p);
  if (!t) return;
  const o = t.tcpOff;
  const add32 = (at: number, d: number) => {
    const v =
      ((((p[at] as number) << 24) |
        ((p[at + 1] as number) << 16) |
        ((p[at + 2] as number) << 8) |
        (p[at + 3] as number)) +
        d) >>>
      0;
    p[at] = v >>> 24;
    p[at + 1] = (v >>> 16) & 0xff;
    p[at + 2] = (v >>> 8) & 0xff;
    p[at + 3] = v & 0xff;
  };
  if ((p[o + 13] as number) & TCP_ACK) add32(o + 8, seqDelta);
  const hl = ((p[o + 12] as number) >>> 4) * 4;
  for (let i = o + 20; i < o + hl; ) {
    const kind = p[i] as number;
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    const len = p[i + 1] as number;
    if (len < 2 || i + len > o + hl) break;
    if (kind === 5) for (let e = i + 2; e + 4 <= i + len; e += 4) add32(e, seqDelta);
    if (kind === 8 && len === 10) add32(i + 6, tsDelta);
    i += len;
  }
  p[o + 16] = 0;
  p[o + 17] = 0;
  writeTcpChecksum(p, o, t.tcpEnd - o, t.src, t.dst);
}

/**
 * Per flow ("peer.port>server.port"), the payload the original server sent, in sequence order
 * (retransmissions collapse), and whether it sent a FIN.
 */
function collectServerBytes(serverPackets: Uint8Array[]): Map<string, { data: Uint8Array; fin: boolean }> {
  const flows = new Map<string, { isn: number; pieces: Map<number, Uint8Array>; fin: boolean }>();
  for (const p of serverPackets) {
    const t = locateTcp(p);
    const key = t && tcpFlowId(p, false);
    if (!t || !key) continue;
    const seg = p.subarray(t.tcpOff, t.tcpEnd);
    if (TcpView.check(seg) !== null) continue;
    const v = new TcpView(seg);
    if (v.flags & TCP_SYN) {
      flows.set(key, { isn: (v.seq + 1) >>> 0, pieces: new Map(), fin: false });
      continue;
    }
    const f = flows.get(key);
    if (!f) continue;
    if (v.payloadLength > 0) f.pieces.set((v.seq - f.isn) >>> 0, v.payload.slice());
    if (v.flags & 0x01) f.fin = true;
  }
  const out = new Map<string, { data: Uint8Array; fin: boolean }>();
  for (const [key, f] of flows) {
    const offsets = [...f.pieces.keys()].sort((a, b) => a - b);
    const chunks: Uint8Array[] = [];
    let next = 0;
    for (const off of offsets) {
      const piece = f.pieces.get(off)!;
      if (off > next) break; // a hole: stop at what is contiguous
      if (off + piece.length <= next) continue;
      chunks.push(piece.subarray(next - off));
      next = off + piece.length;
    }
    const data = new Uint8Array(next);
    let o = 0;
    for (const c of chunks) {
      data.set(c, o);
      o += c.length;
    }
    out.set(key, { data, fin: f.fin });
  }
  return out;
}
