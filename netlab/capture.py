"""Capturing packets inside lab namespaces with scapy.

A packet socket belongs to the network namespace it was created in, so each capture
point's socket is opened while the thread has entered that namespace; one sniffer then
reads all of them. Capture points are open before the caller sends anything (no race).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab.kernel import ns

SO_ATTACH_FILTER = 26


@dataclass(frozen=True)
class CapturePoint:
    netns: Path
    iface: str
    label: str


@dataclass
class Capture:
    """`with Capture(points, bpf="udp port 8472") as cap: ...` then `cap.packets`:
    (label, scapy packet) in arrival order."""

    points: list[CapturePoint]
    bpf: str | None = None
    packets: list[tuple[str, Any]] = field(default_factory=list)

    def __enter__(self) -> Capture:
        import scapy.layers.inet
        import scapy.layers.l2  # noqa: F401  (registers Ether for ARPHRD_ETHER captures)
        from scapy.arch.common import compile_filter
        from scapy.arch.linux import L2ListenSocket
        from scapy.sendrecv import AsyncSniffer

        # scapy would compile the filter for an interface it looks up in the root namespace,
        # where lab interfaces do not exist; every lab interface is Ethernet (DLT_EN10MB).
        program = compile_filter(self.bpf, linktype=1) if self.bpf else None
        self._sockets: dict[Any, str] = {}
        for p in self.points:
            with ns.entered(str(p.netns)):
                sock = L2ListenSocket(iface=p.iface, promisc=False)
            if program is not None:
                sock.ins.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)
            self._sockets[sock] = p.label
        self._sniffer = AsyncSniffer(opened_socket=self._sockets, store=True)
        self._sniffer.start()
        time.sleep(0.05)  # let the sniffer thread reach its first select()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.05)  # packets in flight reach the socket buffers
        self._sniffer.stop()
        for pkt in self._sniffer.results or []:
            self.packets.append((getattr(pkt, "sniffed_on", ""), pkt))
        for sock in self._sockets:
            sock.close()
