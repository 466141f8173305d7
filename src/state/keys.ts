/**
 * The quick-start state directory: `wgslirpy up` keeps two key pairs here so repeated runs reuse
 * them (the peer's config stays valid).
 *
 *   $WGSLIRPY_STATE_DIR, else $XDG_STATE_HOME/wgslirpy, else ~/.local/state/wgslirpy
 *     gateway.key   this gateway's private key (base64 + newline), mode 0600
 *     peer.key      the generated peer's private key, mode 0600
 *
 * Files are created atomically (written under a temporary name, then hard-linked into place, which
 * fails if another process won the race; the winner's file is then used), never overwritten.
 */
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cryptoRandom, type Random } from "../util/random.ts";
import { generatePrivateKey, KeyError, keyToBase64, parseKey, publicKeyOf } from "../wireguard/keys.ts";

export const GATEWAY_KEY_FILE = "gateway.key";
export const PEER_KEY_FILE = "peer.key";

export class StateError extends Error {}

/** Where the state lives, from the environment (pure). */
export function resolveStateDir(env: Record<string, string | undefined>, home: string): string {
  if (env.WGSLIRPY_STATE_DIR) return env.WGSLIRPY_STATE_DIR;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, "wgslirpy");
  return join(home, ".local", "state", "wgslirpy");
}

export interface QuickStartKeys {
  dir: string;
  gatewayPrivate: Uint8Array;
  gatewayPublic: Uint8Array;
  peerPrivate: Uint8Array;
  peerPublic: Uint8Array;
  /** Names of the key files this call created (empty when both existed). */
  created: string[];
  /** Key files readable by group/others (a warning for the caller to show). */
  looseFiles: string[];
}

function errText(e: unknown): string {
  const code = (e as { code?: string }).code;
  return code ?? (e instanceof Error ? e.message : String(e));
}

function loadOrCreate(dir: string, name: string, random: Random, created: string[], loose: string[]): Uint8Array {
  const path = join(dir, name);
  for (let attempt = 0; attempt < 2; attempt++) {
    let text: string | undefined;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw new StateError(`cannot read ${path}: ${errText(e)}`);
    }
    if (text !== undefined) {
      try {
        const key = parseKey(text, "key");
        if ((statSync(path).mode & 0o077) !== 0) loose.push(path);
        return key;
      } catch (e) {
        if (e instanceof KeyError) {
          throw new StateError(`${path} does not hold a base64 32-byte key; fix or delete it`);
        }
        throw e;
      }
    }
    const key = generatePrivateKey(random);
    const tmp = `${path}.${process.pid}.${random.u32().toString(16)}.tmp`;
    try {
      writeFileSync(tmp, `${keyToBase64(key)}\n`, { mode: 0o600, flag: "wx" });
    } catch (e) {
      throw new StateError(`cannot write ${tmp}: ${errText(e)}`);
    }
    try {
      linkSync(tmp, path);
      created.push(name);
      return key;
    } catch (e) {
      // EEXIST: a concurrent run created it first; read theirs on the next attempt.
      if ((e as { code?: string }).code !== "EEXIST") throw new StateError(`cannot create ${path}: ${errText(e)}`);
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        // already gone
      }
    }
  }
  throw new StateError(`cannot create ${path}: it keeps changing`);
}

/** Load both key pairs from `dir`, creating the directory (0700) and missing keys (0600). */
export function loadOrCreateKeys(dir: string, random: Random = cryptoRandom): QuickStartKeys {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new StateError(`cannot create state directory ${dir}: ${errText(e)}`);
  }
  const created: string[] = [];
  const looseFiles: string[] = [];
  const gatewayPrivate = loadOrCreate(dir, GATEWAY_KEY_FILE, random, created, looseFiles);
  const peerPrivate = loadOrCreate(dir, PEER_KEY_FILE, random, created, looseFiles);
  return {
    dir,
    gatewayPrivate,
    gatewayPublic: publicKeyOf(gatewayPrivate),
    peerPrivate,
    peerPublic: publicKeyOf(peerPrivate),
    created,
    looseFiles,
  };
}
