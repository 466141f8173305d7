// iperf3 client runs from the peer namespace, parsed from `iperf3 -J`.
import { exec } from "../harness/netns.ts";

export interface IperfResult {
  /** Mbit/s as measured by the receiver. */
  mbps: number;
  /** Bytes the receiver got. */
  bytes: number;
  retransmits: number | null;
  error?: string;
  /** Times the server answered "busy" before this run started (see BUSY_RETRIES). */
  busyRetries?: number;
}

/**
 * An iperf3 server serves one test at a time and says "the server is busy" until it has seen the
 * previous test's connections close. Under loss that close can wait for a retransmission timeout
 * (the last FIN or ACK lost), so a run started right after one may find it still busy: retry, at
 * most this many times BUSY_WAIT_MS apart. A server that stays busy longer still fails the run.
 */
const BUSY_RETRIES = 10;
const BUSY_WAIT_MS = 500;

/** `iperf3 -c HOST -p PORT -t SECONDS [-R] -J` in `ns`, retried while the server is busy. */
export async function iperf(
  ns: string,
  host: string,
  port: number,
  opts: { seconds: number; reverse: boolean; streams?: number },
): Promise<IperfResult> {
  for (let attempt = 0; ; attempt++) {
    const r = await iperfOnce(ns, host, port, opts);
    if (!r.error?.includes("busy") || attempt >= BUSY_RETRIES) return { ...r, busyRetries: attempt };
    await Bun.sleep(BUSY_WAIT_MS);
  }
}

/** One `iperf3 -c HOST -p PORT -t SECONDS [-R] -J` in `ns`; bounded by seconds + 20 s. */
async function iperfOnce(
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
