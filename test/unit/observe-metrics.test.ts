import { afterAll, expect, test } from "bun:test";
import { toPrometheus } from "../../src/observe/metrics.ts";
import { startStatsServer } from "../../src/observe/stats-server.ts";

test("nested stats become snake_case gauges; drops become a labelled series", () => {
  const text = toPrometheus({
    tunnel: { rxPackets: 5, handshakesCompleted: 1, drops: { badMac1: 2, "tx-too-big": 0 } },
    liveTcp: 3,
    name: "ignored",
    ok: true,
  });
  expect(text).toBe(
    [
      "wgslirpy_tunnel_rx_packets 5",
      "wgslirpy_tunnel_handshakes_completed 1",
      'wgslirpy_tunnel_drops{reason="badMac1"} 2',
      'wgslirpy_tunnel_drops{reason="tx-too-big"} 0',
      "wgslirpy_live_tcp 3",
      "wgslirpy_ok 1",
      "",
    ].join("\n"),
  );
});

const server = startStatsServer({ address: "127.0.0.1", port: 0 }, () => ({ liveTcp: 7 }));
afterAll(() => server.close());

test("the stats server answers /stats, /metrics, /healthz and 404", async () => {
  const base = `http://127.0.0.1:${server.local.port}`;
  expect(await (await fetch(`${base}/stats`)).json()).toEqual({ liveTcp: 7 });
  expect(await (await fetch(`${base}/metrics`)).text()).toBe("wgslirpy_live_tcp 7\n");
  expect(await (await fetch(`${base}/healthz`)).text()).toBe("ok\n");
  expect((await fetch(`${base}/nope`)).status).toBe(404);
});
