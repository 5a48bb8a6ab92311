"""Batched rtnetlink: kernel intents -> netlink messages, sent many per system call.

pyroute2's message classes do the wire format; the socket is a plain AF_NETLINK
socket opened inside the target namespace, so no helper process, no event loop and
no per-call round trip: a namespace's whole configuration is one `send` and one
receive (the kernel processes every message of a batch, answers each one that fails
and acks the last, so errors are matched back to the intent that caused them).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.errors import KernelError
from netlab.intents import Address, Fdb, Intent, Link, Neighbour, Route

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 1, 4, 0x200, 0x400, 0x800
NLMSG_ERROR = 2
IFF_UP = 1
AF_BRIDGE = 7
NUD_PERMANENT = 0x80
NTF_SELF = 2
RTNH_F_ONLINK = 4
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
IFA_F_NODAD = 0x02
BATCH_BYTES = 256 * 1024

_Subject = tuple[Intent, int | None]  # an intent and the peer namespace's fd, if any


RTM_GETROUTE, NLMSG_DONE, NLM_F_DUMP = 26, 3, 0x300
MAIN_TABLE = 254
_DUMP_SEQ = 0x6E6C  # a dump's answers are told from send_batch's by it


def route_destinations(sock: socket.socket, table: int = MAIN_TABLE) -> set[str]:
    """The destinations ("10.244.1.0/24", both families) of a routing table, from one dump
    over `sock`, a route netlink socket of the namespace (the socket already open, where a
    pyroute2 IPRoute costs ~10 ms to build each time `up` polls for BGP's routes)."""
    req = rtmsg()
    req["family"] = socket.AF_UNSPEC
    req["header"]["type"] = RTM_GETROUTE
    req["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
    req["header"]["sequence_number"] = _DUMP_SEQ
    req.encode()
    sock.sendall(req.data)
    found: set[str] = set()
    received = bytearray(1 << 16)
    while True:
        n = sock.recv_into(received)
        buf = bytes(received[:n])
        for off, length, mtype, seq in _answers(buf):
            if seq != _DUMP_SEQ:
                continue
            if mtype == NLMSG_DONE:
                return found
            if mtype == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", buf, off + 16)
                raise KernelError(f"route dump: {os.strerror(-code)}")
            if mtype == RTM_NEWROUTE:
                m = rtmsg(buf[off:off + length])
                m.decode()
                dst = m.get_attr("RTA_DST")
                if dst and (m.get_attr("RTA_TABLE") or m["table"]) == table:
                    found.add(f"{dst}/{m['dst_len']}")


def _answers(buf: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(offset, length, type, sequence number) of each netlink message in one datagram."""
    off = 0
    while off + 16 <= len(buf):
        length, mtype, _flags, seq, _pid = struct.unpack_from("=IHHII", buf, off)
        if length < 16:  # malformed: nothing after it can be read
            return
        yield off, length, mtype, seq
        off += (length + 3) & ~3


def open_socket() -> socket.socket:
    """A route netlink socket in the calling thread's current network namespace."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)  # acks without a copy of the request
    s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # error strings from the kernel
    s.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE: room for many acks
    s.bind((0, 0))
    return s


def _link(intent: Link, peer_fd: int | None) -> tuple[ifinfmsg, int]:
    msg = ifinfmsg()
    msg["index"] = intent.index
    msg["flags"] = IFF_UP if intent.up else 0
    msg["change"] = IFF_UP if intent.up else 0
    attrs: list = []
    if intent.kind:
        attrs.append(("IFLA_IFNAME", intent.name))
    if intent.mtu:
        attrs.append(("IFLA_MTU", intent.mtu))
    if intent.mac:
        attrs.append(("IFLA_ADDRESS", intent.mac))
    if intent.master:
        attrs.append(("IFLA_MASTER", intent.master))
    if intent.kind:
        info: list = [("IFLA_INFO_KIND", intent.kind)]
        if intent.peer is not None:
            peer = {"index": intent.peer.index,
                    "attrs": [("IFLA_IFNAME", intent.peer.name), ("IFLA_NET_NS_FD", peer_fd)]
                    + ([("IFLA_MTU", intent.mtu)] if intent.mtu else [])
                    + ([("IFLA_ADDRESS", intent.peer.mac)] if intent.peer.mac else [])}
            info.append(("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]}))
        if intent.vxlan is not None:
            v = intent.vxlan
            local = "IFLA_VXLAN_LOCAL6" if _v6(v.local) else "IFLA_VXLAN_LOCAL"
            info.append(("IFLA_INFO_DATA", {"attrs": [
                ("IFLA_VXLAN_ID", v.vni), (local, v.local),
                ("IFLA_VXLAN_PORT", v.port), ("IFLA_VXLAN_LINK", v.underlay_index),
                ("IFLA_VXLAN_LEARNING", int(v.learning))]}))
        attrs.append(("IFLA_LINKINFO", {"attrs": info}))
    msg["attrs"] = attrs
    flags = NLM_F_CREATE | NLM_F_EXCL if intent.kind else 0
    return msg, flags


def _hairpin(intent: Link) -> tuple[ifinfmsg, int]:
    """`ip link set X type bridge_slave hairpin on`: a pod can reach itself through its
    own Service (the bridge sends the DNATed packet back out of the port it came in)."""
    msg = ifinfmsg()
    msg["index"] = intent.index
    msg["attrs"] = [("IFLA_LINKINFO", {"attrs": [
        ("IFLA_INFO_SLAVE_KIND", "bridge"),
        ("IFLA_INFO_SLAVE_DATA", {"attrs": [("IFLA_BRPORT_MODE", 1)]})]})]
    return msg, 0


def _v6(address: str) -> bool:
    return ":" in address


def _address(intent: Address) -> tuple[ifaddrmsg, int]:
    ip, prefix = intent.cidr.split("/")
    msg = ifaddrmsg()
    msg["prefixlen"] = int(prefix)
    msg["index"] = intent.index
    if _v6(ip):  # usable at once: no duplicate address detection (ip addr add ... nodad)
        msg["family"], msg["flags"] = socket.AF_INET6, IFA_F_NODAD
        msg["attrs"] = [("IFA_ADDRESS", ip)]
        if intent.deprecated:  # preferred_lft 0, valid forever
            msg["attrs"].append(("IFA_CACHEINFO", {"ifa_preferred": 0,
                                                   "ifa_valid": 0xFFFFFFFF,
                                                   "cstamp": 0, "tstamp": 0}))
    else:
        msg["family"] = socket.AF_INET
        msg["attrs"] = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
    return msg, NLM_F_CREATE | NLM_F_EXCL


def _route(intent: Route) -> tuple[rtmsg, int]:
    msg = rtmsg()
    msg["family"] = socket.AF_INET6 if _v6(intent.dst) else socket.AF_INET
    msg["table"] = RT_TABLE_MAIN
    msg["proto"] = RTPROT_STATIC
    msg["scope"] = RT_SCOPE_UNIVERSE
    msg["type"] = RTN_UNICAST
    attrs: list = [("RTA_OIF", intent.oif)]
    if intent.dst not in ("default", "::/0"):
        dst, plen = intent.dst.split("/")
        msg["dst_len"] = int(plen)
        attrs.append(("RTA_DST", dst))
    if intent.gateway:
        attrs.append(("RTA_GATEWAY", intent.gateway))
    if intent.onlink:
        msg["flags"] = RTNH_F_ONLINK
    msg["attrs"] = attrs
    return msg, NLM_F_CREATE | NLM_F_EXCL


def _neighbour(intent: Neighbour | Fdb) -> tuple[ndmsg, int]:
    msg = ndmsg()
    msg["ifindex"] = intent.index
    msg["state"] = NUD_PERMANENT
    if isinstance(intent, Fdb):
        msg["family"] = AF_BRIDGE
        msg["flags"] = NTF_SELF
        msg["attrs"] = [("NDA_LLADDR", intent.mac), ("NDA_DST", intent.dst)]
        return msg, NLM_F_CREATE | NLM_F_APPEND
    msg["family"] = socket.AF_INET6 if _v6(intent.ip) else socket.AF_INET
    msg["attrs"] = [("NDA_DST", intent.ip), ("NDA_LLADDR", intent.mac)]
    return msg, NLM_F_CREATE | NLM_F_EXCL


def _reference(build: Callable[[Any, int | None], tuple[Any, int]], mtype: int
               ) -> Callable[[_Subject], bytes]:
    """pyroute2's encoding of one message: the source of truth for every byte sent."""
    def encode_one(subject: _Subject) -> bytes:
        msg, flags = build(*subject)
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg.encode()
        return bytes(msg.data)
    return encode_one


def reference_encode(intents: Sequence[Intent], peer_fds: dict[str, int]
                     ) -> list[tuple[bytes, Intent]]:
    """Every message encoded by pyroute2 itself (what `encode` must equal byte for byte)."""
    return [(kind.reference((intent, fd)), intent)
            for intent, fd, kind in _messages(intents, peer_fds)]


# --- templates --------------------------------------------------------------------------------
#
# pyroute2 spends ~0.5 ms building one message (nested nla objects, per-field lookups), and
# `up` sends thousands that differ only in a few values (names, indices, addresses). So each
# message *shape* (which attributes are present, the kind, the byte length of every string)
# is encoded by pyroute2 once per process with two sets of stand-in values; the bytes that
# change with a field are where that field lives. Later messages of that shape are the
# template with their own values written at those offsets. A shape whose offsets are not
# unambiguous, or whose patched template does not equal pyroute2's encoding of the first real
# message of that shape, is never templated: its messages keep going through pyroute2.


class _Field(NamedTuple):
    kind: str  # a key of _PACK: how the value is laid out in the message
    get: Callable[[_Subject], Any]
    set: Callable[[_Subject, Any], _Subject]


def _mac(value: str) -> bytes:
    # the 17-character form only: pyroute2's lladdr encodes other spellings differently
    if len(value) != 17 or "::" in value:
        raise ValueError(value)
    return struct.pack("6B", *[int(x, 16) for x in value.split(":")])


_PACK: dict[str, Callable[[Any], bytes]] = {
    "u8": struct.Struct("B").pack,
    "be16": struct.Struct(">H").pack,
    "u32": struct.Struct("=I").pack,
    "ip4": lambda v: socket.inet_pton(socket.AF_INET, v),
    "ip6": lambda v: socket.inet_pton(socket.AF_INET6, v),
    "mac": _mac,
    "str": lambda v: v.encode(),
}
# two stand-ins per kind that differ in every byte (a string's stand-ins are made per length)
_STANDINS: dict[str, tuple[Any, Any]] = {
    "u8": (0x1A, 0x2C),
    "be16": (0x1A2B, 0x2C3D),
    "u32": (0x1A2B3C4D, 0x2C3D4E5F),
    "ip4": ("26.43.60.77", "44.61.78.95"),
    "ip6": ("1a2b:3c4d:5e6f:7a8b:9cad:becf:d0e1:f203", "2c3d:4e5f:6071:8293:a4b5:c6d7:e8f9:0a1b"),
    "mac": ("1a:2b:3c:4d:5e:6f", "2c:3d:4e:5f:60:71"),
}


def _standin(f: _Field, subject: _Subject, which: int) -> Any:
    if f.kind == "str":
        return "ab"[which] * len(f.get(subject).encode())
    return _STANDINS[f.kind][which]


class _Template(NamedTuple):
    data: bytes
    patches: tuple[tuple[_Field, int, tuple[int, ...]], ...]  # field, width, offsets


class _Kind(NamedTuple):
    name: str
    reference: Callable[[_Subject], bytes]
    shape: Callable[[_Subject], tuple[tuple, tuple[_Field, ...]]]


_templates: dict[tuple, _Template | None] = {}


def _make_template(kind: _Kind, subject: _Subject, fields: tuple[_Field, ...]
                   ) -> _Template | None:
    base = subject
    for f in fields:
        base = f.set(base, _standin(f, subject, 0))
    a = kind.reference(base)
    patches = []
    covered: set[int] = set()
    for f in fields:
        va, vb = _standin(f, subject, 0), _standin(f, subject, 1)
        b = kind.reference(f.set(base, vb))
        pa, pb = _PACK[f.kind](va), _PACK[f.kind](vb)
        width = len(pa)
        if len(b) != len(a) or len(pb) != width:
            return None
        diff = [j for j in range(len(a)) if a[j] != b[j]]
        offsets = tuple(diff[::width]) if width else ()
        spans = {j for off in offsets for j in range(off, off + width)}
        if (width and not offsets) or spans != set(diff) or spans & covered:
            return None  # not where one value of that width would be: not a templatable shape
        if any(a[off:off + width] != pa or b[off:off + width] != pb for off in offsets):
            return None
        covered |= spans
        patches.append((f, width, offsets))
    return _Template(a, tuple(patches))


def _patched(t: _Template, subject: _Subject) -> bytes:
    buf = bytearray(t.data)
    for f, width, offsets in t.patches:
        raw = _PACK[f.kind](f.get(subject))
        if len(raw) != width:
            raise ValueError("value does not fit the template")
        for off in offsets:
            buf[off:off + width] = raw
    return bytes(buf)


def _encode_one(kind: _Kind, subject: _Subject) -> bytes:
    shape, fields = kind.shape(subject)
    key = (kind.name, shape)
    try:
        t = _templates[key]
    except KeyError:
        t = _make_template(kind, subject, fields)
        if t is not None:
            try:
                ok = _patched(t, subject) == kind.reference(subject)
            except (ValueError, OSError, struct.error):  # this value, not the shape
                return kind.reference(subject)
            if not ok:
                t = None
        _templates[key] = t
    if t is not None:
        try:
            return _patched(t, subject)
        except (ValueError, OSError, struct.error, TypeError, AttributeError):
            pass  # a value of another form (e.g. an IPv6 address): pyroute2 knows it
    return kind.reference(subject)


def _nlen(s: str | None) -> int:
    return len(s.encode()) if s else 0


def _intent_field(kind: str, attr: str) -> _Field:
    return _Field(kind, lambda s: getattr(s[0], attr),
                  lambda s, v: (replace(s[0], **{attr: v}), s[1]))


def _sub_field(kind: str, part: str, attr: str) -> _Field:
    return _Field(kind, lambda s: getattr(getattr(s[0], part), attr),
                  lambda s, v: (replace(s[0], **{part: replace(getattr(s[0], part),
                                                                  **{attr: v})}), s[1]))


def _cidr_field(attr: str, i: int, ip: str = "ip4") -> _Field:
    """Part `i` of a CIDR attribute: 0 the address (of kind `ip`), 1 the prefix length."""
    def get(s: _Subject) -> Any:
        v = getattr(s[0], attr).split("/")[i]
        return int(v) if i else v

    def set_(s: _Subject, v: Any) -> _Subject:
        parts = getattr(s[0], attr).split("/")
        parts[i] = str(v)
        return replace(s[0], **{attr: "/".join(parts)}), s[1]
    return _Field("u8" if i else ip, get, set_)


_F_INDEX = _intent_field("u32", "index")
_F_NAME = _intent_field("str", "name")
_F_MTU = _intent_field("u32", "mtu")
_F_MAC = _intent_field("mac", "mac")
_F_MASTER = _intent_field("u32", "master")
_F_PEER_NAME = _sub_field("str", "peer", "name")
_F_PEER_INDEX = _sub_field("u32", "peer", "index")
_F_PEER_MAC = _sub_field("mac", "peer", "mac")
_F_PEER_FD = _Field("u32", lambda s: s[1], lambda s, v: (s[0], v))
_F_VNI = _sub_field("u32", "vxlan", "vni")
_F_VX_LOCAL = _sub_field("ip4", "vxlan", "local")
_F_VX_LOCAL6 = _sub_field("ip6", "vxlan", "local")
_F_VX_PORT = _sub_field("be16", "vxlan", "port")
_F_VX_LINK = _sub_field("u32", "vxlan", "underlay_index")
_F_ADDR_IP = _cidr_field("cidr", 0)
_F_ADDR_IP6 = _cidr_field("cidr", 0, "ip6")
_F_ADDR_PLEN = _cidr_field("cidr", 1)
_F_OIF = _intent_field("u32", "oif")
_F_DST_IP = _cidr_field("dst", 0)
_F_DST_IP6 = _cidr_field("dst", 0, "ip6")
_F_DST_PLEN = _cidr_field("dst", 1)
_F_GATEWAY = _intent_field("ip4", "gateway")
_F_GATEWAY6 = _intent_field("ip6", "gateway")
_F_NEIGH_IP = _intent_field("ip4", "ip")
_F_NEIGH_IP6 = _intent_field("ip6", "ip")
_F_FDB_DST = _intent_field("ip4", "dst")
_F_FDB_DST6 = _intent_field("ip6", "dst")


def _link_shape(s: _Subject) -> tuple[tuple, tuple[_Field, ...]]:
    i: Link = s[0]  # type: ignore[assignment]
    fields = [_F_INDEX]
    if i.kind:
        fields.append(_F_NAME)
    if i.mtu:
        fields.append(_F_MTU)
    if i.mac:
        fields.append(_F_MAC)
    if i.master:
        fields.append(_F_MASTER)
    peer = i.peer is not None and bool(i.kind)
    if peer:
        assert i.peer is not None
        if s[1] is None:
            raise _NotTemplated
        fields += [_F_PEER_NAME, _F_PEER_INDEX, _F_PEER_FD]
        if i.peer.mac:
            fields.append(_F_PEER_MAC)
    vx = i.vxlan is not None and bool(i.kind)
    vx6 = vx and _v6(i.vxlan.local)  # type: ignore[union-attr]
    if vx:
        fields += [_F_VNI, _F_VX_LOCAL6 if vx6 else _F_VX_LOCAL, _F_VX_PORT, _F_VX_LINK]
    shape = (i.kind, i.up, bool(i.mtu), bool(i.mac), bool(i.master), peer,
             peer and bool(i.peer.mac), vx, vx6, vx and bool(i.vxlan.learning),  # type: ignore[union-attr]
             _nlen(i.name) if i.kind else 0, _nlen(i.peer.name) if peer else 0)  # type: ignore[union-attr]
    return shape, tuple(fields)


def _address_shape(s: _Subject) -> tuple[tuple, tuple[_Field, ...]]:
    v6 = _v6(s[0].cidr)  # type: ignore[union-attr]
    return (v6, s[0].deprecated), (_F_INDEX, _F_ADDR_IP6 if v6 else _F_ADDR_IP,  # type: ignore[union-attr]
                                   _F_ADDR_PLEN)


def _route_shape(s: _Subject) -> tuple[tuple, tuple[_Field, ...]]:
    r: Route = s[0]  # type: ignore[assignment]
    v6 = _v6(r.dst)
    fields = [_F_OIF]
    default = r.dst in ("default", "::/0")
    if not default:
        fields += [_F_DST_IP6 if v6 else _F_DST_IP, _F_DST_PLEN]
    if r.gateway:
        fields.append(_F_GATEWAY6 if v6 else _F_GATEWAY)
    return (v6, default, bool(r.gateway), bool(r.onlink)), tuple(fields)


def _neighbour_shape(s: _Subject) -> tuple[tuple, tuple[_Field, ...]]:
    if isinstance(s[0], Fdb):
        v6 = _v6(s[0].dst)
        return ("fdb", v6), (_F_INDEX, _F_MAC, _F_FDB_DST6 if v6 else _F_FDB_DST)
    v6 = _v6(s[0].ip)  # type: ignore[union-attr]
    return ("neigh", v6), (_F_INDEX, _F_NEIGH_IP6 if v6 else _F_NEIGH_IP, _F_MAC)


class _NotTemplated(Exception):
    """This message is encoded by pyroute2 directly."""


_LINK = _Kind("link", _reference(_link, RTM_NEWLINK), _link_shape)
_HAIRPIN = _Kind("hairpin", _reference(lambda i, _: _hairpin(i), RTM_NEWLINK),
                 lambda s: ((), (_F_INDEX,)))
_ADDRESS = _Kind("address", _reference(lambda i, _: _address(i), RTM_NEWADDR),
                 _address_shape)
_ROUTE = _Kind("route", _reference(lambda i, _: _route(i), RTM_NEWROUTE), _route_shape)
_NEIGHBOUR = _Kind("neighbour", _reference(lambda i, _: _neighbour(i), RTM_NEWNEIGH),
                   _neighbour_shape)


def _messages(intents: Sequence[Intent], peer_fds: dict[str, int]
              ) -> list[tuple[Intent, int | None, _Kind]]:
    out: list[tuple[Intent, int | None, _Kind]] = []
    for intent in intents:
        if isinstance(intent, Link):
            out.append((intent, peer_fds.get(intent.peer.netns) if intent.peer else None, _LINK))
            if intent.hairpin:
                out.append((intent, None, _HAIRPIN))
        elif isinstance(intent, Address):
            out.append((intent, None, _ADDRESS))
        elif isinstance(intent, Route):
            out.append((intent, None, _ROUTE))
        elif isinstance(intent, Neighbour | Fdb):
            out.append((intent, None, _NEIGHBOUR))
        else:
            raise TypeError(f"not a netlink intent: {intent!r}")
    return out


def encode(intents: Sequence[Intent], peer_fds: dict[str, int]) -> list[tuple[bytes, Intent]]:
    """Messages for a batch, each paired with the intent it comes from: pyroute2's bytes,
    from a per-shape template after the first message of each shape."""
    out: list[tuple[bytes, Intent]] = []
    for intent, fd, kind in _messages(intents, peer_fds):
        try:
            data = _encode_one(kind, (intent, fd))
        except _NotTemplated:
            data = kind.reference((intent, fd))
        out.append((data, intent))
    return out


def send_batch(sock: socket.socket, messages: list[tuple[bytes, Intent]]) -> None:
    """Send messages in chunks of BATCH_BYTES; raise KernelError naming the first intent the
    kernel refused (after reading every answer, so the socket stays usable).

    Only the last message of a chunk asks for an ack: the kernel processes a chunk's messages
    in order within the send and answers a message without NLM_F_ACK only if it fails, so
    when the last one's ack is read, every earlier failure has been read before it (one
    receive per chunk instead of one per message)."""
    first_error: KernelError | None = None
    i = 0
    seq_base = 1
    received = bytearray(1 << 16)  # answers are small (NETLINK_CAP_ACK); one datagram a recv
    while i < len(messages):
        chunk = bytearray()
        owners: dict[int, Intent] = {}
        while i < len(messages) and (not chunk or len(chunk) + len(messages[i][0]) <= BATCH_BYTES):
            data, intent = messages[i]
            seq = seq_base + len(owners)
            off = len(chunk)
            chunk += data
            (flags,) = _FLAGS.unpack_from(chunk, off + 6)
            _FLAGS_SEQ.pack_into(chunk, off + 6, flags & ~NLM_F_ACK, seq)
            owners[seq] = intent
            i += 1
        last = seq_base + len(owners) - 1
        (flags,) = _FLAGS.unpack_from(chunk, off + 6)
        _FLAGS.pack_into(chunk, off + 6, flags | NLM_F_ACK)
        seq_base += len(owners)
        sock.sendall(chunk)
        acked = False
        while not acked:
            n = sock.recv_into(received)
            buf = bytes(received[:n])
            for off, length, mtype, seq in _answers(buf):
                if mtype == NLMSG_ERROR and seq in owners:
                    acked = acked or seq == last
                    (code,) = struct.unpack_from("=i", buf, off + 16)
                    if code < 0 and first_error is None:
                        reason = _ext_ack_message(buf[off:off + length]) or os.strerror(-code)
                        first_error = KernelError(f"{owners[seq].text()}: {reason}")
    if first_error is not None:
        raise first_error


_FLAGS = struct.Struct("=H")
_FLAGS_SEQ = struct.Struct("=HI")


def _ext_ack_message(msg: bytes) -> str | None:
    """NLMSGERR_ATTR_MSG from an extended ack, if the kernel sent one."""
    # header(16) + error(4) + original header(16, payload capped by NETLINK_CAP_ACK)
    off = 36
    while off + 4 <= len(msg):
        alen, atype = struct.unpack_from("=HH", msg, off)
        if alen < 4:
            break
        if atype & 0x3FFF == 1:
            return msg[off + 4: off + alen].rstrip(b"\0").decode(errors="replace")
        off += (alen + 3) & ~3
    return None
