import type { Endpoint } from "../util/endpoint.ts";
import { toPrometheus } from "./metrics.ts";

export interface StatsServer {
  readonly local: Endpoint;
  close(): void;
}

/**
 * A tiny HTTP endpoint for operators and tests (`--stats-listen`): `/stats` (JSON), `/metrics`
 * (Prometheus text), `/healthz` (200 while the gateway runs) and `/readyz` (200 once it can carry
 * traffic, else 503). Bind it to loopback: it is not
 * authenticated. Any HTTP/1.x request gets an answer: an HTTP/1.0 request without a Host header
 * arrives with a bare path as its URL, which `new URL()` alone rejects.
 */
export interface StatsSource {
  stats(): unknown;
  /** /readyz answers 200 when true, else 503 (default: always ready). */
  ready?(): boolean;
  /** The /metrics body (default: toPrometheus(stats())). */
  metrics?(): string;
}

export function startStatsServer(bind: Endpoint, source: StatsSource | (() => unknown)): StatsServer {
  const getStats = typeof source === "function" ? source : () => source.stats();
  const ready = typeof source === "function" ? () => true : () => source.ready?.() ?? true;
  const metrics =
    typeof source !== "function" && source.metrics ? () => source.metrics?.() ?? "" : () => toPrometheus(getStats());
  const server = Bun.serve({
    hostname: bind.address,
    port: bind.port,
    fetch(req) {
      const path = pathOf(req.url);
      if (path === "/stats") return Response.json(getStats());
      if (path === "/metrics")
        return new Response(metrics(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
      if (path === "/healthz") return new Response("ok\n");
      if (path === "/readyz") return ready() ? new Response("ready\n") : new Response("not ready\n", { status: 503 });
      return new Response("not found\n", { status: 404 });
    },
    // No stack traces to the client or the log: a handler error is a plain 500.
    error() {
      return new Response("internal error\n", { status: 500 });
    },
  });
  return {
    local: { address: bind.address, port: server.port ?? bind.port },
    close: () => void server.stop(true),
  };
}

/** The request path, whether the URL is absolute or (HTTP/1.0 without Host) just a path. */
function pathOf(url: string): string {
  try {
    return new URL(url, "http://localhost").pathname;
  } catch {
    return "";
  }
}
