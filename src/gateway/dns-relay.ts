import { readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import type { Clock } from "../util/clock.ts";
import type { Endpoint } from "../util/endpoint.ts";
import type { Random } from "../util/random.ts";
import { parseResponse, readU16, sameQuestion, writeU16 } from "./dns-codec.ts";
import type { DropCounter } from "./drops.ts";

/**
 * Relays a query verbatim to the host's nameservers (/etc/resolv.conf), for every type the host
 * resolver API cannot answer (MX, TXT, SRV, PTR, CAA, HTTPS, ...).
 *
 * Each attempt goes out with a fresh random ID over UDP from a fresh connected socket (random
 * source port, only the nameserver's datagrams accepted); an answer counts only when its ID and
 * question match what was sent (RFC 5452), anything else is counted and ignored. A truncated (TC)
 * answer is retried over TCP when the client asked over TCP; a UDP client gets the TC answer and
 * retries over TCP itself. Nameservers are tried in order, each for `attemptTimeoutMs`, until the
 * overall deadline; the reply has the client's ID restored and is otherwise the nameserver's bytes.
 */

export const RESOLV_CONF = "/etc/resolv.conf";
/** resolv.conf's limit (MAXNS). */
const MAX_NAMESERVERS = 3;
const RESOLV_CONF_RECHECK_MS = 5000;
/** The largest DNS message (RFC 1035 TCP length prefix). */
const MAX_MESSAGE = 65535;

export interface DnsRelayDeps {
  clock: Clock;
  random: Random;
  drops: DropCounter;
  /** Where to send; default: the nameservers of /etc/resolv.conf (re-read when it changes). */
  nameservers?: () => Endpoint[];
  attemptTimeoutMs?: number;
}

export class DnsRelayError extends Error {}

export class DnsRelay {
  /** Queries sent upstream: UDP attempts, TCP attempts. */
  udpAttempts = 0;
  tcpAttempts = 0;
  private readonly nameservers: () => Endpoint[];
  private readonly attemptTimeoutMs: number;
  private readonly open = new Set<{ close(): void }>();

  constructor(private readonly deps: DnsRelayDeps) {
    this.nameservers = deps.nameservers ?? resolvConfNameservers(RESOLV_CONF, deps.clock);
    this.attemptTimeoutMs = deps.attemptTimeoutMs ?? 2000;
  }

  /**
   * The nameserver's answer to `query` (the client's bytes; not modified) with the client's ID, or
   * a DnsRelayError when no nameserver answered in time.
   */
  async relay(query: Uint8Array, questionEnd: number, overTcp: boolean, deadline: number): Promise<Uint8Array> {
    const servers = this.nameservers();
    if (servers.length === 0) throw new DnsRelayError("no nameserver in /etc/resolv.conf");
    const clientId = readU16(query, 0);
    const out = query.slice();
    let lastError = "no answer";
    for (const server of servers) {
      const left = deadline - this.deps.clock.now();
      if (left <= 0) break;
      const timeout = Math.min(this.attemptTimeoutMs, left);
      try {
        writeU16(out, 0, this.deps.random.u32() & 0xffff);
        let answer = await this.attemptUdp(server, out, questionEnd, timeout);
        if (overTcp && parseResponse(answer)?.truncated) {
          const tcpLeft = Math.max(1, deadline - this.deps.clock.now());
          answer = await this.attemptTcp(server, out, questionEnd, Math.min(this.attemptTimeoutMs, tcpLeft));
        }
        writeU16(answer, 0, clientId);
        return answer;
      } catch (e) {
        lastError = (e as Error).message;
      }
    }
    throw new DnsRelayError(lastError);
  }

  close(): void {
    for (const s of this.open) s.close();
    this.open.clear();
  }

  /** Accept only a response to `sent`: same ID, QR set, same question. */
  private matches(sent: Uint8Array, questionEnd: number, answer: Uint8Array): boolean {
    const shape = parseResponse(answer);
    if (!shape || shape.id !== readU16(sent, 0) || !sameQuestion(sent, questionEnd, answer, shape.questionEnd)) {
      this.deps.drops.count("dns_relay_mismatch");
      return false;
    }
    return true;
  }

  private async attemptUdp(server: Endpoint, sent: Uint8Array, questionEnd: number, timeoutMs: number) {
    this.udpAttempts++;
    const { promise, resolve, reject } = Promise.withResolvers<Uint8Array>();
    const timer = this.deps.clock.timer(() => reject(new DnsRelayError(`${server.address}: timed out`)));
    timer.set(timeoutMs);
    let socket: { close(): void; send(d: Uint8Array): boolean } | undefined;
    try {
      const s = await Bun.udpSocket({
        binaryType: "uint8array",
        hostname: server.address.includes(":") ? "::" : "0.0.0.0",
        connect: { hostname: server.address, port: server.port },
        socket: {
          data: (_s, data) => {
            if (this.matches(sent, questionEnd, data)) resolve(data);
          },
          error: (...args: unknown[]) => {
            const e = args.find((a) => a instanceof Error) as Error | undefined;
            reject(new DnsRelayError(`${server.address}: ${e?.message ?? "socket error"}`));
          },
        },
      });
      socket = s;
      this.open.add(s);
      if (!s.send(sent)) throw new DnsRelayError(`${server.address}: send blocked`);
      return await promise;
    } finally {
      timer.clear();
      if (socket) {
        this.open.delete(socket);
        socket.close();
      }
    }
  }

  private async attemptTcp(server: Endpoint, sent: Uint8Array, questionEnd: number, timeoutMs: number) {
    this.tcpAttempts++;
    const { promise, resolve, reject } = Promise.withResolvers<Uint8Array>();
    const timer = this.deps.clock.timer(() => reject(new DnsRelayError(`${server.address}: TCP timed out`)));
    timer.set(timeoutMs);
    const framed = new Uint8Array(sent.length + 2);
    writeU16(framed, 0, sent.length);
    framed.set(sent, 2);
    let received = new Uint8Array(0);
    let socket: { end(): void; close?: () => void } | undefined;
    const handle = { close: () => socket?.end() };
    try {
      socket = await Bun.connect({
        hostname: server.address,
        port: server.port,
        socket: {
          open: (s) => {
            // Written whole: 2 + at most 65535 bytes fit a fresh socket's send buffer.
            if (s.write(framed) !== framed.length) reject(new DnsRelayError(`${server.address}: TCP write short`));
          },
          data: (_s, chunk: Uint8Array) => {
            if (received.length + chunk.length > MAX_MESSAGE + 2) {
              reject(new DnsRelayError(`${server.address}: TCP answer too long`));
              return;
            }
            const joined = new Uint8Array(received.length + chunk.length);
            joined.set(received);
            joined.set(chunk, received.length);
            received = joined;
            if (received.length < 2) return;
            const length = readU16(received, 0);
            if (received.length < 2 + length) return;
            const answer = received.slice(2, 2 + length);
            if (this.matches(sent, questionEnd, answer)) resolve(answer);
            else reject(new DnsRelayError(`${server.address}: TCP answer does not match`));
          },
          close: () => reject(new DnsRelayError(`${server.address}: TCP closed before the answer`)),
          error: (_s, e) => reject(new DnsRelayError(`${server.address}: ${e.message}`)),
        },
      });
      this.open.add(handle);
      return await promise;
    } catch (e) {
      if (e instanceof DnsRelayError) throw e;
      throw new DnsRelayError(`${server.address}: ${(e as Error).message}`);
    } finally {
      timer.clear();
      this.open.delete(handle);
      socket?.end();
    }
  }
}

/** The `nameserver` lines of a resolv.conf (at most 3, like the libc resolver). */
export function parseResolvConf(text: string): Endpoint[] {
  const out: Endpoint[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const address = m[1]!.replace(/%.*$/, "");
    if (isIP(address) && out.length < MAX_NAMESERVERS) out.push({ address, port: 53 });
  }
  return out;
}

/** The nameservers of `path`, re-read when its mtime changes (checked at most every 5 s). */
export function resolvConfNameservers(path: string, clock: Clock): () => Endpoint[] {
  let servers: Endpoint[] = [];
  let mtime = -1;
  let checkedAt = Number.NEGATIVE_INFINITY;
  return () => {
    const now = clock.now();
    if (now - checkedAt < RESOLV_CONF_RECHECK_MS) return servers;
    checkedAt = now;
    try {
      const m = statSync(path).mtimeMs;
      if (m !== mtime) {
        mtime = m;
        servers = parseResolvConf(readFileSync(path, "utf8"));
      }
    } catch {
      servers = [];
      mtime = -1;
    }
    return servers;
  };
}
