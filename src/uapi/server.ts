/**
 * The UAPI unix socket (`/var/run/wireguard/NAME.sock`, what `wg` and wireguard-go use): mode 0600,
 * one request at a time per connection and across connections (like wireguard-go's ipcMutex).
 * A request is `get=1\n\n` or `set=1\n` + lines + `\n`; every answer ends with `errno=N\n\n`. An
 * unknown operation or an oversized request is answered with errno=-EINVAL / -EIO and the
 * connection closed; nothing a client sends can throw out of here.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { ERRNO, type UapiTarget, uapiGet, uapiSet } from "./protocol.ts";

/** A request larger than this without its end is refused (a full 65536-peer setconf fits). */
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** Connections open at once at most; more are closed at once. */
export const MAX_CONNECTIONS = 64;

interface Conn {
  buf: string;
  /** Output not yet accepted by the socket. */
  out: string;
  busy: boolean;
  /** Data arrived since serve() last looked at the buffer. */
  dirty: boolean;
  closing: boolean;
}

export interface UapiServer {
  readonly path: string;
  close(): void;
}

/** Whether something answers on the unix socket at `path`. */
async function socketAlive(path: string): Promise<boolean> {
  try {
    const s = await Bun.connect({ unix: path, socket: { data() {} } });
    s.end();
    return true;
  } catch {
    return false;
  }
}

export class UapiInUseError extends Error {
  readonly code = "EADDRINUSE";
}

export async function startUapiServer(path: string, target: UapiTarget): Promise<UapiServer> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (existsSync(path)) {
    if (await socketAlive(path)) throw new UapiInUseError(`${path} is in use by another process`);
    unlinkSync(path);
  }
  let queue: Promise<void> = Promise.resolve();
  let open = 0;
  const kick = (s: Socket<Conn>): void => {
    const c = s.data;
    if (c.busy || c.closing || !c.dirty) return;
    c.busy = true;
    c.dirty = false;
    queue = queue
      .then(() => serve(s, target))
      .catch(() => reply(s, `errno=-${ERRNO.ENOANO}\n\n`, true))
      .finally(() => {
        c.busy = false;
        kick(s);
      });
  };
  const oldMask = process.umask(0o077);
  let listener: UnixSocketListener<Conn>;
  try {
    listener = Bun.listen<Conn>({
      unix: path,
      socket: {
        open(s) {
          s.data = { buf: "", out: "", busy: false, dirty: false, closing: false };
          if (++open > MAX_CONNECTIONS) s.end();
        },
        data(s, chunk) {
          const c = s.data;
          if (c.closing) return;
          c.buf += chunk.toString("utf8");
          if (c.buf.length > MAX_REQUEST_BYTES) {
            reply(s, `errno=-${ERRNO.EIO}\n\n`, true);
            return;
          }
          c.dirty = true;
          kick(s);
        },
        drain(s) {
          flush(s);
        },
        close() {
          open--;
        },
        error() {},
      },
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
  return {
    path,
    close() {
      listener.stop(true);
      try {
        unlinkSync(path);
      } catch {
        // Already gone.
      }
    },
  };
}

function flush(s: Socket<Conn>): void {
  const c = s.data;
  if (c.out.length > 0) {
    const n = s.write(c.out);
    c.out = c.out.slice(Math.max(0, n));
  }
  if (c.out.length === 0 && c.closing) s.end();
}

function reply(s: Socket<Conn>, text: string, thenClose = false): void {
  const c = s.data;
  c.out += text;
  if (thenClose) {
    c.closing = true;
    c.buf = "";
  }
  flush(s);
}

/** Answer every complete request in the connection's buffer, in order. */
async function serve(s: Socket<Conn>, target: UapiTarget): Promise<void> {
  const c = s.data;
  for (;;) {
    if (c.closing) return;
    const nl = c.buf.indexOf("\n");
    if (nl < 0) return;
    const op = c.buf.slice(0, nl);
    if (op === "get=1") {
      if (c.buf.length < nl + 2) return;
      if (c.buf[nl + 1] !== "\n") {
        reply(s, `errno=-${ERRNO.EINVAL}\n\n`, true);
        return;
      }
      c.buf = c.buf.slice(nl + 2);
      reply(s, `${uapiGet(target)}errno=0\n\n`);
    } else if (op === "set=1") {
      // The body ends at the first empty line ("\n\n", or "\n" right after the operation line).
      const end = c.buf.indexOf("\n\n", nl);
      if (end < 0) return;
      const body = c.buf.slice(nl + 1, end + 1);
      c.buf = c.buf.slice(end + 2);
      const errno = await uapiSet(target, body);
      reply(s, `errno=${errno}\n\n`);
    } else {
      reply(s, `errno=-${ERRNO.EINVAL}\n\n`, true);
      return;
    }
  }
}
