// Shared by the CLI parsing tests (cli-parse, cli-parse-flags, cli-parse-up): the seed keys, a
// ParseContext over in-memory files, the CliError message of a call, the gateway defaults.
import SEED from "../../fixtures/keys/seed-readme.json";
import { CliError, type ParseContext } from "../../src/cli/parse.ts";

// Keys from the seed README's demo session.
export const GW_PRIV = SEED.gateway.privateKey;
export const GW_PUB = SEED.gateway.publicKey;
export const PEER_PRIV = SEED.peer.privateKey;
export const PEER_PUB = SEED.peer.publicKey;
export const PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

export function ctx(files: Record<string, string> = {}, env: Record<string, string> = {}): ParseContext {
  return {
    env,
    readFile: (p) => {
      const f = files[p];
      if (f === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
      return f;
    },
  };
}

export function err(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CliError) return e.message;
    throw e;
  }
  throw new Error("expected a CliError");
}

export const BASE_DEFAULTS = {
  keepaliveInterval: 0,
  mtu: 1420,
  tcpBufferSize: 65535,
  transmitQueueCapacity: 256,
  udpIdleTimeout: 92,
  incomingTcp: [],
  incomingUdp: [],
  logLevel: "info" as const,
};
