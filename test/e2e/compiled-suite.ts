/**
 * The single-file executable (`bun run build`, issue 13), for one CPU: built once per source state
 * (harness/compiled.ts), then --version, genkey | pubkey, a usage error, and a real gateway run
 * from it: the start line names the embedded native AEAD, and an in-process WireGuard client
 * handshakes, pings and fetches an HTTP body through it. `prefix` runs the binary (an emulator for
 * another CPU's build: compiled-arm64.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { compiledBinary } from "../../harness/compiled.ts";
import { run as runCommand } from "../../harness/netns.ts";
import { generatePrivateKey, keyToBase64, parseKey, publicKeyOf } from "../../src/wireguard/keys.ts";
import { readAll, TestClient, until, writeAll } from "./client.ts";

/**
 * `slow` scales the time bounds (an emulated CPU starts the binary in ~1.5 s where the host takes
 * ~0.1 s, and runs its JIT's code several times slower).
 */
export function compiledBinarySuite(name: string, arch: "x64" | "arm64", prefix: string[], slow = 1): void {
  let bin = "";
  beforeAll(async () => {
    const b = await compiledBinary(arch);
    bin = b.path;
    console.log(`${name} ${b.built ? `built in ${(b.buildMs / 1000).toFixed(1)} s` : "from the cache"}: ${bin}`);
  }, 120_000);

  async function run(args: string[], stdin?: string) {
    const r = await runCommand([...prefix, bin, ...args], {
      cwd: "/",
      env: { PATH: process.env.PATH ?? "" },
      input: stdin,
      timeoutMs: 10_000 * slow,
    });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  describe(name, () => {
    test(
      "--version, genkey | pubkey, a usage error",
      async () => {
        const pkg = await Bun.file(`${import.meta.dir}/../../package.json`).json();
        expect(await run(["--version"])).toEqual({ code: 0, stdout: `wgslirpy ${pkg.version}\n`, stderr: "" });
        const key = await run(["genkey"]);
        expect(key.code).toBe(0);
        const pub = await run(["pubkey"], key.stdout);
        expect(pub).toEqual({ code: 0, stdout: `${keyToBase64(publicKeyOf(parseKey(key.stdout)))}\n`, stderr: "" });
        expect(await run(["--mtu", "1"])).toMatchObject({ code: 2, stdout: "" });
      },
      60_000 * slow,
    );

    describe("serving", () => {
      const gwKey = generatePrivateKey();
      const clientKey = generatePrivateKey();
      let gw: ReturnType<typeof Bun.spawn> | undefined;
      let err = "";
      let port = 0;
      const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("through the binary\n") });

      beforeAll(async () => {
        const probe = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
        port = probe.port;
        probe.close();
        gw = Bun.spawn(
          [
            ...prefix,
            bin,
            "-k",
            keyToBase64(gwKey),
            "-K",
            keyToBase64(publicKeyOf(clientKey)),
            "-b",
            `127.0.0.1:${port}`,
            "-P",
            "10.0.2.1",
            "--allow",
            "127.0.0.1/32",
          ],
          { cwd: "/", env: { PATH: process.env.PATH ?? "" }, stdout: "pipe", stderr: "pipe" },
        );
        const reader = (gw.stderr as ReadableStream<Uint8Array>).getReader();
        const deadline = performance.now() + 10_000 * slow;
        while (!err.includes(" started: ") && performance.now() < deadline) {
          const { value, done } = await reader.read();
          if (done) break;
          err += new TextDecoder().decode(value);
        }
        void (async () => {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            err += new TextDecoder().decode(value);
          }
        })();
      }, 20_000 * slow);

      afterAll(async () => {
        gw?.kill("SIGTERM");
        await gw?.exited;
        http.stop(true);
      });

      test("the start line names the embedded sodium-native AEAD", () => {
        expect(err).toMatch(
          new RegExp(`started: WireGuard mode on UDP 127\\.0\\.0\\.1:${port}, AEAD sodium-native \\(embedded\\),`),
        );
      });

      test(
        "handshake, ping and an HTTP fetch through it",
        async () => {
          const client = await TestClient.connect({
            privateKey: clientKey,
            gatewayPublicKey: publicKeyOf(gwKey),
            gateway: { address: "127.0.0.1", port },
          });
          try {
            await client.handshake(5000 * slow);
            client.ping("10.0.2.1", 7, 1, new TextEncoder().encode("compiled"));
            await until(() => client.rawReceived.some((p) => p[9] === 1 && p[20] === 0), 3000 * slow, "echo reply");
            const conn = await client.tcpConnect("127.0.0.1", http.port as number, 5000 * slow);
            await writeAll(conn, new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
            const body = new TextDecoder().decode(await readAll(conn, 20_000 * slow));
            expect(body).toStartWith("HTTP/1.1 200");
            expect(body.endsWith("\r\n\r\nthrough the binary\n")).toBe(true);
            await until(() => err.includes("session established with 127.0.0.1:"), 3000 * slow, "session line");
          } finally {
            client.close();
          }
        },
        60_000 * slow,
      );
    });
  });
}
