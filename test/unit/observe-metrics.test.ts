import { afterAll, expect, test } from "bun:test";
import { LABELLED, toPrometheus } from "../../src/observe/metrics.ts";
import { startStatsServer } from "../../src/observe/stats-server.ts";

test("nested stats: counters with _total, gauges for live figures, wall-clock ms as _timestamp_seconds, drops as one labelled family; HELP/TYPE each", () => {
  const text = toPrometheus({
    tunnel: {
      rxPackets: 5,
      handshakesCompleted: 1,
      lastHandshakeAt: 1_700_000_123_456,
      drops: { badMac1: 2, "tx-too-big": 0 },
    },
    gateway: { liveTcp: 3, bufferedBytes: 10 },
    name: "ignored",
    ok: true,
  });
  expect(text).toBe(
    [
      "# HELP wgslirpy_tunnel_rx_packets_total Inner IP packets received from the peer",
      "# TYPE wgslirpy_tunnel_rx_packets_total counter",
      "wgslirpy_tunnel_rx_packets_total 5",
      "# HELP wgslirpy_tunnel_handshakes_completed_total WireGuard handshakes completed",
      "# TYPE wgslirpy_tunnel_handshakes_completed_total counter",
      "wgslirpy_tunnel_handshakes_completed_total 1",
      "# HELP wgslirpy_tunnel_last_handshake_timestamp_seconds Wall-clock time of the last completed handshake, seconds since the epoch (0 = never)",
      "# TYPE wgslirpy_tunnel_last_handshake_timestamp_seconds gauge",
      "wgslirpy_tunnel_last_handshake_timestamp_seconds 1700000123.456",
      "# HELP wgslirpy_tunnel_drops_total Outer datagrams dropped by the tunnel, by reason",
      "# TYPE wgslirpy_tunnel_drops_total counter",
      'wgslirpy_tunnel_drops_total{reason="badMac1"} 2',
      'wgslirpy_tunnel_drops_total{reason="tx-too-big"} 0',
      "# HELP wgslirpy_gateway_live_tcp TCP flows open now",
      "# TYPE wgslirpy_gateway_live_tcp gauge",
      "wgslirpy_gateway_live_tcp 3",
      "# HELP wgslirpy_gateway_buffered_bytes gateway.bufferedBytes in /stats (gauge)",
      "# TYPE wgslirpy_gateway_buffered_bytes gauge",
      "wgslirpy_gateway_buffered_bytes 10",
      "# HELP wgslirpy_ok ok in /stats (gauge)",
      "# TYPE wgslirpy_ok gauge",
      "wgslirpy_ok 1",
      "",
    ].join("\n"),
  );
});

test("labelled subtrees (per-peer hook) share one family per figure", () => {
  const text = toPrometheus({
    tunnel: {
      [LABELLED]: [
        { labels: { peer: "AAAA" }, stats: { rxPackets: 1, drops: { decrypt: 4 } } },
        { labels: { peer: 'B"B' }, stats: { rxPackets: 2, drops: { decrypt: 0 } } },
      ],
    },
  });
  expect(text.split("\n").filter((l) => !l.startsWith("# HELP"))).toEqual([
    "# TYPE wgslirpy_tunnel_rx_packets_total counter",
    'wgslirpy_tunnel_rx_packets_total{peer="AAAA"} 1',
    'wgslirpy_tunnel_rx_packets_total{peer="B\\"B"} 2',
    "# TYPE wgslirpy_tunnel_drops_total counter",
    'wgslirpy_tunnel_drops_total{peer="AAAA",reason="decrypt"} 4',
    'wgslirpy_tunnel_drops_total{peer="B\\"B",reason="decrypt"} 0',
    "",
  ]);
});

let ready = false;
const server = startStatsServer(
  { address: "127.0.0.1", port: 0 },
  { stats: () => ({ gateway: { liveTcp: 7 } }), ready: () => ready },
);
afterAll(() => server.close());

test("the stats server answers /stats, /metrics, /healthz, /readyz and 404", async () => {
  const base = `http://127.0.0.1:${server.local.port}`;
  expect(await (await fetch(`${base}/stats`)).json()).toEqual({ gateway: { liveTcp: 7 } });
  expect(await (await fetch(`${base}/metrics`)).text()).toContain("\nwgslirpy_gateway_live_tcp 7\n");
  expect(await (await fetch(`${base}/healthz`)).text()).toBe("ok\n");
  const notReady = await fetch(`${base}/readyz`);
  expect([notReady.status, await notReady.text()]).toEqual([503, "not ready\n"]);
  ready = true;
  const r = await fetch(`${base}/readyz`);
  expect([r.status, await r.text()]).toEqual([200, "ready\n"]);
  expect((await fetch(`${base}/nope`)).status).toBe(404);
});

test("gauge or counter: limits, peaks, entries and in-flight figures are gauges; a denied record is counters", () => {
  const text = toPrometheus({
    budget: { maxFlows: 900, hostSockets: 3, pendingConnects: 1, denied: { pending: 2, flows: 1 }, evicted: 4 },
    load: { underLoad: false, underLoadEpisodes: 2, queuePeak: 7, rateLimitEntries: 3 },
    dns: { cacheEntries: 5, inFlight: 1, queries: 9 },
    transport: { bytesIn: 10, rxBytes: 11 },
  });
  const types = Object.fromEntries(
    text
      .split("\n")
      .filter((l) => l.startsWith("# TYPE "))
      .map((l) => l.split(" ").slice(2) as [string, string]),
  );
  expect(types).toEqual({
    wgslirpy_budget_max_flows: "gauge",
    wgslirpy_budget_host_sockets: "gauge",
    wgslirpy_budget_pending_connects: "gauge",
    wgslirpy_budget_denied_pending_total: "counter",
    wgslirpy_budget_denied_flows_total: "counter",
    wgslirpy_budget_evicted_total: "counter",
    wgslirpy_load_under_load: "gauge",
    wgslirpy_load_under_load_episodes_total: "counter",
    wgslirpy_load_queue_peak: "gauge",
    wgslirpy_load_rate_limit_entries: "gauge",
    wgslirpy_dns_cache_entries: "gauge",
    wgslirpy_dns_in_flight: "gauge",
    wgslirpy_dns_queries_total: "counter",
    wgslirpy_transport_bytes_in_total: "counter",
    wgslirpy_transport_rx_bytes_total: "counter",
  });
});
