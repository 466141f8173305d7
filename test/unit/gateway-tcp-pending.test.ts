/**
 * Host bytes the peer's send buffer cannot take yet are kept as views of Bun's read buffers, not
 * copied (tcp-relay.ts): first the Bun behaviour that makes this safe (every read in an ArrayBuffer
 * of its own, never written again), then the relay handing those same buffers to conn.write() in
 * order, pausing the host socket meanwhile and resuming it once they are gone.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { DropCounter } from "../../src/gateway/drops.ts";
import { type HostSocket, TcpRelay } from "../../src/gateway/tcp-relay.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { FakeConn, until } from "./gateway-fakes.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const pattern = (n: number, salt: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 11) + salt) & 0xff);

describe("Bun socket reads (what tcp-relay.ts relies on)", () => {
  test("each data callback gets an ArrayBuffer of its own that later reads never overwrite", async () => {
    const total = 16 << 20;
    const src = pattern(total, 1);
    const server = Bun.listen<{ off: number }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.data = { off: 0 };
          pump(s);
        },
        drain: (s) => pump(s),
        data() {},
      },
    });
    cleanups.push(() => server.stop(true));
    function pump(s: Socket<{ off: number }>) {
      while (s.data.off < total) {
        const n = s.write(src, s.data.off, Math.min(1 << 20, total - s.data.off));
        if (n <= 0) return;
        s.data.off += n;
      }
      s.end();
    }
    const chunks: Uint8Array[] = [];
    await new Promise<void>((resolve, reject) => {
      Bun.connect({
        hostname: "127.0.0.1",
        port: server.port,
        socket: {
          binaryType: "uint8array",
          data: (_s, d: Uint8Array) => {
            chunks.push(d); // kept without a copy
          },
          end: () => resolve(),
          close: () => resolve(),
          connectError: (_s, e) => reject(e),
        },
      }).catch(reject);
    });
    expect(chunks.length).toBeGreaterThan(1);
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length);
    expect(Buffer.concat(chunks).equals(Buffer.from(src))).toBe(true);
  }, 30_000);
});

/** A relay with a fake host socket (pause/resume recorded) on a FakeConn that records what it is given. */
class TestRelay extends TcpRelay {
  paused = 0;
  resumed = 0;
  attach(): void {
    const self = this;
    this.sock = {
      pause() {
        self.paused++;
      },
      resume() {
        self.resumed++;
      },
    } as unknown as HostSocket;
  }
}

class RecordingConn extends FakeConn {
  readonly given: Uint8Array[] = [];
  override write(data: Uint8Array): number {
    const n = super.write(data);
    if (n > 0) this.given.push(data.subarray(0, n));
    return n;
  }
}

describe("TcpRelay host -> peer", () => {
  test("bytes the send buffer had no room for are kept as views of the read, in order, then drained", async () => {
    const conn = new RecordingConn(4096);
    conn.autoAck = false;
    const relay = new TestRelay("t", conn, {
      clock: new VirtualClock(),
      log: silentLogger,
      drops: new DropCounter(),
      onFinished: () => {},
    });
    relay.attach();
    conn.accept();
    await until(() => conn.state === "ESTABLISHED", 3000, "established"); // FakeConn establishes after 1 ms
    const first = pattern(10_000, 1);
    const second = pattern(3_000, 2);
    relay.hostData(first);
    relay.hostData(second); // a read already under way when the socket was paused
    expect(relay.bufferedBytes()).toBe(10_000 + 3_000 - 4096);
    expect(relay.paused).toBeGreaterThan(0);
    for (let i = 0; i < 10 && conn.deliveredBytes < 13_000; i++) conn.ack();
    expect(relay.bufferedBytes()).toBe(0);
    expect(Buffer.from(conn.deliveredConcat()).equals(Buffer.concat([first, second]))).toBe(true);
    // Every byte went to conn.write() straight from the buffer it was read into: no copies.
    for (const g of conn.given) expect(g.buffer === first.buffer || g.buffer === second.buffer).toBe(true);
    expect(relay.resumed).toBeGreaterThan(0);
  });
});
