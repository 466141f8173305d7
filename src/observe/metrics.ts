/**
 * Render nested stats objects as Prometheus text exposition: every finite number becomes a gauge
 * named after its path (`wgslirpy_tunnel_rx_packets`); a `drops` record becomes one series with a
 * `reason` label, so new drop reasons need no new metric names.
 */
export function toPrometheus(stats: unknown, prefix = "wgslirpy"): string {
  const lines: string[] = [];
  walk(stats, prefix, lines);
  return `${lines.join("\n")}\n`;
}

function walk(value: unknown, name: string, out: string[]): void {
  if (typeof value === "number") {
    if (Number.isFinite(value)) out.push(`${name} ${value}`);
    return;
  }
  if (typeof value === "boolean") {
    out.push(`${name} ${value ? 1 : 0}`);
    return;
  }
  if (value === null || typeof value !== "object") return;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const child = `${name}_${snake(key)}`;
    if (key === "drops" && v !== null && typeof v === "object") {
      for (const [reason, n] of Object.entries(v as Record<string, unknown>)) {
        if (typeof n === "number" && Number.isFinite(n)) out.push(`${child}{reason="${escapeLabel(reason)}"} ${n}`);
      }
      continue;
    }
    walk(v, child, out);
  }
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
