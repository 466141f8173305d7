import { afterEach, describe, expect, test } from "bun:test";
import { deriveFlowLimits, FD_RESERVE, FlowBudget, type FlowLimits } from "../../src/gateway/budget.ts";
import { Gateway } from "../../src/gateway/gateway.ts";
import { nextFd, openFdCount, readFdLimit } from "../../src/gateway/host-fds.ts";
import type { FlowAddrs } from "../../src/netstack/types.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { type Logger, silentLogger } from "../../src/util/log.ts";
import { type Blackhole, blackhole } from "./blackhole.ts";
import { FakeConn, FakeNetstack, until, v4 } from "./gateway-fakes.ts";

const CLIENT = v4(10, 0, 0, 2);
const LOOPBACK = v4(127, 0, 0, 1);
const enc = new TextEncoder();

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function captureLog() {
  const warns: string[] = [];
  const log = {
    warn: (m: string) => warns.push(m),
    info: () => {},
    debug: () => {},
  } as unknown as Logger;
  return { log, warns };
}

function makeGateway(
  limits: FlowLimits,
  extra: { log?: Logger; fdLimit?: number; udpIdleTimeoutMs?: number; peerOf?: (a: Uint8Array) => string } = {},
) {
  const netstack = new FakeNetstack();
  const clock = new VirtualClock();
  const gw = new Gateway({
    netstack,
    clock,
    log: extra.log ?? silentLogger,
    limits,
    fdLimit: extra.fdLimit,
    udpIdleTimeoutMs: extra.udpIdleTimeoutMs,
    peerOf: extra.peerOf,
  });
  cleanups.push(() => gw.close());
  return { gw, netstack, clock };
}

async function hole(): Promise<Blackhole> {
  const h = await blackhole();
  cleanups.push(() => h.close());
  return h;
}

function tcp(srcPort: number, dstPort: number, dst = LOOPBACK): FlowAddrs {
  return { src: CLIENT, srcPort, dst, dstPort };
}

describe("deriveFlowLimits", () => {
  test("the open-files limit minus the reserve, the listeners and DNS; a quarter pending, half UDP", () => {
    // 256 - 64 = 192 descriptors: an eighth (24) for DNS lookups, 168 for flows.
    expect(FD_RESERVE).toBe(64);
    expect(deriveFlowLimits(256, 0)).toEqual({
      maxFlows: 168,
      maxPendingConnects: 42,
      maxUdpMappings: 84,
      maxDnsInFlight: 24,
    });
    expect(deriveFlowLimits(20_000, 3)).toMatchObject({ maxFlows: 20_000 - 64 - 3 - 256, maxDnsInFlight: 256 });
    expect(deriveFlowLimits(1 << 30, 0).maxFlows).toBe(65536);
    expect(deriveFlowLimits(50, 0).maxFlows).toBe(8);
    expect(deriveFlowLimits(20_000, 0, 100)).toEqual({
      maxFlows: 100,
      maxPendingConnects: 25,
      maxUdpMappings: 50,
      maxDnsInFlight: 12,
    });
    expect(deriveFlowLimits(undefined, 0).maxFlows).toBe(900);
  });

  test("reads this process's limit", () => {
    const limit = readFdLimit();
    expect(limit).toBeGreaterThan(0);
    expect(openFdCount()).toBeLessThan(limit as number);
  });
});

describe("FlowBudget", () => {
  const limits = { maxFlows: 10, maxPendingConnects: 4, maxUdpMappings: 6 };

  test("caps host sockets and UDP mappings, counts each refusal, release is idempotent", () => {
    const b = new FlowBudget(limits, new VirtualClock());
    const udp = Array.from({ length: 6 }, () => b.tryUdp("a"));
    expect(b.tryUdp("a")).toBe("udp");
    const tcp = Array.from({ length: 4 }, () => b.tryAccepted("a"));
    expect(b.tryAccepted("a")).toBe("flows");
    expect(b.stats()).toMatchObject({ hostSockets: 10, udpMappings: 6, denied: { udp: 1, flows: 1 } });
    for (const t of [...udp, ...tcp]) if (typeof t !== "string") t.release();
    (udp[0] as { release(): void }).release();
    expect(b.stats()).toMatchObject({ hostSockets: 0, udpMappings: 0, pendingConnects: 0 });
  });

  test("a full set of pending connects gives up the oldest to admit a new one", () => {
    const b = new FlowBudget(limits, new VirtualClock());
    const evicted: number[] = [];
    const tickets: ReturnType<FlowBudget["tryConnect"]>[] = [];
    for (let i = 0; i < 6; i++)
      tickets.push(
        b.tryConnect("a", () => {
          evicted.push(i);
          (tickets[i] as { settled(): void }).settled();
        }),
      );
    expect(evicted).toEqual([0, 1]);
    // Given up, the evicted connects still hold their descriptors until the socket is closed.
    expect(b.stats()).toMatchObject({ pendingConnects: 4, hostSockets: 6, evicted: 2 });
    (tickets[5] as { settled(): void }).settled();
    expect(b.stats().pendingConnects).toBe(3);
  });

  test("per-peer shares: a flooding peer cannot take a second peer's share", () => {
    const b = new FlowBudget(limits, new VirtualClock());
    const held = Array.from({ length: 6 }, () => b.tryUdp("flooder"));
    expect(held.every((t) => typeof t !== "string")).toBe(true);
    // The second peer is under its share (6 / 2 = 3) but the limit is reached: refused, no eviction for UDP.
    expect(b.tryUdp("other")).toBe("udp");
    (held[0] as { release(): void }).release();
    // A slot freed: the flooder is over its share now that two peers compete, the other peer is not.
    expect(typeof b.tryUdp("flooder")).toBe("string");
    expect(typeof b.tryUdp("other")).not.toBe("string");
    expect(b.stats().denied.peer_share).toBe(1);
  });

  test("a peer quiet for 30 s no longer counts for the shares", () => {
    const clock = new VirtualClock();
    const b = new FlowBudget(limits, clock);
    const t = b.tryUdp("gone");
    (t as { release(): void }).release();
    // "gone" holds nothing but asked recently: "busy" gets half of 6.
    for (let i = 0; i < 3; i++) expect(typeof b.tryUdp("busy")).not.toBe("string");
    expect(b.tryUdp("busy")).toBe("udp");
    clock.advance(30_000);
    for (let i = 0; i < 3; i++) expect(typeof b.tryUdp("busy")).not.toBe("string");
    expect(b.stats().udpMappings).toBe(6);
  });

  test("per-peer shares of pending connects: the peer over its share loses its own oldest", () => {
    const b = new FlowBudget(limits, new VirtualClock());
    const gaveUp: string[] = [];
    const connect = (peer: string, name: string) => {
      const t = b.tryConnect(peer, () => {
        gaveUp.push(name);
        (t as { settled(): void }).settled();
      });
      return t;
    };
    for (let i = 0; i < 4; i++) connect("flooder", `f${i}`);
    // Full: the newcomer (under its share of 2) takes the room of the biggest holder's oldest.
    expect(typeof connect("other", "o0")).not.toBe("string");
    expect(gaveUp).toEqual(["f0"]);
    // The flooder at 3 > its share of 2: its own oldest makes room.
    expect(typeof connect("flooder", "f4")).not.toBe("string");
    expect(gaveUp).toEqual(["f0", "f1"]);
    expect(b.stats().pendingConnects).toBe(4);
  });
});

describe("gateway flows within the budget", () => {
  test("a connect still under way at the connect timeout is cancelled: its descriptor is closed", async () => {
    const h = await hole();
    const { gw, netstack, clock } = makeGateway({ maxFlows: 16, maxPendingConnects: 8, maxUdpMappings: 8 });
    // A process's first host connect opens the /dev/null that nextFd() dups, for good: open it
    // before counting, or this test run alone counts one descriptor more than its three connects.
    nextFd();
    const before = openFdCount() as number;
    const conns = [1, 2, 3].map((i) => {
      const c = new FakeConn();
      gw.onTcpConnect(tcp(40000 + i, h.port), c);
      return c;
    });
    await until(() => openFdCount() === before + 3, 3000, "the three connects' descriptors");
    expect(gw.stats().budget).toMatchObject({ pendingConnects: 3, hostSockets: 3 });
    expect(openFdCount()).toBe(before + 3);
    clock.advance(10_000);
    // The peer hears "host unreachable" quoting each SYN; no RST.
    expect(netstack.unreachable.map((u) => u.kind)).toEqual(["host", "host", "host"]);
    expect(conns.every((c) => c.dropped && !c.refused)).toBe(true);
    expect(gw.stats().drops).toMatchObject({ tcp_connect_timeout: 3, tcp_connect_cancelled: 3 });
    await until(() => gw.stats().budget.hostSockets === 0, 2000, "the cancelled connects' sockets to close");
    expect(openFdCount()).toBe(before);
    expect(gw.stats()).toMatchObject({ liveTcp: 0, budget: { pendingConnects: 0 } });
  });

  test("more connects than the pending budget: the oldest are given up, the newest get through", async () => {
    const h = await hole();
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    cleanups.push(() => server.stop(true));
    const { gw, netstack } = makeGateway({ maxFlows: 16, maxPendingConnects: 2, maxUdpMappings: 8 });
    const before = openFdCount() as number;
    const stuck = [1, 2, 3, 4].map((i) => {
      const c = new FakeConn();
      gw.onTcpConnect(tcp(41000 + i, h.port), c);
      return c;
    });
    // A connect to a live server during the flood still completes.
    const live = new FakeConn();
    gw.onTcpConnect(tcp(41100, server.port), live);
    await until(() => live.accepted, 2000, "the live connect to be accepted");
    expect(stuck.slice(0, 3).every((c) => c.dropped)).toBe(true);
    expect(netstack.unreachable.slice(0, 3).map((u) => u.kind)).toEqual(["admin", "admin", "admin"]);
    expect(gw.stats().drops).toMatchObject({ tcp_connect_evicted: 3, tcp_connect_cancelled: 3 });
    await until(() => gw.stats().budget.hostSockets === 2, 2000, "the given-up sockets to close");
    // One socket stuck in SYN-SENT, the live flow's, and the listener's accepted end.
    expect(openFdCount()).toBe(before + 3);
    expect(gw.stats().budget).toMatchObject({ pendingConnects: 1, evicted: 3 });
  });

  test("per-peer shares: a peer flooding UDP mappings leaves the second peer its share", async () => {
    // Two peers told apart by their inner source address (a device passes its allowed-IPs lookup).
    const { gw, netstack } = makeGateway(
      { maxFlows: 16, maxPendingConnects: 4, maxUdpMappings: 4 },
      { peerOf: (a) => (a[3] === 2 ? "flooder" : "other") },
    );
    const other = v4(10, 0, 0, 3);
    const packet = new Uint8Array(28);
    gw.onUdp({ src: other, srcPort: 60000, dst: LOOPBACK, dstPort: 9 }, enc.encode("x"), packet);
    for (let i = 0; i < 20; i++)
      gw.onUdp({ src: CLIENT, srcPort: 61000 + i, dst: LOOPBACK, dstPort: 9 }, enc.encode("x"), packet);
    // The flooder got its half (2 of 4); the other peer's next mapping still fits.
    expect(gw.stats()).toMatchObject({ liveUdp: 3, budget: { denied: { peer_share: 18 } } });
    gw.onUdp({ src: other, srcPort: 60001, dst: LOOPBACK, dstPort: 9 }, enc.encode("x"), packet);
    expect(gw.stats().liveUdp).toBe(4);
    expect(netstack.unreachable.length).toBe(18);
  });

  test("no host socket left: a SYN is answered administratively prohibited, with one warning per second", async () => {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    cleanups.push(() => server.stop(true));
    const { log, warns } = captureLog();
    const { gw, netstack, clock } = makeGateway({ maxFlows: 2, maxPendingConnects: 2, maxUdpMappings: 1 }, { log });
    const ok = [1, 2].map((i) => {
      const c = new FakeConn();
      gw.onTcpConnect(tcp(42000 + i, server.port), c);
      return c;
    });
    const refused = Array.from({ length: 50 }, (_, i) => {
      const c = new FakeConn();
      gw.onTcpConnect(tcp(42100 + i, server.port), c);
      return c;
    });
    expect(refused.every((c) => c.dropped && !c.refused)).toBe(true);
    expect(netstack.unreachable.length).toBe(50);
    expect(netstack.unreachable.every((u) => u.kind === "admin")).toBe(true);
    expect(warns.length).toBe(1);
    // A loopback connect usually completes inside connect(2) (no longer under way), but may not.
    expect(warns[0]).toMatch(/TCP flow budget spent \(flows: 2 of 2 host sockets, [02] of 2 connects under way\)/);
    clock.advance(1000);
    gw.onTcpConnect(tcp(42999, server.port), new FakeConn());
    expect(warns.length).toBe(2);
    expect(warns[1]).toContain("(+49 more since the last report)");
    expect(gw.stats().budget.denied.flows).toBe(51);
    await until(() => ok.every((c) => c.accepted), 2000, "the admitted connects");
  });

  test("a connect that fails for lack of descriptors is not reported as refused", async () => {
    // Bun reports EMFILE on connect as ECONNREFUSED; at the descriptor limit the gateway knows better.
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closed.port;
    closed.stop(true);
    // Host sockets of earlier tests may still be closing: start from a settled descriptor count.
    for (let i = 0, last = -1; i < 50; i++) {
      const n = openFdCount() as number;
      if (n === last) break;
      last = n;
      await Bun.sleep(20);
    }
    const { log, warns } = captureLog();
    const { gw, netstack } = makeGateway(
      { maxFlows: 8, maxPendingConnects: 8, maxUdpMappings: 8 },
      { log, fdLimit: (openFdCount() as number) + 1 },
    );
    const c = new FakeConn();
    gw.onTcpConnect(tcp(43000, port), c);
    await until(() => c.closedReason !== undefined, 2000, "the connect to fail");
    expect(c.refused).toBe(false);
    expect(netstack.unreachable.map((u) => u.kind)).toEqual(["admin"]);
    expect(gw.stats().drops).toMatchObject({ tcp_connect_EMFILE: 1 });
    expect(warns[0]).toContain("Out of file descriptors (EMFILE)");
    // Below the limit the same failure is a plain refusal (RST).
    const { gw: gw2 } = makeGateway({ maxFlows: 8, maxPendingConnects: 8, maxUdpMappings: 8 });
    const c2 = new FakeConn();
    gw2.onTcpConnect(tcp(43001, port), c2);
    await until(() => c2.closedReason !== undefined, 2000, "the connect to fail");
    expect(c2.refused).toBe(true);
  });

  test("UDP mappings over the budget are answered administratively prohibited and all expire", async () => {
    const { log, warns } = captureLog();
    const { gw, netstack, clock } = makeGateway(
      { maxFlows: 8, maxPendingConnects: 2, maxUdpMappings: 3 },
      { log, udpIdleTimeoutMs: 5000 },
    );
    const before = openFdCount() as number;
    const packet = Uint8Array.from({ length: 40 }, (_, i) => i);
    for (let i = 0; i < 10; i++)
      gw.onUdp({ src: CLIENT, srcPort: 50000 + i, dst: LOOPBACK, dstPort: 9 }, enc.encode("x"), packet);
    expect(gw.stats()).toMatchObject({ liveUdp: 3, budget: { udpMappings: 3, denied: { udp: 7 } } });
    expect(netstack.unreachable.length).toBe(7);
    expect(netstack.unreachable[0]).toEqual({ original: packet, kind: "admin" });
    expect(warns.length).toBe(1);
    await until(() => openFdCount() === before + 3, 2000, "three host sockets");
    clock.advance(5000);
    expect(gw.stats()).toMatchObject({ liveUdp: 0, budget: { udpMappings: 0, hostSockets: 0 } });
    await until(() => openFdCount() === before, 2000, "the sockets to close");
  });

  test("a UDP socket that cannot be bound for lack of descriptors: administratively prohibited, no RST-like refusal", () => {
    const netstack = new FakeNetstack();
    const { log, warns } = captureLog();
    const gw = new Gateway({
      netstack,
      clock: new VirtualClock(),
      log,
      openUdpSocket: () => {
        throw Object.assign(new Error("bind EMFILE 0.0.0.0"), { code: "EMFILE" });
      },
    });
    cleanups.push(() => gw.close());
    const packet = Uint8Array.from({ length: 30 }, (_, i) => i + 1);
    for (let i = 0; i < 5; i++)
      gw.onUdp({ src: CLIENT, srcPort: 51000 + i, dst: LOOPBACK, dstPort: 9 }, enc.encode("x"), packet);
    expect(netstack.unreachable).toEqual(Array.from({ length: 5 }, () => ({ original: packet, kind: "admin" })));
    expect(gw.stats()).toMatchObject({ liveUdp: 0, drops: { udp_bind_EMFILE: 5 }, budget: { hostSockets: 0 } });
    expect(warns.length).toBe(1);
  });
});
