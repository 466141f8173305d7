/**
 * The gateway's default congestion control follows the host's (Linux's
 * net.ipv4.tcp_congestion_control): a flow through the gateway then behaves like the same flow
 * routed by the kernel, which is the comparison users make. bbr maps to BBR, reno to NewReno,
 * everything else (cubic, unknown names, no /proc) to CUBIC.
 */
import type { CongestionControlName } from "../layer.ts";

/** Where Linux keeps the default (per network namespace). */
export const HOST_CONGESTION_CONTROL_PATH = "/proc/sys/net/ipv4/tcp_congestion_control";

/** Map the host's setting (the file's text, or undefined when unreadable) to a controller. */
export function congestionControlForHost(sysctl: string | undefined): CongestionControlName {
  const name = sysctl?.trim();
  if (name === "bbr") return "bbr";
  if (name === "reno") return "newreno";
  return "cubic";
}
