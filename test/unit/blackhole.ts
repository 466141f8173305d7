import { dlopen, FFIType, ptr } from "bun:ffi";

/**
 * A loopback TCP port whose connects stay in SYN-SENT: a listener with backlog 0 that never
 * accepts. Its first connection fills the accept queue; Linux then drops every further SYN (and
 * the client retransmits for the whole SYN retry time), which is what a black-holed destination
 * looks like, without leaving loopback.
 */
export interface Blackhole {
  port: number;
  close(): void;
}

const libc = dlopen("libc.so.6", {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
}).symbols;

export async function blackhole(): Promise<Blackhole> {
  const fd = libc.socket(2, 1, 0); // AF_INET, SOCK_STREAM
  if (fd < 0) throw new Error("blackhole: socket() failed");
  const sa = new Uint8Array(16);
  sa[0] = 2; // AF_INET (little-endian sa_family), port 0, 127.0.0.1
  sa[4] = 127;
  sa[7] = 1;
  const len = new Uint32Array([16]);
  if (libc.bind(fd, ptr(sa), 16) !== 0 || libc.listen(fd, 0) !== 0 || libc.getsockname(fd, ptr(sa), ptr(len)) !== 0) {
    libc.close(fd);
    throw new Error("blackhole: bind/listen failed");
  }
  const port = ((sa[2] as number) << 8) | (sa[3] as number);
  // Fill the accept queue with one connection of our own.
  const filler = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
  return {
    port,
    close() {
      filler.terminate();
      libc.close(fd);
    },
  };
}
