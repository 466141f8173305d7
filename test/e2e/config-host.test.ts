/**
 * `-c FILE` with `Endpoint = localhost:PORT` (wg-quick accepts host names): the CLI resolves the
 * name once at startup through the host resolver (/etc/hosts) and the gateway initiates the
 * handshake to that address. Loopback only: the "peer" is a UDP socket on 127.0.0.1.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generatePrivateKey, keyToBase64, publicKeyOf } from "../../src/wireguard/keys.ts";
import { until } from "./client.ts";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const MESSAGE_INITIATION = 1;
const INITIATION_SIZE = 148;

const tmp = mkdtempSync(join(tmpdir(), "wgslirpy-config-host-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("config file Endpoint = HOST:PORT", () => {
  test("localhost resolves at startup and the handshake initiation reaches it", async () => {
    const received: Uint8Array[] = [];
    const peer = await Bun.udpSocket({
      hostname: "127.0.0.1",
      port: 0,
      binaryType: "uint8array",
      socket: { data: (_s, data) => void received.push(data.slice()) },
    });
    const file = join(tmp, "gw.conf");
    writeFileSync(
      file,
      [
        "[Interface]",
        `PrivateKey = ${keyToBase64(generatePrivateKey())}`,
        "ListenPort = 0",
        "[Gateway]",
        "BindAddress = 127.0.0.1",
        "DNS = off",
        "Pingable = off",
        "[Peer]",
        `PublicKey = ${keyToBase64(publicKeyOf(generatePrivateKey()))}`,
        "AllowedIPs = 10.0.2.15/32",
        `Endpoint = localhost:${peer.port}`,
        "",
      ].join("\n"),
    );
    const gw = Bun.spawn(["bun", CLI, "-c", file, "--no-uapi"], {
      env: { PATH: process.env.PATH ?? "", HOME: tmp, NO_COLOR: "1" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      await until(() => received.length > 0 || gw.exitCode !== null, 10_000, "a handshake initiation at the peer");
      expect(gw.exitCode).toBeNull();
      const first = received[0] as Uint8Array;
      expect(first.length).toBe(INITIATION_SIZE);
      expect(first[0]).toBe(MESSAGE_INITIATION);
    } finally {
      gw.kill();
      await gw.exited;
      peer.close();
    }
  }, 20_000);
});
