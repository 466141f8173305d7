#!/usr/bin/env python3
"""wgsifw helpers. Servers print READY then one line per peer; clients print one JSON line.
  tcpserver PORT ADDR...           stream echo; after the client's EOF append "sha256 n\n", close
  tcpclient HOST PORT N SEED [BINDADDR BINDPORT]  send N bytes while reading, shut the write side,
                                   read to EOF
  udpserver PORT ADDR...           reply "ip port|" + payload (the source the server saw)
  udpclients HOST PORT BINDADDR BINDPORT...  one socket per BINDPORT, 3 datagrams each, collect replies
  udperr HOST PORT [WAIT]          connected UDP socket + IP(V6)_RECVERR: the ICMP error it gets
                                   (3 sends, WAIT s apart)
  tcperr HOST PORT TIMEOUT         time a TCP connect; errno name on failure
  banner ADDR PORT TEXT            TCP server that sends TEXT and closes
  rawtcp IFNAME SRC DST DPORT      hand-made TCP SYN written onto the (TUN) device with a packet
                                   socket; answers read from it: rst / synack (+ the data that follows)"""
import errno
import hashlib
import json
import random
import select
import socket
import struct
import sys
import threading
import time


def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def sha(b):
    return hashlib.sha256(b).hexdigest()


def serve_echo(c):
    h = hashlib.sha256()
    n = 0
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
            c.sendall(b)
        c.sendall(f"{h.hexdigest()} {n}\n".encode())
        c.shutdown(socket.SHUT_WR)
    except OSError as e:
        print(f"ERR {e}", flush=True)
    finally:
        c.close()


def tcpserver(port, *addrs):
    socks = []
    for a in addrs:
        s = socket.socket(fam(a), socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, int(port)))
        s.listen(64)
        socks.append(s)
    print("READY", flush=True)
    while True:
        r, _, _ = select.select(socks, [], [])
        for s in r:
            c, peer = s.accept()
            print(f"CONN {peer[0]} {peer[1]}", flush=True)
            threading.Thread(target=serve_echo, args=(c,), daemon=True).start()


def tcpclient(host, port, nbytes, seed, bindaddr="", bindport="0"):
    s = socket.socket(fam(host), socket.SOCK_STREAM)
    s.settimeout(30)
    if bindaddr or int(bindport):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((bindaddr, int(bindport)))
    data = random.Random(int(seed)).randbytes(int(nbytes))
    t0 = time.time()
    try:
        s.connect((host, int(port)))
    except OSError as e:
        return {"ok": False, "error": f"connect: {e}"}
    local = s.getsockname()
    err = []

    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(f"send: {e}")

    th = threading.Thread(target=send)
    th.start()
    chunks = []
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    except OSError as e:
        err.append(f"recv: {e}")
    th.join()
    s.close()
    got = b"".join(chunks)
    echoed, trailer = got[: len(data)], got[len(data):]
    return {"ok": not err, "error": "; ".join(err), "local": [local[0], local[1]], "sentSha256": sha(data),
            "echoSha256": sha(echoed), "echoLen": len(echoed), "trailer": trailer.decode(errors="replace"),
            "seconds": round(time.time() - t0, 3)}


def udpserver(port, *addrs):
    socks = []
    for a in addrs:
        s = socket.socket(fam(a), socket.SOCK_DGRAM)
        s.bind((a, int(port)))
        socks.append(s)
    print("READY", flush=True)
    while True:
        r, _, _ = select.select(socks, [], [])
        for s in r:
            data, peer = s.recvfrom(65535)
            print(f"UDP {peer[0]} {peer[1]} {data[:40]!r}", flush=True)
            s.sendto(f"{peer[0]} {peer[1]}|".encode() + data, peer)


def udpclients(host, port, bindaddr, *bindports):
    dst = (host, int(port))
    socks = []
    for bp in bindports:
        s = socket.socket(fam(host), socket.SOCK_DGRAM)
        s.bind((bindaddr, int(bp)))
        socks.append(s)
    want = {(i, k) for i in range(len(socks)) for k in range(3)}
    replies = [[] for _ in socks]
    got = set()
    for attempt in range(4):
        for i, k in sorted(want - got):
            socks[i].sendto(f"sender{i}-msg{k}".encode(), dst)
        deadline = time.time() + 1.5
        while got != want and time.time() < deadline:
            r, _, _ = select.select(socks, [], [], max(0.0, deadline - time.time()))
            for s in r:
                i = socks.index(s)
                data, src = s.recvfrom(65535)
                text = data.decode(errors="replace")
                replies[i].append({"text": text, "from": f"{src[0]}:{src[1]}"})
                seen, _, payload = text.partition("|")
                if payload.startswith(f"sender{i}-msg"):
                    got.add((i, int(payload.rsplit("msg", 1)[1])))
        if got == want:
            break
    return {"ok": got == want, "replies": replies, "attempts": attempt + 1}


def ee_name(code):
    return errno.errorcode.get(code, str(code))


def udperr(host, port, wait="1.5"):
    f = fam(host)
    s = socket.socket(f, socket.SOCK_DGRAM)
    if f == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR
    else:
        s.setsockopt(socket.IPPROTO_IPV6, 25, 1)  # IPV6_RECVERR
    s.connect((host, int(port)))
    t0 = time.time()
    res = {"result": "timeout"}
    for attempt in range(3):
        s.send(b"wgsifw-probe")
        r, _, _ = select.select([s], [], [], float(wait))
        if not r:
            continue
        try:
            data = s.recv(65535)
            res = {"result": "reply", "reply": data.decode(errors="replace")}
        except OSError as e:
            res = {"result": "error", "errno": ee_name(e.errno), "strerror": e.strerror}
            try:
                _, anc, _, _ = s.recvmsg(512, 512, socket.MSG_ERRQUEUE)
                for level, typ, d in anc:
                    ee_errno, origin, ee_type, ee_code, _pad, _info, _data = struct.unpack("=IBBBBII", d[:16])
                    off = d[16:]
                    if len(off) >= 8 and struct.unpack("=H", off[:2])[0] == socket.AF_INET:
                        offender = socket.inet_ntop(socket.AF_INET, off[4:8])
                    elif len(off) >= 24:
                        offender = socket.inet_ntop(socket.AF_INET6, off[8:24])
                    else:
                        offender = None
                    res.update({"eeErrno": ee_name(ee_errno), "origin": origin, "icmpType": ee_type,
                                "icmpCode": ee_code, "offender": offender})
            except OSError as e2:
                res["errqueue"] = str(e2)
        break
    res["ms"] = round((time.time() - t0) * 1000)
    res["attempts"] = attempt + 1
    return res


def tcperr(host, port, timeout):
    s = socket.socket(fam(host), socket.SOCK_STREAM)
    s.settimeout(float(timeout))
    t0 = time.time()
    try:
        s.connect((host, int(port)))
        res = {"result": "ok"}
    except socket.timeout:
        res = {"result": "timeout"}
    except OSError as e:
        res = {"result": ee_name(e.errno), "strerror": e.strerror}
    s.close()
    res["ms"] = round((time.time() - t0) * 1000)
    return res


def banner(addr, port, text):
    s = socket.socket(fam(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.listen(16)
    print("READY", flush=True)
    while True:
        c, peer = s.accept()
        print(f"CONN {peer[0]} {peer[1]}", flush=True)
        try:
            c.sendall(text.encode() + b"\n")
        except OSError:
            pass
        c.close()


def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return (~t) & 0xFFFF


def tcp_packet(src, dst, sport, dport, seq, ack, flags, payload=b""):
    v6 = ":" in dst
    opts = struct.pack("!BBH", 2, 4, 1360) if flags & 0x02 else b""
    off = (20 + len(opts)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + opts
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    sb, db = socket.inet_pton(fam, src), socket.inet_pton(fam, dst)
    if v6:
        pseudo = sb + db + struct.pack("!I3xB", len(hdr) + len(payload), 6)
    else:
        pseudo = sb + db + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload)
    tcp = hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload
    if v6:
        return struct.pack("!IHBB", 0x60000000, len(tcp), 6, 64) + sb + db + tcp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randrange(65536), 0x4000, 64, 6, 0, sb, db)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp


def rawtcp(ifname, src, dst, dport):
    """A hand-made TCP handshake on the tunnel interface (IPv4, or IPv6 when dst has a colon: e.g.
    ::ffff:a.b.c.d, which no socket of the peer's kernel would send as IPv6)."""
    dport = int(dport)
    v6 = ":" in dst
    proto = 0x86DD if v6 else 0x0800
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    sb, db = socket.inet_pton(fam, src), socket.inet_pton(fam, dst)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(proto))
    s.bind((ifname, proto))
    sport = random.randrange(20000, 60000)
    iss = random.randrange(1 << 32)
    syn = tcp_packet(src, dst, sport, dport, iss, 0, 0x02)
    res = {"result": "none", "sport": sport}
    t0 = time.time()
    deadline = t0 + 4
    last_syn = 0
    state = "syn"
    data = b""
    while time.time() < deadline:
        if state == "syn" and time.time() - last_syn > 1:
            s.sendto(syn, (ifname, proto))
            last_syn = time.time()
        r, _, _ = select.select([s], [], [], 0.2)
        if not r:
            continue
        pkt, addr = s.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING or len(pkt) < 40:
            continue
        if v6:
            if len(pkt) < 60 or pkt[6] != 6 or pkt[8:24] != db or pkt[24:40] != sb:
                continue
            ihl = 40
        else:
            if pkt[9] != 6 or pkt[12:16] != db or pkt[16:20] != sb:
                continue
            ihl = (pkt[0] & 15) * 4
        psport, pdport, pseq, pack, poff, pflags = struct.unpack("!HHIIBB", pkt[ihl:ihl + 14])
        if psport != dport or pdport != sport:
            continue
        payload = pkt[ihl + (poff >> 4) * 4:]
        if pflags & 0x04:
            if state == "syn":
                res["result"] = "rst"
                res["rstAck"] = pack == (iss + 1) & 0xFFFFFFFF
                break
            res["rstAfterData"] = True
            break
        if state == "syn" and pflags & 0x12 == 0x12:
            res["result"] = "synack"
            res["ackOk"] = pack == (iss + 1) & 0xFFFFFFFF
            rcv = (pseq + 1) & 0xFFFFFFFF
            s.sendto(tcp_packet(src, dst, sport, dport, iss + 1, rcv, 0x10), (ifname, proto))
            state = "est"
            continue
        if state == "est":
            if payload:
                data += payload
                rcv = (pseq + len(payload)) & 0xFFFFFFFF
                s.sendto(tcp_packet(src, dst, sport, dport, iss + 1, rcv, 0x10), (ifname, proto))
            if pflags & 0x01 or b"\n" in data:
                break
    if state == "est":
        # Done: reset our side so the gateway forgets the flow at once.
        s.sendto(tcp_packet(src, dst, sport, dport, iss + 1, 0, 0x04), (ifname, proto))
    res["data"] = data.decode(errors="replace")
    res["ms"] = round((time.time() - t0) * 1000)
    return res


def main():
    cmd = sys.argv[1]
    fns = {"tcpserver": tcpserver, "tcpclient": tcpclient, "udpserver": udpserver, "udpclients": udpclients,
           "udperr": udperr, "tcperr": tcperr, "banner": banner, "rawtcp": rawtcp}
    out = fns[cmd](*sys.argv[2:])
    if out is not None:
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
