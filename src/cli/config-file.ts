/**
 * `--config FILE`: a wg-quick style INI file.
 *
 *   [Interface]  PrivateKey, ListenPort, Address (the gateway's own inner addresses: the first
 *                IPv4 one, else the first IPv6 one, answers ping and DNS on port 53), MTU; wg-quick's
 *                host-side keys (DNS, Table, PreUp/PostUp/PreDown/PostDown, SaveConfig, FwMark) are
 *                accepted and ignored, since the gateway configures no host interface.
 *   [Gateway]    wgslirpy's own keys: BindAddress, DNS (IP[:PORT] or off), Pingable (IP or off),
 *                IncomingTCP / IncomingUDP (HOST,[SRC],DST; repeatable), Allow / Deny (CIDR[:PORTS];
 *                repeatable, checked in file order), TCPBufferSize, UDPIdleTimeout,
 *                TransmitQueueCapacity.
 *   [Peer]       PublicKey, PresharedKey, AllowedIPs (comma-separated; repeatable), Endpoint
 *                (IP:PORT, [IPv6]:PORT or HOST:PORT), PersistentKeepalive (seconds or off); any
 *                number of them. A HOST is resolved once at startup (config-hosts.ts), as wg-quick does.
 *
 * Keys and section names are case-insensitive; `#` starts a comment. Every problem is one
 * CliError "FILE:LINE: problem" (exit status 2).
 */
import { isIP } from "node:net";
import { PolicyParseError, parseRule } from "../gateway/policy.ts";
import type { ForwardSpec, PeerConfig, PolicyRuleSpec } from "../options.ts";
import { type Endpoint, EndpointParseError, parseEndpoint, splitHostPort } from "../util/endpoint.ts";
import { parsePrefix } from "../wire/prefix.ts";
import { KEY_LENGTH, KeyError, parseKey } from "../wireguard/keys.ts";
import { CliError, parseForward } from "./parse.ts";

export interface ConfigFile {
  privateKey: Uint8Array;
  listenPort: number;
  /** The gateway's inner addresses (Address=, prefixes stripped). */
  addresses: string[];
  mtu?: number;
  bindAddress?: string;
  /** undefined = not set; null = "off". */
  dns?: Endpoint | null;
  pingable?: string | null;
  incomingTcp: ForwardSpec[];
  incomingUdp: ForwardSpec[];
  policy: PolicyRuleSpec[];
  tcpBufferSize?: number;
  udpIdleTimeout?: number;
  transmitQueueCapacity?: number;
  peers: PeerConfig[];
  /** Endpoint lines that name a host: peers[peer].endpoint is set once it is resolved. */
  endpointHosts: EndpointHost[];
}

export interface EndpointHost {
  /** Index into ConfigFile.peers. */
  peer: number;
  host: string;
  port: number;
  line: number;
}
/^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

const IGNORED_INTERFACE_KEYS = new Set([
  "dns",
  "table",
  "preup",
  "postup",
  "predown",
  "postdown",
  "saveconfig",
  "fwmark",
]);

class LineError extends Error {}

function key32(value: string, what: string): Uint8Array {
  try {
    return parseKey(value, what);
  } catch (e) {
    // Not KeyError's message: it quotes the text, and a private key must not reach the terminal.
    if (e instanceof KeyError) throw new LineError(`${what} is not a base64 ${KEY_LENGTH}-byte key`);
    throw e;
  }
}

function integer(value: string, what: string, min: number, max: number): number {
  const n = /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max)) throw new LineError(`${what} "${value}" is not an integer from ${min} to ${max}`);
  return n;
}

function endpoint(value: string, what: string): Endpoint {
  try {
    const e = parseEndpoint(value, what);
    if (e.port === 0) throw new LineError(`${what} "${value}": port must not be 0`);
    return e;
  } catch (e) {
    if (e instanceof EndpointParseError) throw new LineError(e.message);
    throw e;
  }
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** Parse the text of a config file; `file` names it in errors. */
export function parseConfigFile(text: string, file: string): ConfigFile {
  let section: "interface" | "gateway" | "peer" | undefined;
  let sawInterface = false;
  let privateKey: Uint8Array | undefined;
  let peer: ConfigPeer | undefined;
  const out: Omit<ConfigFile, "privateKey"> = {
    listenPort: 0,
    addresses: [],
    incomingTcp: [],
    incomingUdp: [],
    policy: [],
    peers: [],
    endpointHosts: [],
  };
  const seen = new Set<string>();
  const peerKeys = new Map<string, number>();
  const finishPeer = () => {
    if (!peer) return;
    if (!peer.publicKey.length) throw new CliError(`${file}:${peer.line}: [Peer] without PublicKey`);
    const { line, endpointHost, ...cfg } = peer;
    if (endpointHost) out.endpointHosts.push({ peer: out.peers.length, ...endpointHost });
    out.peers.push(cfg);
    peer = undefined;
  };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i] as string;
    const hash = raw.indexOf("#");
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === "") continue;
    try {
      const header = /^\[\s*([A-Za-z]+)\s*\]$/.exec(line);
      if (header) {
        finishPeer();
        const name = (header[1] as string).toLowerCase();
        if (name === "interface") {
          if (sawInterface) throw new LineError("a second [Interface] section");
          sawInterface = true;
        } else if (name === "peer") {
          peer = { publicKey: new Uint8Array(0), allowedIps: [], line: lineNo };
        } else if (name !== "gateway") {
          throw new LineError(`unknown section [${header[1]}] (expected [Interface], [Gateway] or [Peer])`);
        }
        section = name as typeof section;
        seen.clear();
        continue;
      }
      const eq = line.indexOf("=");
      if (eq < 0) throw new LineError(`expected "Key = Value" or a [Section], got "${line}"`);
      const keyText = line.slice(0, eq).trim();
      const key = keyText.toLowerCase();
      const value = line.slice(eq + 1).trim();
      if (!section) throw new LineError(`"${keyText}" before any [Interface] or [Peer] section`);
      const repeatable = ["allowedips", "address", "incomingtcp", "incomingudp", "allow", "deny"].includes(key);
      if (!repeatable && seen.has(key)) throw new LineError(`${keyText} given twice in one section`);
      seen.add(key);
      if (section === "interface") {
        if (key === "privatekey") privateKey = key32(value, "PrivateKey");
        else if (key === "listenport") out.listenPort = integer(value, "ListenPort", 0, 65535);
        else if (key === "mtu") out.mtu = integer(value, "MTU", 576, 65535);
        else if (key === "address") {
          for (const a of list(value)) {
            const p = parsePrefix(a);
            if (!p) throw new LineError(`Address "${a}" is not an IP address or prefix`);
            out.addresses.push(a.split("/")[0] as string);
          }
        } else if (!IGNORED_INTERFACE_KEYS.has(key)) throw new LineError(`unknown key "${keyText}" in [Interface]`);
      } else if (section === "gateway") {
        gatewayKey(out, key, keyText, value);
      } else {
        peerKey(peer as ConfigPeer, key, keyText, value, peerKeys, lineNo);
      }
    } catch (e) {
      if (e instanceof LineError) throw new CliError(`${file}:${lineNo}: ${e.message}`);
      if (e instanceof CliError && !e.message.startsWith(`${file}:`))
        throw new CliError(`${file}:${lineNo}: ${e.message}`);
      throw e;
    }
  }
  finishPeer();
  if (!sawInterface) throw new CliError(`${file}: no [Interface] section`);
  if (!privateKey) throw new CliError(`${file}: [Interface] has no PrivateKey`);
  return { privateKey, ...out };
}

function gatewayKey(out: Omit<ConfigFile, "privateKey">, key: string, keyText: string, value: string): void {
  switch (key) {
    case "bindaddress":
      if (!isIP(value)) throw new LineError(`BindAddress "${value}" is not an IP address`);
      out.bindAddress = value;
      return;
    case "dns":
      if (value.toLowerCase() === "off") out.dns = null;
      else out.dns = isIP(value) ? { address: value, port: 53 } : endpoint(value, "DNS");
      return;
    case "pingable":
      if (value.toLowerCase() === "off") out.pingable = null;
      else if (isIP(value)) out.pingable = value;
      else throw new LineError(`Pingable "${value}" is not an IP address`);
      return;
    case "incomingtcp":
      out.incomingTcp.push(parseForward(value, "IncomingTCP"));
      return;
    case "incomingudp":
      out.incomingUdp.push(parseForward(value, "IncomingUDP"));
      return;
    case "allow":
    case "deny":
      try {
        parseRule(key, value);
      } catch (e) {
        if (e instanceof PolicyParseError) throw new LineError(e.message);
        throw e;
      }
      out.policy.push({ action: key, rule: value });
      return;
    case "tcpbuffersize":
      out.tcpBufferSize = integer(value, keyText, 1024, 1 << 30);
      return;
    case "udpidletimeout":
      out.udpIdleTimeout = integer(value, keyText, 1, 86400);
      return;
    case "transmitqueuecapacity":
      out.transmitQueueCapacity = integer(value, keyText, 1, 1 << 20);
      return;
    default:
      throw new LineError(`unknown key "${keyText}" in [Gateway]`);
  }
}

/** A [Peer] being read: its header line, and its Endpoint's host name until that is resolved. */
type ConfigPeer = PeerConfig & { line: number; endpointHost?: Omit<EndpointHost, "peer"> };

function peerKey(
  peer: ConfigPeer,
  key: string,
  keyText: string,
  value: string,
  peerKeys: Map<string, number>,
  lineNo: number,
): void {
  switch (key) {
    case "publickey": {
      peer.publicKey = key32(value, "PublicKey");
      const first = peerKeys.get(value);
      if (first !== undefined) throw new LineError(`PublicKey already used by the [Peer] on line ${first}`);
      peerKeys.set(value, lineNo);
      return;
    }
    case "presharedkey":
      peer.presharedKey = key32(value, "PresharedKey");
      return;
    case "allowedips":
      for (const a of list(value)) {
        if (!parsePrefix(a)) throw new LineError(`AllowedIPs "${a}" is not an IP prefix`);
        peer.allowedIps?.push(a);
      }
      return;
    case "endpoint": {
      // A name (not a malformed IP such as "1.2.3", which getaddrinfo would read as inet_aton does).
      const hp = splitHostPort(value);
      if (hp && !isIP(hp.host) && !/^[\d.]+$/.test(hp.host)) {
        if (hp.port === 0) throw new LineError(`Endpoint "${value}": port must not be 0`);
        peer.endpointHost = { host: hp.host, port: hp.port, line: lineNo };
      } else peer.endpoint = endpoint(value, "Endpoint");
      return;
    }
    case "persistentkeepalive":
      peer.persistentKeepalive = value.toLowerCase() === "off" ? 0 : integer(value, "PersistentKeepalive", 0, 65535);
      return;
    default:
      throw new LineError(`unknown key "${keyText}" in [Peer]`);
  }
}

/** The gateway's inner address for ping and DNS: the first IPv4 Address, else the first one. */
export function gatewayAddress(cfg: ConfigFile): string | undefined {
  return cfg.addresses.find((a) => isIP(a) === 4) ?? cfg.addresses[0];
}
