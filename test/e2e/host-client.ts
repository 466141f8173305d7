/** Host-side TCP clients for the e2e tests (the "internet" side of reverse forwards). */
/** A TCP client on the host side: connect, collect everything until the server's FIN. */
export interface HostClient {
  socket: import("bun").Socket<undefined>;
  received: () => Uint8Array;
  ended: Promise<void>;
  closed: Promise<void>;
  localPort: number;
}

export async function hostConnect(port: number, hostname = "127.0.0.1"): Promise<HostClient> {
  const chunks: Uint8Array[] = [];
  let endResolve!: () => void;
  let closeResolve!: () => void;
  const ended = new Promise<void>((r) => (endResolve = r));
  const closed = new Promise<void>((r) => (closeResolve = r));
  const socket = await Bun.connect({
    hostname,
    port,
    allowHalfOpen: true,
    socket: {
      binaryType: "uint8array",
      data: (_s, d) => {
        chunks.push(new Uint8Array(d));
      },
      end: () => endResolve(),
      close: () => {
        endResolve();
        closeResolve();
      },
    },
  });
  return {
    socket,
    ended,
    closed,
    localPort: socket.localPort,
    received: () => {
      const n = chunks.reduce((a, c) => a + c.length, 0);
      const out = new Uint8Array(n);
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      return out;
    },
  };
}
