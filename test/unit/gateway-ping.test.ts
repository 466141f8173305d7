import { describe, expect, test } from "bun:test";
import { Gateway } from "../../src/gateway/gateway.ts";
import { parseIp } from "../../src/gateway/ip-text.ts";
import { PING_ENTRY_LINGER_MS } from "../../src/gateway/pingable.ts";
import { VirtualClock } from "../../src/util/clock.ts";
import { silentLogger } from "../../src/util/log.ts";
import { FakeNetstack, v4 } from "./gateway-fakes.ts";

describe("pingable", () => {
  test("answers only echo requests to the pingable address; one NAT entry per address pair", () => {
    const clock = new VirtualClock();
    const infos: string[] = [];
    const log = {
      level: 4,
      info: () => {},
      debug: (m: string) => infos.push(m),
      warn: () => {},
    } as unknown as typeof silentLogger;
    const gw = new Gateway({ netstack: new FakeNetstack(), clock, log, pingable: "10.0.0.1" });
    const a = v4(10, 0, 0, 2);
    const b = v4(10, 0, 0, 3);
    expect(gw.onEchoRequest(a, v4(10, 0, 0, 1))).toBe(true);
    expect(gw.onEchoRequest(a, v4(10, 0, 0, 1))).toBe(true);
    expect(gw.onEchoRequest(b, v4(10, 0, 0, 1))).toBe(true);
    expect(gw.onEchoRequest(a, v4(8, 8, 8, 8))).toBe(false);
    expect(gw.onEchoRequest(parseIp("fd00::2")!, parseIp("::ffff:10.0.0.1")!)).toBe(false);
    expect(infos).toEqual([
      "New NAT entry for Pingable 10.0.0.2 -> 10.0.0.1",
      "New NAT entry for Pingable 10.0.0.3 -> 10.0.0.1",
    ]);
    expect(gw.stats()).toMatchObject({ livePing: 2, natEntriesCreated: 2 });
    clock.advance(PING_ENTRY_LINGER_MS - 1);
    gw.onEchoRequest(a, v4(10, 0, 0, 1));
    clock.advance(1);
    expect(gw.stats().livePing).toBe(1);
    clock.advance(PING_ENTRY_LINGER_MS);
    expect(gw.stats().livePing).toBe(0);
    expect(clock.nextDeadline()).toBe(-1);
    gw.close();
  });

  test("no pingable address: nothing is answered", () => {
    const gw = new Gateway({ netstack: new FakeNetstack(), clock: new VirtualClock(), log: silentLogger });
    expect(gw.onEchoRequest(v4(10, 0, 0, 2), v4(10, 0, 0, 1))).toBe(false);
    expect(gw.stats().livePing).toBe(0);
  });

  test("an IPv6 pingable address", () => {
    const gw = new Gateway({
      netstack: new FakeNetstack(),
      clock: new VirtualClock(),
      log: silentLogger,
      pingable: "fd00::1",
    });
    expect(gw.onEchoRequest(parseIp("fd00::2")!, parseIp("fd00:0::1")!)).toBe(true);
    expect(gw.stats().livePing).toBe(1);
    gw.close();
    expect(gw.stats().livePing).toBe(0);
  });

  test("an invalid pingable or DNS address is rejected at construction", () => {
    expect(() => new Gateway({ clock: new VirtualClock(), log: silentLogger, pingable: "not-an-ip" })).toThrow(
      'invalid pingable address "not-an-ip"',
    );
    expect(
      () => new Gateway({ clock: new VirtualClock(), log: silentLogger, dns: { address: "dns.local", port: 53 } }),
    ).toThrow('invalid DNS address "dns.local"');
  });
});
