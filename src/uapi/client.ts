/** One request to a UAPI socket (ours or wireguard-go's), answered up to its `errno=N` line. */

export class UapiClientError extends Error {}

/** Send `request` (e.g. "get=1\n\n") and resolve with the answer; bounded by `timeoutMs`. */
export async function uapiRequest(path: string, request: string, timeoutMs = 5000): Promise<string> {
  let text = "";
  const done = Promise.withResolvers<void>();
  let sock: Awaited<ReturnType<typeof Bun.connect>>;
  try {
    sock = await Bun.connect({
      unix: path,
      socket: {
        data(_s, chunk) {
          text += chunk.toString();
          if (/(^|\n)errno=-?\d+\n\n$/.test(text)) done.resolve();
        },
        close: () => done.resolve(),
        error: (_s, e) => done.reject(e),
      },
    });
  } catch (e) {
    throw new UapiClientError(`cannot connect to ${path}: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
  const timer = setTimeout(
    () => done.reject(new UapiClientError(`no answer from ${path} in ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    sock.write(request);
    await done.promise;
  } finally {
    clearTimeout(timer);
    sock.end();
  }
  return text;
}

/** The errno of an answer (0 = success), or undefined when there is none. */
export function answerErrno(answer: string): number | undefined {
  const m = /(?:^|\n)errno=(-?\d+)\n\n$/.exec(answer);
  return m ? Number(m[1]) : undefined;
}

/** Parse a `get=1` answer into the device's keys and one record per peer. */
export function parseUapiGet(answer: string): { device: Map<string, string>; peers: Map<string, string[]>[] } {
  const device = new Map<string, string>();
  const peers: Map<string, string[]>[] = [];
  for (const line of answer.split("\n")) {
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "public_key") peers.push(new Map([[key, [value]]]));
    const cur = peers[peers.length - 1];
    if (!cur) device.set(key, value);
    else if (key !== "public_key") cur.set(key, [...(cur.get(key) ?? []), value]);
  }
  return { device, peers };
}
