/**
 * The blocking half of the ping sockets, on its own thread: poll() on the ICMP datagram sockets and
 * an eventfd, then drain each socket without blocking — echo replies with recvmsg(), ICMP errors
 * with recvmsg(MSG_ERRQUEUE) — and post what arrived to the main thread, which only ever sends.
 *
 * The worker runs pingWorkerMain's source from a blob URL, so it works the same from `bun src/cli.ts`
 * and from a `bun build --compile` binary (which has no file to point a Worker at). The function is
 * therefore self-contained: no references to anything outside it, bun:ffi imported dynamically,
 * constants inline (Linux, LP64; the same as ping-sys.ts).
 *
 * Protocol (PingWorkerIn / PingWorkerOut): the worker posts "ready" once loaded; "start" hands it
 * the eventfd; "watch" adds a socket; "stop" ends the loop. Each is followed by a write to the
 * eventfd so a poll() in progress returns and the message is read. On "stop" the worker closes
 * every socket and the eventfd itself (so no fd number can be reused while it might still read it)
 * and posts "stopped".
 */

export type PingWorkerIn =
  | { type: "start"; eventFd: number }
  | { type: "watch"; fd: number; family: 4 | 6 }
  | { type: "stop" };

export type PingWorkerOut =
  | { type: "ready" }
  | { type: "reply"; family: 4 | 6; from: Uint8Array; data: Uint8Array }
  | {
      type: "error";
      family: 4 | 6;
      /** ICMP (v4) or ICMPv6 type and code of the error, and the router that sent it. */
      icmpType: number;
      icmpCode: number;
      offender: Uint8Array | null;
      /** The echo request it is about (as we sent it: our identifier and sequence number). */
      data: Uint8Array;
    }
  | { type: "stopped" };

export async function pingWorkerMain(): Promise<void> {
  const { dlopen, FFIType, ptr } = await import("bun:ffi");
  const MSG_DONTWAIT = 0x40;
  const MSG_ERRQUEUE = 0x2000;
  const POLLIN = 1;
  const POLLERR = 8;
  const SO_EE_ORIGIN_ICMP = 2;
  const SO_EE_ORIGIN_ICMP6 = 3;
  const AF_INET = 2;
  const AF_INET6 = 10;
  const libc = dlopen("libc.so.6", {
    recvmsg: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i64 },
    poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  }).symbols;
  const scope = globalThis as unknown as {
    postMessage(m: PingWorkerOut): void;
    onmessage: ((e: MessageEvent<PingWorkerIn>) => void) | null;
  };
  const post = (m: PingWorkerOut) => scope.postMessage(m);
  const sockets: { fd: number; family: 4 | 6 }[] = [];
  let eventFd = -1;
  let stopping = false;

  // recvmsg buffers, allocated once.
  const data = new Uint8Array(65536);
  const name = new Uint8Array(128);
  const control = new Uint8Array(512);
  const controlView = new DataView(control.buffer);
  const iov = new BigUint64Array([BigInt(ptr(data)), BigInt(data.length)]);
  const msghdr = new BigUint64Array(7);
  const msgView = new DataView(msghdr.buffer);
  const counter = new BigUint64Array(1);

  /** The address in a sockaddr_in / sockaddr_in6, or null for another family. */
  const sockaddrAddress = (sa: Uint8Array, length: number): Uint8Array | null => {
    const family = sa[0]! | (sa[1]! << 8);
    if (family === AF_INET && length >= 8) return sa.slice(4, 8);
    if (family === AF_INET6 && length >= 24) return sa.slice(8, 24);
    return null;
  };

  /** One recvmsg(); the byte count, or -1 when nothing more is queued. */
  const receive = (fd: number, flags: number): number => {
    msghdr[0] = BigInt(ptr(name));
    msgView.setUint32(8, name.length, true);
    msghdr[2] = BigInt(ptr(iov));
    msghdr[3] = 1n;
    msghdr[4] = BigInt(ptr(control));
    msghdr[5] = BigInt(control.length);
    msghdr[6] = 0n;
    return Number(libc.recvmsg(fd, ptr(msghdr), flags | MSG_DONTWAIT));
  };
  const drain = (fd: number, family: 4 | 6): void => {
    for (let i = 0; i < 256; i++) {
      const n = receive(fd, 0);
      if (n < 0) break;
      const from = sockaddrAddress(name, msgView.getUint32(8, true));
      if (from) post({ type: "reply", family, from, data: data.slice(0, n) });
    }
    for (let i = 0; i < 256; i++) {
      const n = receive(fd, MSG_ERRQUEUE);
      if (n < 0) break;
      const controlLength = Number(msghdr[5]);
      // cmsghdr: size_t len, int level, int type, then data (8-byte aligned).
      for (let off = 0; off + 16 <= controlLength; ) {
        const len = Number(controlView.getBigUint64(off, true));
        if (len < 16) break;
        const level = controlView.getInt32(off + 8, true);
        const type = controlView.getInt32(off + 12, true);
        if ((level === 0 && type === 11) || (level === 41 && type === 25)) {
          // struct sock_extended_err { u32 errno; u8 origin, type, code, pad; u32 info, data; } + offender
          const e = off + 16;
          const origin = control[e + 4]!;
          if (origin === SO_EE_ORIGIN_ICMP || origin === SO_EE_ORIGIN_ICMP6) {
            const offender = sockaddrAddress(control.subarray(e + 16, off + len), len - 32);
            post({
              type: "error",
              family,
              icmpType: control[e + 5]!,
              icmpCode: control[e + 6]!,
              offender: offender?.some((b) => b !== 0) ? offender : null,
              data: data.slice(0, n),
            });
          }
        }
        off += (len + 7) & ~7;
      }
    }
  };

  const loop = async (): Promise<void> => {
    const pollfds = new Int32Array(2 * 8);
    while (!stopping) {
      // struct pollfd { int fd; short events; short revents; }: two int32s each.
      const count = 1 + sockets.length;
      pollfds[0] = eventFd;
      pollfds[1] = POLLIN;
      sockets.forEach((s, i) => {
        pollfds[2 * (i + 1)] = s.fd;
        pollfds[2 * (i + 1) + 1] = POLLIN | POLLERR;
      });
      const ready = libc.poll(ptr(pollfds), count, 1000);
      if (ready > 0) {
        sockets.forEach((s, i) => {
          if (pollfds[2 * (i + 1) + 1]! >>> 16 !== 0) drain(s.fd, s.family);
        });
      }
      if (ready <= 0 || pollfds[1]! >>> 16 !== 0) {
        libc.read(eventFd, ptr(counter), 8);
        // Let queued messages (watch / stop) run.
        await Bun.sleep(0);
      }
    }
    for (const s of sockets) libc.close(s.fd);
    libc.close(eventFd);
    post({ type: "stopped" });
  };

  scope.onmessage = (event: MessageEvent<PingWorkerIn>) => {
    const m = event.data;
    if (m.type === "start") {
      eventFd = m.eventFd;
      void loop();
    } else if (m.type === "watch") sockets.push({ fd: m.fd, family: m.family });
    else if (m.type === "stop") stopping = true;
  };
  post({ type: "ready" });
}
