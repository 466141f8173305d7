/**
 * `wgslirpy status [--name NAME | --uapi PATH]`: what a running gateway's UAPI socket reports —
 * peers (named from the state directory when enrolled with `up`), endpoints, latest handshake and
 * transfer — in the spirit of `wg show`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PEER_KEY_FILE, resolveStateDir } from "../state/keys.ts";
import { listPeers } from "../state/peers.ts";
import { answerErrno, parseUapiGet, UapiClientError, uapiRequest } from "../uapi/client.ts";
import { keyToBase64, parseKey, publicKeyOf } from "../wireguard/keys.ts";
import { STATUS_FLAGS } from "./flags.ts";
import { CliError, FlagReader, parseFlags } from "./parse.ts";
import { parseUapiFlags, resolveUapi } from "./uapi-path.ts";

const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(2)} ${units[u]}`;
}

function ago(seconds: number): string {
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s ago`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min ago`;
}

/** Names of the peers `up` knows, by base64 public key (empty when the state is unreadable). */
function knownNames(stateDir: string): Map<string, string> {
  const names = new Map<string, string>();
  try {
    for (const p of listPeers(stateDir)) names.set(keyToBase64(p.publicKey), p.name);
    const peerKey = parseKey(readFileSync(join(stateDir, PEER_KEY_FILE), "utf8"));
    names.set(keyToBase64(publicKeyOf(peerKey)), "quick-start");
  } catch {
    // Names are a convenience: a gateway started with --config has none.
  }
  return names;
}

export function renderStatus(answer: string, path: string, names: Map<string, string>, nowS: number): string {
  const { device, peers } = parseUapiGet(answer);
  const priv = device.get("private_key");
  const lines = [`interface: ${path}`];
  if (priv) lines.push(`  public key: ${keyToBase64(publicKeyOf(new Uint8Array(Buffer.from(priv, "hex"))))}`);
  lines.push(`  listening port: ${device.get("listen_port") ?? "(none)"}`);
  let up = 0;
  const blocks: string[] = [];
  for (const p of peers) {
    const one = (k: string) => p.get(k)?.[0];
    const key = b64(one("public_key") ?? "");
    const hs = Number(one("last_handshake_time_sec") ?? 0);
    if (hs > 0 && nowS - hs < 180) up++;
    const name = names.get(key);
    const block = [`peer: ${key}${name ? ` (${name})` : ""}`];
    block.push(`  endpoint: ${one("endpoint") ?? "(none)"}`);
    block.push(`  allowed ips: ${(p.get("allowed_ip") ?? []).join(", ") || "(none)"}`);
    block.push(`  latest handshake: ${hs > 0 ? ago(Math.max(0, nowS - hs)) : "never"}`);
    const rx = Number(one("rx_bytes") ?? 0);
    const tx = Number(one("tx_bytes") ?? 0);
    block.push(`  transfer: ${bytes(rx)} received, ${bytes(tx)} sent`);
    const ka = Number(one("persistent_keepalive_interval") ?? 0);
    if (ka > 0) block.push(`  persistent keepalive: every ${ka} s`);
    blocks.push(block.join("\n"));
  }
  lines.push(`  peers: ${peers.length} (${up} with a handshake in the last 3 minutes)`);
  return `${[lines.join("\n"), ...blocks].join("\n\n")}\n`;
}

export async function runStatus(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  home: string,
  out: (text: string) => void,
): Promise<void> {
  const parsed = parseFlags(argv, STATUS_FLAGS);
  if (parsed.positionals.length > 0) {
    throw new CliError(`unexpected argument ${JSON.stringify(parsed.positionals[0])} for "status"`);
  }
  const r = new FlagReader(parsed, STATUS_FLAGS);
  const choice = parseUapiFlags(r);
  const path = resolveUapi(choice ?? { name: "wgslirpy" }, env)?.path;
  if (!path) throw new CliError("no UAPI socket to ask (give --name or --uapi)");
  let answer: string;
  try {
    answer = await uapiRequest(path, "get=1\n\n");
  } catch (e) {
    if (e instanceof UapiClientError) throw new CliError(`${e.message} (is the gateway running, with this --name?)`);
    throw e;
  }
  const errno = answerErrno(answer);
  if (errno !== 0) throw new CliError(`${path} answered errno=${errno ?? "(none)"}`);
  const stateDir = r.string("state-dir") ?? resolveStateDir(env, home);
  out(renderStatus(answer, path, knownNames(stateDir), Math.floor(Date.now() / 1000)));
}
