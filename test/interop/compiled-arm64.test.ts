// The linux-arm64 single-file executable (phones, Raspberry Pis, Graviton) as the gateway, with a
// real wireguard-go peer in namespaces (compiled-suite.ts): on an x64 machine under qemu-user
// (qemu-user-static, libc6:arm64 and libstdc++6:arm64, which .ci/run installs), natively on arm64.
import { arm64Runner } from "../../harness/compiled.ts";
import { compiledGatewaySuite } from "./compiled-suite.ts";

compiledGatewaySuite({ arch: "arm64", prefix: "wgsica-", ifPrefix: "wgsica", ...arm64Runner() });
