import { describe, expect, test } from "bun:test";
import { parseConfigFile } from "../../src/cli/config-file.ts";
import { parseGatewayArgsResolvingHosts } from "../../src/cli/config-hosts.ts";
import { runCli } from "../../src/cli/main.ts";
import { parseGatewayArgs } from "../../src/cli/parse.ts";
import { keyToBase64 } from "../../src/wireguard/keys.ts";
import { ctx, err } from "./cli-parse-helpers.ts";

const GW_PRIV = "SG43Zi0wGp4emfJ/XpTnnmtnK8SSjjIHOc3Zh37c928=";
const PEER_PUB = "rPpCjWzIv/yAtZZi+C/pVprie8D0QaGlPtJXlDi6bmI=";
const PEER2_PUB = "MR2RF5Tp+6BKt9k+deKg1GqR3re3ckJKti+uwZA84DU=";
const PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

const GOOD = `# a gateway for two devices
[Interface]
PrivateKey = ${GW_PRIV}
ListenPort = 51820
Address = 10.0.2.1/24, fd00::1/64
MTU = 1400
PostUp = iptables -A FORWARD -i %i -j ACCEPT   # wg-quick host keys are ignored

[Gateway]
BindAddress = 127.0.0.1
IncomingTCP = 127.0.0.1:8022,10.0.2.1:0,10.0.2.15:22
Deny = 10.0.0.0/8
Allow = 127.0.0.1/32:8080

[Peer]
# phone
PublicKey = ${PEER_PUB}
PresharedKey = ${PSK}
AllowedIPs = 10.0.2.15/32, fd00::15/128
AllowedIPs = 10.0.3.0/24
Endpoint = 127.0.0.1:40001
PersistentKeepalive = 25

[peer]
publickey = ${PEER2_PUB}
allowedips = 10.0.2.16/32
`;

describe("config file (wg-quick INI)", () => {
  test("a good file: interface, gateway keys, two peers", () => {
    const c = parseConfigFile(GOOD, "gw.conf");
    expect(keyToBase64(c.privateKey)).toBe(GW_PRIV);
    expect(c.listenPort).toBe(51820);
    expect(c.addresses).toEqual(["10.0.2.1", "fd00::1"]);
    expect(c.mtu).toBe(1400);
    expect(c.bindAddress).toBe("127.0.0.1");
    expect(c.policy).toEqual([
      { action: "deny", rule: "10.0.0.0/8" },
      { action: "allow", rule: "127.0.0.1/32:8080" },
    ]);
    expect(c.incomingTcp).toHaveLength(1);
    expect(c.peers).toHaveLength(2);
    const [a, b] = c.peers;
    expect(keyToBase64(a!.publicKey)).toBe(PEER_PUB);
    expect(keyToBase64(a!.presharedKey!)).toBe(PSK);
    expect(a!.allowedIps).toEqual(["10.0.2.15/32", "fd00::15/128", "10.0.3.0/24"]);
    expect(a!.endpoint).toEqual({ address: "127.0.0.1", port: 40001 });
    expect(a!.persistentKeepalive).toBe(25);
    expect(keyToBase64(b!.publicKey)).toBe(PEER2_PUB);
    expect(b!.allowedIps).toEqual(["10.0.2.16/32"]);
  });

  test("--config becomes GatewayOptions: DNS and ping on the first IPv4 Address, flags override the file", () => {
    const o = parseGatewayArgs(["-c", "gw.conf"], ctx({ "gw.conf": GOOD }));
    expect(o.mode).toBe("wireguard");
    expect(o.bind).toEqual({ address: "127.0.0.1", port: 51820 });
    expect(o.dns).toEqual({ address: "10.0.2.1", port: 53 });
    expect(o.pingable).toBe("10.0.2.1");
    expect(o.mtu).toBe(1400);
    expect(o.peers).toHaveLength(2);
    expect(o.peerPublicKey).toBeUndefined();
    const o2 = parseGatewayArgs(
      ["--config", "gw.conf", "-b", "127.0.0.1:0", "-P", "10.0.2.2", "--mtu", "1300", "--deny", "[::1]:53"],
      ctx({ "gw.conf": GOOD }),
    );
    expect(o2.bind).toEqual({ address: "127.0.0.1", port: 0 });
    expect(o2.pingable).toBe("10.0.2.2");
    expect(o2.mtu).toBe(1300);
    expect(o2.policy?.map((p) => p.rule)).toEqual(["10.0.0.0/8", "127.0.0.1/32:8080", "[::1]:53"]);
    const off = `[Interface]\nPrivateKey = ${GW_PRIV}\nAddress = 10.0.2.1/24\n[Gateway]\nDNS = off\nPingable = 10.0.2.9\n`;
    const o3 = parseGatewayArgs(["-c", "x"], ctx({ x: off }));
    expect(o3.dns).toBeUndefined();
    expect(o3.pingable).toBe("10.0.2.9");
    expect(o3.bind).toEqual({ address: "0.0.0.0", port: 0 });
    expect(o3.peers).toEqual([]);
  });

  const bad: [string, string, string][] = [
    ["no interface", `[Peer]\nPublicKey = ${PEER_PUB}\n`, "f.conf: no [Interface] section"],
    ["no private key", "[Interface]\nListenPort = 1\n", "f.conf: [Interface] has no PrivateKey"],
    ["key before section", "PrivateKey = x\n", 'f.conf:1: "PrivateKey" before any [Interface] or [Peer] section'],
    ["not key=value", "[Interface]\nPrivateKey\n", 'f.conf:2: expected "Key = Value" or a [Section], got "PrivateKey"'],
    [
      "unknown section",
      "[Interface]\n[Wat]\n",
      "f.conf:2: unknown section [Wat] (expected [Interface], [Gateway] or [Peer])",
    ],
    ["two interfaces", `[Interface]\nPrivateKey = ${GW_PRIV}\n[Interface]\n`, "f.conf:3: a second [Interface] section"],
    ["bad private key", "[Interface]\nPrivateKey = abc\n", "f.conf:2: PrivateKey is not a base64 32-byte key"],
    [
      "repeated key",
      `[Interface]\nPrivateKey = ${GW_PRIV}\nPrivateKey = ${GW_PRIV}\n`,
      "f.conf:3: PrivateKey given twice in one section",
    ],
    [
      "bad port",
      `[Interface]\nPrivateKey = ${GW_PRIV}\nListenPort = 70000\n`,
      'f.conf:3: ListenPort "70000" is not an integer from 0 to 65535',
    ],
    [
      "bad address",
      `[Interface]\nPrivateKey = ${GW_PRIV}\nAddress = 10.0.2.300/24\n`,
      'f.conf:3: Address "10.0.2.300/24" is not an IP address or prefix',
    ],
    [
      "unknown interface key",
      `[Interface]\nPrivateKey = ${GW_PRIV}\nFoo = 1\n`,
      'f.conf:3: unknown key "Foo" in [Interface]',
    ],
    [
      "unknown gateway key",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Gateway]\nDNSs = 1\n`,
      'f.conf:4: unknown key "DNSs" in [Gateway]',
    ],
    ["bad dns", `[Interface]\nPrivateKey = ${GW_PRIV}\n[Gateway]\nDNS = nowhere\n`, "f.conf:4: invalid DNS"],
    ["bad rule", `[Interface]\nPrivateKey = ${GW_PRIV}\n[Gateway]\nAllow = 10.0.0.0/99\n`, "f.conf:4: "],
    [
      "bad forward",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Gateway]\nIncomingUDP = 1,2\n`,
      'f.conf:4: invalid IncomingUDP "1,2"',
    ],
    [
      "peer without key",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nAllowedIPs = 10.0.0.2/32\n`,
      "f.conf:3: [Peer] without PublicKey",
    ],
    [
      "bad public key",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nPublicKey = ${PEER_PUB.slice(1)}\n`,
      "f.conf:4: PublicKey is not a base64 32-byte key",
    ],
    [
      "duplicate peer",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nPublicKey = ${PEER_PUB}\n[Peer]\nPublicKey = ${PEER_PUB}\n`,
      "f.conf:6: PublicKey already used by the [Peer] on line 4",
    ],
    [
      "bad allowed ip",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nPublicKey = ${PEER_PUB}\nAllowedIPs = 10.0.0.0/8, 10.0.0.0/33\n`,
      'f.conf:5: AllowedIPs "10.0.0.0/33" is not an IP prefix',
    ],
    [
      "endpoint without a port",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nPublicKey = ${PEER_PUB}\nEndpoint = vpn.example\n`,
      'f.conf:5: invalid Endpoint "vpn.example"',
    ],
    [
      "endpoint host that is a malformed IP",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nPublicKey = ${PEER_PUB}\nEndpoint = 10.1.2:51820\n`,
      'f.conf:5: invalid Endpoint "10.1.2:51820": "10.1.2" is not an IP address',
    ],
    [
      "endpoint host with port 0",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nPublicKey = ${PEER_PUB}\nEndpoint = localhost:0\n`,
      'f.conf:5: Endpoint "localhost:0": port must not be 0',
    ],
    [
      "bad keepalive",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nPublicKey = ${PEER_PUB}\nPersistentKeepalive = soon\n`,
      'f.conf:5: PersistentKeepalive "soon" is not an integer from 0 to 65535',
    ],
    [
      "unknown peer key",
      `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nPublicKey = ${PEER_PUB}\nName = phone\n`,
      'f.conf:5: unknown key "Name" in [Peer]',
    ],
  ];
  for (const [name, text, message] of bad) {
    test(`bad file: ${name}`, () => {
      const m = err(() => parseConfigFile(text, "f.conf"));
      expect(m.startsWith(message)).toBe(true);
      expect(m).not.toContain("\n");
      expect(m).not.toContain(GW_PRIV);
    });
  }

  test("flags that belong in the file conflict; a missing file names it", () => {
    const c = ctx({ "gw.conf": GOOD });
    expect(err(() => parseGatewayArgs(["-c", "gw.conf", "-K", PEER_PUB], c))).toBe(
      "--peer-key (-K) cannot be combined with --config (-c) (set it in the file)",
    );
    expect(err(() => parseGatewayArgs(["-c", "nope.conf"], c))).toBe('cannot read --config (-c) "nope.conf": ENOENT');
  });

  test("the CLI prints one line naming file and line, exit 2", async () => {
    const lines: string[] = [];
    const code = await runCli(["-c", "f.conf"], {
      env: {},
      stdout: () => {},
      stderr: (t) => lines.push(t),
      readFile: () => `[Interface]\nPrivateKey = ${GW_PRIV}\n\n[Peer]\nPublicKey = nope\n`,
      readStdin: async () => "",
      home: () => "/nonexistent",
      interfaces: () => ({}),
    });
    expect(code).toBe(2);
    expect(lines.join("")).toBe("wgslirpy: error: f.conf:5: PublicKey is not a base64 32-byte key\n");
  });

  const HOSTS = `[Interface]\nPrivateKey = ${GW_PRIV}\n[Peer]\nPublicKey = ${PEER_PUB}\nEndpoint = localhost:40001\n[Peer]\nPublicKey = ${PEER2_PUB}\nEndpoint = peer.invalid:51820\n`;

  test("Endpoint HOST:PORT is kept for resolution at startup, with its line", () => {
    const cfg = parseConfigFile(HOSTS, "f.conf");
    expect(cfg.endpointHosts).toEqual([
      { peer: 0, host: "localhost", port: 40001, line: 5 },
      { peer: 1, host: "peer.invalid", port: 51820, line: 8 },
    ]);
    expect(cfg.peers[0]!.endpoint).toBeUndefined();
    expect(err(() => parseGatewayArgs(["-c", "f.conf"], ctx({ "f.conf": HOSTS })))).toBe(
      'f.conf:5: Endpoint host "localhost" was not resolved',
    );
  });

  test("host names resolve once each through the injected resolver", async () => {
    const asked: string[] = [];
    const text = HOSTS.replace("peer.invalid", "localhost");
    const opts = await parseGatewayArgsResolvingHosts(["-c", "f.conf"], ctx({ "f.conf": text }), async (name) => {
      asked.push(name);
      return "127.0.0.9";
    });
    expect(asked).toEqual(["localhost"]);
    expect(opts.peers!.map((p) => p.endpoint)).toEqual([
      { address: "127.0.0.9", port: 40001 },
      { address: "127.0.0.9", port: 51820 },
    ]);
  });

  test("localhost resolves through the system resolver (/etc/hosts)", async () => {
    const text = HOSTS.replace("peer.invalid:51820", "127.0.0.1:51820");
    const opts = await parseGatewayArgsResolvingHosts(["-c", "f.conf"], ctx({ "f.conf": text }));
    expect(["127.0.0.1", "::1"]).toContain(opts.peers![0]!.endpoint!.address);
    expect(opts.peers![0]!.endpoint!.port).toBe(40001);
    expect(opts.peers![1]!.endpoint).toEqual({ address: "127.0.0.1", port: 51820 });
  });

  test("a name that does not resolve: one line naming file and line, exit 2", async () => {
    const lines: string[] = [];
    const code = await runCli(["-c", "f.conf"], {
      env: {},
      stdout: () => {},
      stderr: (t) => lines.push(t),
      readFile: () => HOSTS,
      readStdin: async () => "",
      home: () => "/nonexistent",
      interfaces: () => ({}),
      lookupHost: async (name) => {
        if (name === "localhost") return "127.0.0.1";
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
      },
    });
    expect(code).toBe(2);
    expect(lines.join("")).toBe(
      'wgslirpy: error: f.conf:8: Endpoint host "peer.invalid" does not resolve (ENOTFOUND)\n',
    );
  });
});
