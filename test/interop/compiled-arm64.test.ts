// The linux-arm64 single-file executable (phones, Raspberry Pis, Graviton) as the gateway, with a
// real wireguard-go peer in namespaces (compiled-suite.ts): on an x64 machine under qemu-user
// (qemu-user-static, libc6:arm64 and libstdc++6:arm64, which .ci/run installs), natively on arm64.
import { existsSync } from "node:fs";
import { compiledGatewaySuite } from "./compiled-suite.ts";

const qemu = process.arch === "arm64" ? "" : Bun.which("qemu-aarch64-static");

compiledGatewaySuite({
  arch: "arm64",
  prefix: "wgsica-",
  ifPrefix: "wgsica",
  runner: qemu ? [qemu] : [],
  slow: qemu ? 4 : 1,
  missing:
    qemu === null
      ? "qemu-aarch64-static (Debian package qemu-user-static)"
      : qemu !== "" && !existsSync("/lib/ld-linux-aarch64.so.1")
        ? "/lib/ld-linux-aarch64.so.1 (Debian package libc6:arm64, after dpkg --add-architecture arm64)"
        : null,
});
