import { describe, expect, test } from "bun:test";
import { parsePublicEndpoint, parseUpArgs, peerEndpointFor, renderPeerConfig, UP_DEFAULTS } from "../../src/cli/up.ts";
import { keyToBase64, parseKey } from "../../src/wireguard/keys.ts";
import { BASE_DEFAULTS, err, GW_PRIV, GW_PUB, PEER_PRIV } from "./cli-parse-helpers.ts";

describe("up", () => {
  test("defaults: 0.0.0.0:51820, DNS 10.0.2.1:53, pingable 10.0.2.1", () => {
    expect(parseUpArgs([], {})).toEqual({
      options: {
        mode: "wireguard",
        bind: { address: "0.0.0.0", port: 51820 },
        dns: { address: "10.0.2.1", port: 53 },
        pingable: "10.0.2.1",
        ...BASE_DEFAULTS,
      },
      printConfigOnly: false,
      showConfig: false,
    });
  });

  test("overrides", () => {
    expect(
      parseUpArgs(
        [
          "-b",
          "127.0.0.1:5555",
          "-D",
          "10.9.0.1:5353",
          "-P",
          "10.9.0.1",
          "--public-endpoint",
          "vpn.example.org:443",
          "--state-dir",
          "/tmp/s",
          "--dry-run",
          "--mtu",
          "1380",
        ],
        { WGSLIRPY_LOG: "debug" },
      ),
    ).toEqual({
      options: {
        mode: "wireguard",
        bind: { address: "127.0.0.1", port: 5555 },
        dns: { address: "10.9.0.1", port: 5353 },
        pingable: "10.9.0.1",
        ...BASE_DEFAULTS,
        mtu: 1380,
        logLevel: "debug",
      },
      publicEndpoint: "vpn.example.org:443",
      stateDir: "/tmp/s",
      printConfigOnly: true,
      showConfig: false,
    });
  });

  test("up refuses key flags and bad endpoints", () => {
    expect(err(() => parseUpArgs(["-k", GW_PRIV], {}))).toBe('unknown option "-k" (see --help)');
    expect(err(() => parseUpArgs(["--public-endpoint", "::1:5"], {}))).toBe(
      'invalid --public-endpoint "::1:5": expected HOST:PORT or [IPv6]:PORT',
    );
    expect(err(() => parseUpArgs(["now"], {}))).toBe('unexpected argument "now" for "up" (see up --help)');
  });

  test("public endpoint syntax", () => {
    expect(parsePublicEndpoint("[2001:db8::1]:51820", "x")).toBe("[2001:db8::1]:51820");
    expect(parsePublicEndpoint("198.51.100.7:1", "x")).toBe("198.51.100.7:1");
    expect(err(() => parsePublicEndpoint("host:0", "x"))).toBe('invalid x "host:0": expected HOST:PORT or [IPv6]:PORT');
    expect(err(() => parsePublicEndpoint("[nothost]:5", "x"))).toBe(
      'invalid x "[nothost]:5": expected HOST:PORT or [IPv6]:PORT',
    );
    expect(err(() => parsePublicEndpoint("-bad-:5", "x"))).toBe(
      'invalid x "-bad-:5": expected HOST:PORT or [IPv6]:PORT',
    );
  });

  test("peer Endpoint: flag, else bind address, else a guessed host address", () => {
    const ifs = {
      lo: [{ address: "127.0.0.1", family: "IPv4", internal: true }],
      eth0: [
        { address: "fe80::1", family: "IPv6", internal: false },
        { address: "192.0.2.10", family: "IPv4", internal: false },
      ],
    };
    expect(peerEndpointFor({ address: "0.0.0.0", port: 51820 }, "vpn.example:1", ifs)).toEqual({
      endpoint: "vpn.example:1",
      guessed: false,
    });
    expect(peerEndpointFor({ address: "::1", port: 7 }, undefined, ifs)).toEqual({
      endpoint: "[::1]:7",
      guessed: false,
    });
    expect(peerEndpointFor({ address: "0.0.0.0", port: 51820 }, undefined, ifs)).toEqual({
      endpoint: "192.0.2.10:51820",
      guessed: true,
    });
    expect(peerEndpointFor({ address: "::", port: 9 }, undefined, { lo: ifs.lo })).toEqual({
      endpoint: "127.0.0.1:9",
      guessed: true,
    });
  });

  test("renderPeerConfig: exact wg-quick text", () => {
    const keys = { dir: "/state", peerPrivate: parseKey(PEER_PRIV), gatewayPublic: parseKey(GW_PUB) };
    expect(
      renderPeerConfig(
        keys,
        { dns: { address: "10.0.2.1", port: 53 }, mtu: 1420 },
        { endpoint: "127.0.0.1:51820", guessed: false },
      ),
    ).toBe(
      [
        "# wgslirpy quick start: wg-quick config for the peer (keys kept in /state)",
        "[Interface]",
        `PrivateKey = ${PEER_PRIV}`,
        "Address = 10.0.2.15/32, fd00::15/128",
        "DNS = 10.0.2.1",
        "MTU = 1420",
        "",
        "[Peer]",
        `PublicKey = ${GW_PUB}`,
        "Endpoint = 127.0.0.1:51820",
        "AllowedIPs = 0.0.0.0/0, ::/0",
        "PersistentKeepalive = 25",
        "",
      ].join("\n"),
    );
    const odd = renderPeerConfig(
      keys,
      { dns: { address: "10.0.2.1", port: 5353 }, mtu: 1280 },
      { endpoint: "h:1", guessed: true },
    );
    expect(odd).toContain("# DNS is served on 10.0.2.1:5353; wg-quick's DNS= can only use port 53\nMTU = 1280\n");
    expect(odd).not.toContain("DNS = ");
    expect(odd).toContain(
      "# Endpoint guessed from this host's addresses; set it with --public-endpoint\nEndpoint = h:1\n",
    );
    expect(UP_DEFAULTS.peerAddresses).toEqual(["10.0.2.15/32", "fd00::15/128"]);
    expect(keyToBase64(parseKey(GW_PRIV))).toBe(GW_PRIV);
  });
});
