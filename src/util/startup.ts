/**
 * Startup is all-or-nothing: every resource the options ask for (sockets, files, listeners) is
 * opened through a StartupScope; when one fails, everything opened before it is closed and a
 * StartupError names what could not be opened, where (address and port for binds) and why.
 */
import { type Endpoint, formatEndpoint } from "./endpoint.ts";

/** Something the options asked for could not be opened; the message is one line. */
export class StartupError extends Error {
  constructor(
    message: string,
    /** The OS error code (EADDRINUSE, ENOENT, ...) when there was one. */
    readonly code?: string,
  ) {
    super(message);
    this.name = "StartupError";
  }
}

const REASONS: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "address not available on this host",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  ENOTDIR: "a path component is not a directory",
  EISDIR: "is a directory",
  EROFS: "read-only file system",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EAFNOSUPPORT: "address family not supported",
};

/** "address already in use (EADDRINUSE)" from an OS error, else the error's own message. */
export function reasonOf(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string" && code !== "") {
    const text = REASONS[code];
    return text ? `${text} (${code})` : code;
  }
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/\s*\n\s*/g, " ").trim();
}

type Closer = () => void | Promise<void>;

export class StartupScope {
  private readonly closers: Closer[] = [];

  /** Register how to close something already open (closed in reverse order). */
  add(close: Closer): void {
    this.closers.push(close);
  }

  /** Bind `where` for `what` ("the WireGuard UDP socket"); on failure close everything and throw. */
  async bind<T>(what: string, where: Endpoint, open: () => T | Promise<T>): Promise<T> {
    return this.open(`cannot bind ${what} to ${formatEndpoint(where)}`, open);
  }

  /** Open something (`failure` says what, e.g. `cannot create pcap file "x"`); all-or-nothing. */
  async open<T>(failure: string, open: () => T | Promise<T>): Promise<T> {
    try {
      return await open();
    } catch (e) {
      await this.closeAll();
      if (e instanceof StartupError) throw e;
      const code = (e as { code?: unknown })?.code;
      throw new StartupError(`${failure}: ${reasonOf(e)}`, typeof code === "string" ? code : undefined);
    }
  }

  /** Close everything opened so far, newest first; errors while closing are ignored. */
  async closeAll(): Promise<void> {
    while (this.closers.length > 0) {
      const close = this.closers.pop() as Closer;
      try {
        await close();
      } catch {
        // Closing a half-opened resource must not hide the error that caused it.
      }
    }
  }
}
