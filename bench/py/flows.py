#!/usr/bin/env python3
"""Many-flow benchmark clients (run inside the peer namespace) and the echo server they use
(run inside the inet namespace). Output is one JSON line.
  conns HOST PORT N                      N HTTP/1.0 GETs in a row, each on a fresh connection
  echo-server PORT                       TCP echo on PORT (dual-stack), until killed
  fairness HOST PORT FLOWS SECONDS CHUNK FLOWS connections, each writing CHUNK bytes and reading
                                         them back, continuously for SECONDS; bytes echoed per flow
Bounded: every socket has a timeout, every loop a deadline."""
import json
import selectors
import socket
import statistics
import sys
import time


def conns(host, port, n):
    n = int(n)
    req = b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n"
    ok = 0
    errors = 0
    t0 = time.monotonic()
    for _ in range(n):
        try:
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(req)
            while s.recv(65536):
                pass
            s.close()
            ok += 1
        except OSError:
            errors += 1
    t = time.monotonic() - t0
    return {"ok": ok, "errors": errors, "seconds": t, "perSecond": ok / t if t > 0 else 0}


def echo_server(port):
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.bind(("::", int(port)))
    srv.listen(1024)
    srv.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    pending = {}
    print(json.dumps({"listening": int(port)}), flush=True)
    while True:
        for key, mask in sel.select(1.0):
            s = key.fileobj
            if s is srv:
                try:
                    c, _ = srv.accept()
                except OSError:
                    continue
                c.setblocking(False)
                pending[c] = b""
                sel.register(c, selectors.EVENT_READ, None)
                continue
            buf = pending.get(s, b"")
            if mask & selectors.EVENT_READ and len(buf) < 1 << 20:
                try:
                    d = s.recv(65536)
                except OSError:
                    d = b""
                if not d:
                    sel.unregister(s)
                    pending.pop(s, None)
                    s.close()
                    continue
                buf += d
            if buf:
                try:
                    n = s.send(buf)
                except BlockingIOError:
                    n = 0
                except OSError:
                    sel.unregister(s)
                    pending.pop(s, None)
                    s.close()
                    continue
                buf = buf[n:]
            pending[s] = buf
            sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if buf else 0), None)


def fairness(host, port, flows, seconds, chunk):
    """Every flow keeps one CHUNK in flight: write it, read it all back, write the next. A flow's
    stall is the longest time it waited for echoed bytes (an RTO backoff shows as a long stall)."""
    flows, seconds, chunk = int(flows), float(seconds), int(chunk)
    payload = b"x" * chunk
    sel = selectors.DefaultSelector()
    state = {}
    for i in range(flows):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.setblocking(False)
        state[s] = {"i": i, "out": payload, "want": chunk, "echoed": 0, "last": 0.0, "stall": 0.0, "stalls1s": 0}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, None)
    t0 = time.monotonic()
    for st in state.values():
        st["last"] = t0
    deadline = t0 + seconds
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        for key, mask in sel.select(0.5):
            s = key.fileobj
            st = state[s]
            if mask & selectors.EVENT_WRITE and st["out"]:
                try:
                    n = s.send(st["out"])
                    st["out"] = st["out"][n:]
                except BlockingIOError:
                    pass
            if mask & selectors.EVENT_READ:
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    d = None
                if d == b"":
                    raise SystemExit(json.dumps({"error": f"flow {st['i']} closed"}))
                if d:
                    t = time.monotonic()
                    gap = t - st["last"]
                    st["last"] = t
                    if gap > st["stall"]:
                        st["stall"] = gap
                    if gap >= 1.0:
                        st["stalls1s"] += 1
                    st["echoed"] += len(d)
                    st["want"] -= len(d)
                    if st["want"] <= 0 and not st["out"]:
                        st["out"] = payload
                        st["want"] += chunk
            sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if st["out"] else 0), None)
    t = time.monotonic() - t0
    end = t0 + t
    for st in state.values():
        gap = end - st["last"]
        if gap > st["stall"]:
            st["stall"] = gap
    per = sorted(st["echoed"] for st in state.values())
    stalls = sorted(st["stall"] for st in state.values())
    for s in state:
        s.close()
    med = statistics.median(per)

    def pct(xs, p):
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    return {
        "flows": flows,
        "seconds": t,
        "minBytes": per[0],
        "p10Bytes": pct(per, 0.1),
        "medianBytes": med,
        "maxBytes": per[-1],
        "minOverMedian": per[0] / med if med > 0 else 0,
        "flowsUnderHalfMedian": sum(1 for b in per if b < med / 2),
        "totalMbps": sum(per) * 8 / t / 1e6,
        "stallMedianS": round(pct(stalls, 0.5), 3),
        "stallMaxS": round(stalls[-1], 3),
        "stalls1s": sum(st["stalls1s"] for st in state.values()),
        "perFlowBytes": per,
    }


def main():
    cmd = sys.argv[1]
    if cmd == "echo-server":
        echo_server(*sys.argv[2:])
        return
    fn = {"conns": conns, "fairness": fairness}[cmd]
    print(json.dumps(fn(*sys.argv[2:])), flush=True)


if __name__ == "__main__":
    main()
