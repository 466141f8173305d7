#!/usr/bin/env python3
"""TCP upload sink (inet namespace): reads until the client's EOF (half-close), then replies
"<sha256 hex> <byte count>\n" and closes. Dual-stack on --port."""
import argparse
import hashlib
import socket
import threading


def serve(conn):
    with conn:
        conn.settimeout(120)
        h = hashlib.sha256()
        n = 0
        while True:
            b = conn.recv(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
        conn.sendall(f"{h.hexdigest()} {n}\n".encode())
        conn.shutdown(socket.SHUT_WR)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", a.port))
    s.listen(128)
    print(f"READY sink {a.port}", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
