#!/usr/bin/env python3
"""UDP responders (inet namespace). One socket per listed address, so every reply leaves from the
address the request was sent to.
  echo PORT ADDR...              reply with the same payload from ADDR:PORT
  other PORT REPLYPORT ADDR...   reply "from-REPLYPORT:" + payload from ADDR:REPLYPORT
                                 (a reply from a different remote port than the one contacted)"""
import select
import socket
import sys


def sock(addr, port):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    return s


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "other":
        rport = int(sys.argv[3])
        addrs = sys.argv[4:]
        prefix = f"from-{rport}:".encode()
    else:
        rport = None
        addrs = sys.argv[3:]
        prefix = b""
    pairs = {}
    for a in addrs:
        rx = sock(a, port)
        pairs[rx] = sock(a, rport) if rport else rx
    print(f"READY udp {mode} {port}", flush=True)
    while True:
        ready, _, _ = select.select(list(pairs), [], [])
        for rx in ready:
            data, addr = rx.recvfrom(65535)
            pairs[rx].sendto(prefix + data, addr)


if __name__ == "__main__":
    main()
