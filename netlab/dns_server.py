"""netlab's DNS server: the cluster DNS (in kube-system/coredns) or the `internet` host's
resolver. dnslib does the wire format; this module is the Kubernetes logic and a small
non-blocking UDP+TCP loop with an answer cache, so one Python process serves thousands of
queries a second.

    python -m netlab.dns_server --zone ZONE.json [--upstream IP] [--ipv6]   # cluster DNS
    python -m netlab.dns_server --static NAME=IP ...                         # an upstream resolver

Cluster mode answers names in the cluster domain and the reverse zones of the Service and
pod networks from the zone file (rendered by netlab.features.dns, reloaded when it
changes), forwards other names to --upstream (SERVFAIL if it does not answer within a
second) or, without one, answers REFUSED at once. With --ipv6 (dual-stack labs) it listens
on IPv6 as well (`::`, IPV6_V6ONLY, beside the IPv4 sockets), so the kube-dns Service's
IPv6 ClusterIP answers; AAAA records and ip6.arpa PTRs come from the zone either way.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import selectors
import socket
import struct
import sys
import threading
import time

from dnslib import AAAA, CNAME, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSRecord

from netlab.responder import IP_PKTINFO, reply_udp  # answer from the queried address

IPV6_RECVPKTINFO = 49  # linux/in6.h (the socket module does not always have it)

TTL = 5


class Zone:
    def __init__(self, data: dict) -> None:
        self.domain = data["domain"]
        self.version = data["version"]
        self.a: dict[str, list[str]] = data["a"]
        self.aaaa: dict[str, list[str]] = data.get("aaaa", {})  # dual-stack labs only
        self.srv: dict[str, list[list]] = data["srv"]
        self.cname: dict[str, str] = data["cname"]
        self.ptr: dict[str, str] = data["ptr"]
        self.names = set(data["names"])
        self.pods: dict[str, str] = data.get("pods", {})
        self.reverse_zones: list[str] = data.get("reverse_zones", [])

    def authoritative(self, name: str) -> bool:
        return name == self.domain or name.endswith("." + self.domain) or any(
            name == z or name.endswith("." + z) for z in self.reverse_zones)

    def soa(self, name: str) -> RR:
        apex = self.domain if (name == self.domain or name.endswith("." + self.domain)) \
            else next(z for z in self.reverse_zones if name == z or name.endswith("." + z))
        return RR(apex, QTYPE.SOA, ttl=TTL, rdata=SOA(
            f"ns.dns.{self.domain}", f"hostmaster.{self.domain}",
            (int(time.time()), 7200, 1800, 86400, TTL)))

    def answer(self, request: DNSRecord) -> DNSRecord:
        reply = request.reply()
        reply.header.aa = 1
        name = str(request.q.qname).rstrip(".").lower()
        qtype = request.q.qtype
        found = self._lookup(name, qtype, reply)
        if not found:
            exists = name in self.names or name in self.a or name in self.aaaa \
                or name in self.ptr \
                or self._pod_ip(name) is not None or name == f"dns-version.{self.domain}"
            if not exists:
                reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self.soa(name))
        return reply

    def _pod_ip(self, name: str) -> str | None:
        """a-b-c-d.<namespace>.pod.<domain>, or an IPv6 address with '-' for ':'
        (fd00-10-244--2), as CoreDNS `pods insecure` reads it: any address, an A record
        for IPv4, AAAA for IPv6."""
        suffix = f".pod.{self.domain}"
        if not name.endswith(suffix):
            return None
        parts = name[: -len(suffix)].split(".")
        if len(parts) != 2:
            return None
        host = parts[0]
        try:
            if host.count("-") == 3 and "--" not in host:
                return str(ipaddress.IPv4Address(host.replace("-", ".")))
            return str(ipaddress.IPv6Address(host.replace("-", ":")))
        except ValueError:
            return None

    def addresses(self, name: str, qtype: int) -> list[str]:
        """The A (IPv4) or AAAA (IPv6) addresses of a name."""
        table = self.aaaa if qtype == QTYPE.AAAA else self.a
        if name in table:
            return table[name]
        ip = self._pod_ip(name)
        return [ip] if ip and ((":" in ip) == (qtype == QTYPE.AAAA)) else []

    def _lookup(self, name: str, qtype: int, reply: DNSRecord) -> bool:
        if name in self.cname and qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.CNAME, QTYPE.ANY):
            reply.add_answer(RR(name, QTYPE.CNAME, ttl=TTL, rdata=CNAME(self.cname[name])))
            return True
        found = False
        for rtype, rdata in ((QTYPE.A, A), (QTYPE.AAAA, AAAA)):
            if qtype in (rtype, QTYPE.ANY):
                for ip in self.addresses(name, rtype):
                    reply.add_answer(RR(name, rtype, ttl=TTL, rdata=rdata(ip)))
                    found = True
        if found:
            return True
        if qtype in (QTYPE.SRV, QTYPE.ANY) and name in self.srv:
            for prio, weight, port, target in self.srv[name]:
                reply.add_answer(RR(name, QTYPE.SRV, ttl=TTL,
                                    rdata=SRV(prio, weight, port, target)))
                for ip in self.a.get(target, []):
                    reply.add_ar(RR(target, QTYPE.A, ttl=TTL, rdata=A(ip)))
                for ip in self.aaaa.get(target, []):
                    reply.add_ar(RR(target, QTYPE.AAAA, ttl=TTL, rdata=AAAA(ip)))
            return True
        if qtype in (QTYPE.PTR, QTYPE.ANY) and name in self.ptr:
            reply.add_answer(RR(name, QTYPE.PTR, ttl=TTL, rdata=PTR(self.ptr[name])))
            return True
        if qtype in (QTYPE.TXT, QTYPE.ANY) and name == f"dns-version.{self.domain}":
            reply.add_answer(RR(name, QTYPE.TXT, ttl=TTL, rdata=TXT(self.version)))
            return True
        return False


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.zone: Zone | None = None
        self.zone_stamp: tuple | None = None
        self.static: dict[str, list[str]] = {}  # NAME=IP, given once per address
        for item in args.static or []:
            name, _, ip = item.partition("=")
            self.static.setdefault(name.lower().rstrip("."), []).append(ip)
        self.cache: dict[bytes, bytes] = {}
        self.sel = selectors.DefaultSelector()
        self.tcp_buffers: dict[socket.socket, bytes] = {}
        self.lock = threading.Lock()
        self.checked = 0.0

    # --- answers -------------------------------------------------------------------------

    def reload(self) -> None:
        now = time.monotonic()
        if not self.args.zone or now - self.checked < 0.1:
            return
        self.checked = now
        try:
            st = os.stat(self.args.zone)
        except FileNotFoundError:
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self.zone_stamp:
            with open(self.args.zone) as f:
                self.zone = Zone(json.load(f))
            self.zone_stamp = stamp
            self.cache.clear()

    def respond(self, data: bytes, transport: str, reply_to) -> None:
        """Answer one query; `reply_to(bytes)` sends it (maybe later, for forwarded ones)."""
        key = transport.encode() + data[2:].lower()
        cached = self.cache.get(key)
        if cached is not None:
            reply_to(data[:2] + cached)
            return
        try:
            request = DNSRecord.parse(data)
        except Exception:
            if len(data) >= 12:
                reply_to(data[:2] + b"\x81\x01" + b"\x00" * 8)
            return
        name = str(request.q.qname).rstrip(".").lower()
        if self.zone is not None and self.zone.authoritative(name):
            reply = self.zone.answer(request)
        elif name in self.static:
            reply = request.reply()
            reply.header.aa = 1
            for ip in self.static[name]:
                rtype, rdata = (QTYPE.AAAA, AAAA) if ":" in ip else (QTYPE.A, A)
                if request.q.qtype in (rtype, QTYPE.ANY):
                    reply.add_answer(RR(name, rtype, ttl=60, rdata=rdata(ip)))
        elif self.static:
            reply = request.reply()
            reply.header.rcode = RCODE.NXDOMAIN
        elif self.args.upstream:
            threading.Thread(target=self.forward, args=(data, reply_to), daemon=True).start()
            return
        else:
            reply = request.reply()
            reply.header.rcode = RCODE.REFUSED
        packed = reply.pack()
        if transport == "udp":
            # 512 bytes, or what the client's EDNS0 OPT record offers (its class field)
            limit = max([512] + [rr.rclass for rr in request.ar if rr.rtype == QTYPE.OPT])
            if len(packed) > limit:
                # header and question, TC set: the client asks again over TCP
                # (dnslib's truncate() drops the question, which glibc refuses)
                short = request.reply()
                short.header.aa = reply.header.aa
                short.header.rcode = reply.header.rcode
                short.header.tc = 1
                packed = short.pack()
        self.cache[key] = packed[2:]
        reply_to(packed)

    def forward(self, data: bytes, reply_to) -> None:
        s = socket.socket(socket.AF_INET6 if ":" in self.args.upstream else socket.AF_INET,
                          socket.SOCK_DGRAM)
        s.settimeout(1.0)
        try:
            s.sendto(data, (self.args.upstream, 53))
            answer, _ = s.recvfrom(65535)
        except OSError:
            reply = DNSRecord.parse(data).reply()
            reply.header.rcode = RCODE.SERVFAIL
            answer = reply.pack()
        finally:
            s.close()
        with self.lock:
            reply_to(answer)

    # --- the loop ----------------------------------------------------------------------------

    def listen(self) -> list[socket.socket]:
        """UDP and TCP sockets on the port: IPv4, and with --ipv6 IPv6 (`::`, V6ONLY, so
        IPv4 clients stay on the IPv4 sockets); UDP ones report the address asked (pktinfo)
        so that answers leave from it."""
        socks = []
        for family, any_ in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            if family == socket.AF_INET6 and not self.args.ipv6:
                continue
            udp = socket.socket(family, socket.SOCK_DGRAM)
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                for s in (udp, tcp):
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                udp.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            else:
                udp.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            udp.bind((any_, self.args.port))
            tcp.bind((any_, self.args.port))
            tcp.listen(128)
            for s in (udp, tcp):
                s.setblocking(False)
            self.sel.register(udp, selectors.EVENT_READ, "udp")
            self.sel.register(tcp, selectors.EVENT_READ, "accept")
            socks += [udp, tcp]
        return socks

    def run(self) -> None:
        self.listen()
        both = " (IPv4, IPv6)" if self.args.ipv6 else ""
        print(f"listening on udp/{self.args.port}{both}", flush=True)
        print(f"listening on tcp/{self.args.port}{both}", flush=True)
        while True:
            self.reload()
            for key, _ in self.sel.select(timeout=0.1):
                sock = key.fileobj
                if key.data == "udp":
                    for _ in range(64):  # drain a burst before looking elsewhere
                        try:
                            data, anc, _, addr = sock.recvmsg(65535, socket.CMSG_SPACE(20))
                        except BlockingIOError:
                            break
                        self.respond(data, "udp", lambda out, a=addr, s=sock, c=anc:
                                     reply_udp(s, out, a, c))
                elif key.data == "accept":
                    try:
                        conn, _ = sock.accept()
                    except OSError:
                        continue
                    conn.setblocking(False)
                    self.tcp_buffers[conn] = b""
                    self.sel.register(conn, selectors.EVENT_READ, "tcp")
                else:
                    self.read_tcp(sock)

    def read_tcp(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(65535)
        except OSError:
            chunk = b""
        if not chunk:
            self.sel.unregister(conn)
            self.tcp_buffers.pop(conn, None)
            conn.close()
            return
        buf = self.tcp_buffers[conn] + chunk
        while len(buf) >= 2:
            (length,) = struct.unpack("!H", buf[:2])
            if len(buf) < 2 + length:
                break
            message, buf = buf[2: 2 + length], buf[2 + length:]

            def send(out: bytes, c: socket.socket = conn) -> None:
                c.setblocking(True)
                try:
                    c.sendall(struct.pack("!H", len(out)) + out)
                except OSError:
                    pass
                finally:
                    c.setblocking(False)
            self.respond(message, "tcp", send)
        self.tcp_buffers[conn] = buf


def main() -> None:
    p = argparse.ArgumentParser(description="netlab's DNS server")
    p.add_argument("--zone", help="zone file (JSON) rendered by netlab")
    p.add_argument("--upstream", help="resolver for names outside the cluster")
    p.add_argument("--static", nargs="*", help="NAME=IP records (upstream mode)")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--ipv6", action="store_true",
                   help="listen on IPv6 too (a dual-stack lab's cluster DNS)")
    args = p.parse_args()
    try:
        Server(args).run()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
