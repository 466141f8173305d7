// Issue "WireGuard endpoint": the gateway CLI (seed flags) against a real wireguard-go peer.
// Layout: peer ns (wireguard-go, default routes into the tunnel) -- gw ns (bun src/cli.ts) -- inet ns.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createWorld, GW_PORT, PEER_PORT, type World } from "../../harness/fixture.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { interopSkipReason, sleep } from "../../harness/netns.ts";
import { fuzzUdp } from "../../harness/servers.ts";
import { ADDR } from "../../harness/topology.ts";
import { genKeyPair, genPsk, writeSecret } from "../../harness/wireguard-go.ts";

const skip = interopSkipReason(["wireguard-go", "wg", "ip", "ss", "python3", "ping"]);

const PREFIX = "wgsiwg-";
const IFP = "wgsiwg";

describeOrSkip(skip, "WireGuard endpoint (gateway CLI vs wireguard-go)", () => {
  let w: World;

  beforeAll(async () => {
    w = await createWorld(PREFIX, IFP);
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  }, 30_000);

  const gwLog = () => `\n--- gateway log (tail) ---\n${w.gateway?.log().slice(-3000) ?? ""}`;

  test("responder: the seed's activation line; wg show reports a handshake; ping 192.168.72.2", async () => {
    await w.startGateway();
    await w.startPeer();
    const received = await w.ping(ADDR.tunGw4, 2);
    expect(received, gwLog()).toBe(2);
    const s = await w.peer.show();
    expect(s.peers[0]!.latestHandshake).toBeGreaterThan(0);
    expect(s.peers[0]!.rxBytes).toBeGreaterThan(0);
    expect(s.peers[0]!.endpoint).toBe(`${ADDR.gwOuter4}:${GW_PORT}`);
    expect(w.gateway!.running()).toBe(true);
  }, 60_000);

  test("initiator: gateway with --peer-endpoint handshakes first (peer has no endpoint)", async () => {
    await w.peer.dispose();
    await w.startPeer({ endpoint: undefined });
    // The peer, knowing no endpoint, cannot initiate: only the gateway can make this handshake.
    await w.startGateway({ peerEndpoint: `${ADDR.peerOuter4}:${PEER_PORT}` });
    const hs = await w.peer.waitHandshake(15_000).catch((e) => {
      throw new Error(`${e}${gwLog()}`);
    });
    expect(hs).toBeGreaterThan(0);
    const s = await w.peer.show();
    expect(s.peers[0]!.endpoint).toBe(`${ADDR.gwOuter4}:${GW_PORT}`);
    expect(await w.ping(ADDR.tunGw4, 2), gwLog()).toBe(2);
  }, 60_000);

  test("IPv6: ping a v6 pingable address (second gateway run with -P fc00::72:2)", async () => {
    await w.startGateway({ pingable: ADDR.tunGw6, dns: `[${ADDR.tunGw6}]:53` });
    await w.startPeer();
    expect(await w.ping(ADDR.tunGw6, 2), gwLog()).toBe(2);
    // Nobody answers for the v4 address in this run.
    expect(await w.ping(ADDR.tunGw4, 1)).toBe(0);
  }, 60_000);

  test("roaming: peer changes its UDP port; traffic resumes", async () => {
    await w.startGateway();
    await w.startPeer();
    expect(await w.ping(ADDR.tunGw4, 2), gwLog()).toBe(2);
    // 1. Same session, new source port: the gateway must follow authenticated packets' source.
    await w.peer.setListenPort(PEER_PORT + 10);
    expect(await w.ping(ADDR.tunGw4, 3), `after listen-port change${gwLog()}`).toBeGreaterThanOrEqual(2);
    // 2. Peer restarted on another port: a new handshake from a new address.
    const before = (await w.peer.show()).peers[0]!.latestHandshake;
    await w.startPeer({ listenPort: PEER_PORT + 20 });
    expect(await w.ping(ADDR.tunGw4, 2), `after restart${gwLog()}`).toBe(2);
    expect((await w.peer.show()).peers[0]!.latestHandshake).toBeGreaterThanOrEqual(before);
  }, 60_000);

  test("preshared key: same psk works; peer without the psk gets no session", async () => {
    const psk = await genPsk();
    const pskFile = writeSecret(w.tmp, "psk", psk);
    await w.startGateway({ presharedKeyFile: pskFile });
    await w.startPeer({ presharedKey: psk });
    expect(await w.ping(ADDR.tunGw4, 2), gwLog()).toBe(2);
    expect((await w.peer.show()).peers[0]!.latestHandshake).toBeGreaterThan(0);

    await w.startPeer({ presharedKey: undefined });
    expect(await w.ping(ADDR.tunGw4, 2)).toBe(0);
    expect((await w.peer.show()).peers[0]!.latestHandshake).toBe(0);
    expect(w.gateway!.running()).toBe(true);
  }, 60_000);

  test("wrong peer key: no session, and the gateway keeps serving the right peer", async () => {
    await w.startGateway();
    const stranger = await genKeyPair();
    await w.startPeer({ privateKey: stranger.privateKey });
    expect(await w.ping(ADDR.tunGw4, 3)).toBe(0);
    expect((await w.peer.show()).peers[0]!.latestHandshake).toBe(0);
    expect(w.gateway!.running()).toBe(true);

    await w.startPeer({ privateKey: w.peerKeys.privateKey });
    expect(await w.ping(ADDR.tunGw4, 2), gwLog()).toBe(2);
  }, 60_000);

  test("random and truncated datagrams at the gateway's port: it stays alive and serving", async () => {
    await w.startGateway();
    await w.startPeer();
    expect(await w.ping(ADDR.tunGw4, 1), gwLog()).toBe(1);
    const r = await fuzzUdp(w.t.peer, ADDR.gwOuter4, GW_PORT, 1200, 42);
    expect(r.sent).toBe(1200);
    await sleep(300);
    expect(w.gateway!.running(), gwLog()).toBe(true);
    // The existing session still carries traffic...
    expect(await w.ping(ADDR.tunGw4, 2), gwLog()).toBe(2);
    // ...and a fresh handshake still works.
    await w.startPeer({ listenPort: PEER_PORT + 30 });
    expect(await w.ping(ADDR.tunGw4, 2), gwLog()).toBe(2);
  }, 60_000);
});
