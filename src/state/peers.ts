/**
 * Peers enrolled with `wgslirpy up --add-peer NAME`, one file each in the state directory:
 *
 *   peers/NAME.conf   (mode 0600)
 *     PrivateKey = <the peer's private key, base64>
 *     Address = 10.0.2.N/32, fd00::N/128
 *
 * N runs from 16 to 254 (the quick-start peer keeps .15): the next free number is taken, so at most
 * 239 peers. The peer's private key is kept so its config can be shown again (--show-config NAME).
 */
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cryptoRandom, type Random } from "../util/random.ts";
import { generatePrivateKey, KeyError, keyToBase64, parseKey, publicKeyOf } from "../wireguard/keys.ts";
import { StateError } from "./keys.ts";

export const PEERS_DIR = "peers";
export const FIRST_HOST = 16;
export const LAST_HOST = 254;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

export interface StoredPeer {
  name: string;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  /** Host number N of 10.0.2.N / fd00::N. */
  host: number;
  addresses: [string, string];
  file: string;
}

export function checkPeerName(name: string): void {
  if (!NAME.test(name)) {
    throw new StateError(`invalid peer name "${name}": 1 to 32 of A-Z a-z 0-9 _ . - (starting with a letter or digit)`);
  }
}

export const peerAddresses = (host: number): [string, string] => [`10.0.2.${host}/32`, `fd00::${host}/128`];

function parsePeerFile(text: string, file: string, name: string): StoredPeer {
  const key = /^PrivateKey\s*=\s*(\S+)\s*$/m.exec(text)?.[1];
  const host = Number(/^Address\s*=\s*10\.0\.2\.(\d{1,3})\/32\b/m.exec(text)?.[1]);
  if (!key || !(host >= FIRST_HOST && host <= LAST_HOST))
    throw new StateError(`${file}: not a wgslirpy peer file; fix or delete it`);
  let privateKey: Uint8Array;
  try {
    privateKey = parseKey(key, "key");
  } catch (e) {
    if (e instanceof KeyError) throw new StateError(`${file}: PrivateKey is not a base64 32-byte key`);
    throw e;
  }
  return { name, privateKey, publicKey: publicKeyOf(privateKey), host, addresses: peerAddresses(host), file };
}

/** Every enrolled peer, by name. */
export function listPeers(stateDir: string): StoredPeer[] {
  const dir = join(stateDir, PEERS_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return [];
    throw new StateError(`cannot read ${dir}: ${(e as Error).message}`);
  }
  const out: StoredPeer[] = [];
  for (const f of names.sort()) {
    if (!f.endsWith(".conf")) continue;
    const file = join(dir, f);
    out.push(parsePeerFile(readFileSync(file, "utf8"), file, f.slice(0, -5)));
  }
  return out;
}

export function loadPeer(stateDir: string, name: string): StoredPeer {
  checkPeerName(name);
  const found = listPeers(stateDir).find((p) => p.name === name);
  if (!found) throw new StateError(`no peer named "${name}" (see up --list)`);
  return found;
}

/** Enroll a new peer on the next free address pair; the file is created exclusively. */
export function addPeer(stateDir: string, name: string, random: Random = cryptoRandom): StoredPeer {
  checkPeerName(name);
  const existing = listPeers(stateDir);
  if (existing.some((p) => p.name === name)) throw new StateError(`a peer named "${name}" exists already`);
  const used = new Set(existing.map((p) => p.host));
  let host = FIRST_HOST;
  while (used.has(host)) host++;
  if (host > LAST_HOST) throw new StateError(`no free address left (10.0.2.${FIRST_HOST}–${LAST_HOST} all taken)`);
  const dir = join(stateDir, PEERS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${name}.conf`);
  const privateKey = generatePrivateKey(random);
  const addresses = peerAddresses(host);
  const text = `# wgslirpy peer ${name}\nPrivateKey = ${keyToBase64(privateKey)}\nAddress = ${addresses.join(", ")}\n`;
  try {
    writeFileSync(file, text, { mode: 0o600, flag: "wx" });
  } catch (e) {
    throw new StateError(`cannot create ${file}: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
  return { name, privateKey, publicKey: publicKeyOf(privateKey), host, addresses, file };
}

export function removePeer(stateDir: string, name: string): StoredPeer {
  const peer = loadPeer(stateDir, name);
  unlinkSync(peer.file);
  return peer;
}

/** Peer files readable by group or others. */
export function loosePeerFiles(peers: StoredPeer[]): string[] {
  return peers.filter((p) => (statSync(p.file).mode & 0o077) !== 0).map((p) => p.file);
}
