/**
 * The single-file executable for this host's CPU (compiled-suite.ts). test/interop/compiled.test.ts
 * drives it with wireguard-go.
 */
import { compiledBinarySuite } from "./compiled-suite.ts";

compiledBinarySuite("compiled binary", process.arch as "x64" | "arm64", []);
