"""Batched rtnetlink: kernel intents -> netlink messages, sent many per system call.

pyroute2's message classes do the wire format; the socket is a plain AF_NETLINK
socket opened inside the target namespace, so no helper process, no event loop and
no per-call round trip: a namespace's whole configuration is one `send` and one pass
over the acknowledgements (the kernel processes every message of a batch and acks
each, so errors are matched back to the intent that caused them).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence

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
BATCH_BYTES = 256 * 1024


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
            info.append(("IFLA_INFO_DATA", {"attrs": [
                ("IFLA_VXLAN_ID", v.vni), ("IFLA_VXLAN_LOCAL", v.local),
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


def _address(intent: Address) -> tuple[ifaddrmsg, int]:
    ip, prefix = intent.cidr.split("/")
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET
    msg["prefixlen"] = int(prefix)
    msg["index"] = intent.index
    msg["attrs"] = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
    return msg, NLM_F_CREATE | NLM_F_EXCL


def _route(intent: Route) -> tuple[rtmsg, int]:
    msg = rtmsg()
    msg["family"] = socket.AF_INET
    msg["table"] = RT_TABLE_MAIN
    msg["proto"] = RTPROT_STATIC
    msg["scope"] = RT_SCOPE_UNIVERSE
    msg["type"] = RTN_UNICAST
    attrs: list = [("RTA_OIF", intent.oif)]
    if intent.dst != "default":
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
    msg["family"] = socket.AF_INET
    msg["attrs"] = [("NDA_DST", intent.ip), ("NDA_LLADDR", intent.mac)]
    return msg, NLM_F_CREATE | NLM_F_EXCL


def encode(intents: Sequence[Intent], peer_fds: dict[str, int]) -> list[tuple[bytes, Intent]]:
    """Messages for a batch, each paired with the intent it comes from."""
    out: list[tuple[bytes, Intent]] = []
    for intent in intents:
        pairs: list[tuple[object, int, int]] = []
        if isinstance(intent, Link):
            msg, flags = _link(intent, peer_fds.get(intent.peer.netns) if intent.peer else None)
            pairs.append((msg, flags, RTM_NEWLINK))
            if intent.hairpin:
                hp, hflags = _hairpin(intent)
                pairs.append((hp, hflags, RTM_NEWLINK))
        elif isinstance(intent, Address):
            pairs.append((*_address(intent), RTM_NEWADDR))
        elif isinstance(intent, Route):
            pairs.append((*_route(intent), RTM_NEWROUTE))
        elif isinstance(intent, Neighbour | Fdb):
            pairs.append((*_neighbour(intent), RTM_NEWNEIGH))
        else:
            raise TypeError(f"not a netlink intent: {intent!r}")
        for msg, flags, mtype in pairs:
            msg["header"]["type"] = mtype
            msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
            msg.encode()
            out.append((bytes(msg.data), intent))
    return out


def send_batch(sock: socket.socket, messages: list[tuple[bytes, Intent]]) -> None:
    """Send messages in chunks of BATCH_BYTES; raise KernelError naming the first intent the
    kernel refused (after reading every ack, so the socket stays usable)."""
    first_error: KernelError | None = None
    i = 0
    seq_base = 1
    while i < len(messages):
        chunk: list[bytes] = []
        owners: dict[int, Intent] = {}
        size = 0
        while i < len(messages) and (not chunk or size + len(messages[i][0]) <= BATCH_BYTES):
            data, intent = messages[i]
            seq = seq_base + len(chunk)
            data = data[:8] + struct.pack("=I", seq) + data[12:]
            chunk.append(data)
            owners[seq] = intent
            size += len(data)
            i += 1
        seq_base += len(chunk)
        sock.sendall(b"".join(chunk))
        pending = set(owners)
        while pending:
            buf = sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(buf):
                length, mtype, _flags, seq, _pid = struct.unpack_from("=IHHII", buf, off)
                if mtype == NLMSG_ERROR and seq in pending:
                    pending.discard(seq)
                    (code,) = struct.unpack_from("=i", buf, off + 16)
                    if code < 0 and first_error is None:
                        reason = _ext_ack_message(buf[off:off + length]) or os.strerror(-code)
                        first_error = KernelError(f"{owners[seq].text()}: {reason}")
                off += (length + 3) & ~3 if length else len(buf)
    if first_error is not None:
        raise first_error


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
