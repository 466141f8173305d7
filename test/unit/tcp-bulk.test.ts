import { describe, expect, test } from "bun:test";
import type { TcpConnectionApi } from "../../src/netstack/tcp/api.ts";
import { TcpLayer } from "../../src/netstack/tcp/layer.ts";
import { type IpAddr, type IpOutput, ipHeaderLength } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { bytes, PEER, REMOTE } from "./tcp-harness.ts";

/** One direction of a lossy link with a fixed delay, delivering TCP segments to a layer. */
class LossyLink implements IpOutput {
  target!: TcpLayer;
  delivered = 0;
  dropped = 0;
  private readonly addrs = new WeakMap<Uint8Array, [IpAddr, IpAddr]>();
  constructor(
    private readonly clock: VirtualClock,
    private readonly rng: SeededRandom,
    private readonly loss: number,
    private readonly delayMs: number,
  ) {}
  allocate(src: IpAddr, dst: IpAddr, _protocol: number, payloadLength: number): Uint8Array {
    const buf = new Uint8Array(ipHeaderLength(src) + payloadLength);
    this.addrs.set(buf, [src, dst]);
    return buf;
  }
  send(packet: Uint8Array): void {
    const [src, dst] = this.addrs.get(packet)!;
    if (this.rng.float() < this.loss) {
      this.dropped++;
      return;
    }
    const tcp = packet.subarray(ipHeaderLength(src));
    const t = this.clock.timer(() => {
      this.delivered++;
      this.target.input(src, dst, tcp);
    });
    t.set(this.delayMs);
  }
}

interface Endpoint {
  conn?: TcpConnectionApi;
  toSend: Uint8Array;
  sent: number;
  received: Uint8Array;
  receivedLen: number;
  eof: boolean;
  closed: string[];
}

function endpoint(size: number, seed: number): Endpoint {
  return {
    toSend: bytes(size, seed),
    sent: 0,
    received: new Uint8Array(size),
    receivedLen: 0,
    eof: false,
    closed: [],
  };
}

/** App logic: write as the buffer allows, read everything, shut down after the last byte. */
function drive(e: Endpoint, conn: TcpConnectionApi): void {
  e.conn = conn;
  const pump = () => {
    while (e.sent < e.toSend.length) {
      const n = conn.write(e.toSend.subarray(e.sent));
      e.sent += n;
      if (n === 0) return;
    }
    conn.shutdown();
  };
  conn.onEstablished = pump;
  conn.onWritable = pump;
  conn.onReadable = () => {
    for (let chunk = conn.peek(); chunk.length > 0; chunk = conn.peek()) {
      e.received.set(chunk, e.receivedLen);
      e.receivedLen += chunk.length;
      conn.consume(chunk.length);
    }
    if (conn.readEof) e.eof = true;
  };
  conn.onClosed = (r) => e.closed.push(r);
}

function run(loss: number, seed: number) {
  const clock = new VirtualClock();
  const rng = new SeededRandom(seed);
  const aToB = new LossyLink(clock, rng, loss, 5);
  const bToA = new LossyLink(clock, rng, loss, 5);
  const size = 1 << 20;
  const a = endpoint(size, 11);
  const b = endpoint(size, 22);
  const common = { clock, log: silentLogger, mss4: 1420, mss6: 1400, bufferSize: 65536 };
  const layerA = new TcpLayer({
    ...common,
    output: aToB,
    random: new SeededRandom(seed + 1),
    onConnect: () => {
      throw new Error("A never accepts");
    },
  });
  const layerB = new TcpLayer({
    ...common,
    output: bToA,
    random: new SeededRandom(seed + 2),
    onConnect: (_flow, conn) => {
      drive(b, conn);
      conn.accept();
    },
  });
  aToB.target = layerB;
  bToA.target = layerA;
  drive(a, layerA.connect({ src: REMOTE, srcPort: 8080, dst: PEER, dstPort: 50000 }));
  let steps = 0;
  while (clock.nextDeadline() >= 0 && steps++ < 2_000_000) clock.runUntil(clock.nextDeadline());
  return { a, b, layerA, layerB, clock, aToB, bToA };
}

describe("TCP bulk transfer between two TcpLayers", () => {
  test("1 MiB each way over a link losing 5% of packets in each direction", () => {
    const { a, b, layerA, layerB, aToB, bToA, clock } = run(0.05, 1234);
    expect(aToB.dropped).toBeGreaterThan(20);
    expect(bToA.dropped).toBeGreaterThan(20);
    expect(a.receivedLen).toBe(1 << 20);
    expect(b.receivedLen).toBe(1 << 20);
    expect(Buffer.from(a.received).equals(Buffer.from(b.toSend))).toBe(true);
    expect(Buffer.from(b.received).equals(Buffer.from(a.toSend))).toBe(true);
    expect([a.eof, b.eof]).toEqual([true, true]);
    expect(a.closed).toEqual(["closed"]);
    expect(b.closed).toEqual(["closed"]);
    expect([layerA.liveConnections, layerB.liveConnections]).toEqual([0, 0]);
    expect(layerA.stats.retransmits + layerB.stats.retransmits).toBeGreaterThan(0);
    // Bounded time: well under a minute of virtual time despite the loss.
    expect(clock.now()).toBeLessThan(60_000);
  });

  test("20% loss each way still completes (no ACK ping-pong after go-back-N)", () => {
    const { a, b } = run(0.2, 7);
    expect(Buffer.from(a.received).equals(Buffer.from(b.toSend))).toBe(true);
    expect(Buffer.from(b.received).equals(Buffer.from(a.toSend))).toBe(true);
    expect([a.closed, b.closed]).toEqual([["closed"], ["closed"]]);
  });

  test("lossless: 1 MiB each way without a single retransmission", () => {
    const { a, b, layerA, layerB } = run(0, 99);
    expect(Buffer.from(a.received).equals(Buffer.from(b.toSend))).toBe(true);
    expect(Buffer.from(b.received).equals(Buffer.from(a.toSend))).toBe(true);
    expect(layerA.stats.retransmits + layerB.stats.retransmits).toBe(0);
    expect([a.closed, b.closed]).toEqual([["closed"], ["closed"]]);
  });
});
