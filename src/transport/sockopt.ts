/**
 * Socket options Bun.udpSocket has no API for, through libc's setsockopt/getsockopt via bun:ffi:
 * buffer sizes and (Linux) UDP_SEGMENT for UDP GSO.
 *
 * Bun.udpSocket has no receive-buffer option, and the kernel default (~212 KB) drops most of a
 * burst. Bun's UDP socket exposes its file descriptor as an (untyped) `fd` property, so the
 * buffers are raised on that fd directly. As root (CAP_NET_ADMIN) SO_RCVBUFFORCE/SO_SNDBUFFORCE
 * bypass net.core.rmem_max/wmem_max; otherwise the kernel caps the request at those limits.
 * Linux reports twice the requested value (bookkeeping overhead) from getsockopt.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

export type BufferKind = "rcv" | "snd";

interface SockoptConsts {
  solSocket: number;
  rcvbuf: number;
  sndbuf: number;
  rcvbufForce: number | undefined;
  sndbufForce: number | undefined;
}

const LINUX: SockoptConsts = { solSocket: 1, rcvbuf: 8, sndbuf: 7, rcvbufForce: 33, sndbufForce: 32 };
// macOS / BSDs.
const BSD: SockoptConsts = {
  solSocket: 0xffff,
  rcvbuf: 0x1002,
  sndbuf: 0x1001,
  rcvbufForce: undefined,
  sndbufForce: undefined,
};

type Libc = {
  setsockopt: (fd: number, level: number, name: number, val: number, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, val: number, len: number) => number;
};

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  const candidates =
    process.platform === "darwin" ? ["libSystem.B.dylib", "/usr/lib/libSystem.B.dylib"] : ["libc.so.6", "libc.so"];
  for (const name of candidates) {
    try {
      const lib = dlopen(name, {
        setsockopt: {
          args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32],
          returns: FFIType.i32,
        },
        getsockopt: {
          args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr],
          returns: FFIType.i32,
        },
      });
      libc = lib.symbols as unknown as Libc;
      return libc;
    } catch {
      // try the next name
    }
  }
  libc = null;
  return libc;
}

function consts(): SockoptConsts {
  return process.platform === "linux" ? LINUX : BSD;
}

/** The OS file descriptor behind a Bun socket, or -1 when Bun does not expose one. */
export function socketFd(socket: unknown): number {
  const fd = (socket as { fd?: unknown }).fd;
  return typeof fd === "number" && Number.isInteger(fd) && fd >= 0 ? fd : -1;
}

/** Read SO_RCVBUF / SO_SNDBUF; -1 when unavailable. */
export function getSocketBuffer(fd: number, kind: BufferKind): number {
  const lib = loadLibc();
  if (!lib || fd < 0) return -1;
  const c = consts();
  const val = new Int32Array(1);
  const len = new Uint32Array([4]);
  const rc = lib.getsockopt(fd, c.solSocket, kind === "rcv" ? c.rcvbuf : c.sndbuf, ptr(val), ptr(len));
  return rc === 0 ? (val[0] as number) : -1;
}

/**
 * Ask for `bytes` of SO_RCVBUF / SO_SNDBUF (the forcing variant first, which needs CAP_NET_ADMIN).
 * Returns the effective value the kernel reports afterwards, or -1 when the option could not be
 * set at all (no libc, no fd).
 */
export function setSocketBuffer(fd: number, kind: BufferKind, bytes: number): number {
  const lib = loadLibc();
  if (!lib || fd < 0) return -1;
  const c = consts();
  const val = new Int32Array([Math.max(0, Math.min(bytes, 0x3fffffff))]);
  const force = kind === "rcv" ? c.rcvbufForce : c.sndbufForce;
  let ok = false;
  if (force !== undefined) ok = lib.setsockopt(fd, c.solSocket, force, ptr(val), 4) === 0;
  if (!ok) ok = lib.setsockopt(fd, c.solSocket, kind === "rcv" ? c.rcvbuf : c.sndbuf, ptr(val), 4) === 0;
  if (!ok) return -1;
  return getSocketBuffer(fd, kind);
}

/** Linux: SOL_UDP / UDP_SEGMENT (include/uapi/linux/udp.h), kernel 4.18 and later. */
const SOL_UDP = 17;
const UDP_SEGMENT = 103;

/**
 * Set the socket-wide UDP GSO segment size (0 = off). Afterwards a send longer than `size` leaves
 * as ceil(len / size) datagrams of `size` bytes (the last one shorter); a send of at most `size`
 * leaves unchanged. False where the kernel has no UDP_SEGMENT (not Linux, older kernel, no libc).
 */
export function setUdpSegment(fd: number, size: number): boolean {
  if (process.platform !== "linux" || fd < 0 || !Number.isInteger(size) || size < 0 || size > 0xffff) return false;
  const lib = loadLibc();
  if (!lib) return false;
  const val = new Int32Array([size]);
  return lib.setsockopt(fd, SOL_UDP, UDP_SEGMENT, ptr(val), 4) === 0;
}
