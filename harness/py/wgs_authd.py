#!/usr/bin/env python3
"""A small authoritative DNS server for the inet namespace (UDP and TCP on ADDR:PORT), standing in
for "the host's nameserver" the gateway relays to. Fixed records (see ZONE); UDP answers larger
than the client's limit (512, or its EDNS size) are truncated to the question with TC set, so
clients retry over TCP. servfail.test answers SERVFAIL; other names NXDOMAIN with an SOA.
Prints one line per query ("Q udp|tcp NAME TYPE"). Usage: wgs_authd.py ADDR PORT"""
import socket
import struct
import sys
import threading

T = {"A": 1, "NS": 2, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33, "OPT": 41, "CAA": 257}


def name_bytes(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def txt(*strings):
    return b"".join(bytes([len(s)]) + s.encode() for s in strings)


BIG = ["%03d-" % i + "x" * 195 for i in range(5)]  # 5 x 200 bytes: about 1 KB of TXT

ZONE = {
    ("mx.test", T["MX"]): [struct.pack("!H", 10) + name_bytes("mail.mx.test")],
    ("txt.test", T["TXT"]): [txt("hello from the test zone", "second string")],
    ("big.test", T["TXT"]): [txt(*BIG)],
    ("_xmpp._tcp.srv.test", T["SRV"]): [struct.pack("!HHH", 5, 0, 5222) + name_bytes("xmpp.srv.test")],
    ("2.0.202.10.in-addr.arpa", T["PTR"]): [name_bytes("web.test")],
    ("caa.test", T["CAA"]): [b"\x00\x05issue" + b"letsencrypt.org"],
    ("a.only.test", T["A"]): [socket.inet_aton("10.202.0.2")],
}
SOA = name_bytes("ns.test") + name_bytes("hostmaster.test") + struct.pack("!IIIII", 1, 3600, 600, 86400, 60)
TTL = 300


def parse(msg):
    off = 12
    labels = []
    while msg[off] != 0:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("latin-1"))
        off += n + 1
    off += 1
    qtype, _ = struct.unpack("!HH", msg[off:off + 4])
    qend = off + 4
    edns = 0
    arcount = struct.unpack("!H", msg[10:12])[0]
    if arcount and len(msg) >= qend + 11 and msg[qend] == 0 and struct.unpack("!H", msg[qend + 1:qend + 3])[0] == T["OPT"]:
        edns = struct.unpack("!H", msg[qend + 3:qend + 5])[0]
    return ".".join(labels).lower(), qtype, qend, edns


def answer(msg, over_tcp):
    name, qtype, qend, edns = parse(msg)
    print(f"Q {'tcp' if over_tcp else 'udp'} {name} {qtype}", flush=True)
    qid, flags = struct.unpack("!HH", msg[:4])
    rd = flags & 0x0100
    question = msg[12:qend]
    rdatas = ZONE.get((name, qtype))
    authority = []
    if name == "servfail.test":
        rcode, rdatas = 2, []
    elif rdatas is None:
        known = any(n == name for n, _ in ZONE)
        rcode, rdatas = (0 if known else 3), []
        authority = [b"\xc0\x0c" + struct.pack("!HHIH", T["SOA"], 1, TTL, len(SOA)) + SOA]
    else:
        rcode = 0
    records = [b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, TTL, len(rd_)) + rd_ for rd_ in rdatas]
    out = struct.pack("!HHHHHH", qid, 0x8400 | rd | rcode, 1, len(records), len(authority), 0)
    out += question + b"".join(records) + b"".join(authority)
    limit = max(512, edns) if edns else 512
    if not over_tcp and len(out) > limit:
        out = struct.pack("!HHHHHH", qid, 0x8600 | rd | rcode, 1, 0, 0, 0) + question
    return out


def serve_udp(s):
    while True:
        msg, src = s.recvfrom(4096)
        try:
            s.sendto(answer(msg, False), src)
        except Exception as e:  # noqa: BLE001
            print(f"bad udp query from {src}: {e}", flush=True)


def serve_tcp_conn(c):
    with c:
        buf = b""
        while True:
            data = c.recv(65536)
            if not data:
                return
            buf += data
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                n = struct.unpack("!H", buf[:2])[0]
                msg, buf = buf[2:2 + n], buf[2 + n:]
                out = answer(msg, True)
                c.sendall(struct.pack("!H", len(out)) + out)


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    u.bind((addr, port))
    t = socket.socket(fam, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, port))
    t.listen(16)
    threading.Thread(target=serve_udp, args=(u,), daemon=True).start()
    print(f"READY authdns {addr} {port}", flush=True)
    while True:
        c, _ = t.accept()
        threading.Thread(target=serve_tcp_conn, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
