"""Capturing packets inside lab namespaces.

A packet socket belongs to the network namespace it was created in, so each capture point's
socket is opened while the thread has entered that namespace; one reader thread then
drains them all. Each packet keeps the kernel's receive timestamp (SO_TIMESTAMPNS) and its
direction (outgoing or incoming on that interface), which is what orders a packet walk
across namespaces. scapy parses the frames and writes pcaps.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab.kernel.sockets import inside

SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


@dataclass(frozen=True)
class CapturePoint:
    """An interface to capture on; iface "*" means every interface of the namespace (one
    socket), labelled `<label>:<ifname>`, or `names[ifname]` when given."""

    netns: Path
    iface: str
    label: str
    names: tuple[tuple[str, str], ...] = ()


def interface_label(owner: str, ifname: str) -> str:
    """The label of a captured interface: OWNER:IFNAME (node/node-1:eth0, pod/default/a:eth0;
    underlay:node-1 for node-1's port on the underlay switch)."""
    return f"{owner}:{ifname}"


@dataclass
class Captured:
    label: str
    time: float  # kernel timestamp, seconds
    outgoing: bool
    packet: Any  # scapy Ether


def _bpf(expression: str) -> bytes | None:
    """A compiled BPF program for Ethernet frames (every lab interface is Ethernet; scapy
    would compile for an interface it looks up in the root namespace)."""
    from scapy.arch.common import compile_filter

    return compile_filter(expression, linktype=1)


@dataclass
class Capture:
    """`with Capture(points, bpf="udp port 8472") as cap: ...` then `cap.packets`:
    (label, scapy packet) in arrival order; `cap.captured` has timestamps and directions.
    Points whose interface does not exist are skipped (listed in `cap.skipped`)."""

    points: list[CapturePoint]
    bpf: str | None = None
    packets: list[tuple[str, Any]] = field(default_factory=list)
    captured: list[Captured] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    on_packet: Any = None  # callback(Captured), for live printing

    def __enter__(self) -> Capture:
        import scapy.layers.inet
        import scapy.layers.l2  # noqa: F401  (registers Ether, IP, ...)
        from scapy.layers.inet import UDP
        from scapy.layers.vxlan import VXLAN
        from scapy.packet import bind_layers

        bind_layers(UDP, VXLAN, dport=8472)  # flannel's VXLAN port (scapy knows only 4789)

        from netlab.kernel import raise_fd_limit

        raise_fd_limit()
        program = _bpf(self.bpf) if self.bpf else None
        self._sel = selectors.DefaultSelector()
        self._socks: list[socket.socket] = []
        by_netns: dict[Path, list[CapturePoint]] = {}
        for p in self.points:
            by_netns.setdefault(p.netns, []).append(p)
        for netns, points in by_netns.items():
            with inside(netns) as open_socket:
                for p in points:
                    # Created with protocol 0 and then bound, a packet socket is hooked in
                    # once; created with ETH_P_ALL it sees every interface without a bind.
                    # (A bind that re-hooks waits for an RCU grace period, ~10 ms.)
                    every = p.iface == "*"
                    s = open_socket(socket.AF_PACKET, socket.SOCK_RAW,
                                    socket.htons(ETH_P_ALL) if every else 0)
                    try:
                        if not every:
                            s.bind((p.iface, ETH_P_ALL))
                    except OSError:
                        s.close()
                        self.skipped.append(p.label)
                        continue
                    if program is not None:
                        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)
                    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                    s.setblocking(False)
                    self._drain(s)  # what arrived before the filter was attached
                    self._sel.register(s, selectors.EVENT_READ, p)
                    self._socks.append(s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _drain(s: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while True:
                s.recv(65535)

    def _read(self) -> None:
        from scapy.layers.l2 import Ether

        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.02):
                s = key.fileobj
                while True:
                    try:
                        data, anc, _, addr = s.recvmsg(65535, 64)
                    except (BlockingIOError, OSError):
                        break
                    ts = time.time()
                    for level, kind, value in anc:
                        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                            sec, nsec = struct.unpack("qq", value[:16])
                            ts = sec + nsec / 1e9
                    pkt = Ether(data)
                    pkt.time = ts
                    point: CapturePoint = key.data
                    if point.iface == "*":
                        label = (dict(point.names).get(addr[0])
                                 or interface_label(point.label, addr[0]))
                    else:
                        label = point.label
                    c = Captured(label, ts, addr[2] == PACKET_OUTGOING, pkt)
                    self.captured.append(c)
                    if self.on_packet:
                        self.on_packet(c)

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.03)  # packets in flight reach the socket buffers
        self._stop.set()
        self._thread.join(timeout=2)
        for s in self._socks:
            self._sel.unregister(s)
        # Closing a packet socket waits for an RCU grace period (synchronize_net); closed
        # together, they share it.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(64, max(1, len(self._socks)))) as pool:
            list(pool.map(lambda sock: sock.close(), self._socks))
        self.captured.sort(key=lambda c: c.time)
        self.packets = [(c.label, c.packet) for c in self.captured]

    @staticmethod
    def write_pcap(path: Path, captured: list[Captured]) -> None:
        """These packets, in one pcap file readable by tcpdump and Wireshark."""
        from scapy.utils import wrpcap

        wrpcap(str(path), [c.packet for c in captured])

    def write_pcaps(self, directory: Path, keep=lambda c: True) -> list[Path]:
        """One pcap per capture point that saw something (kept), readable by tcpdump."""
        from scapy.utils import wrpcap

        directory.mkdir(parents=True, exist_ok=True)
        by_label: dict[str, list[Any]] = {}
        for c in self.captured:
            if keep(c):
                by_label.setdefault(c.label, []).append(c.packet)
        written = []
        for label, pkts in sorted(by_label.items()):
            path = directory / (label.replace("/", "_").replace(":", "_") + ".pcap")
            wrpcap(str(path), pkts)
            written.append(path)
        return written
