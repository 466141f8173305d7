/**
 * Linux ICMP datagram ("ping") sockets through libc, via bun:ffi: socket(AF_INET, SOCK_DGRAM,
 * IPPROTO_ICMP) / (AF_INET6, …, IPPROTO_ICMPV6), allowed without privileges for the groups in
 * net.ipv4.ping_group_range (per network namespace; root is not exempt). The kernel picks the echo
 * identifier (the socket's "port") and delivers only replies carrying it; the sequence number and
 * data are ours. With IP_RECVERR / IPV6_RECVERR, ICMP errors about our echoes (unreachable, time
 * exceeded) are queued on the socket's error queue with the router that sent them.
 *
 * Everything here is non-blocking; the one blocking call, poll(), runs in ping-worker.ts. Both the
 * main thread and the worker load this module (each its own dlopen). Layouts are those of LP64
 * Linux (x86_64, aarch64).
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";

export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;
const SOL_IP = 0;
const IP_TTL = 2;
const IP_RECVERR = 11;
const SOL_IPV6 = 41;
const IPV6_UNICAST_HOPS = 16;
const IPV6_RECVERR = 25;
export const MSG_DONTWAIT = 0x40;
export const MSG_ERRQUEUE = 0x2000;
export const POLLIN = 1;
export const POLLERR = 8;
export const SO_EE_ORIGIN_ICMP = 2;
export const SO_EE_ORIGIN_ICMP6 = 3;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  4: "EINTR",
  11: "EAGAIN",
  13: "EACCES",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  90: "EMSGSIZE",
  93: "EPROTONOSUPPORT",
  97: "EAFNOSUPPORT",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  113: "EHOSTUNREACH",
};

export function errnoName(n: number): string {
  return ERRNO_NAMES[n] ?? `errno ${n}`;
}

const SYMBOLS = {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  sendto: {
    args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32],
    returns: FFIType.i64,
  },
  recvmsg: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i64 },
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  eventfd: { args: [FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

type Libc = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];
let libc: Libc | null | undefined;

/** libc's functions, or null where this is not Linux / libc cannot be loaded. */
export function pingLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux") return libc;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      libc = dlopen(name, SYMBOLS).symbols;
      break;
    } catch {
      // try the next name
    }
  }
  return libc;
}

function errno(c: Libc): number {
  const p = c.__errno_location();
  return p ? read.i32(p, 0) : 0;
}

/** An ICMP datagram socket (non-blocking, close-on-exec, IP(V6)_RECVERR on), or the errno's name. */
export function openPingSocket(family: 4 | 6): { fd: number } | { error: string } {
  const c = pingLibc();
  if (!c) return { error: "no libc (not Linux)" };
  const fd = c.socket(
    family === 4 ? AF_INET : AF_INET6,
    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
  );
  if (fd < 0) return { error: errnoName(errno(c)) };
  const on = new Int32Array([1]);
  const r =
    family === 4
      ? c.setsockopt(fd, SOL_IP, IP_RECVERR, ptr(on), 4)
      : c.setsockopt(fd, SOL_IPV6, IPV6_RECVERR, ptr(on), 4);
  if (r < 0) {
    const e = errnoName(errno(c));
    c.close(fd);
    return { error: e };
  }
  return { fd };
}

/** IP_TTL / IPV6_UNICAST_HOPS for the next datagrams; null or the errno's name. */
export function setHopLimit(fd: number, family: 4 | 6, hops: number): string | null {
  const c = pingLibc()!;
  const v = new Int32Array([hops]);
  const r =
    family === 4
      ? c.setsockopt(fd, SOL_IP, IP_TTL, ptr(v), 4)
      : c.setsockopt(fd, SOL_IPV6, IPV6_UNICAST_HOPS, ptr(v), 4);
  return r < 0 ? errnoName(errno(c)) : null;
}

/** sockaddr_in / sockaddr_in6 for an address, port 0. */
export function sockaddr(addr: Uint8Array): Uint8Array {
  const sa = new Uint8Array(addr.length === 4 ? 16 : 28);
  const family = addr.length === 4 ? AF_INET : AF_INET6;
  sa[0] = family & 0xff; // sa_family is host order (little-endian on the supported machines)
  sa[1] = family >> 8;
  sa.set(addr, addr.length === 4 ? 4 : 8);
  return sa;
}

/** The address in a sockaddr_in / sockaddr_in6, or null for another family. */
export function sockaddrAddress(sa: Uint8Array, length: number): Uint8Array | null {
  const family = sa[0]! | (sa[1]! << 8);
  if (family === AF_INET && length >= 8) return sa.slice(4, 8);
  if (family === AF_INET6 && length >= 24) return sa.slice(8, 24);
  return null;
}

/** sendto() without blocking; null when sent, else the errno's name (EAGAIN: buffer full). */
export function sendTo(fd: number, data: Uint8Array, sa: Uint8Array): string | null {
  const c = pingLibc()!;
  const n = c.sendto(fd, ptr(data), data.length, MSG_DONTWAIT, ptr(sa), sa.length);
  return Number(n) < 0 ? errnoName(errno(c)) : null;
}

export function closeFd(fd: number): void {
  pingLibc()?.close(fd);
}

/** A non-blocking eventfd (the worker's wake-up line), or -1. */
export function openEventFd(): number {
  const c = pingLibc();
  return c ? c.eventfd(0, SOCK_NONBLOCK | SOCK_CLOEXEC) : -1;
}

const one = new BigUint64Array([1n]);
export function signalEventFd(fd: number): void {
  pingLibc()?.write(fd, ptr(one), 8);
}
