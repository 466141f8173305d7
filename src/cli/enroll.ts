/**
 * `wgslirpy up --add-peer NAME | --show-config NAME | --remove-peer NAME | --list`: manage the peers
 * enrolled in the state directory. A new peer's config is printed with a QR code (terminal, and a
 * PNG with --qr FILE) that a phone's WireGuard app scans; its private key is shown only then or on
 * --show-config NAME. When an `up` gateway is running with the same UAPI name, the change is
 * applied to it at once; otherwise the next `up` serves it.
 */
import { writeFileSync } from "node:fs";
import { PNG } from "pngjs";
import { encode, renderUnicodeCompact } from "uqr";
import type { QuickStartKeys } from "../state/keys.ts";
import { addPeer, listPeers, loadPeer, removePeer, type StoredPeer } from "../state/peers.ts";
import { answerErrno, uapiRequest } from "../uapi/client.ts";
import { keyToBase64 } from "../wireguard/keys.ts";
import { CliError } from "./parse.ts";
import { resolveUapi } from "./uapi-path.ts";
import { type PeerCommand, renderPeerConfig, type UpArgs } from "./up.ts";

/** Pixels per QR module in the PNG, and the quiet zone in modules (the standard asks for 4). */
const PNG_SCALE = 8;
const QUIET_ZONE = 4;

/** The QR code for the terminal: two modules per character cell, dark on light. */
export function qrForTerminal(text: string): string {
  return renderUnicodeCompact(text, { ecc: "L", border: 2 });
}

/** The QR code as a grayscale PNG (black modules on white, quiet zone included). */
export function qrPng(text: string): Buffer {
  const { data, size } = encode(text, { ecc: "L", border: 0 });
  const side = (size + 2 * QUIET_ZONE) * PNG_SCALE;
  const png = new PNG({
    width: side,
    height: side,
    colorType: 0,
    inputColorType: 0,
    bitDepth: 8,
    inputHasAlpha: false,
  });
  png.data = Buffer.alloc(side * side, 0xff);
  for (let y = 0; y < size; y++) {
    const row = data[y] as boolean[];
    for (let x = 0; x < size; x++) {
      if (!row[x]) continue;
      for (let dy = 0; dy < PNG_SCALE; dy++) {
        const start = ((y + QUIET_ZONE) * PNG_SCALE + dy) * side + (x + QUIET_ZONE) * PNG_SCALE;
        png.data.fill(0, start, start + PNG_SCALE);
      }
    }
  }
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
}

export interface EnrollIo {
  stdout: (text: string) => void;
  env: Record<string, string | undefined>;
  info: (message: string) => void;
}

const toHex = (k: Uint8Array) => Buffer.from(k).toString("hex");

/** Apply a set to the running gateway, if one answers; returns what happened, for the user. */
async function tellRunningGateway(args: UpArgs, env: EnrollIo["env"], body: string): Promise<string> {
  let path: string | undefined;
  try {
    path = resolveUapi(args.options.uapiChoice, env)?.path;
  } catch {
    path = undefined;
  }
  if (!path) return "no UAPI socket: the next `wgslirpy up` serves the change";
  try {
    const errno = answerErrno(await uapiRequest(path, `set=1\n${body}\n`, 3000));
    return errno === 0 ? `applied to the running gateway (${path})` : `the running gateway refused it (errno=${errno})`;
  } catch {
    return "no gateway is running: the next `wgslirpy up` serves the change";
  }
}

function printPeer(
  args: UpArgs,
  keys: QuickStartKeys,
  peer: StoredPeer,
  endpoint: { endpoint: string; guessed: boolean },
  qr: string | undefined,
  out: EnrollIo["stdout"],
): string {
  const config = renderPeerConfig(keys, args.options, endpoint, peer);
  out(config);
  out(`\n${qrForTerminal(config)}\n`);
  if (qr) {
    try {
      writeFileSync(qr, qrPng(config), { mode: 0o600 });
    } catch (e) {
      throw new CliError(`cannot write ${qr}: ${(e as { code?: string }).code ?? (e as Error).message}`);
    }
  }
  return config;
}

export async function runPeerCommand(
  cmd: PeerCommand,
  args: UpArgs,
  keys: QuickStartKeys,
  endpoint: { endpoint: string; guessed: boolean },
  io: EnrollIo,
): Promise<void> {
  switch (cmd.kind) {
    case "list": {
      const peers = listPeers(keys.dir);
      io.stdout(`quick-start\t${keyToBase64(keys.peerPublic)}\t10.0.2.15/32, fd00::15/128\n`);
      for (const p of peers) io.stdout(`${p.name}\t${keyToBase64(p.publicKey)}\t${p.addresses.join(", ")}\n`);
      return;
    }
    case "show":
      printPeer(args, keys, loadPeer(keys.dir, cmd.name), endpoint, cmd.qr, io.stdout);
      return;
    case "add": {
      const peer = addPeer(keys.dir, cmd.name);
      printPeer(args, keys, peer, endpoint, cmd.qr, io.stdout);
      const body = `public_key=${toHex(peer.publicKey)}\n${peer.addresses.map((a) => `allowed_ip=${a}\n`).join("")}`;
      io.info(
        `peer ${peer.name} enrolled (${peer.addresses.join(", ")}): ${await tellRunningGateway(args, io.env, body)}`,
      );
      return;
    }
    case "remove": {
      const peer = removePeer(keys.dir, cmd.name);
      const body = `public_key=${toHex(peer.publicKey)}\nremove=true\n`;
      io.info(`peer ${peer.name} removed: ${await tellRunningGateway(args, io.env, body)}`);
      return;
    }
  }
}
