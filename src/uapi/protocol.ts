/**
 * The cross-platform userspace configuration protocol (wireguard.com/xplatform, as wireguard-go's
 * device/uapi.go serves it): `get=1` lists the device and its peers as key=value lines; `set=1`
 * applies key=value lines in order (device keys, then `public_key=` starts a peer's keys). Keys
 * are hex; errors are negative errno values, and a failed set stops at the failing line with the
 * lines before it applied, as wireguard-go does.
 */
import { type Endpoint, EndpointParseError, parseEndpoint, unmapV4 } from "../util/endpoint.ts";
import { formatPrefix, parsePrefix } from "../wire/prefix.ts";
import { DeviceConfigError, type WireGuardDevice } from "../wireguard/device.ts";
import type { Peer } from "../wireguard/peer.ts";

/** errno values (Linux), sent negated like wireguard-go's ipc.IpcError*. */
export const ERRNO = { EIO: 5, EINVAL: 22, EPROTO: 71, EADDRINUSE: 98, ENOANO: 55 } as const;

export class UapiError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/** What the protocol reads and changes: the device, and the outer socket's port. */
export interface UapiTarget {
  device: WireGuardDevice;
  listenPort(): number;
  /** Rebind the outer socket to this port (0 = any); rejects when the port cannot be bound. */
  setListenPort(port: number): Promise<void>;
  log?: (message: string) => void;
}

const HEX = /^[0-9a-f]{64}$/i;

function toHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");
}

function fromHex(value: string, what: string): Uint8Array {
  if (!HEX.test(value)) throw new UapiError(ERRNO.EINVAL, `${what}: not a 64-digit hex key`);
  return new Uint8Array(Buffer.from(value, "hex"));
}

const isZero = (k: Uint8Array): boolean => k.every((b) => b === 0);

function formatUapiEndpoint(e: Endpoint): string {
  const a = unmapV4(e.address);
  return a.includes(":") ? `[${a}]:${e.port}` : `${a}:${e.port}`;
}

/** The `get=1` answer without its closing errno line. */
export function uapiGet(t: UapiTarget): string {
  const d = t.device;
  const lines: string[] = [`private_key=${toHex(d.privateKey)}`];
  const port = t.listenPort();
  if (port !== 0) lines.push(`listen_port=${port}`);
  const prefixes = new Map<Peer, string[]>();
  for (const { prefix, value } of d.allowedIps.entries()) {
    const list = prefixes.get(value);
    if (list) list.push(formatPrefix(prefix));
    else prefixes.set(value, [formatPrefix(prefix)]);
  }
  for (const peer of d.peers) {
    lines.push(`public_key=${toHex(peer.publicKey)}`);
    lines.push(`preshared_key=${toHex(peer.presharedKey ?? new Uint8Array(32))}`);
    lines.push("protocol_version=1");
    if (peer.endpoint) lines.push(`endpoint=${formatUapiEndpoint(peer.endpoint)}`);
    const ms = peer.stats.lastHandshakeAt;
    lines.push(`last_handshake_time_sec=${Math.floor(ms / 1000)}`);
    lines.push(`last_handshake_time_nsec=${(ms % 1000) * 1_000_000}`);
    lines.push(`tx_bytes=${peer.stats.txBytes}`);
    lines.push(`rx_bytes=${peer.stats.rxBytes}`);
    lines.push(`persistent_keepalive_interval=${peer.persistentKeepalive}`);
    for (const p of prefixes.get(peer) ?? []) lines.push(`allowed_ip=${p}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The peer a set is configuring: none yet, a real one, or a placeholder whose lines are ignored. */
interface PeerCursor {
  peer: Peer | undefined;
  /** Our own key, removed or update_only on a new key: keys that follow are accepted and ignored. */
  dummy: boolean;
  created: boolean;
}

function uint(value: string, what: string, max: number): number {
  const n = /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n <= max)) throw new UapiError(ERRNO.EINVAL, `${what}: "${value}" is not an integer from 0 to ${max}`);
  return n;
}

function trueOnly(value: string, key: string): void {
  if (value !== "true") throw new UapiError(ERRNO.EINVAL, `${key}: invalid value "${value}"`);
}

/**
 * Apply a `set=1` body (the lines after `set=1`, without the blank line that ends it). Resolves to
 * 0 or a negative errno.
 */
export async function uapiSet(t: UapiTarget, body: string): Promise<number> {
  const d = t.device;
  const cursor: PeerCursor = { peer: undefined, dummy: false, created: false };
  let deviceSection = true;
  try {
    for (const line of body.split("\n")) {
      if (line === "") continue;
      const eq = line.indexOf("=");
      if (eq < 0) throw new UapiError(ERRNO.EPROTO, `failed to parse line "${line.slice(0, 80)}"`);
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      if (key === "public_key") {
        deviceSection = false;
        finishPeer(cursor);
        selectPeer(d, cursor, fromHex(value, "public_key"));
      } else if (deviceSection) {
        await deviceLine(t, key, value);
      } else {
        peerLine(d, cursor, key, value);
      }
    }
    finishPeer(cursor);
    return 0;
  } catch (e) {
    if (e instanceof UapiError) {
      t.log?.(`UAPI set refused: ${e.message}`);
      return -e.errno;
    }
    t.log?.(`UAPI set failed: ${e instanceof Error ? e.message : String(e)}`);
    return -ERRNO.ENOANO;
  }
}

async function deviceLine(t: UapiTarget, key: string, value: string): Promise<void> {
  switch (key) {
    case "private_key": {
      const k = fromHex(value, "private_key");
      if (isZero(k)) throw new UapiError(ERRNO.EINVAL, "private_key: a gateway cannot run without a key");
      t.device.setPrivateKey(k);
      return;
    }
    case "listen_port": {
      const port = uint(value, "listen_port", 65535);
      if (port === t.listenPort()) return;
      try {
        await t.setListenPort(port);
      } catch (e) {
        throw new UapiError(ERRNO.EADDRINUSE, `listen_port ${port}: ${e instanceof Error ? e.message : String(e)}`);
      }
      return;
    }
    case "fwmark":
      // No socket marks here (wireguard-go ignores them where the platform has none too).
      uint(value, "fwmark", 0xffffffff);
      return;
    case "replace_peers":
      trueOnly(value, key);
      for (const peer of [...t.device.peers]) t.device.removePeer(peer.publicKey);
      return;
    default:
      throw new UapiError(ERRNO.EINVAL, `invalid UAPI device key: ${key.slice(0, 40)}`);
  }
}

function selectPeer(d: WireGuardDevice, cursor: PeerCursor, key: Uint8Array): void {
  cursor.created = false;
  cursor.dummy = false;
  cursor.peer = undefined;
  if (Buffer.compare(key, d.publicKey) === 0) {
    cursor.dummy = true;
    return;
  }
  const existing = d.getPeer(key);
  if (existing) {
    cursor.peer = existing;
    return;
  }
  try {
    cursor.peer = d.addPeer({ publicKey: key });
    cursor.created = true;
  } catch (e) {
    if (e instanceof DeviceConfigError) throw new UapiError(ERRNO.EINVAL, `failed to create peer: ${e.message}`);
    throw e;
  }
}

/** wireguard-go's handlePostConfig: a started peer sends what waited for its new settings. */
function finishPeer(cursor: PeerCursor): void {
  if (cursor.peer && !cursor.dummy) cursor.peer.sendStaged();
}

function peerLine(d: WireGuardDevice, cursor: PeerCursor, key: string, value: string): void {
  const peer = cursor.dummy ? undefined : cursor.peer;
  switch (key) {
    case "update_only":
      trueOnly(value, key);
      if (cursor.created && peer) {
        d.removePeer(peer.publicKey);
        cursor.dummy = true;
      }
      return;
    case "remove":
      trueOnly(value, key);
      if (peer) d.removePeer(peer.publicKey);
      cursor.dummy = true;
      return;
    case "preshared_key": {
      const psk = fromHex(value, "preshared_key");
      peer?.setPresharedKey(isZero(psk) ? undefined : psk);
      return;
    }
    case "endpoint": {
      let ep: Endpoint;
      try {
        ep = parseEndpoint(value, "endpoint");
      } catch (e) {
        if (e instanceof EndpointParseError) throw new UapiError(ERRNO.EINVAL, e.message);
        throw e;
      }
      if (peer) peer.endpoint = ep;
      return;
    }
    case "persistent_keepalive_interval":
      peer?.setPersistentKeepalive(uint(value, key, 65535));
      return;
    case "replace_allowed_ips":
      trueOnly(value, key);
      if (peer) d.clearAllowedIps(peer);
      return;
    case "allowed_ip": {
      const remove = value.startsWith("-");
      const prefix = parsePrefix(remove ? value.slice(1) : value);
      if (!prefix) throw new UapiError(ERRNO.EINVAL, `allowed_ip: "${value.slice(0, 60)}" is not a prefix`);
      if (!peer) return;
      if (!remove) d.addAllowedIps(peer, [prefix]);
      else d.allowedIps.remove(prefix, peer);
      return;
    }
    case "protocol_version":
      if (value !== "1") throw new UapiError(ERRNO.EINVAL, `invalid protocol version: ${value.slice(0, 20)}`);
      return;
    default:
      throw new UapiError(ERRNO.EINVAL, `invalid UAPI peer key: ${key.slice(0, 40)}`);
  }
}
