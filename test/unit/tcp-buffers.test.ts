import { describe, expect, test } from "bun:test";
import { windowScaleFor } from "../../src/netstack/tcp/constants.ts";
import { ReceiveBuffer } from "../../src/netstack/tcp/receive-buffer.ts";
import { SendBuffer } from "../../src/netstack/tcp/send-buffer.ts";
import { seqGt, seqLt } from "../../src/netstack/tcp/seq.ts";
import { TCP_ACK, TCP_SYN } from "../../src/wire/tcp.ts";
import { buildSegment, bytes, harness } from "./tcp-harness.ts";

describe("TCP buffers", () => {
  test("send buffer: bounded, wraps around, grows lazily, releases large storage when a small drain empties it", () => {
    const b = new SendBuffer(200_000);
    expect(b.capacity).toBe(0);
    expect(b.write(bytes(3000))).toBe(3000);
    expect(b.capacity).toBe(4096);
    b.drop(2000);
    const more = bytes(2000, 2);
    expect(b.write(more)).toBe(2000); // wraps: 1000 old + 2000 new in 4096 bytes
    expect(b.capacity).toBe(4096);
    const out = new Uint8Array(3000);
    b.copyOut(0, 3000, out, 0);
    expect([...out.subarray(0, 1000)]).toEqual([...bytes(3000).subarray(2000)]);
    expect([...out.subarray(1000)]).toEqual([...more]);
    expect(b.write(bytes(300_000))).toBe(197_000);
    expect(b.free).toBe(0);
    expect(b.capacity).toBe(200_000);
    b.copyOut(1000, 10, out, 0);
    expect([...out.subarray(0, 10)]).toEqual([...more.subarray(0, 10)]);
    // A bulk drain (a quarter of the storage or more at once) keeps it for the next burst...
    b.drop(200_000);
    expect([b.length, b.capacity]).toEqual([0, 200_000]);
    // ...a drain that only took a small tail releases it.
    expect(b.write(bytes(190_000))).toBe(190_000);
    b.drop(180_000);
    b.drop(10_000);
    expect([b.length, b.capacity]).toEqual([0, 0]);
  });

  test("receive buffer: a bulk read keeps large storage, a small final read releases it", () => {
    const r = new ReceiveBuffer(1 << 20);
    const d = bytes(200_000, 3);
    expect(r.write(0, d, 0, 200_000)).toBe(200_000);
    expect(r.capacity).toBe(262_144);
    r.consume(200_000);
    expect([r.length, r.capacity]).toEqual([0, 262_144]);
    expect(r.write(0, d, 0, 200_000)).toBe(200_000);
    expect(r.capacity).toBe(262_144);
    r.consume(199_000);
    r.consume(1000);
    expect([r.length, r.capacity]).toEqual([0, 0]);
  });

  test("receive buffer: in-order data is one view; islands merge; compaction keeps out-of-order bytes", () => {
    const r = new ReceiveBuffer(10_000);
    expect(r.capacity).toBe(0);
    const d = bytes(9000, 4);
    expect(r.write(0, d, 0, 3000)).toBe(3000);
    r.consume(2500);
    expect(r.window).toBe(9500);
    // Islands at +2000 and +4000 (relative to RCV.NXT = 3000).
    expect(r.write(2000, d, 5000, 1000)).toBe(0);
    expect(r.write(4000, d, 7000, 1000)).toBe(0);
    expect(r.outOfOrderCount).toBe(2);
    const sack = new Uint32Array(8);
    expect(r.sackBlocks(3000, sack, 4)).toBe(2);
    expect([...sack.subarray(0, 4)]).toEqual([7000, 8000, 5000, 6000]);
    expect(r.write(0, d, 3000, 2000)).toBe(3000); // fills up to the first island's end
    expect(r.write(0, d, 6000, 1000)).toBe(2000); // RCV.NXT = 6000: joins the second island
    expect(r.outOfOrderCount).toBe(0);
    expect([...r.peek()]).toEqual([...d.subarray(2500, 8000)]);
    r.consume(5500);
    expect([r.length, r.capacity]).toEqual([0, 8192]);
  });

  test("receive buffer: SACK blocks go most recently changed first, so each island is repeated (RFC 2018 §4)", () => {
    const r = new ReceiveBuffer(100_000);
    const d = bytes(10_000, 5);
    const sack = new Uint32Array(8);
    const blocks = () => {
      const n = r.sackBlocks(0, sack, 3);
      return [...sack.subarray(0, 2 * n)];
    };
    // Five islands opened in sequence order (a hole before each).
    for (let i = 0; i < 5; i++) expect(r.write(1000 + 1000 * i, d, 0, 500)).toBe(0);
    expect(blocks()).toEqual([5000, 5500, 4000, 4500, 3000, 3500]);
    // The second island grows: it comes first, then the two reported just before it.
    expect(r.write(2500, d, 0, 100)).toBe(0);
    expect(r.appendedToLatestIsland).toBe(false);
    expect(blocks()).toEqual([2000, 2600, 5000, 5500, 4000, 4500]);
    expect(r.write(2600, d, 0, 100)).toBe(0);
    expect(r.appendedToLatestIsland).toBe(true);
    // Joining the fourth and fifth islands: one block, first; the ones it swallowed leave the list.
    expect(r.write(4500, d, 0, 500)).toBe(0);
    expect(r.appendedToLatestIsland).toBe(false);
    expect(blocks()).toEqual([4000, 5500, 2000, 2700, 3000, 3500]);
    // RCV.NXT reaches past the first island: offsets shift, the order stays.
    expect(r.write(0, d, 0, 1500)).toBe(1500);
    expect(r.sackBlocks(1500, sack, 4)).toBe(3);
    expect([...sack.subarray(0, 6)]).toEqual([4000, 5500, 2000, 2700, 3000, 3500]);
  });

  test("receive buffer: the number of islands is bounded", () => {
    const r = new ReceiveBuffer(100_000);
    const d = bytes(10);
    for (let i = 0; i < 32; i++) expect(r.write(100 + 20 * i, d, 0, 1)).toBe(0);
    expect(r.write(5000, d, 0, 1)).toBe(-1);
    expect(r.write(100 + 20 * 31 + 1, d, 0, 1)).toBe(0); // touches an island: accepted
    expect(r.outOfOrderCount).toBe(32);
  });

  test("sequence arithmetic wraps; window scale fits the buffer", () => {
    expect(seqLt(0xfffffff0, 5)).toBe(true);
    expect(seqGt(5, 0xfffffff0)).toBe(true);
    expect([65535, 65536, 1 << 20, 4 << 20, 1 << 30, 2 ** 31].map(windowScaleFor)).toEqual([0, 1, 5, 7, 14, 14]);
  });

  test("1,000 idle flows allocate no buffer storage", () => {
    const h = harness({ bufferSize: 4 << 20 });
    const peer = new Uint8Array([10, 0, 0, 2]);
    const dst = new Uint8Array([1, 1, 1, 1]);
    for (let i = 0; i < 1000; i++) {
      h.layer.input(peer, dst, buildSegment(peer, dst, { seq: i, flags: TCP_SYN, srcPort: 1000 + i, dstPort: 443 }));
    }
    expect(h.layer.liveConnections).toBe(1000);
    for (const { conn } of h.connects) conn.accept();
    const synAcks = h.out.take();
    expect(synAcks.length).toBe(1000);
    for (const [i, sa] of synAcks.entries()) {
      const ack = buildSegment(peer, dst, {
        seq: i + 1,
        ack: sa.seq + 1,
        flags: TCP_ACK,
        srcPort: 1000 + i,
        dstPort: 443,
      });
      h.layer.input(peer, dst, ack);
    }
    let storage = 0;
    for (const { conn } of h.connects) {
      expect(conn.state).toBe("ESTABLISHED");
      const c = conn as unknown as { sendBuf: SendBuffer; recvBuf: ReceiveBuffer };
      storage += c.sendBuf.capacity + c.recvBuf.capacity;
    }
    expect(storage).toBe(0);
  });

  test("IPv6 flows: MSS from mss6, 18-unit flow keys, checksums over the v6 pseudo header", () => {
    const h = harness();
    const peer6 = new Uint8Array(16).fill(0x20);
    const local6 = new Uint8Array(16).fill(0x30);
    h.layer.input(peer6, local6, buildSegment(peer6, local6, { seq: 7, flags: TCP_SYN }));
    const { conn, flow } = h.connects[0]!;
    expect(flow.src.length).toBe(16);
    conn.accept();
    const sa = h.out.one();
    expect(sa.options.mss).toBe(1400);
    expect([...sa.src]).toEqual([...local6]);
    h.layer.input(peer6, local6, buildSegment(peer6, local6, { seq: 8, ack: sa.seq + 1, flags: TCP_ACK }));
    expect(conn.state).toBe("ESTABLISHED");
    // Default MSS for IPv6 without an MSS option is 1220 (RFC 9293 §3.7.1 / RFC 8200 MTU).
    expect((conn as unknown as { debug: { sendMss: number } }).debug.sendMss).toBe(1220);
  });
});
