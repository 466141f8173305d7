/**
 * The linux-arm64 single-file executable that `bun run build` ships (phones, Raspberry Pis, Graviton),
 * run through the same suite as the host's own (compiled-suite.ts): on an x64 machine under
 * qemu-user (qemu-user-static with Debian's libc6:arm64, which .ci/run installs), natively on an
 * arm64 one.
 */
import { existsSync } from "node:fs";
import { describeOrSkip } from "../../harness/gate.ts";
import { compiledBinarySuite } from "./compiled-suite.ts";

const qemu = process.arch === "arm64" ? "" : Bun.which("qemu-aarch64-static");
const skip =
  qemu === null
    ? "qemu-aarch64-static (Debian package qemu-user-static)"
    : qemu !== "" && !existsSync("/lib/ld-linux-aarch64.so.1")
      ? "/lib/ld-linux-aarch64.so.1 (Debian package libc6:arm64, after dpkg --add-architecture arm64)"
      : null;

describeOrSkip(skip, "compiled linux-arm64 binary", () => {
  compiledBinarySuite("linux-arm64", "arm64", qemu ? [qemu] : [], qemu ? 5 : 1);
});
