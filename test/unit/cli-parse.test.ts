import { describe, expect, test } from "bun:test";
import { parseGatewayArgs } from "../../src/cli/parse.ts";
import { DEFAULTS } from "../../src/options.ts";
import { parseKey } from "../../src/wireguard/keys.ts";
import { BASE_DEFAULTS, ctx, err, GW_PRIV, PEER_PUB, PSK } from "./cli-parse-helpers.ts";

function parse(argv: string[], c = ctx()) {
  return parseGatewayArgs(argv, c);
}

describe("parseGatewayArgs: good flags", () => {
  test("the seed README's activation command", () => {
    const o = parse([
      "--private-key",
      GW_PRIV,
      "-b",
      "127.0.0.1:9797",
      "--peer-key",
      PEER_PUB,
      "--peer-endpoint",
      "127.0.0.1:9796",
      "--keepalive-interval",
      "10",
      "--dns",
      "192.168.72.2:53",
      "--pingable",
      "192.168.72.2",
    ]);
    expect(o).toEqual({
      mode: "wireguard",
      privateKey: parseKey(GW_PRIV),
      peerPublicKey: parseKey(PEER_PUB),
      peerEndpoint: { address: "127.0.0.1", port: 9796 },
      bind: { address: "127.0.0.1", port: 9797 },
      dns: { address: "192.168.72.2", port: 53 },
      pingable: "192.168.72.2",
      ...BASE_DEFAULTS,
      keepaliveInterval: 10,
    });
    expect(Object.keys(o)).not.toContain("presharedKey");
    expect(Object.keys(o)).not.toContain("pcap");
  });

  test("minimal flags give the documented defaults", () => {
    const o = parse(["-k", GW_PRIV, "-K", PEER_PUB, "-b", "0.0.0.0:51820"]);
    expect(o).toEqual({
      mode: "wireguard",
      privateKey: parseKey(GW_PRIV),
      peerPublicKey: parseKey(PEER_PUB),
      bind: { address: "0.0.0.0", port: 51820 },
      ...BASE_DEFAULTS,
    });
    expect(o.mtu).toBe(DEFAULTS.mtu);
    expect(o.tcpBufferSize).toBe(DEFAULTS.tcpBufferSize);
    // Without --tcp-buffer-size the buffers autotune.
    expect(o.tcpBufferFixed).toBeUndefined();
    expect(o.transmitQueueCapacity).toBe(DEFAULTS.transmitQueueCapacity);
    expect(o.udpIdleTimeout).toBe(DEFAULTS.udpIdleTimeout);
  });

  test("every short and long flag, --long=value form, private key and PSK from files", () => {
    const o = parse(
      [
        "-f",
        "/keys/gw",
        "-K",
        PEER_PUB,
        "--preshared-key-file=/keys/psk",
        "-p",
        "[::1]:9796",
        "-a",
        "25",
        "-b",
        "[::]:51820",
        "-D",
        "[fd00::1]:53",
        "-P",
        "fd00::1",
        "--mtu",
        "1280",
        "--tcp-buffer-size=262144",
        "--transmit-queue-capacity",
        "1024",
        "--udp-idle-timeout",
        "30",
        "-u",
        "0.0.0.0:1234,10.0.2.1:1234,10.0.2.15:1234",
        "--incoming-udp",
        "[::]:5353,,[fd00::15]:53",
        "-t",
        "0.0.0.0:2222,,10.0.2.15:22",
        "--incoming-tcp=[::1]:8080,[fd00::1]:0,[fd00::15]:80",
        "--log-level",
        "DEBUG",
        "--pcap",
        "/tmp/x.pcap",
      ],
      ctx({ "/keys/gw": `${GW_PRIV}\n`, "/keys/psk": `  ${PSK}\n` }),
    );
    expect(o).toEqual({
      mode: "wireguard",
      privateKey: parseKey(GW_PRIV),
      peerPublicKey: parseKey(PEER_PUB),
      presharedKey: Uint8Array.from({ length: 32 }, (_, i) => i),
      peerEndpoint: { address: "::1", port: 9796 },
      keepaliveInterval: 25,
      bind: { address: "::", port: 51820 },
      dns: { address: "fd00::1", port: 53 },
      pingable: "fd00::1",
      mtu: 1280,
      tcpBufferSize: 262144,
      tcpBufferFixed: true,
      transmitQueueCapacity: 1024,
      udpIdleTimeout: 30,
      incomingUdp: [
        {
          host: { address: "0.0.0.0", port: 1234 },
          source: { address: "10.0.2.1", port: 1234 },
          destination: { address: "10.0.2.15", port: 1234 },
        },
        { host: { address: "::", port: 5353 }, source: undefined, destination: { address: "fd00::15", port: 53 } },
      ],
      incomingTcp: [
        {
          host: { address: "0.0.0.0", port: 2222 },
          source: undefined,
          destination: { address: "10.0.2.15", port: 22 },
        },
        {
          host: { address: "::1", port: 8080 },
          source: { address: "fd00::1", port: 0 },
          destination: { address: "fd00::15", port: 80 },
        },
      ],
      logLevel: "debug",
      pcap: "/tmp/x.pcap",
    });
  });

  test("-k INSECURE -K GUE selects GUE mode without keys", () => {
    const o = parse(["-k", "INSECURE", "-K", "GUE", "-b", "127.0.0.1:6556", "--dns", "10.0.2.1:53", "-P", "10.0.2.1"]);
    expect(o).toEqual({
      mode: "gue",
      bind: { address: "127.0.0.1", port: 6556 },
      dns: { address: "10.0.2.1", port: 53 },
      pingable: "10.0.2.1",
      ...BASE_DEFAULTS,
    });
  });

  test("GUE mode keeps -p and -a", () => {
    const o = parse(["-k", "INSECURE", "-K", "GUE", "-b", "127.0.0.1:6556", "-p", "127.0.0.1:6555", "-a", "5"]);
    expect(o.mode).toBe("gue");
    expect(o.peerEndpoint).toEqual({ address: "127.0.0.1", port: 6555 });
    expect(o.keepaliveInterval).toBe(5);
  });

  test("log level: flag beats WGSLIRPY_LOG, which beats the default", () => {
    const argv = ["-k", GW_PRIV, "-K", PEER_PUB, "-b", "127.0.0.1:1"];
    expect(parse(argv, ctx({}, { WGSLIRPY_LOG: "trace" })).logLevel).toBe("trace");
    expect(parse([...argv, "--log-level", "warn"], ctx({}, { WGSLIRPY_LOG: "trace" })).logLevel).toBe("warn");
    expect(parse(argv, ctx({}, { WGSLIRPY_LOG: "" })).logLevel).toBe("info");
  });

  test("bind port 0 is allowed (ephemeral)", () => {
    expect(parse(["-k", GW_PRIV, "-K", PEER_PUB, "-b", "127.0.0.1:0"]).bind).toEqual({ address: "127.0.0.1", port: 0 });
  });
});

describe("parseGatewayArgs: bad input names the problem", () => {
  const ok = ["-K", PEER_PUB, "-b", "127.0.0.1:51820"];
  const cases: [string, string[], string][] = [
    ["neither -k nor -f", ok, "set exactly one of --private-key (-k) or --private-key-file (-f)"],
    [
      "both -k and -f",
      ["-k", GW_PRIV, "-f", "/keys/gw", ...ok],
      "set exactly one of --private-key (-k) or --private-key-file (-f)",
    ],
    ["missing -K", ["-k", GW_PRIV, "-b", "127.0.0.1:1"], "missing --peer-key (-K)"],
    ["missing -b", ["-k", GW_PRIV, "-K", PEER_PUB], "missing --bind-ip-port (-b)"],
    [
      "private key not base64",
      ["-k", "not*base64", ...ok],
      "invalid --private-key (-k): expected a base64 32-byte key (44 characters), got not base64",
    ],
    [
      "private key of 16 bytes",
      ["-k", "AAECAwQFBgcICQoLDA0ODw==", ...ok],
      "invalid --private-key (-k): expected a base64 32-byte key (44 characters), got 16 bytes instead of 32",
    ],
    [
      "peer key of 33 bytes",
      ["-k", GW_PRIV, "-K", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", "-b", "127.0.0.1:1"],
      'invalid --peer-key (-K): expected 32 bytes of base64 (44 characters ending in "="), got "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"',
    ],
    ["key file missing", ["-f", "/nope", ...ok], 'cannot read --private-key-file (-f) "/nope": ENOENT'],
    [
      "bad bind address",
      ["-k", GW_PRIV, "-K", PEER_PUB, "-b", "localhost:51820"],
      'invalid --bind-ip-port (-b) "localhost:51820": "localhost" is not an IP address',
    ],
    [
      "bind without port",
      ["-k", GW_PRIV, "-K", PEER_PUB, "-b", "127.0.0.1"],
      'invalid --bind-ip-port (-b) "127.0.0.1": expected IP:PORT or [IPv6]:PORT',
    ],
    [
      "unbracketed IPv6 endpoint",
      ["-k", GW_PRIV, ...ok, "-p", "::1:5"],
      'invalid --peer-endpoint (-p) "::1:5": expected IP:PORT or [IPv6]:PORT',
    ],
    [
      "peer endpoint port 0",
      ["-k", GW_PRIV, ...ok, "-p", "1.2.3.4:0"],
      'invalid --peer-endpoint (-p) "1.2.3.4:0": port must not be 0',
    ],
    [
      "port out of range",
      ["-k", GW_PRIV, ...ok, "-D", "10.0.2.1:65536"],
      'invalid --dns (-D) "10.0.2.1:65536": port out of range',
    ],
    [
      "pingable not an IP",
      ["-k", GW_PRIV, ...ok, "-P", "10.0.2"],
      'invalid --pingable (-P) "10.0.2": not an IP address',
    ],
    [
      "mtu not a number",
      ["-k", GW_PRIV, ...ok, "--mtu", "big"],
      'invalid --mtu "big": expected an integer from 576 to 65535',
    ],
    [
      "mtu too small",
      ["-k", GW_PRIV, ...ok, "--mtu", "100"],
      'invalid --mtu "100": expected an integer from 576 to 65535',
    ],
    [
      "negative keepalive",
      ["-k", GW_PRIV, ...ok, "-a", "-1"],
      'invalid --keepalive-interval (-a) "-1": expected an integer from 0 to 65535',
    ],
    ["unknown option", ["-k", GW_PRIV, ...ok, "--frobnicate"], 'unknown option "--frobnicate" (see --help)'],
    ["unknown short option", ["-k", GW_PRIV, ...ok, "-x"], 'unknown option "-x" (see --help)'],
    ["glued short option", ["-k" + GW_PRIV, ...ok], "option -k needs its value as a separate argument"],
    ["unknown long option with value", ["--secret=abc", ...ok], 'unknown option "--secret" (see --help)'],
    ["flag without value", ["-k", GW_PRIV, ...ok, "--mtu"], "option --mtu needs a value"],
    [
      "repeated single flag",
      ["-k", GW_PRIV, ...ok, "--mtu", "1400", "--mtu", "1300"],
      "option --mtu given more than once",
    ],
    ["stray positional", ["-k", GW_PRIV, ...ok, "extra"], 'unexpected argument "extra" (see --help)'],
    ["value on a switch", ["--help=yes"], "option --help (-h) takes no value"],
    [
      "bad log level",
      ["-k", GW_PRIV, ...ok, "--log-level", "loud"],
      'invalid --log-level "loud": expected one of error, warn, info, debug, trace',
    ],
    [
      "GUE with a key file",
      ["-k", "INSECURE", "-K", "GUE", "-b", "127.0.0.1:1", "-f", "/k"],
      "--private-key-file (-f) cannot be used in GUE mode (-k INSECURE -K GUE)",
    ],
    [
      "INSECURE without GUE is just a bad key",
      ["-k", "INSECURE", ...ok],
      "invalid --private-key (-k): expected a base64 32-byte key (44 characters), got 6 bytes instead of 32",
    ],
    [
      "bad -t triplet (two parts)",
      ["-k", GW_PRIV, ...ok, "-t", "0.0.0.0:1,10.0.2.15:1"],
      'invalid --incoming-tcp (-t) "0.0.0.0:1,10.0.2.15:1": expected a comma-separated triplet HOST,[SRC],DST',
    ],
    [
      "bad -u triplet (bad DST)",
      ["-k", GW_PRIV, ...ok, "-u", "0.0.0.0:1,,10.0.2.15"],
      'invalid --incoming-udp (-u) "0.0.0.0:1,,10.0.2.15": DST "10.0.2.15" is not a socket address (IP:PORT or [IPv6]:PORT)',
    ],
  ];
  for (const [name, argv, message] of cases) {
    test(name, () => {
      expect(err(() => parse(argv, ctx({ "/keys/gw": GW_PRIV })))).toBe(message);
    });
  }

  test("a bad secret key is never echoed", () => {
    const secretish = "SG43Zi0wGp4emfJ/XpTnnmtnK8SSjjIHOc3Zh37c92";
    const m = err(() => parse(["-k", secretish, ...ok]));
    expect(m).not.toContain(secretish);
    const m2 = err(() => parse(["-f", "/k", ...ok], ctx({ "/k": secretish })));
    expect(m2).toBe(
      'invalid key in --private-key-file (-f) "/k": expected a base64 32-byte key (44 characters), got 31 bytes instead of 32',
    );
  });
});

describe("--max-flows", () => {
  const base = ["-k", GW_PRIV, "-K", PEER_PUB, "-b", "127.0.0.1:9797"];
  test("absent: no maxFlows (derived from the open-files limit); given: the number", () => {
    expect(parse(base).maxFlows).toBeUndefined();
    expect(parse([...base, "--max-flows", "300"]).maxFlows).toBe(300);
  });
  test("0 or junk is a usage error", () => {
    expect(err(() => parse([...base, "--max-flows", "0"]))).toBe(
      'invalid --max-flows "0": expected an integer from 1 to 1048576',
    );
    expect(err(() => parse([...base, "--max-flows", "many"]))).toContain("invalid --max-flows");
  });
});
