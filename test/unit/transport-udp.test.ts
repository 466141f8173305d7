import { afterEach, describe, expect, test } from "bun:test";
import { getSocketBuffer, setSocketBuffer, socketFd } from "../../src/transport/sockopt.ts";
import { openUdpTransport, type UdpTransport } from "../../src/transport/udp.ts";
import type { Endpoint } from "../../src/util/endpoint.ts";

const open: UdpTransport[] = [];
afterEach(() => {
  for (const t of open.splice(0)) t.close();
});

async function pair(host: string, rcv?: number): Promise<[UdpTransport, UdpTransport]> {
  const a = await openUdpTransport({ address: host, port: 0 }, { receiveBufferBytes: rcv });
  open.push(a);
  const b = await openUdpTransport({ address: host, port: 0 }, { receiveBufferBytes: rcv });
  open.push(b);
  return [a, b];
}

/** Poll the event loop until `cond` holds or `ms` passes (bounded). */
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  for (let i = 0; i < ms / 5 && !cond(); i++) await Bun.sleep(5);
}

function numbered(i: number, size: number): Uint8Array {
  const d = new Uint8Array(size);
  new DataView(d.buffer).setUint32(0, i);
  d[size - 1] = i & 0xff;
  return d;
}

describe("UdpTransport", () => {
  test("2,000 datagrams in one burst over 127.0.0.1 arrive complete and in order", async () => {
    const [a, b] = await pair("127.0.0.1");
    const got: number[] = [];
    const froms = new Set<string>();
    let badTail = 0;
    b.onDatagram = (d, from) => {
      const i = new DataView(d.buffer, d.byteOffset).getUint32(0);
      got.push(i);
      if (d.length !== 1200 || d[1199] !== (i & 0xff)) badTail++;
      froms.add(`${from.address}:${from.port}`);
    };
    for (let i = 0; i < 2000; i++) a.send(numbered(i, 1200), b.local);
    expect(a.pending).toBe(2000);
    await until(() => got.length >= 2000);
    expect(got.length).toBe(2000);
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(badTail).toBe(0);
    expect([...froms]).toEqual([`127.0.0.1:${a.local.port}`]);
    expect(a.stats.datagramsOut).toBe(2000);
    expect(a.stats.bytesOut).toBe(2000 * 1200);
    expect(a.stats.sendErrors).toBe(0);
    // One poll's sends leave in one sendMany batch.
    expect(a.stats.flushes).toBe(1);
    expect(b.stats.datagramsIn).toBe(2000);
    expect(b.stats.bytesIn).toBe(2000 * 1200);
  });

  test("replies go back to the reported source", async () => {
    const [a, b] = await pair("127.0.0.1");
    b.onDatagram = (d, from) => b.send(d.slice().reverse(), from);
    const replies: number[][] = [];
    a.onDatagram = (d) => replies.push([...d]);
    a.send(new Uint8Array([1, 2, 3]), b.local);
    await until(() => replies.length >= 1);
    expect(replies).toEqual([[3, 2, 1]]);
  });

  test("::1 works", async () => {
    const [a, b] = await pair("::1");
    expect(a.local.address).toBe("::1");
    const got: [number[], Endpoint][] = [];
    b.onDatagram = (d, from) => got.push([[...d], from]);
    a.send(new Uint8Array([9, 8, 7]), { address: "::1", port: b.local.port });
    await until(() => got.length >= 1);
    expect(got).toEqual([[[9, 8, 7], { address: "::1", port: a.local.port }]]);
  });

  test('dual-stack "::" reports IPv4 senders unmapped and can reply to them', async () => {
    const dual = await openUdpTransport({ address: "::", port: 0 });
    open.push(dual);
    const v4 = await openUdpTransport({ address: "127.0.0.1", port: 0 });
    open.push(v4);
    const froms: Endpoint[] = [];
    dual.onDatagram = (d, from) => {
      froms.push(from);
      dual.send(d, from);
    };
    const back: number[][] = [];
    v4.onDatagram = (d) => back.push([...d]);
    v4.send(new Uint8Array([42]), { address: "127.0.0.1", port: dual.local.port });
    await until(() => back.length >= 1);
    expect(froms).toEqual([{ address: "127.0.0.1", port: v4.local.port }]);
    expect(back).toEqual([[42]]);
  });

  test("send errors are counted, not thrown, and do not stop the rest of the batch", async () => {
    const [a, b] = await pair("127.0.0.1");
    const got: number[] = [];
    b.onDatagram = (d) => got.push(d[0] as number);
    a.send(new Uint8Array([1]), b.local);
    a.send(new Uint8Array([2]), { address: "::1", port: b.local.port }); // EAFNOSUPPORT on an IPv4 socket
    a.send(new Uint8Array([3]), b.local);
    a.send(new Uint8Array(70000), b.local); // EMSGSIZE
    a.send(new Uint8Array([4]), b.local);
    a.send(new Uint8Array([5]), { address: "127.0.0.1", port: 0 }); // invalid port
    a.send(new Uint8Array([6]), b.local);
    await until(() => got.length >= 4);
    await Bun.sleep(20);
    expect(got).toEqual([1, 3, 4, 6]);
    expect(a.stats.sendErrors).toBe(3);
    expect(a.stats.datagramsOut).toBe(4);
    expect(a.pending).toBe(0);
  });

  test("ICMP port unreachable for an earlier send is counted, not thrown", async () => {
    const [a, b] = await pair("127.0.0.1");
    const dead = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
    const deadPort = dead.port;
    dead.close();
    a.send(new Uint8Array([1]), { address: "127.0.0.1", port: deadPort });
    await until(() => a.stats.unreachable >= 1, 1000);
    expect(a.stats.unreachable).toBe(1);
    expect(a.stats.socketErrors).toBe(0);
    // The socket keeps working.
    const got: number[] = [];
    b.onDatagram = (d) => got.push(d[0] as number);
    a.send(new Uint8Array([2]), b.local);
    await until(() => got.length >= 1);
    expect(got).toEqual([2]);
  });

  test("the queue is bounded; overflow is counted as drops", async () => {
    const a = await openUdpTransport({ address: "127.0.0.1", port: 0 }, { maxQueued: 3 });
    open.push(a);
    for (let i = 0; i < 5; i++) a.send(new Uint8Array([i]), { address: "127.0.0.1", port: 9 });
    expect(a.pending).toBe(3);
    expect(a.stats.queueDrops).toBe(2);
  });

  test("close() flushes what this poll queued, then stops delivering and sending", async () => {
    const [a, b] = await pair("127.0.0.1");
    const got: number[] = [];
    b.onDatagram = (d) => got.push(d[0] as number);
    a.send(new Uint8Array([7]), b.local);
    a.close();
    a.send(new Uint8Array([8]), b.local);
    await until(() => got.length >= 1);
    await Bun.sleep(20);
    expect(got).toEqual([7]);
    expect(a.closed).toBe(true);
    a.close(); // idempotent
  });

  test("SO_RCVBUF/SO_SNDBUF are raised through bun:ffi and read back", async () => {
    const requested = 1024 * 1024;
    const t = await openUdpTransport(
      { address: "127.0.0.1", port: 0 },
      { receiveBufferBytes: requested, sendBufferBytes: requested },
    );
    open.push(t);
    expect(t.receiveBufferBytes).toBeGreaterThanOrEqual(requested / 2);
    expect(t.sendBufferBytes).toBeGreaterThanOrEqual(requested / 2);
    // The value the transport reports is what the kernel says now.
    const raw = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
    try {
      const fd = socketFd(raw);
      expect(fd).toBeGreaterThan(2);
      const before = getSocketBuffer(fd, "rcv");
      const after = setSocketBuffer(fd, "rcv", 3 * 1024 * 1024);
      expect(after).toBeGreaterThanOrEqual((3 * 1024 * 1024) / 2);
      expect(after).toBeGreaterThan(before);
      expect(getSocketBuffer(fd, "rcv")).toBe(after);
    } finally {
      raw.close();
    }
  });

  test("socketFd rejects objects without a usable fd", () => {
    expect(socketFd({})).toBe(-1);
    expect(socketFd({ fd: -1 })).toBe(-1);
    expect(socketFd({ fd: "3" })).toBe(-1);
    expect(socketFd({ fd: 7 })).toBe(7);
    expect(getSocketBuffer(-1, "rcv")).toBe(-1);
    expect(setSocketBuffer(-1, "snd", 1000)).toBe(-1);
  });

  test("binding a busy port rejects", async () => {
    const a = await openUdpTransport({ address: "127.0.0.1", port: 0 });
    open.push(a);
    await expect(openUdpTransport({ address: "127.0.0.1", port: a.local.port })).rejects.toThrow();
  });
});
