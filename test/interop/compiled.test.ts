// Issue 13: the single-file executable of `bun run build` for this host's CPU as the gateway, with a
// real wireguard-go peer in namespaces (compiled-suite.ts). test/e2e/compiled.test.ts covers
// --version, genkey/pubkey without root.
import { compiledGatewaySuite } from "./compiled-suite.ts";

compiledGatewaySuite({
  arch: process.arch as "x64" | "arm64",
  prefix: "wgsicb-",
  ifPrefix: "wgsicb",
  runner: [],
  slow: 1,
  missing: null,
});
