import { describe, expect, test } from "bun:test";
import {
  messageType,
  parseCookieReply,
  parseInitiation,
  parseResponse,
  serializeCookieReply,
  serializeInitiation,
  serializeResponse,
  transportCounterHigh,
  transportCounterLow,
  transportReceiver,
  writeTransportHeader,
} from "../../src/wireguard/messages.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const bytes = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);

describe("WireGuard message layouts", () => {
  test("initiation: 148 bytes, exact field offsets, round trip", () => {
    const m = {
      sender: 0x11223344,
      ephemeral: bytes(32, 0xe1),
      encryptedStatic: bytes(48, 0x51),
      encryptedTimestamp: bytes(28, 0x71),
      mac1: bytes(16, 0xa1),
      mac2: bytes(16, 0xa2),
    };
    const b = serializeInitiation(m);
    expect(b.length).toBe(148);
    expect(hex(b)).toBe(
      "01000000" + "44332211" + "e1".repeat(32) + "51".repeat(48) + "71".repeat(28) + "a1".repeat(16) + "a2".repeat(16),
    );
    const p = parseInitiation(b);
    if (typeof p === "string") throw new Error(p);
    expect(p.sender).toBe(0x11223344);
    expect(hex(p.ephemeral)).toBe("e1".repeat(32));
    expect(hex(p.encryptedStatic)).toBe("51".repeat(48));
    expect(hex(p.encryptedTimestamp)).toBe("71".repeat(28));
    expect(hex(p.mac1)).toBe("a1".repeat(16));
    expect(hex(p.mac2)).toBe("a2".repeat(16));
  });

  test("response: 92 bytes, exact layout", () => {
    const b = serializeResponse({
      sender: 1,
      receiver: 0xfffffffe,
      ephemeral: bytes(32, 0xe2),
      encryptedNothing: bytes(16, 0x0e),
      mac1: bytes(16, 0xb1),
      mac2: bytes(16, 0xb2),
    });
    expect(hex(b)).toBe(
      "02000000" + "01000000" + "feffffff" + "e2".repeat(32) + "0e".repeat(16) + "b1".repeat(16) + "b2".repeat(16),
    );
    const p = parseResponse(b);
    if (typeof p === "string") throw new Error(p);
    expect([p.sender, p.receiver]).toEqual([1, 0xfffffffe]);
  });

  test("cookie reply: 64 bytes, exact layout", () => {
    const b = serializeCookieReply({ receiver: 0x01020304, nonce: bytes(24, 0xcc), encryptedCookie: bytes(32, 0xdd) });
    expect(hex(b)).toBe("03000000" + "04030201" + "cc".repeat(24) + "dd".repeat(32));
    const p = parseCookieReply(b);
    if (typeof p === "string") throw new Error(p);
    expect(p.receiver).toBe(0x01020304);
  });

  test("transport header: type 4, receiver, 64-bit little-endian counter", () => {
    const b = new Uint8Array(32);
    writeTransportHeader(b, 0xdeadbeef, 0x0001_0203_0405);
    expect(hex(b.subarray(0, 16))).toBe("04000000" + "efbeadde" + "0504030201000000");
    expect(transportReceiver(b)).toBe(0xdeadbeef);
    expect(transportCounterLow(b)).toBe(0x02030405);
    expect(transportCounterHigh(b)).toBe(0x0001);
  });

  test("strict type and length checks", () => {
    const init = new Uint8Array(148);
    init[0] = 1;
    expect(messageType(init)).toBe(1);
    expect(messageType(init.subarray(0, 147))).toBe("badLength");
    expect(messageType(new Uint8Array(149).fill(1, 0, 1))).toBe("badLength");
    const reserved = init.slice();
    reserved[2] = 1;
    expect(messageType(reserved)).toBe("badType");
    expect(messageType(new Uint8Array(3))).toBe("short");
    expect(messageType(new Uint8Array(0))).toBe("short");
    expect(messageType(Uint8Array.of(0, 0, 0, 0))).toBe("badType");
    expect(messageType(Uint8Array.of(5, 0, 0, 0))).toBe("badType");
    const resp = new Uint8Array(92);
    resp[0] = 2;
    expect(messageType(resp)).toBe(2);
    expect(messageType(resp.subarray(0, 91))).toBe("badLength");
    const cookie = new Uint8Array(64);
    cookie[0] = 3;
    expect(messageType(cookie)).toBe(3);
    expect(messageType(cookie.subarray(0, 63))).toBe("badLength");
    const keepalive = new Uint8Array(32);
    keepalive[0] = 4;
    expect(messageType(keepalive)).toBe(4);
    expect(messageType(keepalive.subarray(0, 31))).toBe("short");
    expect(parseInitiation(resp)).toBe("badType");
    expect(parseResponse(init)).toBe("badType");
    expect(parseResponse(resp.subarray(0, 91))).toBe("badLength");
    expect(() => serializeInitiation({ ...fakeInit(), ephemeral: new Uint8Array(31) })).toThrow(RangeError);
  });
});

function fakeInit() {
  return {
    sender: 0,
    ephemeral: bytes(32, 0),
    encryptedStatic: bytes(48, 0),
    encryptedTimestamp: bytes(28, 0),
    mac1: bytes(16, 0),
    mac2: bytes(16, 0),
  };
}
