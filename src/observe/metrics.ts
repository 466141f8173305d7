/**
 * Render nested stats objects as Prometheus text exposition (format 0.0.4): every finite number
 * becomes one sample named after its path (`wgslirpy_tunnel_rx_packets_total`), grouped into
 * families with `# HELP` and `# TYPE`. Cumulative figures are counters (suffix `_total`); figures
 * that go up and down (live flows, buffered bytes, timestamps) are gauges. A `drops` record
 * becomes one counter family with a `reason` label, so new drop reasons need no new names.
 * Wall-clock times (stats keys ending in `At`, ms since the epoch) become
 * `..._timestamp_seconds` gauges in seconds, as Prometheus names and units them.
 *
 * Labelled subtrees (the hook for per-peer series): a value `{ [LABELLED]: [{ labels, stats }] }`
 * renders each element's stats with its labels, all into the same families.
 */

export const LABELLED = Symbol("labelled");
export interface LabelledStats {
  [LABELLED]: { labels: Record<string, string>; stats: unknown }[];
}

type MetricType = "counter" | "gauge";

interface Family {
  type: MetricType;
  help: string;
  samples: string[];
}

/**
 * Keys (last path element) whose value goes up and down: live counts, buffers, limits, peaks,
 * timestamps. Everything else is cumulative. Inside a `drops` or `denied` record every figure is a
 * counter whatever its name.
 */
const GAUGE_KEY =
  /^(live|current|open|queued|max|min)([A-Z]|$)|^(pending[A-Z]\w*|hostSockets|udpMappings|underLoad|ready)$|^in[Ff]light$|[bB]uffered|[oO]utOfOrder|^last[A-Z]|At$|Bytes$|Size$|Enabled$|Capacity$|Peak$|Entries$|InFlight$/;
/** Gauges among the Bytes-suffixed keys are buffers; cumulative byte counts read as counters. */
const COUNTER_BYTES = /^(rx|tx)Bytes$|^bytes(In|Out)$|Bytes(In|Out|Sent|Received)$/;
/** A wall-clock time in /stats: ms since the epoch. */
const MS_TIMESTAMP = /^[a-z]\w*At$/;
/** Records whose members are all counters (named by reason). */
const COUNTER_RECORDS = new Set(["denied"]);

/** Hand-written help for the families an operator looks at first; the rest say where they come from. */
const HELP: Record<string, string> = {
  wgslirpy_tunnel_rx_packets_total: "Inner IP packets received from the peer",
  wgslirpy_tunnel_tx_packets_total: "Inner IP packets sent to the peer",
  wgslirpy_tunnel_rx_bytes_total: "Outer bytes of authenticated messages received from the peer",
  wgslirpy_tunnel_tx_bytes_total: "Outer bytes sent to the peer",
  wgslirpy_tunnel_handshakes_completed_total: "WireGuard handshakes completed",
  wgslirpy_tunnel_last_handshake_timestamp_seconds:
    "Wall-clock time of the last completed handshake, seconds since the epoch (0 = never)",
  wgslirpy_tunnel_drops_total: "Outer datagrams dropped by the tunnel, by reason",
  wgslirpy_gateway_live_tcp: "TCP flows open now",
  wgslirpy_gateway_live_udp: "UDP NAT mappings open now",
  wgslirpy_gateway_live_ping: "Echo (ping) NAT entries open now",
  wgslirpy_gateway_drops_total: "Flows and packets the gateway dropped, by reason",
  wgslirpy_netstack_drops_total: "Inner packets the netstack dropped, by reason",
  wgslirpy_tcp_drops_total: "TCP segments dropped, by reason",
};

export function toPrometheus(stats: unknown, prefix = "wgslirpy"): string {
  const families = new Map<string, Family>();
  walk(stats, prefix, [], families, "");
  const out: string[] = [];
  for (const [name, f] of families) {
    out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`, ...f.samples);
  }
  return `${out.join("\n")}\n`;
}

function walk(
  value: unknown,
  name: string,
  path: string[],
  families: Map<string, Family>,
  labels: string,
  countersOnly = false,
): void {
  if (value === null || typeof value !== "object") return;
  const labelled = (value as Partial<LabelledStats>)[LABELLED];
  if (labelled) {
    for (const { labels: l, stats } of labelled) walk(stats, name, path, families, joinLabels(labels, l), countersOnly);
    return;
  }
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const child = `${name}_${snake(key)}`;
    const childPath = [...path, key];
    if (key === "drops" && v !== null && typeof v === "object") {
      for (const [reason, n] of Object.entries(v as Record<string, unknown>)) {
        if (typeof n !== "number" || !Number.isFinite(n)) continue;
        const l = joinLabels(labels, { reason });
        sample(families, `${child}_total`, "counter", childPath, `{${l}}`, n);
      }
      continue;
    }
    if (typeof v === "number" || typeof v === "boolean") {
      const n = typeof v === "boolean" ? (v ? 1 : 0) : v;
      if (!Number.isFinite(n)) continue;
      if (typeof v === "number" && MS_TIMESTAMP.test(key)) {
        const base = `${name}_${snake(key.slice(0, -2))}_timestamp_seconds`;
        sample(families, base, "gauge", childPath, labels ? `{${labels}}` : "", v / 1000);
        continue;
      }
      const gauge = typeof v === "boolean" || (!countersOnly && GAUGE_KEY.test(key) && !COUNTER_BYTES.test(key));
      const l = labels ? `{${labels}}` : "";
      if (gauge) sample(families, child, "gauge", childPath, l, n);
      else sample(families, `${child}_total`, "counter", childPath, l, n);
      continue;
    }
    walk(v, child, childPath, families, labels, countersOnly || COUNTER_RECORDS.has(key));
  }
}

function sample(
  families: Map<string, Family>,
  name: string,
  type: MetricType,
  path: string[],
  labels: string,
  n: number,
): void {
  let f = families.get(name);
  if (!f) {
    f = { type, help: HELP[name] ?? `${path.join(".")} in /stats (${type})`, samples: [] };
    families.set(name, f);
  }
  f.samples.push(`${name}${labels} ${n}`);
}

function joinLabels(existing: string, add: Record<string, string>): string {
  const parts = Object.entries(add).map(([k, v]) => `${snake(k)}="${escapeLabel(v)}"`);
  return [existing, ...parts].filter((p) => p !== "").join(",");
}

/** camelCase and kebab-case to snake_case, keeping only characters Prometheus allows. */
function snake(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^a-zA-Z0-9_]/g, "_")
    .toLowerCase();
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}
