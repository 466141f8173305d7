#!/usr/bin/env python3
"""Clients run inside the peer namespace. Output is one JSON line.
  udp HOST PORT HEXPAYLOAD [FAMILY]     send a datagram (retry up to 5x), print the reply and its source
  halfclose HOST PORT NBYTES SEED [FAMILY]  send NBYTES deterministic bytes, shut the write side,
                                        read the reply until EOF
  connect HOST PORT [FAMILY]            time a TCP connect (refused / timeout / ok)
  fuzz HOST PORT COUNT SEED             send COUNT random and truncated datagrams (never waits)"""
import hashlib
import json
import random
import socket
import sys
import time

FAM = {"4": socket.AF_INET, "6": socket.AF_INET6, "any": socket.AF_UNSPEC}


def resolve(host, port, fam, kind):
    infos = socket.getaddrinfo(host, port, FAM[fam], kind)
    return infos[0][0], infos[0][4]


def udp(host, port, hexpayload, fam="any"):
    family, addr = resolve(host, int(port), fam, socket.SOCK_DGRAM)
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    payload = bytes.fromhex(hexpayload)
    for attempt in range(5):
        s.sendto(payload, addr)
        try:
            data, src = s.recvfrom(65535)
            return {"ok": True, "reply": data.hex(), "from": src[0], "fromPort": src[1], "attempts": attempt + 1,
                    "to": addr[0]}
        except socket.timeout:
            continue
    return {"ok": False, "to": addr[0]}


def pattern(n, seed):
    rnd = random.Random(int(seed))
    return rnd.randbytes(n)


def halfclose(host, port, nbytes, seed, fam="any"):
    family, addr = resolve(host, int(port), fam, socket.SOCK_STREAM)
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(addr)
    data = pattern(int(nbytes), seed)
    t0 = time.time()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        reply += b
    s.close()
    return {"ok": True, "sentSha256": hashlib.sha256(data).hexdigest(), "sent": len(data),
            "reply": reply.decode(errors="replace"), "seconds": time.time() - t0, "to": addr[0]}


def connect(host, port, fam="any"):
    family, addr = resolve(host, int(port), fam, socket.SOCK_STREAM)
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    t0 = time.time()
    try:
        s.connect(addr)
        res = "ok"
    except ConnectionRefusedError:
        res = "refused"
    except socket.timeout:
        res = "timeout"
    except OSError as e:
        res = f"error:{e.errno}"
    ms = (time.time() - t0) * 1000
    s.close()
    return {"result": res, "ms": ms, "to": addr[0]}


def fuzz(host, port, count, seed):
    rnd = random.Random(int(seed))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    for i in range(int(count)):
        kind = i % 6
        if kind == 0:  # pure random, any length
            d = rnd.randbytes(rnd.randrange(0, 1500))
        elif kind == 1:  # truncated handshake initiation (type 1, real size 148)
            d = bytes([1, 0, 0, 0]) + rnd.randbytes(rnd.randrange(0, 144))
        elif kind == 2:  # truncated / wrong-size handshake response (type 2, real size 92)
            d = bytes([2, 0, 0, 0]) + rnd.randbytes(rnd.choice([0, 4, 40, 87, 88, 100]))
        elif kind == 3:  # cookie reply with junk (type 3, size 64)
            d = bytes([3, 0, 0, 0]) + rnd.randbytes(rnd.choice([0, 10, 60, 61]))
        elif kind == 4:  # transport data with random receiver index / counter, short and long
            d = bytes([4, 0, 0, 0]) + rnd.randbytes(rnd.choice([0, 4, 11, 12, 28, 44, 1400]))
        else:  # a correctly sized initiation full of garbage
            d = bytes([1, 0, 0, 0]) + rnd.randbytes(144)
        s.sendto(d, (host, int(port)))
        sent += 1
        if i % 50 == 49:
            time.sleep(0.01)
    return {"ok": True, "sent": sent}


def main():
    cmd = sys.argv[1]
    fn = {"udp": udp, "halfclose": halfclose, "connect": connect, "fuzz": fuzz}[cmd]
    print(json.dumps(fn(*sys.argv[2:])), flush=True)


if __name__ == "__main__":
    main()
