/**
 * One line per packet, tcpdump style, for the replay command and trace logs. Never throws: a
 * packet that does not parse is described by why.
 */
import { formatIp } from "./ipaddr.ts";
import { Ipv4View } from "./ipv4.ts";
import { Ipv6View } from "./ipv6.ts";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TcpOptions, TcpView } from "./tcp.ts";

const FLAG_LETTERS: [number, string][] = [
  [TCP_SYN, "S"],
  [TCP_FIN, "F"],
  [TCP_RST, "R"],
  [TCP_PSH, "P"],
  [TCP_ACK, "."],
];

export function describePacket(packet: Uint8Array): string {
  try {
    const version = (packet[0] ?? 0) >> 4;
    if (version === 4) {
      const bad = Ipv4View.check(packet);
      if (bad) return `IPv4 malformed (${bad}), ${packet.length} bytes`;
      const v = new Ipv4View(packet);
      const frag = v.isFragment
        ? ` frag id ${v.identification} off ${v.fragmentOffset}${v.moreFragments ? "+" : ""}`
        : "";
      if (v.isFragment && v.fragmentOffset > 0)
        return `IP ${formatIp(v.src)} > ${formatIp(v.dst)}:${frag}, ${v.payload.length} bytes`;
      return describeUpper("IP", v.src, v.dst, v.protocol, v.payload, frag);
    }
    if (version === 6) {
      const bad = Ipv6View.check(packet);
      if (bad) return `IPv6 malformed (${bad}), ${packet.length} bytes`;
      const v = new Ipv6View(packet);
      const walkBad = v.walk();
      if (walkBad) return `IP6 ${formatIp(v.src)} > ${formatIp(v.dst)}: malformed (${walkBad})`;
      const isFrag = v.fragmentHeaderOffset >= 0;
      const frag = isFrag
        ? ` frag id ${v.fragmentIdentification} off ${v.fragmentOffset}${v.moreFragments ? "+" : ""}`
        : "";
      if (isFrag && v.fragmentOffset > 0)
        return `IP6 ${formatIp(v.src)} > ${formatIp(v.dst)}:${frag}, ${v.packetLength - v.upperOffset} bytes`;
      return describeUpper("IP6", v.src, v.dst, v.upperProtocol, packet.subarray(v.upperOffset, v.packetLength), frag);
    }
    return `not IP (first byte 0x${(packet[0] ?? 0).toString(16).padStart(2, "0")}), ${packet.length} bytes`;
  } catch (e) {
    return `undescribable packet (${(e as Error).message}), ${packet.length} bytes`;
  }
}

function describeUpper(
  ip: string,
  src: Uint8Array,
  dst: Uint8Array,
  proto: number,
  p: Uint8Array,
  frag: string,
): string {
  const s = formatIp(src);
  const d = formatIp(dst);
  if (proto === 6 && TcpView.check(p) === null) {
    const t = new TcpView(p);
    let flags = "";
    for (const [bit, letter] of FLAG_LETTERS) if (t.flags & bit) flags += letter;
    const o = new TcpOptions();
    const optBad = t.options(o);
    const opts: string[] = [];
    if (optBad) opts.push(`bad options: ${optBad}`);
    else {
      if (o.mss >= 0) opts.push(`mss ${o.mss}`);
      if (o.sackPermitted) opts.push("sackOK");
      if (o.hasTimestamp) opts.push(`TS val ${o.tsVal} ecr ${o.tsEcr}`);
      if (o.windowScale >= 0) opts.push(`wscale ${o.windowScale}`);
      for (let i = 0; i < o.sackCount; i++) opts.push(`sack ${o.sackBlocks[2 * i]}:${o.sackBlocks[2 * i + 1]}`);
    }
    const ack = t.flags & TCP_ACK ? `, ack ${t.ack}` : "";
    return (
      `${ip} ${s}.${t.srcPort} > ${d}.${t.dstPort}: Flags [${flags}], seq ${t.seq}${ack}, win ${t.window}` +
      `${opts.length ? `, options [${opts.join(",")}]` : ""}, length ${t.payloadLength}${frag}`
    );
  }
  if (proto === 17 && p.length >= 8) {
    const sp = ((p[0] as number) << 8) | (p[1] as number);
    const dp = ((p[2] as number) << 8) | (p[3] as number);
    return `${ip} ${s}.${sp} > ${d}.${dp}: UDP, length ${p.length - 8}${frag}`;
  }
  if ((proto === 1 || proto === 58) && p.length >= 8) {
    const type = p[0] as number;
    const code = p[1] as number;
    const id = ((p[4] as number) << 8) | (p[5] as number);
    const seq = ((p[6] as number) << 8) | (p[7] as number);
    const name = icmpName(proto, type, code);
    const echo = name.includes("echo") ? `, id ${id}, seq ${seq}` : "";
    return `${ip} ${s} > ${d}: ${proto === 1 ? "ICMP" : "ICMP6"} ${name}${echo}, length ${p.length}${frag}`;
  }
  return `${ip} ${s} > ${d}: protocol ${proto}, length ${p.length}${frag}`;
}

function icmpName(proto: number, type: number, code: number): string {
  if (proto === 1) {
    if (type === 8) return "echo request";
    if (type === 0) return "echo reply";
    if (type === 3) return `unreachable code ${code}`;
    if (type === 11) return "time exceeded";
  } else {
    if (type === 128) return "echo request";
    if (type === 129) return "echo reply";
    if (type === 1) return `unreachable code ${code}`;
    if (type === 2) return "packet too big";
    if (type === 3) return "time exceeded";
  }
  return `type ${type} code ${code}`;
}
