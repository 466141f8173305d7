/**
 * Replay of captures made from a real Linux kernel (harness/capture-fixtures.ts: the peer
 * namespace's own stack through wireguard-go): the netstack's answers are checked field by field.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { replayPcap } from "../../src/replay/replay.ts";
import { checksum } from "../../src/wire/checksum.ts";
import { Icmpv4View } from "../../src/wire/icmpv4.ts";
import { Ipv4View } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";
import { TCP_ACK, TCP_FIN, TCP_SYN, TcpOptions, TcpView, tcpChecksumValid } from "../../src/wire/tcp.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(`${import.meta.dir}/../../fixtures/pcap/${name}.pcap`));

/** The TCP segment of a packet we emitted (IPv4 or IPv6 without extension headers), checked. */
function tcpOf(p: Uint8Array): TcpView {
  if (p[0]! >> 4 === 4) {
    expect(Ipv4View.check(p)).toBeNull();
    const v = new Ipv4View(p);
    expect(tcpChecksumValid(v.src, v.dst, v.payload)).toBe(true);
    return new TcpView(v.payload);
  }
  expect(Ipv6View.check(p)).toBeNull();
  const v = new Ipv6View(p);
  const seg = p.subarray(40, v.packetLength);
  expect(tcpChecksumValid(v.src, v.dst, seg)).toBe(true);
  return new TcpView(seg);
}

/** The peer's SYN in the capture. */
function peerSyn(data: Uint8Array, v6: boolean): { seq: number; tsVal: number } {
  const off = 24 + 16;
  const ipLen = v6 ? 40 : 20;
  const seg = new TcpView(data.subarray(off + ipLen));
  const o = new TcpOptions();
  seg.options(o);
  expect(seg.flags & TCP_SYN).toBeTruthy();
  return { seq: seg.seq, tsVal: o.tsVal };
}

for (const [name, mss, v6] of [
  ["tcp4-http", 1380, false],
  ["tcp6-http", 1360, true],
] as const) {
  test(`${name}: SYN-ACK options and numbers, request delivered, response replayed, clean close`, async () => {
    const data = fixture(name);
    const lines: string[] = [];
    const r = await replayPcap(data, { out: (l) => lines.push(l) });
    const syn = peerSyn(data, v6);
    const segs = r.emitted.map(tcpOf);
    const synAck = segs[0]!;
    expect(synAck.flags).toBe(TCP_SYN | TCP_ACK);
    expect(synAck.ack).toBe((syn.seq + 1) >>> 0);
    const o = new TcpOptions();
    expect(synAck.options(o)).toBeNull();
    expect(o.mss).toBe(mss);
    expect(o.sackPermitted).toBe(true);
    expect(o.hasTimestamp).toBe(true);
    expect(o.tsEcr).toBe(syn.tsVal);
    expect(o.windowScale).toBeGreaterThanOrEqual(0);
    // The peer's 88/91-byte HTTP request reached the upstream, in order and complete.
    expect([...r.tcpBytes.values()]).toEqual([v6 ? 91 : 88]);
    // Our response: the original server's bytes, right after the SYN-ACK's sequence number.
    const dataSegs = segs.filter((s) => s.payloadLength > 0);
    expect(dataSegs.reduce((n, s) => n + s.payloadLength, 0)).toBe(1188);
    expect(dataSegs[0]!.seq).toBe((synAck.seq + 1) >>> 0);
    expect(new TextDecoder().decode(dataSegs[0]!.payload.subarray(0, 15))).toBe("HTTP/1.0 200 OK");
    // Both FINs were exchanged and acknowledged: the flow closed normally.
    expect(segs.some((s) => s.flags & TCP_FIN)).toBe(true);
    expect(lines.at(-1)).toMatch(/closed \(closed\)$/);
    expect(r.skipped).toBeGreaterThan(0);
  });
}

for (const [name, pingable] of [
  ["ping4", "192.168.72.2"],
  ["ping6", "fc00::72:2"],
] as const) {
  test(`${name}: each echo request gets a byte-exact echo reply`, async () => {
    const data = fixture(name);
    const r = await replayPcap(data, { pingable });
    expect(r.fed).toBe(2);
    expect(r.emitted.length).toBe(2);
    for (const reply of r.emitted) {
      if (name === "ping4") {
        expect(Ipv4View.check(reply)).toBeNull();
        const ip = new Ipv4View(reply);
        expect(Icmpv4View.check(ip.payload)).toBeNull();
        expect(ip.payload[0]).toBe(0);
        expect(checksum(ip.payload)).toBe(0);
      } else {
        expect(reply[6]).toBe(58);
        expect(reply[40]).toBe(129);
      }
    }
    // id, sequence number and data mirror the requests.
    const requests: Uint8Array[] = [];
    const ipLen = name === "ping4" ? 20 : 40;
    let off = 24;
    while (off < data.length) {
      const caplen = new DataView(data.buffer, data.byteOffset + off + 8, 4).getUint32(0, true);
      const pkt = data.subarray(off + 16, off + 16 + caplen);
      if (pkt[ipLen] === (name === "ping4" ? 8 : 128)) requests.push(pkt);
      off += 16 + caplen;
    }
    expect(requests.length).toBe(2);
    requests.forEach((req, i) => {
      expect(Buffer.from(r.emitted[i]!.subarray(ipLen + 4)).equals(Buffer.from(req.subarray(ipLen + 4)))).toBe(true);
    });
  });
}

for (const name of ["udp4-frag", "udp6-frag"]) {
  test(`${name}: the kernel's fragments reassemble into the 3000-byte datagram`, async () => {
    const r = await replayPcap(fixture(name));
    expect(r.fed).toBe(3);
    expect(r.udp.map((u) => u.length)).toEqual([3000]);
    expect(r.udp[0]!.flow).toMatch(/\.7000$/);
  });
}

test("dns4: the three queries dig sent reach the UDP layer intact", async () => {
  const r = await replayPcap(fixture("dns4"));
  expect(r.udp.map((u) => u.length)).toEqual([49, 49, 56]);
  expect(r.udp.every((u) => u.flow.endsWith("192.168.72.2.53"))).toBe(true);
});

test("refuse upstream: the SYN gets a RST acknowledging it", async () => {
  const data = fixture("tcp4-http");
  const r = await replayPcap(data, { upstream: "refuse" });
  const rst = tcpOf(r.emitted[0]!);
  expect(rst.flags & 0x04).toBeTruthy();
  expect(rst.ack).toBe((peerSyn(data, false).seq + 1) >>> 0);
});

test("garbage is a clear error", async () => {
  await expect(replayPcap(new Uint8Array(40))).rejects.toThrow("bad magic");
});
