// UDP GSO on the outer socket, on loopback: coalesced sends arrive whole and in order, and every way
// GSO can fail falls back without losing a datagram. The batching alone: transport-gso-batch.test.ts.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { afterEach, describe, expect, test } from "bun:test";
import { setSocketBuffer, setUdpSegment, socketFd } from "../../src/transport/sockopt.ts";
import { openUdpTransport, type UdpTransport, type UdpTransportOptions } from "../../src/transport/udp.ts";
import { FULL, numbered } from "./gso-datagrams.ts";

const linux = process.platform === "linux";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

interface Receiver {
  port: number;
  got: Uint8Array[];
}

/** A plain Bun socket on 127.0.0.1 (or ::1) with a big receive buffer that keeps every datagram. */
async function receiver(host = "127.0.0.1"): Promise<Receiver> {
  const got: Uint8Array[] = [];
  const s = await Bun.udpSocket({
    hostname: host,
    port: 0,
    binaryType: "uint8array",
    socket: {
      data(_s, data) {
        got.push(data);
      },
    },
  });
  setSocketBuffer(socketFd(s), "rcv", 8 * 1024 * 1024);
  closers.push(() => s.close());
  return { port: s.port, got };
}

async function sender(opts: UdpTransportOptions = {}, host = "127.0.0.1"): Promise<UdpTransport> {
  const t = await openUdpTransport({ address: host, port: 0 }, opts);
  closers.push(() => t.close());
  return t;
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  for (let i = 0; i < ms / 5 && !cond(); i++) await Bun.sleep(5);
}

/**
 * 600 datagrams in one poll: runs of full-size ones broken by short ones (and a few empty ones),
 * all to `rx`, except every 50th to `other` (which breaks runs by destination).
 */
function burst(
  t: UdpTransport,
  host: string,
  rx: Receiver,
  other: Receiver,
): { toRx: Uint8Array[]; toOther: Uint8Array[] } {
  const toRx: Uint8Array[] = [];
  const toOther: Uint8Array[] = [];
  for (let i = 0; i < 600; i++) {
    const size = i % 97 === 13 ? 0 : i % 9 === 8 ? 60 + (i % 300) : FULL;
    const d = numbered(i, size);
    if (i % 50 === 49) {
      toOther.push(d);
      t.send(d, { address: host, port: other.port });
    } else {
      toRx.push(d);
      t.send(d, { address: host, port: rx.port });
    }
  }
  return { toRx, toOther };
}

function expectSame(got: Uint8Array[], sent: Uint8Array[]): void {
  expect(got.length).toBe(sent.length);
  // One comparison per datagram keeps a failure readable: which one, and its length.
  for (let i = 0; i < sent.length; i++) {
    const g = got[i] as Uint8Array;
    const s = sent[i] as Uint8Array;
    if (g.length !== s.length || !Buffer.from(g).equals(Buffer.from(s))) {
      throw new Error(`datagram ${i}: got ${g.length} bytes, sent ${s.length}`);
    }
  }
}

describe.skipIf(!linux)("UDP GSO on the outer socket (loopback)", () => {
  for (const host of ["127.0.0.1", "::1"]) {
    test(`${host}: a burst of full-size, short and empty datagrams arrives one by one, exact and in order`, async () => {
      const rx = await receiver(host);
      const other = await receiver(host);
      const t = await sender({}, host);
      expect(t.stats.gsoEnabled).toBe(1);
      const { toRx, toOther } = burst(t, host, rx, other);
      await until(() => rx.got.length >= toRx.length && other.got.length >= toOther.length);
      await Bun.sleep(20);
      expectSame(rx.got, toRx);
      expectSame(other.got, toOther);
      expect(t.stats.datagramsOut).toBe(600);
      expect(t.stats.bytesOut).toBe([...toRx, ...toOther].reduce((n, d) => n + d.length, 0));
      expect(t.stats.sendErrors).toBe(0);
      expect(t.stats.gsoBatches).toBeGreaterThan(0);
      // Most datagrams rode in super-datagrams; the segment size is the full-size datagram's.
      expect(t.stats.gsoSegments).toBeGreaterThan(400);
      expect(t.stats.gsoSegmentSize).toBe(FULL);
      expect(t.stats.flushes).toBe(1);
    });
  }

  test("flows of two peers taking turns: each receiver gets its own datagrams in order, coalesced", async () => {
    const rxA = await receiver();
    const rxB = await receiver();
    const t = await sender();
    const toA: Uint8Array[] = [];
    const toB: Uint8Array[] = [];
    for (let i = 0; i < 400; i++) {
      const d = numbered(i, i % 40 === 39 ? 300 : FULL);
      (i % 2 === 0 ? toA : toB).push(d);
      t.send(d, { address: "127.0.0.1", port: i % 2 === 0 ? rxA.port : rxB.port });
    }
    await until(() => rxA.got.length >= 200 && rxB.got.length >= 200);
    await Bun.sleep(20);
    expectSame(rxA.got, toA);
    expectSame(rxB.got, toB);
    expect(t.stats.datagramsOut).toBe(400);
    // Without regrouping no two neighbours share an endpoint, and nothing would coalesce.
    expect(t.stats.gsoSegments).toBeGreaterThan(350);
  });

  test("gso: false sends the same burst one datagram per message", async () => {
    const rx = await receiver();
    const other = await receiver();
    const t = await sender({ gso: false });
    expect(t.stats.gsoEnabled).toBe(0);
    const { toRx, toOther } = burst(t, "127.0.0.1", rx, other);
    await until(() => rx.got.length >= toRx.length && other.got.length >= toOther.length);
    await Bun.sleep(20);
    expectSame(rx.got, toRx);
    expectSame(other.got, toOther);
    expect(t.stats.datagramsOut).toBe(600);
    expect(t.stats.gsoBatches).toBe(0);
    expect(t.stats.gsoSegments).toBe(0);
    expect(t.stats.gsoSegmentSize).toBe(0);
  });

  test("a later, longer datagram raises the segment size first: it is never cut up", async () => {
    const rx = await receiver();
    const t = await sender();
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) sent.push(numbered(i, 1000));
    for (const d of sent) t.send(d, { address: "127.0.0.1", port: rx.port });
    await until(() => rx.got.length >= 40);
    expect(t.stats.gsoSegmentSize).toBe(1000);
    // No run at 1200 in this flush (they alternate with short ones), but 1200 > 1000.
    const more: Uint8Array[] = [];
    for (let i = 40; i < 60; i++) more.push(numbered(i, i % 2 === 0 ? 1200 : 1000));
    for (const d of more) t.send(d, { address: "127.0.0.1", port: rx.port });
    await until(() => rx.got.length >= 60);
    await Bun.sleep(20);
    expectSame(rx.got, [...sent, ...more]);
    expect(t.stats.gsoSegmentSize).toBe(1200);
  });

  test("short connections (a full-size run, then runs of ACK-size ones): one setsockopt, not one per flush", async () => {
    const rx = await receiver();
    const calls: number[] = [];
    const t = await sender({
      setSegmentSize: (fd, size) => {
        calls.push(size);
        return setUdpSegment(fd, size);
      },
    });
    const sent: Uint8Array[] = [];
    for (let round = 0; round < 5; round++) {
      const flush: Uint8Array[] = [];
      for (let i = 0; i < 3; i++) flush.push(numbered(sent.length + flush.length, FULL));
      flush.push(numbered(sent.length + flush.length, 200));
      for (const d of flush) t.send(d, { address: "127.0.0.1", port: rx.port });
      sent.push(...flush);
      await until(() => rx.got.length >= sent.length);
      // A flush of two equal ACK-size datagrams, then one alone: the size stays at FULL.
      const acks = [numbered(sent.length, 92), numbered(sent.length + 1, 92)];
      for (const d of acks) t.send(d, { address: "127.0.0.1", port: rx.port });
      sent.push(...acks);
      await until(() => rx.got.length >= sent.length);
      const lone = numbered(sent.length, 80);
      t.send(lone, { address: "127.0.0.1", port: rx.port });
      sent.push(lone);
      await until(() => rx.got.length >= sent.length);
    }
    await Bun.sleep(20);
    expectSame(rx.got, sent);
    expect(calls).toEqual([0, FULL]);
    expect(t.stats.gsoSegmentSize).toBe(FULL);
    expect(t.stats.gsoBatches).toBe(5);
    expect(t.stats.gsoSegments).toBe(20);
  });

  test("a kernel refusing GSO sends (SO_NO_CHECK): GSO turns off, nothing is lost", async () => {
    const libc = dlopen("libc.so.6", {
      setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    });
    closers.push(() => libc.close());
    const rx = await receiver();
    let fd = -1;
    const t = await sender({
      setSegmentSize: (f, size) => {
        fd = f;
        return setUdpSegment(f, size);
      },
    });
    expect(fd).toBeGreaterThan(2);
    // IPv4 UDP without checksums: plain sends work, GSO sends get EINVAL (udp_send_skb).
    expect(libc.symbols.setsockopt(fd, 1, 11 /* SO_NO_CHECK */, ptr(new Int32Array([1])), 4)).toBe(0);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) sent.push(numbered(i, i % 10 === 9 ? 77 : FULL));
    for (const d of sent) t.send(d, { address: "127.0.0.1", port: rx.port });
    await until(() => rx.got.length >= 300);
    await Bun.sleep(20);
    expectSame(rx.got, sent);
    expect(t.stats.sendErrors).toBe(0);
    expect(t.stats.datagramsOut).toBe(300);
    expect(t.stats.gsoRefused).toBe(1);
    expect(t.stats.gsoEnabled).toBe(0);
    expect(t.stats.gsoSegmentSize).toBe(0);
    expect(t.stats.gsoBatches).toBe(0);
    // And it stays off: the next burst goes without trying again.
    for (const d of sent) t.send(d, { address: "127.0.0.1", port: rx.port });
    await until(() => rx.got.length >= 600);
    expect(rx.got.length).toBe(600);
    expect(t.stats.gsoRefused).toBe(1);
    expect(t.stats.sendErrors).toBe(0);
  });

  test("a destination that fails with and without GSO is counted as send errors, and GSO stays on", async () => {
    const rx = await receiver("::1");
    const t = await sender({}, "::");
    // A link-local address without a scope: EINVAL whether or not GSO is set.
    for (let i = 0; i < 10; i++) t.send(numbered(i, FULL), { address: "fe80::1", port: 9 });
    const sent: Uint8Array[] = [];
    for (let i = 10; i < 30; i++) sent.push(numbered(i, FULL));
    for (const d of sent) t.send(d, { address: "::1", port: rx.port });
    await until(() => rx.got.length >= 20);
    await Bun.sleep(20);
    expectSame(rx.got, sent);
    expect(t.stats.sendErrors).toBe(10);
    expect(t.stats.datagramsOut).toBe(20);
    expect(t.stats.gsoRefused).toBe(0);
    expect(t.stats.gsoEnabled).toBe(1);
  });

  test("no UDP_SEGMENT (setsockopt fails at open): GSO off, the burst still arrives", async () => {
    const rx = await receiver();
    const other = await receiver();
    const t = await sender({ setSegmentSize: () => false });
    expect(t.stats.gsoEnabled).toBe(0);
    const { toRx, toOther } = burst(t, "127.0.0.1", rx, other);
    await until(() => rx.got.length >= toRx.length && other.got.length >= toOther.length);
    await Bun.sleep(20);
    expectSame(rx.got, toRx);
    expectSame(other.got, toOther);
    expect(t.stats.gsoBatches).toBe(0);
  });

  test("setsockopt failing when GSO is switched on: GSO off, nothing is lost or cut", async () => {
    const rx = await receiver();
    const other = await receiver();
    const calls: number[] = [];
    const t = await sender({
      setSegmentSize: (fd, size) => {
        calls.push(size);
        return size === 0 ? setUdpSegment(fd, 0) : false;
      },
    });
    expect(t.stats.gsoEnabled).toBe(1);
    const { toRx, toOther } = burst(t, "127.0.0.1", rx, other);
    await until(() => rx.got.length >= toRx.length && other.got.length >= toOther.length);
    await Bun.sleep(20);
    expectSame(rx.got, toRx);
    expectSame(other.got, toOther);
    expect(calls).toEqual([0, FULL]);
    expect(t.stats.gsoEnabled).toBe(0);
    expect(t.stats.gsoBatches).toBe(0);
  });

  test("WGSLIRPY_GSO=0 makes the default off; the option still wins", async () => {
    const saved = process.env.WGSLIRPY_GSO;
    process.env.WGSLIRPY_GSO = "0";
    try {
      expect((await sender()).stats.gsoEnabled).toBe(0);
      expect((await sender({ gso: true })).stats.gsoEnabled).toBe(1);
    } finally {
      if (saved === undefined) delete process.env.WGSLIRPY_GSO;
      else process.env.WGSLIRPY_GSO = saved;
    }
    expect((await sender()).stats.gsoEnabled).toBe(1);
  });

  test("a replacement socket inherits the counters but not the GSO state", async () => {
    const a = await sender();
    const b = await sender({ gso: false });
    a.stats.gsoBatches = 5;
    a.stats.gsoSegmentSize = FULL;
    b.inheritStats(a.stats);
    expect(b.stats.gsoBatches).toBe(5);
    expect(b.stats.gsoSegmentSize).toBe(0);
    expect(b.stats.gsoEnabled).toBe(0);
  });
});
