import { describe, expect, test } from "bun:test";
import {
  emitTcpHeader,
  parseTcpOptions,
  TCP_ACK,
  TCP_SYN,
  TcpHeaderFields,
  TcpOptions,
  TcpView,
  tcpChecksumValid,
  tcpHeaderLength,
  writeTcpChecksum,
} from "../../src/wire/tcp.ts";

const SRC = new Uint8Array([10, 0, 0, 2]);
const DST = new Uint8Array([10, 0, 0, 1]);

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

describe("TCP wire view", () => {
  test("emits a SYN with MSS, SACK-permitted, timestamps and window scale, byte for byte", () => {
    const h = new TcpHeaderFields();
    h.srcPort = 40000;
    h.dstPort = 80;
    h.seq = 0x01020304;
    h.ack = 0;
    h.flags = TCP_SYN;
    h.window = 64240;
    h.mss = 1460;
    h.sackPermitted = true;
    h.hasTimestamp = true;
    h.tsVal = 0xaabbccdd;
    h.tsEcr = 0;
    h.windowScale = 7;
    expect(tcpHeaderLength(h)).toBe(40);
    const buf = new Uint8Array(40);
    expect(emitTcpHeader(buf, 0, h)).toBe(40);
    expect(hex(buf)).toBe(
      "9c400050" + // ports
        "01020304" + // seq
        "00000000" + // ack
        "a002" + // data offset 10, SYN
        "faf0" + // window
        "00000000" + // checksum, urgent
        "020405b4" + // MSS 1460
        "0402080aaabbccdd00000000" + // SACK-permitted, TS
        "01030307", // NOP, WS 7
    );
    writeTcpChecksum(buf, 0, 40, SRC, DST);
    expect(tcpChecksumValid(SRC, DST, buf)).toBe(true);
    buf[39] ^= 1;
    expect(tcpChecksumValid(SRC, DST, buf)).toBe(false);
  });

  test("parses back what it emits, including SACK blocks next to timestamps", () => {
    const h = new TcpHeaderFields();
    h.srcPort = 1;
    h.dstPort = 2;
    h.seq = 0xfffffff0;
    h.ack = 0x10;
    h.flags = TCP_ACK;
    h.window = 500;
    h.hasTimestamp = true;
    h.tsVal = 5;
    h.tsEcr = 6;
    h.sackCount = 4; // only 3 fit next to a timestamp
    for (let i = 0; i < 8; i++) h.sackBlocks[i] = 100 * (i + 1);
    const len = tcpHeaderLength(h);
    expect(len).toBe(20 + 12 + 4 + 24);
    const buf = new Uint8Array(len + 3);
    emitTcpHeader(buf, 0, h);
    buf.set([7, 8, 9], len);
    expect(TcpView.check(buf)).toBeNull();
    const v = new TcpView(buf);
    expect([v.srcPort, v.dstPort, v.seq, v.ack, v.flags, v.window, v.headerLength]).toEqual([
      1,
      2,
      0xfffffff0,
      0x10,
      TCP_ACK,
      500,
      60,
    ]);
    expect([...v.payload]).toEqual([7, 8, 9]);
    const o = new TcpOptions();
    expect(v.options(o)).toBeNull();
    expect([o.hasTimestamp, o.tsVal, o.tsEcr, o.sackCount, o.mss, o.windowScale]).toEqual([true, 5, 6, 3, -1, -1]);
    expect([...o.sackBlocks.subarray(0, 6)]).toEqual([100, 200, 300, 400, 500, 600]);
  });

  test("emits at an offset and four SACK blocks without timestamps", () => {
    const h = new TcpHeaderFields();
    h.flags = TCP_ACK;
    h.sackCount = 4;
    h.sackBlocks.set([1, 2, 3, 4, 5, 6, 7, 8]);
    const buf = new Uint8Array(20 + 60);
    expect(emitTcpHeader(buf, 20, h)).toBe(56);
    expect(hex(buf.subarray(40, 44))).toBe("01010522");
    const o = new TcpOptions();
    expect(parseTcpOptions(buf, 40, 76, o)).toBeNull();
    expect(o.sackCount).toBe(4);
    expect([...o.sackBlocks]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test("rejects malformed headers and options", () => {
    expect(TcpView.check(new Uint8Array(19))).toBe("tcp-short");
    const b = new Uint8Array(24);
    b[12] = 4 << 4;
    expect(TcpView.check(b)).toBe("tcp-data-offset");
    b[12] = 7 << 4;
    expect(TcpView.check(b)).toBe("tcp-header-truncated");
    const o = new TcpOptions();
    const cases: [number[], string | null][] = [
      [[2, 4, 5, 0xb4], null],
      [[2, 3, 5, 1], "tcp-option-mss"],
      [[3, 4, 1, 1], "tcp-option-wscale"],
      [[4, 3, 0, 1], "tcp-option-sack-permitted"],
      [[5, 6, 0, 0, 0, 0], "tcp-option-sack"],
      [[8, 8, 0, 0, 0, 0, 0, 0], "tcp-option-timestamp"],
      [[1, 1, 1, 9], "tcp-option-truncated"],
      [[1, 30, 1, 1], "tcp-option-length"],
      [[99, 1, 1, 1], "tcp-option-length"],
      [[99, 4, 1, 1], null],
      [[0, 99, 99, 99], null],
    ];
    for (const [opt, want] of cases) {
      const buf = new Uint8Array(opt);
      expect(parseTcpOptions(buf, 0, buf.length, o)).toBe(want);
    }
    // Window scale above 14 is clamped (RFC 7323 §2.3).
    expect(parseTcpOptions(new Uint8Array([3, 3, 20, 0]), 0, 4, o)).toBeNull();
    expect(o.windowScale).toBe(14);
  });
});
