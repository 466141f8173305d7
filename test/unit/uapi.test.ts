import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryTransport } from "../../src/transport/memory.ts";
import { ERRNO, type UapiTarget, uapiGet, uapiSet } from "../../src/uapi/protocol.ts";
import { startUapiServer } from "../../src/uapi/server.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { WireGuardDevice } from "../../src/wireguard/device.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/keys.ts";

function target(opts: { portTaken?: number } = {}) {
  const clock = new VirtualClock(0);
  const random = new SeededRandom(3);
  const [t] = MemoryTransport.pair({ address: "127.0.0.1", port: 1 }, { address: "127.0.0.1", port: 2 });
  const device = new WireGuardDevice({
    privateKey: generatePrivateKey(random),
    transport: t,
    clock,
    random,
    log: silentLogger,
  });
  let port = 51820;
  const tgt: UapiTarget = {
    device,
    listenPort: () => port,
    setListenPort: async (p) => {
      if (p === opts.portTaken) throw Object.assign(new Error("address already in use"), { code: "EADDRINUSE" });
      port = p;
    },
  };
  return { device, tgt, clock };
}

// The configuration protocol's example "set" (wireguard.com/xplatform), minus the endpoint's zone
// index in one case noted below.
const EXAMPLE_SET = `private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a
fwmark=0
listen_port=12912
replace_peers=true
public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33
preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52
replace_allowed_ips=true
allowed_ip=192.168.4.4/32
endpoint=[abcd:23::33%2]:51820
public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376
replace_allowed_ips=true
allowed_ip=192.168.4.6/32
persistent_keepalive_interval=111
endpoint=182.122.22.19:3233
public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58
endpoint=5.152.198.39:51820
replace_allowed_ips=true
allowed_ip=192.168.4.10/32
allowed_ip=192.168.4.11/32
public_key=e818b58db5274087fcc1be5dc728cf53d3b5726b4cef6b9bab8f8f8c2452c25c
remove=true
`;

const ZERO = "0".repeat(64);

describe("UAPI protocol text", () => {
  test("the protocol's example set, then get lists exactly that configuration", async () => {
    const { device, tgt } = target();
    device.addPeer({ publicKey: publicKeyOf(generatePrivateKey()), allowedIps: ["10.9.9.9/32"] }); // replace_peers drops it
    expect(await uapiSet(tgt, EXAMPLE_SET)).toBe(0);
    expect(device.peerCount).toBe(3);
    expect(uapiGet(tgt)).toBe(
      [
        "private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a",
        "listen_port=12912",
        "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33",
        "preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52",
        "protocol_version=1",
        "endpoint=[abcd:23::33%2]:51820",
        "last_handshake_time_sec=0",
        "last_handshake_time_nsec=0",
        "tx_bytes=0",
        "rx_bytes=0",
        "persistent_keepalive_interval=0",
        "allowed_ip=192.168.4.4/32",
        "public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376",
        `preshared_key=${ZERO}`,
        "protocol_version=1",
        "endpoint=182.122.22.19:3233",
        "last_handshake_time_sec=0",
        "last_handshake_time_nsec=0",
        "tx_bytes=0",
        "rx_bytes=0",
        "persistent_keepalive_interval=111",
        "allowed_ip=192.168.4.6/32",
        "public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58",
        `preshared_key=${ZERO}`,
        "protocol_version=1",
        "endpoint=5.152.198.39:51820",
        "last_handshake_time_sec=0",
        "last_handshake_time_nsec=0",
        "tx_bytes=0",
        "rx_bytes=0",
        "persistent_keepalive_interval=0",
        "allowed_ip=192.168.4.10/32",
        "allowed_ip=192.168.4.11/32",
        "",
      ].join("\n"),
    );
  });

  test("allowed_ip=-PREFIX removes one; update_only does not create; an existing peer is updated in place", async () => {
    const { device, tgt } = target();
    const key = "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33";
    expect(await uapiSet(tgt, `public_key=${key}\nallowed_ip=10.0.0.2/32\nallowed_ip=fd00::2/128\n`)).toBe(0);
    expect(await uapiSet(tgt, `public_key=${key}\nallowed_ip=-10.0.0.2/32\nallowed_ip=10.0.0.3/32\n`)).toBe(0);
    expect(uapiGet(tgt).match(/^allowed_ip=.*$/gm)).toEqual(["allowed_ip=10.0.0.3/32", "allowed_ip=fd00::2/128"]);
    const other = "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376";
    expect(await uapiSet(tgt, `public_key=${other}\nupdate_only=true\nallowed_ip=10.0.0.9/32\n`)).toBe(0);
    expect(device.peerCount).toBe(1);
    expect(await uapiSet(tgt, `public_key=${key}\nremove=true\n`)).toBe(0);
    expect(device.peerCount).toBe(0);
    expect(device.allowedIps.size).toBe(0);
  });

  test("a peer that handshook reports its handshake time and transfer", async () => {
    const { device, tgt } = target();
    const peer = device.addPeer({ publicKey: publicKeyOf(generatePrivateKey()) });
    peer.stats.lastHandshakeAt = 1_700_000_123_456;
    peer.stats.rxBytes = 92;
    peer.stats.txBytes = 148;
    const text = uapiGet(tgt);
    expect(text).toContain(
      "last_handshake_time_sec=1700000123\nlast_handshake_time_nsec=456000000\ntx_bytes=148\nrx_bytes=92\n",
    );
  });

  const errors: [string, string, number][] = [
    ["a line without =", "private_key\n", -ERRNO.EPROTO],
    ["an unknown device key", "frobnicate=1\n", -ERRNO.EINVAL],
    ["an unknown peer key", `public_key=${"1".repeat(64)}\nfrobnicate=1\n`, -ERRNO.EINVAL],
    ["a short hex key", "public_key=abcd\n", -ERRNO.EINVAL],
    ["a non-hex key", `private_key=${"g".repeat(64)}\n`, -ERRNO.EINVAL],
    ["a zero private key", `private_key=${ZERO}\n`, -ERRNO.EINVAL],
    ["a bad port", "listen_port=65536\n", -ERRNO.EINVAL],
    ["a port in use", "listen_port=4444\n", -ERRNO.EADDRINUSE],
    ["replace_peers=false", "replace_peers=false\n", -ERRNO.EINVAL],
    ["a bad endpoint", `public_key=${"1".repeat(64)}\nendpoint=example.com:1\n`, -ERRNO.EINVAL],
    ["a bad allowed ip", `public_key=${"1".repeat(64)}\nallowed_ip=10.0.0.0/33\n`, -ERRNO.EINVAL],
    ["a bad keepalive", `public_key=${"1".repeat(64)}\npersistent_keepalive_interval=-1\n`, -ERRNO.EINVAL],
    ["protocol_version=2", `public_key=${"1".repeat(64)}\nprotocol_version=2\n`, -ERRNO.EINVAL],
    ["remove=yes", `public_key=${"1".repeat(64)}\nremove=yes\n`, -ERRNO.EINVAL],
  ];
  for (const [name, body, errno] of errors) {
    test(`set with ${name}: errno=${errno}`, async () => {
      const { tgt } = target({ portTaken: 4444 });
      expect(await uapiSet(tgt, body)).toBe(errno);
    });
  }
});

/**
 * One request/answer exchange over the unix socket; resolves with everything read until `until`
 * matches (then 20 ms more, to catch bytes that should not be there), or with `until: "close"`
 * once the server closes: awaited, as a close 20 ms after the answer is late on a loaded machine.
 */
async function exchange(
  path: string,
  request: string,
  until: RegExp | "close",
): Promise<{ text: string; closed: boolean }> {
  let text = "";
  let closed = false;
  const done = Promise.withResolvers<void>();
  const sock = await Bun.connect({
    unix: path,
    socket: {
      data(_s, chunk) {
        text += chunk.toString();
        if (until !== "close" && until.test(text)) done.resolve();
      },
      close() {
        closed = true;
        done.resolve();
      },
    },
  });
  sock.write(request);
  const timer = setTimeout(() => done.resolve(), 10_000);
  await done.promise;
  clearTimeout(timer);
  if (!closed) await Bun.sleep(20);
  // Read before end(): Bun runs the close handler inside end(), which would set it true every time.
  const closedByServer = closed;
  sock.end();
  return { text, closed: closedByServer };
}

describe("UAPI unix socket server", () => {
  test("mode 0600; get, set and pipelined requests; malformed operations get errno and a close", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wgslirpy-uapi-"));
    const path = join(dir, "run", "wgtest.sock");
    const { tgt, device } = target();
    const server = await startUapiServer(path, tgt);
    try {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const key = "662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58";
      const set = await exchange(path, `set=1\npublic_key=${key}\nallowed_ip=10.0.0.7/32\n\n`, /\n\n$/);
      expect(set.text).toBe("errno=0\n\n");
      expect(device.peerCount).toBe(1);
      const both = await exchange(path, "get=1\n\nget=1\n\n", /errno=0\n\n[\s\S]*errno=0\n\n$/);
      const one = `${uapiGet(tgt)}errno=0\n\n`;
      expect(both.text).toBe(one + one);
      expect(one).toContain(`public_key=${key}\n`);
      const bad = await exchange(path, "hello=1\n", "close");
      expect(bad.text).toBe("errno=-22\n\n");
      expect(bad.closed).toBe(true);
      const trailing = await exchange(path, "get=1\nx\n", /\n\n$/);
      expect(trailing.text).toBe("errno=-22\n\n");
      const badSet = await exchange(path, "set=1\nwhat\n\n", /\n\n$/);
      expect(badSet.text).toBe("errno=-71\n\n");
      // A request split across writes is answered once complete.
      const sock = await Bun.connect({ unix: path, socket: { data() {} } });
      sock.write("ge");
      await Bun.sleep(10);
      sock.end();
      expect((await exchange(path, "get=1\n\n", /\n\n$/)).text).toBe(one);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a live socket at the path is in use; a stale file is replaced", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wgslirpy-uapi-"));
    const path = join(dir, "x.sock");
    const a = await startUapiServer(path, target().tgt);
    try {
      await expect(startUapiServer(path, target().tgt)).rejects.toThrow("in use");
    } finally {
      a.close();
    }
    await Bun.write(path, "stale");
    const b = await startUapiServer(path, target().tgt);
    expect((await exchange(path, "get=1\n\n", /errno=0\n\n$/)).text).toContain("errno=0");
    b.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("status: the protocol's example get answer, rendered", () => {
  // The "get" example of wireguard.com/xplatform (keys reordered within a peer, as servers may).
  const EXAMPLE_GET = `private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a
listen_port=12912
public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33
preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52
allowed_ip=192.168.4.4/32
endpoint=[abcd:23::33%2]:51820
public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376
tx_bytes=38333
rx_bytes=2224
allowed_ip=192.168.4.6/32
persistent_keepalive_interval=111
endpoint=182.122.22.19:3233
public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58
endpoint=5.152.198.39:51820
allowed_ip=192.168.4.10/32
allowed_ip=192.168.4.11/32
tx_bytes=1212111
rx_bytes=1929999999
protocol_version=1
errno=0

`;
  test("every peer with its endpoint, allowed ips, handshake and transfer", async () => {
    const { renderStatus } = await import("../../src/cli/status.ts");
    const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
    const names = new Map([[b64("58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376"), "phone"]]);
    const text = renderStatus(EXAMPLE_GET, "/run/x.sock", names, 1_700_000_000);
    const pub = Buffer.from(
      publicKeyOf(
        new Uint8Array(Buffer.from("e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a", "hex")),
      ),
    ).toString("base64");
    expect(text).toBe(
      [
        "interface: /run/x.sock",
        `  public key: ${pub}`,
        "  listening port: 12912",
        "  peers: 3 (0 with a handshake in the last 3 minutes)",
        "",
        `peer: ${b64("b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33")}`,
        "  endpoint: [abcd:23::33%2]:51820",
        "  allowed ips: 192.168.4.4/32",
        "  latest handshake: never",
        "  transfer: 0 B received, 0 B sent",
        "",
        `peer: ${b64("58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376")} (phone)`,
        "  endpoint: 182.122.22.19:3233",
        "  allowed ips: 192.168.4.6/32",
        "  latest handshake: never",
        "  transfer: 2.17 KiB received, 37.43 KiB sent",
        "  persistent keepalive: every 111 s",
        "",
        `peer: ${b64("662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58")}`,
        "  endpoint: 5.152.198.39:51820",
        "  allowed ips: 192.168.4.10/32, 192.168.4.11/32",
        "  latest handshake: never",
        "  transfer: 1.80 GiB received, 1.16 MiB sent",
        "",
      ].join("\n"),
    );
  });
});

describe("UAPI set on a live session", () => {
  test("re-sending a peer's settings (as wg syncconf does) keeps its session; a new PSK is used by the next handshake", async () => {
    const { WireGuardTunnel } = await import("../../src/wireguard/tunnel.ts");
    const clock = new VirtualClock(0);
    const random = new SeededRandom(8);
    const [ta, tb] = MemoryTransport.pair({ address: "127.0.0.1", port: 1 }, { address: "127.0.0.1", port: 2 });
    const gwKey = generatePrivateKey(random);
    const clientKey = generatePrivateKey(random);
    const device = new WireGuardDevice({ privateKey: gwKey, transport: ta, clock, random, log: silentLogger });
    const tgt: UapiTarget = { device, listenPort: () => 1, setListenPort: async () => {} };
    const hex = (k: Uint8Array) => Buffer.from(k).toString("hex");
    const psk = "11".repeat(32);
    const body = `public_key=${hex(publicKeyOf(clientKey))}\npreshared_key=${psk}\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.0.0.2/32\n`;
    expect(await uapiSet(tgt, body)).toBe(0);
    device.start();
    const client = new WireGuardTunnel({
      privateKey: clientKey,
      peerPublicKey: publicKeyOf(gwKey),
      presharedKey: new Uint8Array(32).fill(0x11),
      endpoint: { address: "127.0.0.1", port: 1 },
      transport: tb,
      clock,
      random,
      log: silentLogger,
    });
    client.start();
    clock.advance(5);
    const peer = device.getPeer(publicKeyOf(clientKey))!;
    expect(peer.stats.handshakesCompleted).toBe(1);
    const kp = peer.keypairs.current;
    expect(kp).toBeDefined();
    const deadlines = peer.timers.deadlines();
    expect(deadlines.zeroKeyMaterial).toBeGreaterThan(0);
    expect(await uapiSet(tgt, body)).toBe(0);
    expect(peer.keypairs.current).toBe(kp);
    expect(peer.timers.deadlines()).toEqual(deadlines); // no timer restarted or lost
    expect(peer.persistentKeepalive).toBe(25);
    expect(device.allowedIps.size).toBe(1);
    // A different PSK: the session in use stays; the client's next handshake (old PSK) fails.
    expect(await uapiSet(tgt, `public_key=${hex(publicKeyOf(clientKey))}\npreshared_key=${"22".repeat(32)}\n`)).toBe(0);
    expect(peer.keypairs.current).toBe(kp);
    clock.advance(121_000); // past REKEY_AFTER_TIME: the client re-initiates on its next send
    client.send(new Uint8Array([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]));
    clock.advance(10);
    expect(peer.stats.handshakesCompleted).toBe(1);
    expect(client.stats.drops.handshakeDecrypt).toBeGreaterThanOrEqual(1);
    client.close();
    device.close();
  });
});
