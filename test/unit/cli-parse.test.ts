import { describe, expect, test } from "bun:test";
import SEED from "../../fixtures/keys/seed-readme.json";
import { MAIN_FLAGS } from "../../src/cli/flags.ts";
import { CliError, type ParseContext, parseFlags, parseForward, parseGatewayArgs } from "../../src/cli/parse.ts";
import { parsePublicEndpoint, parseUpArgs, peerEndpointFor, renderPeerConfig, UP_DEFAULTS } from "../../src/cli/up.ts";
import { DEFAULTS } from "../../src/options.ts";
import { keyToBase64, parseKey } from "../../src/wireguard/keys.ts";

// Keys from the seed README's demo session.
const GW_PRIV = SEED.gateway.privateKey;
const GW_PUB = SEED.gateway.publicKey;
const PEER_PRIV = SEED.peer.privateKey;
const PEER_PUB = SEED.peer.publicKey;
const PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

function ctx(files: Record<string, string> = {}, env: Record<string, string> = {}): ParseContext {
  return {
    env,
    readFile: (p) => {
      const f = files[p];
      if (f === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
      return f;
    },
  };
}

function parse(argv: string[], c = ctx()) {
  return parseGatewayArgs(argv, c);
}

function err(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CliError) return e.message;
    throw e;
  }
  throw new Error("expected a CliError");
}

const BASE_DEFAULTS = {
  keepaliveInterval: 0,
  mtu: 1420,
  tcpBufferSize: 65535,
  transmitQueueCapacity: 256,
  udpIdleTimeout: 92,
  incomingTcp: [],
  incomingUdp: [],
  logLevel: "info" as const,
};

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

describe("parseForward", () => {
  test("with and without SRC, IPv6 brackets", () => {
    expect(parseForward("0.0.0.0:1234,10.0.2.1:1234,10.0.2.15:1234", "-u")).toEqual({
      host: { address: "0.0.0.0", port: 1234 },
      source: { address: "10.0.2.1", port: 1234 },
      destination: { address: "10.0.2.15", port: 1234 },
    });
    expect(parseForward("[::]:80,,[fd00::15]:8080", "-t")).toEqual({
      host: { address: "::", port: 80 },
      source: undefined,
      destination: { address: "fd00::15", port: 8080 },
    });
    // An IPv6 host may forward into an IPv4 destination (only SRC and DST must match).
    expect(parseForward("[::1]:80,10.0.2.1:0,10.0.2.15:80", "-t")).toEqual({
      host: { address: "::1", port: 80 },
      source: { address: "10.0.2.1", port: 0 },
      destination: { address: "10.0.2.15", port: 80 },
    });
  });

  test("bad triplets are named", () => {
    const cases: [string, string][] = [
      ["", 'invalid -t "": expected a comma-separated triplet HOST,[SRC],DST'],
      ["a,b,c,d", 'invalid -t "a,b,c,d": expected a comma-separated triplet HOST,[SRC],DST'],
      [
        "0.0.0.0:1,nope,10.0.2.15:1",
        'invalid -t "0.0.0.0:1,nope,10.0.2.15:1": SRC "nope" is not a socket address (IP:PORT or [IPv6]:PORT)',
      ],
      [",,10.0.2.15:1", 'invalid -t ",,10.0.2.15:1": HOST "" is not a socket address (IP:PORT or [IPv6]:PORT)'],
      ["0.0.0.0:0,,10.0.2.15:1", 'invalid -t "0.0.0.0:0,,10.0.2.15:1": HOST port must not be 0'],
      ["0.0.0.0:1,,10.0.2.15:0", 'invalid -t "0.0.0.0:1,,10.0.2.15:0": DST port must not be 0'],
      [
        "0.0.0.0:1,[fd00::1]:1,10.0.2.15:1",
        'invalid -t "0.0.0.0:1,[fd00::1]:1,10.0.2.15:1": SRC and DST must be the same IP family',
      ],
      [
        "0.0.0.0:1,,::1:5",
        'invalid -t "0.0.0.0:1,,::1:5": DST "::1:5" is not a socket address (IP:PORT or [IPv6]:PORT)',
      ],
    ];
    for (const [text, message] of cases) expect(err(() => parseForward(text, "-t"))).toBe(message);
  });
});

describe("parseFlags", () => {
  test("-- ends options; repeatable flags collect in order", () => {
    const p = parseFlags(["-u", "a", "-t", "b", "-u", "c", "--", "-k"], MAIN_FLAGS);
    expect(p.values.get("incoming-udp")).toEqual(["a", "c"]);
    expect(p.values.get("incoming-tcp")).toEqual(["b"]);
    expect(p.positionals).toEqual(["-k"]);
  });
  test("short aliases are case-sensitive", () => {
    const p = parseFlags(["-k", "x", "-K", "y", "-p", "1.1.1.1:1", "-P", "2.2.2.2", "-D", "3.3.3.3:53"], MAIN_FLAGS);
    expect(Object.fromEntries(p.values)).toEqual({
      "private-key": ["x"],
      "peer-key": ["y"],
      "peer-endpoint": ["1.1.1.1:1"],
      pingable: ["2.2.2.2"],
      dns: ["3.3.3.3:53"],
    });
  });
  test("a value that looks like a flag is taken as the value", () => {
    const p = parseFlags(["--pcap", "-weird-name"], MAIN_FLAGS);
    expect(p.values.get("pcap")).toEqual(["-weird-name"]);
  });
});

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
