import { describe, expect, test } from "bun:test";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, writeTcpChecksum } from "../../src/wire/tcp.ts";
import {
  buildSegment,
  establish,
  harness,
  PEER,
  PEER_ISS,
  PEER_PORT,
  REMOTE,
  REMOTE_PORT,
  record,
} from "./tcp-harness.ts";

describe("TCP handshake", () => {
  test("passive open: SYN -> onConnect, retransmitted SYN absorbed, accept -> SYN-ACK echoing the offered options", () => {
    const h = harness();
    h.peer({
      seq: PEER_ISS,
      flags: TCP_SYN,
      window: 64240,
      mss: 1460,
      windowScale: 7,
      sackPermitted: true,
      ts: [100, 0],
    });
    expect(h.connects.length).toBe(1);
    const { flow, conn } = h.connects[0]!;
    expect([...flow.src]).toEqual([...PEER]);
    expect([flow.srcPort, flow.dstPort]).toEqual([PEER_PORT, REMOTE_PORT]);
    expect([...flow.dst]).toEqual([...REMOTE]);
    expect(conn.state).toBe("SYN-RECEIVED");
    expect(h.out.sent.length).toBe(0);
    // The peer retransmits its SYN while the gateway is still connecting: absorbed.
    h.clock.advance(1000);
    h.peer({
      seq: PEER_ISS,
      flags: TCP_SYN,
      window: 64240,
      mss: 1460,
      windowScale: 7,
      sackPermitted: true,
      ts: [1100, 0],
    });
    expect(h.connects.length).toBe(1);
    expect(h.out.sent.length).toBe(0);
    expect(h.layer.liveConnections).toBe(1);
    expect(h.layer.stats.drops["tcp-syn-retransmit-absorbed"]).toBe(1);

    const rec = record(conn);
    conn.accept();
    const sa = h.out.one();
    expect(sa.flags).toBe(TCP_SYN | TCP_ACK);
    expect(sa.ack).toBe(PEER_ISS + 1);
    expect([sa.srcPort, sa.dstPort]).toEqual([REMOTE_PORT, PEER_PORT]);
    expect(sa.window).toBe(65535); // never scaled in a SYN (RFC 7323 §2.2)
    expect(sa.options.mss).toBe(1420);
    expect(sa.options.windowScale).toBe(1); // 65536-byte buffer needs shift 1
    expect(sa.options.sackPermitted).toBe(true);
    expect(sa.options.hasTimestamp).toBe(true);
    expect(sa.options.tsEcr).toBe(100);

    h.peer({ seq: PEER_ISS + 1, ack: sa.seq + 1, flags: TCP_ACK, window: 502, ts: [1200, sa.options.tsVal] });
    expect(conn.state).toBe("ESTABLISHED");
    expect(rec.established).toBe(1);
    const d = (conn as unknown as { debug: Record<string, number | boolean> }).debug;
    expect(d.sndWnd).toBe(502 * 128);
    expect(d.sendMss).toBe(1420 - 12);
    expect(d.sndShift).toBe(7);
    expect(d.rcvShift).toBe(1);
    expect(d.tsEnabled).toBe(true);
    expect(d.sackEnabled).toBe(true);
    expect(h.out.sent.length).toBe(0);
  });

  test("passive open without options: no WS/TS/SACK in the SYN-ACK, default MSS 536", () => {
    const h = harness();
    h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 8192 });
    const { conn } = h.connects[0]!;
    conn.accept();
    const sa = h.out.one();
    expect(sa.options.mss).toBe(1420);
    expect(sa.options.windowScale).toBe(-1);
    expect(sa.options.sackPermitted).toBe(false);
    expect(sa.options.hasTimestamp).toBe(false);
    expect(sa.tcp.length).toBe(24);
    h.peer({ seq: PEER_ISS + 1, ack: sa.seq + 1, flags: TCP_ACK, window: 8192 });
    const d = (conn as unknown as { debug: Record<string, number> }).debug;
    expect([d.sendMss, d.sndWnd, d.sndShift, d.rcvShift]).toEqual([536, 8192, 0, 0]);
    // Unscaled: a 65536 buffer advertises 65535.
    expect(conn.write(new Uint8Array(10))).toBe(10);
    const seg = h.out.one();
    expect([seg.seq, seg.ack, seg.flags, seg.window]).toEqual([sa.seq + 1, PEER_ISS + 1, TCP_ACK | TCP_PSH, 65535]);
  });

  test("refuse: RST|ACK with SEQ=0, ACK=SYN+1; onClosed('refused'); the flow leaves the table", () => {
    const h = harness();
    h.peer({ seq: 0xfffffffe, flags: TCP_SYN });
    const { conn } = h.connects[0]!;
    const rec = record(conn);
    conn.refuse();
    const rst = h.out.one();
    expect([rst.flags, rst.seq, rst.ack, rst.window]).toEqual([TCP_RST | TCP_ACK, 0, 0xffffffff, 0]);
    expect(rec.closed).toEqual(["refused"]);
    expect(conn.state).toBe("CLOSED");
    expect(h.layer.liveConnections).toBe(0);
    conn.abort();
    expect(rec.closed).toEqual(["refused"]);
    expect(h.out.sent.length).toBe(0);
  });

  test("a handshake the gateway never answers times out with a RST", () => {
    const h = harness({ synTimeoutMs: 5000 });
    h.peer({ seq: PEER_ISS, flags: TCP_SYN });
    const rec = record(h.connects[0]!.conn);
    h.clock.advance(4999);
    expect(h.out.sent.length).toBe(0);
    h.clock.advance(1);
    const rst = h.out.one();
    expect([rst.flags, rst.seq, rst.ack]).toEqual([TCP_RST | TCP_ACK, 0, PEER_ISS + 1]);
    expect(rec.closed).toEqual(["timeout"]);
    expect(h.layer.liveConnections).toBe(0);
  });

  test("the SYN-ACK is retransmitted with backoff; a repeated SYN repeats it at once", () => {
    const h = harness();
    h.peer({ seq: PEER_ISS, flags: TCP_SYN });
    const { conn } = h.connects[0]!;
    conn.accept();
    const sa = h.out.one();
    h.clock.advance(999);
    expect(h.out.sent.length).toBe(0);
    h.clock.advance(1);
    const r1 = h.out.one();
    expect([r1.flags, r1.seq, r1.ack]).toEqual([TCP_SYN | TCP_ACK, sa.seq, PEER_ISS + 1]);
    h.clock.advance(1999);
    expect(h.out.sent.length).toBe(0);
    h.clock.advance(1);
    expect(h.out.one().flags).toBe(TCP_SYN | TCP_ACK);
    h.peer({ seq: PEER_ISS, flags: TCP_SYN });
    expect(h.out.one().flags).toBe(TCP_SYN | TCP_ACK);
    expect(h.layer.stats.retransmits).toBe(3);
    h.peer({ seq: PEER_ISS + 1, ack: sa.seq + 1, flags: TCP_ACK });
    expect(conn.state).toBe("ESTABLISHED");
  });

  test("an ACK that does not cover our SYN in SYN-RECEIVED is answered with <SEQ=SEG.ACK><CTL=RST>", () => {
    const h = harness();
    h.peer({ seq: PEER_ISS, flags: TCP_SYN });
    const { conn } = h.connects[0]!;
    conn.accept();
    const sa = h.out.one();
    h.peer({ seq: PEER_ISS + 1, ack: sa.seq + 5, flags: TCP_ACK });
    const rst = h.out.one();
    expect([rst.flags, rst.seq]).toEqual([TCP_RST, (sa.seq + 5) >>> 0]);
    expect(conn.state).toBe("SYN-RECEIVED");
  });

  test("active open: SYN with all options, SYN-ACK -> ACK, ESTABLISHED", () => {
    const h = harness();
    const conn = h.layer.connect({ src: REMOTE, srcPort: REMOTE_PORT, dst: PEER, dstPort: PEER_PORT });
    const rec = record(conn);
    expect(conn.state).toBe("SYN-SENT");
    expect(h.layer.liveConnections).toBe(1);
    const syn = h.out.one();
    expect([syn.flags, syn.ack, syn.window, syn.srcPort, syn.dstPort]).toEqual([TCP_SYN, 0, 65535, 80, 40000]);
    expect([syn.options.mss, syn.options.windowScale, syn.options.sackPermitted, syn.options.hasTimestamp]).toEqual([
      1420,
      1,
      true,
      true,
    ]);
    h.peer({
      seq: 5000,
      ack: syn.seq + 1,
      flags: TCP_SYN | TCP_ACK,
      window: 1000,
      mss: 1200,
      windowScale: 2,
      sackPermitted: true,
      ts: [77, syn.options.tsVal],
    });
    const ack = h.out.one();
    expect([ack.flags, ack.seq, ack.ack, ack.window]).toEqual([TCP_ACK, syn.seq + 1, 5001, 32767]);
    expect(ack.options.tsEcr).toBe(77);
    expect(conn.state).toBe("ESTABLISHED");
    expect(rec.established).toBe(1);
    const d = (conn as unknown as { debug: Record<string, number> }).debug;
    expect([d.sndWnd, d.sendMss, d.sndShift]).toEqual([1000, 1188, 2]);
  });

  test("active open refused by the peer's RST|ACK; a bad ACK in SYN-SENT gets a RST", () => {
    const h = harness();
    const conn = h.layer.connect({ src: REMOTE, srcPort: REMOTE_PORT, dst: PEER, dstPort: PEER_PORT });
    const rec = record(conn);
    const syn = h.out.one();
    h.peer({ seq: 0, ack: syn.seq + 7, flags: TCP_ACK });
    const rst = h.out.one();
    expect([rst.flags, rst.seq]).toEqual([TCP_RST, syn.seq + 7]);
    expect(conn.state).toBe("SYN-SENT");
    h.peer({ seq: 0, ack: syn.seq + 1, flags: TCP_RST | TCP_ACK });
    expect(rec.closed).toEqual(["refused"]);
    expect(h.layer.liveConnections).toBe(0);
    expect(h.out.sent.length).toBe(0);
  });

  test("active open: SYN retransmitted at 1 s, 2 s, 4 s; handshake deadline closes it", () => {
    const h = harness({ synTimeoutMs: 10_000 });
    const conn = h.layer.connect({ src: REMOTE, srcPort: REMOTE_PORT, dst: PEER, dstPort: PEER_PORT });
    const rec = record(conn);
    const syn = h.out.one();
    const times: number[] = [];
    for (let t = 0; t < 10_000; t += 1) {
      h.clock.advance(1);
      for (const s of h.out.take()) {
        expect([s.flags, s.seq]).toEqual([TCP_SYN, syn.seq]);
        times.push(h.clock.now());
      }
    }
    expect(times).toEqual([1000, 3000, 7000]);
    expect(rec.closed).toEqual(["timeout"]);
    expect(h.layer.liveConnections).toBe(0);
  });

  test("simultaneous open (RFC 9293 figure 8)", () => {
    const h = harness();
    const conn = h.layer.connect({ src: REMOTE, srcPort: REMOTE_PORT, dst: PEER, dstPort: PEER_PORT });
    const rec = record(conn);
    const syn = h.out.one();
    h.peer({ seq: 300, flags: TCP_SYN, mss: 1400 });
    const sa = h.out.one();
    expect([sa.flags, sa.seq, sa.ack]).toEqual([TCP_SYN | TCP_ACK, syn.seq, 301]);
    expect(conn.state).toBe("SYN-RECEIVED");
    h.peer({ seq: 300, ack: syn.seq + 1, flags: TCP_SYN | TCP_ACK, mss: 1400 });
    const ack = h.out.one();
    expect([ack.flags, ack.seq, ack.ack]).toEqual([TCP_ACK, syn.seq + 1, 301]);
    expect(conn.state).toBe("ESTABLISHED");
    expect(rec.established).toBe(1);
  });

  test("unknown flow: RST per RFC 9293 §3.10.7.1, never in reply to a RST", () => {
    const h = harness();
    h.peer({ seq: 10, ack: 777, flags: TCP_ACK });
    const r1 = h.out.one();
    expect([r1.flags, r1.seq, r1.ack, r1.srcPort, r1.dstPort]).toEqual([TCP_RST, 777, 0, REMOTE_PORT, PEER_PORT]);
    h.peer({ seq: 50, flags: TCP_FIN, payload: new Uint8Array(10) });
    const r2 = h.out.one();
    expect([r2.flags, r2.seq, r2.ack]).toEqual([TCP_RST | TCP_ACK, 0, 61]);
    h.peer({ seq: 50, flags: TCP_RST });
    h.peer({ seq: 50, ack: 3, flags: TCP_RST | TCP_ACK });
    expect(h.out.sent.length).toBe(0);
    expect(h.layer.liveConnections).toBe(0);
    expect(h.connects.length).toBe(0);
    expect(h.layer.stats.drops["tcp-unknown-flow"]).toBe(2);
    expect(h.layer.stats.drops["tcp-rst-unknown-flow"]).toBe(2);
  });

  test("bad checksum and malformed options are counted drops", () => {
    const h = harness();
    const seg = buildSegment(PEER, REMOTE, { seq: 1, flags: TCP_SYN });
    seg[16] ^= 0xff;
    h.layer.input(PEER, REMOTE, seg);
    h.layer.input(PEER, REMOTE, new Uint8Array(10));
    const badOpt = buildSegment(PEER, REMOTE, { seq: 1, flags: TCP_SYN, mss: 1460 });
    badOpt[21] = 3; // MSS option with length 3
    badOpt[16] = 0;
    badOpt[17] = 0;
    writeTcpChecksum(badOpt, 0, badOpt.length, PEER, REMOTE);
    h.layer.input(PEER, REMOTE, badOpt);
    expect(h.layer.stats.drops).toEqual({ "tcp-checksum": 1, "tcp-short": 1, "tcp-option-mss": 1 });
    expect(h.layer.stats.segmentsIn).toBe(3);
    expect(h.connects.length).toBe(0);
    expect(h.out.sent.length).toBe(0);
  });

  test("establish helper sanity: ISS comes from the injected Random", () => {
    const a = establish(harness({ seed: 3 }));
    const b = establish(harness({ seed: 3 }));
    expect(a.iss).toBe(b.iss);
    expect(a.conn.state).toBe("ESTABLISHED");
    expect(a.rec.established).toBe(1);
  });
});

describe("TCP passive open dropped silently", () => {
  test("dropSilently: nothing is sent, the flow is forgotten, the ISN was reported, a new SYN starts afresh", () => {
    const h = harness();
    h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 64240, mss: 1460 });
    const { conn } = h.connects[0]!;
    expect(conn.initialPeerSeq).toBe(PEER_ISS);
    const rec = record(conn);
    conn.dropSilently();
    expect(h.out.sent.length).toBe(0);
    expect(rec.closed).toEqual(["refused"]);
    expect(h.layer.liveConnections).toBe(0);
    // The peer retries (after ignoring or missing the ICMP error): a fresh connection.
    h.clock.advance(1000);
    h.peer({ seq: PEER_ISS, flags: TCP_SYN, window: 64240, mss: 1460 });
    expect(h.connects.length).toBe(2);
    expect(h.out.sent.length).toBe(0);
  });
});
