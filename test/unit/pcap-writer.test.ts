import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { optionalTool } from "../../harness/gate.ts";
import type { IpLink } from "../../src/link.ts";
import { PcapWriter, pcapFileHeader, pcapRecordHeader, readPcap, tapLink } from "../../src/pcap/writer.ts";
import { VirtualClock } from "../../src/util/clock.ts";

// An ICMP echo request 192.168.76.1 -> 192.168.72.2 (as Linux ping sends it, 8 data bytes).
const PING = Uint8Array.from(
  Buffer.from("45000024a1b2400040011a6dc0a84c01c0a84802080091ab12340001" + "0001020304050607", "hex"),
);

test("file header is the classic little-endian pcap header with LINKTYPE_RAW", () => {
  expect(Buffer.from(pcapFileHeader()).toString("hex")).toBe("d4c3b2a1020004000000000000000000ffff000065000000");
});

test("record header carries seconds, microseconds and lengths", () => {
  expect(Buffer.from(pcapRecordHeader(1_700_000_000_123.456, 36)).toString("hex")).toBe(
    "00f1536540e20100" + "24000000" + "24000000",
  );
});

test("tapLink writes both directions and readPcap reads them back", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wgslirpy-pcap-"));
  const path = join(dir, "t.pcap");
  const clock = new VirtualClock(0, 1_700_000_000_000);
  const writer = new PcapWriter(path, clock);
  const sent: Uint8Array[] = [];
  const inner: IpLink = { send: (p) => sent.push(p), onPacket: () => {} };
  const tapped = tapLink(inner, writer);
  const received: Uint8Array[] = [];
  tapped.onPacket = (p) => received.push(p);
  inner.onPacket(PING); // from the peer
  clock.advance(1.5);
  const reply = PING.slice();
  tapped.send(reply); // to the peer
  await writer.close();
  expect(received).toEqual([PING]);
  expect(sent).toEqual([reply]);
  const { linktype, records } = readPcap(new Uint8Array(readFileSync(path)));
  expect(linktype).toBe(101);
  expect(records.map((r) => r.timeMs)).toEqual([1_700_000_000_000, 1_700_000_000_001.5]);
  expect(Buffer.from(records[0]!.packet).equals(Buffer.from(PING))).toBe(true);

  const tshark = optionalTool("tshark");
  if (tshark) {
    const p = Bun.spawnSync([tshark, "-r", path, "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type"]);
    expect(p.exitCode).toBe(0);
    expect(p.stdout.toString().trim().split("\n")).toEqual([
      "192.168.76.1\t192.168.72.2\t8",
      "192.168.76.1\t192.168.72.2\t8",
    ]);
  }
});

test("readPcap rejects garbage with a clear error", () => {
  expect(() => readPcap(new Uint8Array(10))).toThrow("shorter than its 24-byte header");
  expect(() => readPcap(new Uint8Array(24))).toThrow("bad magic");
});
