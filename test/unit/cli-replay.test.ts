import { expect, test } from "bun:test";
import { parseGatewayArgs } from "../../src/cli/parse.ts";

const cli = (args: string[]) => Bun.spawnSync(["bun", `${import.meta.dir}/../../src/cli.ts`, ...args]);
const PCAP = `${import.meta.dir}/../../fixtures/pcap/ping4.pcap`;

test("replay prints each packet fed and each answer, then a summary", () => {
  const p = cli(["replay", PCAP, "-P", "192.168.72.2"]);
  expect(p.exitCode).toBe(0);
  const lines = p.stdout.toString().trim().split("\n");
  expect(lines).toEqual([
    "0.000000 > IP 192.168.76.1 > 192.168.72.2: ICMP echo request, id 28200, seq 1, length 64",
    "0.000000 < IP 192.168.72.2 > 192.168.76.1: ICMP echo reply, id 28200, seq 1, length 64",
    "0.200148 > IP 192.168.76.1 > 192.168.72.2: ICMP echo request, id 28200, seq 2, length 64",
    "0.200148 < IP 192.168.72.2 > 192.168.76.1: ICMP echo reply, id 28200, seq 2, length 64",
    "replayed 2 peer packets (2 from the other side skipped); the stack sent 2; drops: none",
  ]);
});

test("replay: bad input is one line and exit 2", () => {
  for (const [args, msg] of [
    [["replay"], "replay needs exactly one capture file"],
    [["replay", "/nonexistent.pcap"], "cannot read /nonexistent.pcap"],
    [["replay", PCAP, "--upstream", "bogus"], 'invalid --upstream "bogus"'],
    [["replay", PCAP, "-P", "nope"], 'invalid --pingable "nope"'],
    [["replay", "/dev/null"], "/dev/null: pcap: file shorter than its 24-byte header"],
  ] as const) {
    const p = cli([...args]);
    expect(p.exitCode).toBe(2);
    const err = p.stderr.toString();
    expect(err.split("\n").filter(Boolean).length).toBe(1);
    expect(err).toContain(msg);
  }
});

test("--stats-listen parses into options; a bad address is rejected", () => {
  const base = [
    "-k",
    "SG43Zi0wGp4emfJ/XpTnnmtnK8SSjjIHOc3Zh37c928=",
    "-K",
    "rPpCjWzIv/yAtZZi+C/pVprie8D0QaGlPtJXlDi6bmI=",
  ];
  const ctx = { env: {}, readFile: () => "" };
  const o = parseGatewayArgs([...base, "-b", "127.0.0.1:9797", "--stats-listen", "127.0.0.1:9100"], ctx);
  expect(o.statsListen).toEqual({ address: "127.0.0.1", port: 9100 });
  expect(() => parseGatewayArgs([...base, "-b", "127.0.0.1:9797", "--stats-listen", "localhost:9100"], ctx)).toThrow(
    /stats-listen/,
  );
});
