// The peer's story in the log (issue 13): session established with its endpoint, roaming, a key
// rotation at debug only, session lost when the keys expire; driven on a virtual clock.
import { expect, test } from "bun:test";
import { ipv4, makePair } from "../../fixtures/wireguard/fixtures.ts";
import { peerLogEvents, RejectionReporter } from "../../src/observe/peer-log.ts";
import { createLogger } from "../../src/util/log.ts";
import { REJECT_AFTER_TIME, REKEY_AFTER_TIME } from "../../src/wireguard/constants.ts";
import type { TunnelEvents } from "../../src/wireguard/tunnel.ts";

test("established, roamed, rekeyed (debug), lost: one line each, naming the endpoint", () => {
  const lines: string[] = [];
  const write = (l: string) => lines.push(l.replace(/^\S+ /, "").trimEnd());
  const log = createLogger("debug", { write, tty: false });
  // Filled once the pair (and its virtual clock) exists; the tunnel keeps this object.
  const events: TunnelEvents = {};
  const p = makePair({ responder: { events } });
  Object.assign(events, peerLogEvents(log, "peer AbCdEfGh…", new RejectionReporter(log, p.clock)));
  p.responder.start();
  p.initiator.start();
  p.initiator.send(ipv4(40, 1)); // confirms the responder's session
  const info = () => lines.filter((l) => l.startsWith("INFO"));
  expect(info()).toEqual(["INFO  peer AbCdEfGh…: session established with 127.0.0.1:51820"]);

  // The same authenticated packet from a new address: roaming.
  let pkt: Uint8Array | undefined;
  p.ti.filter = (d) => {
    pkt = d.slice();
    return false;
  };
  p.initiator.send(ipv4(40, 2));
  p.responder.onDatagram(pkt as Uint8Array, { address: "127.0.0.9", port: 40000 });
  expect(info().at(-1)).toBe("INFO  peer AbCdEfGh…: roamed from 127.0.0.1:51820 to 127.0.0.9:40000");
  p.ti.filter = () => true;

  // A routine rekey: debug, not info (the initiator's packets come from its real address again).
  p.clock.advance(REKEY_AFTER_TIME + 1000);
  p.initiator.send(ipv4(40, 3));
  p.clock.advance(100);
  p.initiator.send(ipv4(40, 4));
  expect(p.responder.stats.handshakesCompleted).toBe(2);
  expect(info().slice(2)).toEqual(["INFO  peer AbCdEfGh…: roamed from 127.0.0.9:40000 to 127.0.0.1:51820"]);
  expect(lines.some((l) => l.startsWith("DEBUG peer AbCdEfGh…: new session keys"))).toBe(true);

  // Silence: the keys are zeroed after 3 × REJECT_AFTER_TIME without a new handshake.
  p.ti.filter = () => false;
  p.tr.filter = () => false;
  p.clock.advance(REJECT_AFTER_TIME * 3 + 1000);
  expect(info().at(-1)).toBe(
    `INFO  peer AbCdEfGh…: session lost (no new keys for ${(REJECT_AFTER_TIME * 3) / 1000} s); last endpoint 127.0.0.1:51820`,
  );
  expect(info()).toHaveLength(4);
});
