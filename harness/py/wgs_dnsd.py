#!/usr/bin/env python3
"""Minimal A/AAAA DNS responder for the reference path (gw namespace): answers from the host
resolver (the namespace's /etc/hosts), NXDOMAIN otherwise. Usage: wgs_dnsd.py ADDR PORT"""
import socket
import struct
import sys


def parse_qname(msg, off):
    labels = []
    while True:
        n = msg[off]
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode())
        off += n
    return ".".join(labels), off


def answer(msg):
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    name, off = parse_qname(msg, 12)
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    question = msg[12:off + 4]
    fam = {1: socket.AF_INET, 28: socket.AF_INET6}.get(qtype)
    rdatas = []
    rcode = 0
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_DGRAM)
        for f, _, _, _, sa in infos:
            if f == fam:
                rdatas.append(socket.inet_pton(f, sa[0]))
    except socket.gaierror:
        rcode = 3
    hdr = struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode, 1, len(rdatas), 0, 0)
    out = hdr + question
    for rd in rdatas:
        out += struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rd)) + rd
    return out


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.setsockopt(socket.IPPROTO_IP, 15, 1)  # IP_FREEBIND: the tunnel address may not exist yet
    except OSError:
        pass
    s.bind((addr, port))
    print(f"READY dns {addr} {port}", flush=True)
    while True:
        msg, src = s.recvfrom(4096)
        try:
            s.sendto(answer(msg), src)
        except Exception as e:  # noqa: BLE001
            print(f"bad query from {src}: {e}", flush=True)


if __name__ == "__main__":
    main()
