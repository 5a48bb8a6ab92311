"""Asking the cluster DNS from inside a pod, the way the pod's resolver would: its
/etc/resolv.conf (nameserver, search list, ndots), UDP first, TCP when the answer is
truncated. dnslib builds and reads the messages; the socket lives in the pod's network
namespace. The server may be an IPv6 address (a dual-stack lab's kube-dns IPv6 ClusterIP);
AAAA is asked like any other type."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord

from netlab.kernel.sockets import inside


@dataclass(frozen=True)
class DnsRecord:
    name: str
    type: str
    ttl: int
    data: str


@dataclass(frozen=True)
class DnsAnswer:
    query: str  # the name that got this answer (after the search list)
    type: str
    server: str
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED, or TIMEOUT
    answers: tuple[DnsRecord, ...] = ()
    additional: tuple[DnsRecord, ...] = ()
    tried: tuple[str, ...] = ()
    tcp: bool = False  # the UDP answer was truncated and TCP was used
    seconds: float = 0.0
    authority: tuple[DnsRecord, ...] = field(default=())

    @property
    def addresses(self) -> list[str]:
        """The addresses answered: A records, and AAAA ones (an AAAA query)."""
        return [r.data for r in self.answers if r.type in ("A", "AAAA")]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], int]:
    servers, search, ndots = [], [], 1
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            servers.append(words[1])
        elif words[0] == "search":
            search = words[1:]
        elif words[0] == "options":
            for o in words[1:]:
                if o.startswith("ndots:"):
                    ndots = int(o.split(":", 1)[1])
    return servers, search, ndots


def candidates(name: str, search: list[str], ndots: int) -> list[str]:
    """The names glibc tries, in order."""
    if name.endswith("."):
        return [name]
    searched = [f"{name}.{s}." for s in search]
    return [f"{name}.", *searched] if name.count(".") >= ndots else [*searched, f"{name}."]


def _records(rrs) -> tuple[DnsRecord, ...]:
    return tuple(DnsRecord(str(r.rname).rstrip("."), QTYPE.get(r.rtype, str(r.rtype)), r.ttl,
                           str(r.rdata).rstrip(".")) for r in rrs)


def _exchange(netns: Path, server: str, query: bytes, timeout: float, tcp: bool) -> bytes:
    with inside(netns) as open_socket:
        s = open_socket(socket.AF_INET6 if ":" in server else socket.AF_INET,
                        socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((server, 53))
        if tcp:
            s.sendall(struct.pack("!H", len(query)) + query)
            head = s.recv(2, socket.MSG_WAITALL)
            (length,) = struct.unpack("!H", head)
            return s.recv(length, socket.MSG_WAITALL)
        s.send(query)
        return s.recv(65535)
    finally:
        s.close()


def lookup(netns: Path, resolv_conf: str, name: str, qtype: str = "A",
           timeout: float = 2.0, server: str | None = None) -> DnsAnswer:
    """`server`: ask this address instead of resolv.conf's first nameserver (dig @server)."""
    servers, search, ndots = parse_resolv_conf(resolv_conf)
    server = server or (servers[0] if servers else "127.0.0.1")
    t0 = time.monotonic()
    tried: list[str] = []
    last: DnsAnswer | None = None
    for cand in candidates(name, search, ndots):
        tried.append(cand.rstrip("."))
        request = DNSRecord.question(cand, qtype)
        used_tcp = False
        try:
            data = _exchange(netns, server, request.pack(), timeout, tcp=False)
            reply = DNSRecord.parse(data)
            if reply.header.tc:
                used_tcp = True
                reply = DNSRecord.parse(_exchange(netns, server, request.pack(), timeout, True))
        except (TimeoutError, OSError) as e:
            return DnsAnswer(cand.rstrip("."), qtype, server, "TIMEOUT" if isinstance(
                e, TimeoutError) else f"ERROR ({e.strerror or e})", tried=tuple(tried),
                seconds=round(time.monotonic() - t0, 4))
        rcode = RCODE.get(reply.header.rcode, str(reply.header.rcode))
        last = DnsAnswer(cand.rstrip("."), qtype, server, rcode, _records(reply.rr),
                         _records(reply.ar), tuple(tried), used_tcp,
                         round(time.monotonic() - t0, 4), _records(reply.auth))
        if rcode != "NXDOMAIN" and (reply.rr or rcode != "NOERROR"):
            break
    assert last is not None
    return DnsAnswer(**{**asdict(last), "answers": last.answers, "additional": last.additional,
                        "authority": last.authority, "tried": tuple(tried)})
