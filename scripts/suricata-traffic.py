#!/usr/bin/env python3
"""Writes a pcap of small, complete conversations, for running Suricata over Rampart's rules.

Usage:
  suricata-traffic.py pcap SPEC.json OUT.pcap   # conversations described by SPEC (below)
  suricata-traffic.py cert OUT.der              # a fresh self-signed certificate; prints its SHA-1

SPEC is a JSON list; each item is one conversation from its own client address:
  {"kind": "dns",  "src": C, "dst": S, "name": "a.example"}
  {"kind": "http", "src": C, "dst": S, "port": 80, "host": "a.example", "target": "/x?y"}
  {"kind": "tls",  "src": C, "dst": S, "port": 443, "sni": "a.example" | null, "cert": "x.der"}
  {"kind": "tcp" | "udp", "src": C, "dst": S, "port": 4444}

TCP conversations are whole (handshake, data acknowledged by the peer, FIN exchange), because
Suricata parses application data only from reassembled, acknowledged streams. The TLS client
hello is fixed so that its JA3 is known by hand: version 771, ciphers 49199-47, extensions
0 (only with an SNI), 10, 11, groups 23-24, point formats 0.

Run by the intel crate's Suricata tests (crates/rampart-intel/tests/intel/suricata.rs).
"""
import hashlib
import json
import struct
import subprocess
import sys

from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Ether, IPv6, Raw, wrpcap


class Clock:
    """Packet times, a millisecond apart, so Suricata sees them in order."""

    def __init__(self):
        self.t = 1_767_225_600.0

    def stamp(self, pkt):
        self.t += 0.001
        pkt.time = self.t
        return pkt


def ip(src, dst):
    """Ethernet framing for every packet (one link type for IPv4 and IPv6 alike), with fixed
    addresses so that scapy never looks one up on the network."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / (IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst))


def tcp_conversation(clock, src, dst, sport, dport, exchanges):
    """A whole TCP conversation; `exchanges` is a list of ("c" | "s", bytes)."""
    c, s = ip(src, dst), ip(dst, src)
    cseq, sseq = 1000, 5000
    out = [clock.stamp(c / TCP(sport=sport, dport=dport, flags="S", seq=cseq))]
    cseq += 1
    out.append(clock.stamp(s / TCP(sport=dport, dport=sport, flags="SA", seq=sseq, ack=cseq)))
    sseq += 1
    out.append(clock.stamp(c / TCP(sport=sport, dport=dport, flags="A", seq=cseq, ack=sseq)))
    for who, data in exchanges:
        if who == "c":
            out.append(clock.stamp(c / TCP(sport=sport, dport=dport, flags="PA", seq=cseq, ack=sseq) / Raw(data)))
            cseq += len(data)
            out.append(clock.stamp(s / TCP(sport=dport, dport=sport, flags="A", seq=sseq, ack=cseq)))
        else:
            out.append(clock.stamp(s / TCP(sport=dport, dport=sport, flags="PA", seq=sseq, ack=cseq) / Raw(data)))
            sseq += len(data)
            out.append(clock.stamp(c / TCP(sport=sport, dport=dport, flags="A", seq=cseq, ack=sseq)))
    out.append(clock.stamp(c / TCP(sport=sport, dport=dport, flags="FA", seq=cseq, ack=sseq)))
    cseq += 1
    out.append(clock.stamp(s / TCP(sport=dport, dport=sport, flags="FA", seq=sseq, ack=cseq)))
    sseq += 1
    out.append(clock.stamp(c / TCP(sport=sport, dport=dport, flags="A", seq=cseq, ack=sseq)))
    return out


def u16(n):
    return struct.pack("!H", n)


def u24(n):
    return struct.pack("!I", n)[1:]


def handshake(kind, body):
    return bytes([kind]) + u24(len(body)) + body


def record(body, version=0x0303):
    return b"\x16" + u16(version) + u16(len(body)) + body


def extension(kind, body):
    return u16(kind) + u16(len(body)) + body


def client_hello(sni):
    exts = b""
    if sni:
        name = sni.encode()
        entry = b"\x00" + u16(len(name)) + name
        exts += extension(0, u16(len(entry)) + entry)
    exts += extension(10, u16(4) + u16(23) + u16(24))
    exts += extension(11, b"\x01\x00")
    body = u16(0x0303) + bytes(range(32)) + b"\x00" + u16(4) + u16(0xC02F) + u16(0x002F)
    body += b"\x01\x00" + u16(len(exts)) + exts
    return record(handshake(1, body), version=0x0301)


def server_flight(cert_der):
    hello = u16(0x0303) + bytes(range(32, 64)) + b"\x00" + u16(0xC02F) + b"\x00"
    certs = u24(len(cert_der)) + cert_der
    return record(handshake(2, hello) + handshake(11, u24(len(certs)) + certs) + handshake(14, b""))


def conversation(clock, i, spec):
    kind, src, dst = spec["kind"], spec["src"], spec["dst"]
    sport = 40000 + i
    if kind == "dns":
        q = DNS(id=i + 1, rd=1, qd=DNSQR(qname=spec["name"]))
        a = DNS(id=i + 1, qr=1, rd=1, ra=1, qd=DNSQR(qname=spec["name"]),
                an=DNSRR(rrname=spec["name"], ttl=60, rdata="192.0.2.1"))
        return [
            clock.stamp(ip(src, dst) / UDP(sport=sport, dport=53) / q),
            clock.stamp(ip(dst, src) / UDP(sport=53, dport=sport) / a),
        ]
    if kind == "http":
        request = (f"GET {spec['target']} HTTP/1.1\r\nHost: {spec['host']}\r\n"
                   "User-Agent: rampart-test\r\nAccept: */*\r\n\r\n").encode()
        response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
        return tcp_conversation(clock, src, dst, sport, spec["port"], [("c", request), ("s", response)])
    if kind == "tls":
        with open(spec["cert"], "rb") as f:
            der = f.read()
        return tcp_conversation(clock, src, dst, sport, spec["port"],
                                [("c", client_hello(spec.get("sni"))), ("s", server_flight(der))])
    if kind == "tcp":
        return tcp_conversation(clock, src, dst, sport, spec["port"], [("c", b"hello\n"), ("s", b"hi\n")])
    if kind == "udp":
        return [clock.stamp(ip(src, dst) / UDP(sport=sport, dport=spec["port"]) / Raw(b"hello"))]
    raise SystemExit(f"conversation {i}: unknown kind {kind!r}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "cert":
        out = sys.argv[2]
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", "/dev/null", "-subj", "/CN=rampart-test", "-days", "1",
             "-outform", "DER", "-out", out],
            check=True, capture_output=True)
        with open(out, "rb") as f:
            print(hashlib.sha1(f.read()).hexdigest())
        return
    if len(sys.argv) != 4 or sys.argv[1] != "pcap":
        raise SystemExit(__doc__)
    with open(sys.argv[2]) as f:
        specs = json.load(f)
    clock = Clock()
    packets = []
    for i, spec in enumerate(specs):
        packets.extend(conversation(clock, i, spec))
    wrpcap(sys.argv[3], packets)


if __name__ == "__main__":
    main()
