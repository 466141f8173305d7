import { beforeEach, describe, expect, test } from "bun:test";
import { VirtualClock } from "../../src/util/clock.ts";
import { emitIpv4Header, IPV4_MF, Ipv4View, writeIpv4HeaderChecksum } from "../../src/wire/ipv4.ts";
import { emitIpv6FragmentHeader, emitIpv6Header, Ipv6View } from "../../src/wire/ipv6.ts";
import { Reassembler } from "../../src/wire/reassembly.ts";

const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const SRC4 = Uint8Array.of(10, 0, 0, 2);
const DST4 = Uint8Array.of(10, 0, 0, 1);
const SRC6 = Uint8Array.from(Buffer.from("fd000000000000000000000000000002", "hex"));
const DST6 = Uint8Array.from(Buffer.from("fd000000000000000000000000000001", "hex"));

/** 40 bytes of data: 0, 1, 2, ... */
const DATA = Uint8Array.from({ length: 40 }, (_, i) => i);

function frag4(id: number, offset: number, len: number, more: boolean, data = DATA): Ipv4View {
  const b = new Uint8Array(20 + len);
  emitIpv4Header(b, 0, SRC4, DST4, 17, 20 + len, id, (more ? IPV4_MF : 0) | (offset >> 3), 64);
  b.set(data.subarray(offset, offset + len), 20);
  return new Ipv4View(b);
}

function whole4(id: number): string {
  const b = new Uint8Array(60);
  emitIpv4Header(b, 0, SRC4, DST4, 17, 60, id, 0, 64);
  b.set(DATA, 20);
  return toHex(b);
}

function frag6(id: number, offset: number, len: number, more: boolean, data = DATA): Ipv6View {
  const b = new Uint8Array(48 + len);
  emitIpv6Header(b, 0, SRC6, DST6, 44, 8 + len, 64);
  emitIpv6FragmentHeader(b, 40, 17, offset, more, id);
  b.set(data.subarray(offset, offset + len), 48);
  const v = new Ipv6View(b);
  expect(v.walk()).toBeNull();
  return v;
}

function whole6(): string {
  const b = new Uint8Array(80);
  emitIpv6Header(b, 0, SRC6, DST6, 17, 40, 64);
  b.set(DATA, 40);
  return toHex(b);
}

let clock: VirtualClock;
let drops: Record<string, number>;
let r: Reassembler;

beforeEach(() => {
  clock = new VirtualClock();
  drops = {};
  r = new Reassembler(clock, (reason) => {
    drops[reason] = (drops[reason] ?? 0) + 1;
  });
});

describe("IPv4 reassembly", () => {
  test("in order", () => {
    expect(r.inputV4(frag4(7, 0, 16, true))).toBeNull();
    expect(r.inputV4(frag4(7, 16, 16, true))).toBeNull();
    const out = r.inputV4(frag4(7, 32, 8, false));
    expect(toHex(out as Uint8Array)).toBe(whole4(7));
    expect(Ipv4View.check(out as Uint8Array)).toBeNull();
    expect(r.inProgress).toBe(0);
    expect(drops).toEqual({});
  });

  test("out of order, interleaved with another datagram", () => {
    expect(r.inputV4(frag4(8, 32, 8, false))).toBeNull();
    expect(r.inputV4(frag4(9, 16, 16, true))).toBeNull();
    expect(r.inputV4(frag4(8, 16, 16, true))).toBeNull();
    expect(r.inProgress).toBe(2);
    expect(toHex(r.inputV4(frag4(8, 0, 16, true)) as Uint8Array)).toBe(whole4(8));
    expect(r.inProgress).toBe(1);
  });

  test("exact duplicate is dropped alone; overlap abandons the datagram", () => {
    r.inputV4(frag4(1, 0, 16, true));
    expect(r.inputV4(frag4(1, 0, 16, true))).toBeNull();
    expect(drops).toEqual({ "frag-duplicate": 1 });
    expect(r.inputV4(frag4(1, 8, 16, true))).toBeNull();
    expect(drops["frag-overlap"]).toBe(1);
    expect(r.inProgress).toBe(0);
    // The rest of the datagram cannot complete it any more.
    expect(r.inputV4(frag4(1, 16, 16, true))).toBeNull();
    expect(r.inputV4(frag4(1, 32, 8, false))).toBeNull();
    expect(r.inProgress).toBe(1);
  });

  test("inconsistent last fragment, bad lengths, size limit", () => {
    r.inputV4(frag4(2, 32, 8, false));
    expect(r.inputV4(frag4(2, 24, 8, false))).toBeNull();
    expect(drops["frag-inconsistent"]).toBe(1);
    // Non-last fragment not a multiple of 8.
    expect(r.inputV4(frag4(3, 0, 12, true))).toBeNull();
    expect(drops["frag-bad-length"]).toBe(1);
    // Beyond 65535 bytes in total.
    const big = new Uint8Array(20 + 8);
    emitIpv4Header(big, 0, SRC4, DST4, 17, 28, 4, 0x1fff, 64);
    expect(r.inputV4(new Ipv4View(big))).toBeNull();
    expect(drops["frag-too-big"]).toBe(1);
    // A fragment past the known end.
    r.inputV4(frag4(5, 8, 8, false));
    expect(r.inputV4(frag4(5, 16, 8, true))).toBeNull();
    expect(drops["frag-inconsistent"]).toBe(2);
  });

  test("a longer header on the offset-0 fragment cannot push the result past 65535 bytes", () => {
    // Offset 0 with 40 bytes of options (IHL 15), the rest with a plain 20-byte header: each
    // fragment alone fits, the reassembled datagram would be 60 + 65512 = 65572 bytes.
    const first = () => {
      const b = new Uint8Array(60 + 8);
      emitIpv4Header(b, 0, SRC4, DST4, 17, 68, 21, IPV4_MF, 64);
      b[0] = 0x4f;
      writeIpv4HeaderChecksum(b, 0);
      expect(Ipv4View.check(b)).toBeNull();
      return new Ipv4View(b);
    };
    const rest = () => {
      const b = new Uint8Array(20 + 65504);
      emitIpv4Header(b, 0, SRC4, DST4, 17, b.length, 21, 1, 64);
      expect(Ipv4View.check(b)).toBeNull();
      return new Ipv4View(b);
    };
    expect(r.inputV4(first())).toBeNull();
    expect(r.inputV4(rest())).toBeNull();
    expect(r.inputV4(rest())).toBeNull(); // a new reassembly: the first one was abandoned
    expect(r.inputV4(first())).toBeNull();
    expect(drops).toEqual({ "frag-too-big": 2 });
    expect(r.inProgress).toBe(0);
  });

  test("times out after 30 s", () => {
    r.inputV4(frag4(1, 0, 16, true));
    clock.advance(10_000);
    r.inputV4(frag4(2, 0, 16, true));
    clock.advance(19_999);
    expect(r.inProgress).toBe(2);
    clock.advance(1);
    expect(r.inProgress).toBe(1);
    expect(drops).toEqual({ "frag-timeout": 1 });
    clock.advance(10_000);
    expect(r.inProgress).toBe(0);
    expect(drops).toEqual({ "frag-timeout": 2 });
    // Late fragments of the first datagram start a new (incomplete) reassembly.
    expect(r.inputV4(frag4(1, 16, 24, false))).toBeNull();
  });

  test("bounded number of datagrams: the oldest is evicted", () => {
    const small = new Reassembler(clock, (reason) => (drops[reason] = (drops[reason] ?? 0) + 1), { maxDatagrams: 3 });
    for (let id = 0; id < 4; id++) small.inputV4(frag4(id, 0, 16, true));
    expect(small.inProgress).toBe(3);
    expect(drops["frag-evicted"]).toBe(1);
    // id 0 was evicted: completing it is impossible, completing id 1 works.
    small.inputV4(frag4(1, 16, 24, false));
    expect(small.inProgress).toBe(2);
  });

  test("bounded fragments per datagram", () => {
    const small = new Reassembler(clock, (reason) => (drops[reason] = (drops[reason] ?? 0) + 1), { maxFragments: 2 });
    small.inputV4(frag4(1, 0, 8, true));
    small.inputV4(frag4(1, 8, 8, true));
    expect(small.inputV4(frag4(1, 16, 8, true))).toBeNull();
    expect(drops["frag-too-many"]).toBe(1);
    expect(small.inProgress).toBe(0);
  });
});

describe("IPv6 reassembly", () => {
  test("in order and out of order rebuild the unfragmented packet", () => {
    expect(r.inputV6(frag6(0x11223344, 0, 16, true))).toBeNull();
    expect(r.inputV6(frag6(0x11223344, 16, 16, true))).toBeNull();
    expect(toHex(r.inputV6(frag6(0x11223344, 32, 8, false)) as Uint8Array)).toBe(whole6());
    expect(r.inputV6(frag6(5, 32, 8, false))).toBeNull();
    expect(r.inputV6(frag6(5, 0, 16, true))).toBeNull();
    expect(toHex(r.inputV6(frag6(5, 16, 16, true)) as Uint8Array)).toBe(whole6());
    expect(drops).toEqual({});
  });

  test("keeps extension headers before the fragment header and rewrites their next header", () => {
    const mk = (offset: number, len: number, more: boolean) => {
      const b = new Uint8Array(56 + len);
      emitIpv6Header(b, 0, SRC6, DST6, 60, 16 + len, 64);
      b.set([44, 0, 1, 4, 0, 0, 0, 0], 40); // destination options -> fragment
      emitIpv6FragmentHeader(b, 48, 17, offset, more, 9);
      b.set(DATA.subarray(offset, offset + len), 56);
      const v = new Ipv6View(b);
      v.walk();
      return v;
    };
    r.inputV6(mk(24, 16, false));
    const out = r.inputV6(mk(0, 24, true)) as Uint8Array;
    const expected = new Uint8Array(88);
    emitIpv6Header(expected, 0, SRC6, DST6, 60, 48, 64);
    expected.set([17, 0, 1, 4, 0, 0, 0, 0], 40);
    expected.set(DATA, 48);
    expect(toHex(out)).toBe(toHex(expected));
  });

  test("extension headers on the offset-0 fragment cannot push the result past 65535 bytes", () => {
    // The first fragment carries 2048 bytes of destination options, the last one none: each
    // fragment fits on its own, the result would be 40 + 2048 + 65480 = 67568 bytes, its payload
    // length wrapping to 2008.
    const first = () => {
      const b = new Uint8Array(40 + 2048 + 8 + 1232);
      emitIpv6Header(b, 0, SRC6, DST6, 60, b.length - 40, 64);
      b[40] = 44;
      b[41] = 255; // (255 + 1) * 8 bytes, padded with Pad1 options (zeros)
      emitIpv6FragmentHeader(b, 40 + 2048, 17, 0, true, 77);
      const v = new Ipv6View(b);
      expect(v.walk()).toBeNull();
      return v;
    };
    const last = () => frag6(77, 1232, 64248, false, new Uint8Array(65480));
    expect(r.inputV6(first())).toBeNull();
    expect(r.inputV6(last())).toBeNull();
    expect(r.inputV6(last())).toBeNull();
    expect(r.inputV6(first())).toBeNull();
    expect(drops).toEqual({ "frag-too-big": 2 });
    expect(r.inProgress).toBe(0);
  });

  test("overlap drops the whole datagram (RFC 5722)", () => {
    r.inputV6(frag6(3, 0, 16, true));
    r.inputV6(frag6(3, 32, 8, false));
    expect(r.inputV6(frag6(3, 8, 24, true))).toBeNull();
    expect(drops).toEqual({ "frag-overlap": 1 });
    expect(r.inputV6(frag6(3, 16, 16, true))).toBeNull();
    expect(r.inProgress).toBe(1);
  });

  test("times out", () => {
    r.inputV6(frag6(3, 0, 16, true));
    clock.advance(30_000);
    expect(r.inProgress).toBe(0);
    expect(drops).toEqual({ "frag-timeout": 1 });
    expect(clock.nextDeadline()).toBe(-1);
  });
});
