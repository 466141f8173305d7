#!/usr/bin/env bun
// A tiny FOU/GUE counterpart for kernel-peer tests, run inside a test namespace:
//   ip netns exec NS bun harness/kernel/udp-reflector.ts --port P [--addr 127.0.0.1] [--count N]
//        [--timeout MS] [--reflect]
// Prints one JSON line per received datagram: {"from":"a.b.c.d","port":n,"hex":"0004..."} and
// "READY" once bound. With --reflect it answers every ICMP/ICMPv6 echo request inside a datagram
// (raw IPv4/IPv6, or behind a 4-byte GUE variant-0 header) with an echo reply in the same framing,
// so the guest's ping proves the kernel's decapsulation too. Independent of src/ on purpose: it is
// an oracle. Exits after --count datagrams or --timeout ms (default 60 s).

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const port = Number(opt("port", "0"));
const addr = opt("addr", "127.0.0.1");
const count = Number(opt("count", "1000"));
const timeoutMs = Number(opt("timeout", "60000"));
const reflect = args.includes("--reflect");

function sum16(b: Uint8Array, start: number, end: number, init = 0): number {
  let s = init;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  return s;
}
function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Echo reply for an echo request IP packet at p[off..], or null. */
export function echoReply(pkt: Uint8Array): Uint8Array | null {
  const p = new Uint8Array(pkt);
  const v = p[0]! >> 4;
  if (v === 4) {
    const ihl = (p[0]! & 15) * 4;
    if (p[9] !== 1 || p[ihl] !== 8) return null;
    const src = p.slice(12, 16);
    p.set(p.slice(16, 20), 12);
    p.set(src, 16);
    p[8] = 64;
    p[10] = 0;
    p[11] = 0;
    const hc = fold(sum16(p, 0, ihl));
    p[10] = hc >> 8;
    p[11] = hc & 255;
    const total = (p[2]! << 8) | p[3]!;
    p[ihl] = 0;
    p[ihl + 2] = 0;
    p[ihl + 3] = 0;
    const c = fold(sum16(p, ihl, total));
    p[ihl + 2] = c >> 8;
    p[ihl + 3] = c & 255;
    return p.slice(0, total);
  }
  if (v === 6) {
    if (p[6] !== 58 || p[40] !== 128) return null;
    const src = p.slice(8, 24);
    p.set(p.slice(24, 40), 8);
    p.set(src, 24);
    p[7] = 64;
    const plen = (p[4]! << 8) | p[5]!;
    p[40] = 129;
    p[42] = 0;
    p[43] = 0;
    let s = sum16(p, 8, 40);
    s += plen + 58;
    s = sum16(p, 40, 40 + plen, s);
    const c = fold(s);
    p[42] = c >> 8;
    p[43] = c & 255;
    return p.slice(0, 40 + plen);
  }
  return null;
}

let n = 0;
const sock = await Bun.udpSocket({
  hostname: addr,
  port,
  binaryType: "uint8array",
  socket: {
    data(s, buf, rport, raddr) {
      n++;
      console.log(JSON.stringify({ from: raddr, port: rport, hex: Buffer.from(buf).toString("hex") }));
      if (reflect) {
        // GUE variant 0 header: version 0, C=0, hlen=0, proto 4 or 41, flags 0.
        const gue = buf.length > 4 && buf[0]! >> 6 === 0 && (buf[1] === 4 || buf[1] === 41) && buf[0] === 0;
        const inner = gue ? buf.subarray(4) : buf;
        const reply = echoReply(inner);
        if (reply) {
          const out = gue ? new Uint8Array([...buf.subarray(0, 4), ...reply]) : reply;
          s.send(out, rport, raddr);
        }
      }
      if (n >= count) {
        setTimeout(() => process.exit(0), 50);
      }
    },
  },
});
console.log(`READY ${sock.port}`);
setTimeout(() => process.exit(0), timeoutMs);
