import { afterEach, describe, expect, test } from "bun:test";
import type { udp } from "bun";
import { Gateway } from "../../src/gateway/gateway.ts";
import { parseIp } from "../../src/gateway/ip-text.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { FakeNetstack, until, v4 } from "./gateway-fakes.ts";

const enc = new TextEncoder();
const CLIENT = v4(10, 0, 0, 2);
const LOOPBACK = v4(127, 0, 0, 1);

/** A loopback UDP server that answers "echo:" + payload and remembers who sent what. */
async function echoServer(hostname = "127.0.0.1") {
  const seen: { port: number; address: string }[] = [];
  const socket = await Bun.udpSocket({
    hostname,
    port: 0,
    binaryType: "uint8array",
    socket: {
      data(s, data, port, address) {
        seen.push({ port, address });
        const reply = new Uint8Array(5 + data.length);
        reply.set(enc.encode("echo:"));
        reply.set(data, 5);
        s.send(reply, port, address);
      },
      // Sending to a NAT port the gateway already closed comes back as ECONNREFUSED: expected.
      error() {},
    },
  });
  return { socket, seen };
}

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

function makeGateway(clock = new VirtualClock(), udpIdleTimeoutMs?: number) {
  const netstack = new FakeNetstack();
  const gw = new Gateway({ netstack, clock, log: silentLogger, udpIdleTimeoutMs });
  opened.push(gw);
  return { gw, netstack, clock };
}

describe("UDP NAT", () => {
  test("a client datagram reaches the server; the reply comes back with the server as source", async () => {
    const server = await echoServer();
    opened.push(server.socket);
    const { gw, netstack } = makeGateway();
    gw.onUdp(
      { src: CLIENT, srcPort: 5555, dst: LOOPBACK, dstPort: server.socket.port },
      enc.encode("hi"),
      new Uint8Array(0),
    );
    const [reply] = await netstack.waitUdp(1);
    expect(reply!.flow).toEqual({ src: LOOPBACK, srcPort: server.socket.port, dst: CLIENT, dstPort: 5555 });
    expect(reply!.payload).toEqual(enc.encode("echo:hi"));
    expect(gw.stats()).toMatchObject({ liveUdp: 1, natEntriesCreated: 1, bufferedBytes: 0 });
    gw.close();
    expect(gw.stats().liveUdp).toBe(0);
  });

  test("one host socket per client endpoint, shared by all its destinations", async () => {
    const s1 = await echoServer();
    const s2 = await echoServer();
    opened.push(s1.socket, s2.socket);
    const { gw, netstack } = makeGateway();
    const none = new Uint8Array(0);
    gw.onUdp({ src: CLIENT, srcPort: 7000, dst: LOOPBACK, dstPort: s1.socket.port }, enc.encode("a"), none);
    gw.onUdp({ src: CLIENT, srcPort: 7000, dst: LOOPBACK, dstPort: s2.socket.port }, enc.encode("b"), none);
    gw.onUdp({ src: CLIENT, srcPort: 7001, dst: LOOPBACK, dstPort: s1.socket.port }, enc.encode("c"), none);
    await netstack.waitUdp(3);
    // Same client endpoint -> same mapped port at both servers; the other endpoint has its own.
    expect(s1.seen[0]!.port).toBe(s2.seen[0]!.port);
    expect(s1.seen[1]!.port).not.toBe(s1.seen[0]!.port);
    expect(gw.stats()).toMatchObject({ liveUdp: 2, natEntriesCreated: 2 });
    const byPayload = new Map(netstack.udp.map((d) => [new TextDecoder().decode(d.payload), d.flow]));
    expect(byPayload.get("echo:a")).toEqual({ src: LOOPBACK, srcPort: s1.socket.port, dst: CLIENT, dstPort: 7000 });
    expect(byPayload.get("echo:b")).toEqual({ src: LOOPBACK, srcPort: s2.socket.port, dst: CLIENT, dstPort: 7000 });
    expect(byPayload.get("echo:c")).toEqual({ src: LOOPBACK, srcPort: s1.socket.port, dst: CLIENT, dstPort: 7001 });
  });

  test("endpoint-independent filtering: a different remote reaching the mapped port gets to the client", async () => {
    const server = await echoServer();
    opened.push(server.socket);
    const stranger: udp.Socket<"uint8array"> = await Bun.udpSocket({
      hostname: "127.0.0.1",
      port: 0,
      binaryType: "uint8array",
    });
    opened.push(stranger);
    const { gw, netstack } = makeGateway();
    gw.onUdp(
      { src: CLIENT, srcPort: 4444, dst: LOOPBACK, dstPort: server.socket.port },
      enc.encode("x"),
      new Uint8Array(0),
    );
    await netstack.waitUdp(1);
    const mappedPort = server.seen[0]!.port;
    stranger.send(enc.encode("punch"), mappedPort, "127.0.0.1");
    const got = await netstack.waitUdp(2);
    expect(got[1]!.flow).toEqual({ src: LOOPBACK, srcPort: stranger.port, dst: CLIENT, dstPort: 4444 });
    expect(got[1]!.payload).toEqual(enc.encode("punch"));
  });

  test("idle timeout closes the entry; traffic either way refreshes it", async () => {
    const server = await echoServer();
    opened.push(server.socket);
    const { gw, netstack, clock } = makeGateway(new VirtualClock(), 92_000);
    const flow = { src: CLIENT, srcPort: 1234, dst: LOOPBACK, dstPort: server.socket.port };
    gw.onUdp(flow, enc.encode("1"), new Uint8Array(0));
    await netstack.waitUdp(1);
    clock.advance(60_000);
    // A datagram from the host side alone refreshes the entry.
    const mappedPort = server.seen[0]!.port;
    server.socket.send(enc.encode("unsolicited"), mappedPort, "127.0.0.1");
    await netstack.waitUdp(2);
    clock.advance(91_999);
    expect(gw.stats().liveUdp).toBe(1);
    clock.advance(1);
    expect(gw.stats().liveUdp).toBe(0);
    // The host socket is closed: nothing more reaches the client.
    server.socket.send(enc.encode("late"), mappedPort, "127.0.0.1");
    await Bun.sleep(50);
    expect(netstack.udp.length).toBe(2);
    // A new datagram creates a fresh entry.
    gw.onUdp(flow, enc.encode("2"), new Uint8Array(0));
    await netstack.waitUdp(3);
    expect(gw.stats()).toMatchObject({ liveUdp: 1, natEntriesCreated: 2 });
    expect(clock.nextDeadline()).toBe(clock.now() + 92_000);
  });

  test("IPv6 client endpoints use an IPv6 host socket", async () => {
    let server: Awaited<ReturnType<typeof echoServer>>;
    try {
      server = await echoServer("::1");
    } catch {
      console.warn("skipping: no ::1 on this host");
      return;
    }
    opened.push(server.socket);
    const { gw, netstack } = makeGateway();
    const client6 = parseIp("fd00::2")!;
    const loop6 = parseIp("::1")!;
    gw.onUdp(
      { src: client6, srcPort: 999, dst: loop6, dstPort: server.socket.port },
      enc.encode("six"),
      new Uint8Array(0),
    );
    const [reply] = await netstack.waitUdp(1);
    expect(reply!.flow).toEqual({ src: loop6, srcPort: server.socket.port, dst: client6, dstPort: 999 });
    expect(reply!.payload).toEqual(enc.encode("echo:six"));
  });

  test("ECONNREFUSED on the host socket becomes a port unreachable quoting the client's packet", async () => {
    const dead = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
    const deadPort = dead.port;
    dead.close();
    const { gw, netstack } = makeGateway();
    // What the netstack would pass: the whole IP packet (here just recognisable bytes).
    const packet = Uint8Array.from({ length: 60 }, (_, i) => i);
    gw.onUdp({ src: CLIENT, srcPort: 2000, dst: LOOPBACK, dstPort: deadPort }, packet.subarray(28), packet);
    await until(() => netstack.unreachable.length > 0, 2000, "an unreachable");
    expect(netstack.unreachable[0]).toEqual({ original: packet, kind: "port" });
    expect(gw.stats().drops).toEqual({ udp_socket_ECONNREFUSED: 1 });
  });

  test("a host socket that cannot be opened (EMFILE) leaves no entry; the next datagram gets a working one", async () => {
    const server = await echoServer();
    opened.push(server.socket);
    let failures = 1;
    const netstack = new FakeNetstack();
    const gw = new Gateway({
      netstack,
      clock: new VirtualClock(),
      log: silentLogger,
      // Bun.udpSocket throws synchronously when the process is out of file descriptors.
      openUdpSocket: (options) => {
        if (failures-- > 0) throw Object.assign(new Error("bind EMFILE 0.0.0.0"), { code: "EMFILE" });
        return Bun.udpSocket(options);
      },
    });
    opened.push(gw);
    const flow = { src: CLIENT, srcPort: 6100, dst: LOOPBACK, dstPort: server.socket.port };
    gw.onUdp(flow, enc.encode("lost"), new Uint8Array(0));
    expect(gw.stats()).toMatchObject({ liveUdp: 0, natEntriesCreated: 1 });
    gw.onUdp(flow, enc.encode("again"), new Uint8Array(0));
    const [reply] = await netstack.waitUdp(1);
    expect(reply!.payload).toEqual(enc.encode("echo:again"));
    expect(gw.stats()).toMatchObject({ liveUdp: 1, natEntriesCreated: 2 });
  });

  test("after close(), datagrams are ignored and no entry is made", () => {
    const { gw } = makeGateway();
    gw.close();
    gw.onUdp({ src: CLIENT, srcPort: 1, dst: LOOPBACK, dstPort: 9 }, enc.encode("x"), new Uint8Array(0));
    expect(gw.stats()).toMatchObject({ liveUdp: 0, natEntriesCreated: 0 });
  });
});
