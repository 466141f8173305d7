// iperf3 client runs from the peer namespace, parsed from `iperf3 -J`.
import { exec } from "../harness/netns.ts";

export interface IperfResult {
  /** Mbit/s as measured by the receiver. */
  mbps: number;
  /** Bytes the receiver got. */
  bytes: number;
  retransmits: number | null;
  error?: string;
}

/** `iperf3 -c HOST -p PORT -t SECONDS [-R] -J` in `ns`; bounded by seconds + 20 s. */
export async function iperf(
  ns: string,
  host: string,
  port: number,
  opts: { seconds: number; reverse: boolean; streams?: number },
): Promise<IperfResult> {
  const argv = [
    "iperf3",
    "-c",
    host,
    "-p",
    String(port),
    "-t",
    String(opts.seconds),
    "-J",
    "--connect-timeout",
    "5000",
  ];
  if (opts.reverse) argv.push("-R");
  if (opts.streams && opts.streams > 1) argv.push("-P", String(opts.streams));
  const r = await exec(ns, argv, { timeoutMs: (opts.seconds + 20) * 1000 });
  try {
    const j = JSON.parse(r.stdout);
    if (j.error) return { mbps: 0, bytes: 0, retransmits: null, error: String(j.error) };
    const recv = j.end?.sum_received?.bits_per_second ?? 0;
    const retr = j.end?.sum_sent?.retransmits ?? null;
    return { mbps: recv / 1e6, bytes: j.end?.sum_received?.bytes ?? 0, retransmits: retr };
  } catch {
    return {
      mbps: 0,
      bytes: 0,
      retransmits: null,
      error: `iperf3 exit ${r.code}${r.timedOut ? " (timeout)" : ""}: ${r.stderr.slice(-300)}`,
    };
  }
}
