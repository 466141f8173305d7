#!/usr/bin/env python3
"""UDP responders (inet namespace), dual-stack.
  echo PORT              reply with the same payload from PORT
  other PORT REPLYPORT   reply "from-REPLYPORT:" + payload from a second socket bound to REPLYPORT
                         (a reply from a different remote port than the one contacted)"""
import socket
import sys


def sock(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    return s


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    rx = sock(port)
    tx = rx
    prefix = b""
    if mode == "other":
        rport = int(sys.argv[3])
        tx = sock(rport)
        prefix = f"from-{rport}:".encode()
    print(f"READY udp {mode} {port}", flush=True)
    while True:
        data, addr = rx.recvfrom(65535)
        tx.sendto(prefix + data, addr)


if __name__ == "__main__":
    main()
