import { describe, expect, test } from "bun:test";
import { MAIN_FLAGS } from "../../src/cli/flags.ts";
import { parseFlags, parseForward } from "../../src/cli/parse.ts";
import { err } from "./cli-parse-helpers.ts";

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
