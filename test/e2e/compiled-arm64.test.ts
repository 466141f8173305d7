/**
 * The linux-arm64 single-file executable that `bun run build` ships (phones, Raspberry Pis, Graviton),
 * run through the same suite as the host's own (compiled-suite.ts): on an x64 machine under
 * qemu-user (qemu-user-static with Debian's libc6:arm64, which .ci/run installs), natively on an
 * arm64 one.
 */
import { arm64Runner } from "../../harness/compiled.ts";
import { describeOrSkip } from "../../harness/gate.ts";
import { compiledBinarySuite } from "./compiled-suite.ts";

const { runner, slow, missing } = arm64Runner();

describeOrSkip(missing, "compiled linux-arm64 binary", () => {
  compiledBinarySuite("linux-arm64", "arm64", runner, slow);
});
