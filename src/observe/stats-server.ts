import type { Endpoint } from "../util/endpoint.ts";
import { toPrometheus } from "./metrics.ts";

export interface StatsServer {
  readonly local: Endpoint;
  close(): void;
}

/**
 * A tiny HTTP endpoint for operators and tests (`--stats-listen`): `/stats` (JSON), `/metrics`
 * (Prometheus text) and `/healthz` (200 while the gateway runs). Bind it to loopback: it is not
 * authenticated.
 */
export function startStatsServer(bind: Endpoint, getStats: () => unknown): StatsServer {
  const server = Bun.serve({
    hostname: bind.address,
    port: bind.port,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/stats") return Response.json(getStats());
      if (path === "/metrics")
        return new Response(toPrometheus(getStats()), { headers: { "content-type": "text/plain; version=0.0.4" } });
      if (path === "/healthz") return new Response("ok\n");
      return new Response("not found\n", { status: 404 });
    },
  });
  return {
    local: { address: bind.address, port: server.port ?? bind.port },
    close: () => void server.stop(true),
  };
}
