"""Probes: real connections from inside a lab namespace, and what came back.

The socket is opened while the calling thread has entered the source namespace (a socket
belongs to the namespace it was created in), then used from anywhere, so many probes run
concurrently from one process without spawning anything. The other side is normally a
netlab responder, whose answer names the pod and the client address it saw.
"""

from __future__ import annotations

import errno
import json
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from netlab.kernel import ns

PROTOCOLS = ("tcp", "udp", "sctp", "icmp")


@dataclass(frozen=True)
class ProbeResult:
    src: str
    dst: str
    address: str
    port: int | None
    protocol: str
    result: str  # connected | refused | timeout
    answered_by: str | None = None  # NS/POD, or a host (internet), or "unknown"
    client_ip: str | None = None  # the source address the answering side saw
    detail: str = ""
    seconds: float = 0.0

    @property
    def connected(self) -> bool:
        return self.result == "connected"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _answer(data: bytes) -> tuple[str, str | None, str]:
    try:
        info = json.loads(data.decode().strip().splitlines()[0])
        return info.get("pod", "unknown"), info.get("client", "").rsplit(":", 1)[0] or None, ""
    except (ValueError, IndexError, AttributeError):
        return "unknown", None, f"answer was not a netlab responder's: {data[:80]!r}"


def connect(netns: Path, address: str, port: int, protocol: str, timeout: float
            ) -> tuple[str, str | None, str | None, str]:
    """(result, answered_by, client_ip, detail) of one real exchange."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    proto = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP,
             "sctp": socket.IPPROTO_SCTP}[protocol]
    try:
        with ns.entered(str(netns)):
            sock = socket.socket(socket.AF_INET, kind, proto)
    except OSError as e:
        return "refused", None, None, f"cannot open a {protocol} socket: {e.strerror}"
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        sock.sendall(b"netlab-probe\n")
        data = sock.recv(4096)
        if not data and kind == socket.SOCK_STREAM:
            return "connected", "unknown", None, "the connection was closed without an answer"
        who, client, detail = _answer(data)
        return "connected", who, client, detail
    except TimeoutError:
        return "timeout", None, None, f"no answer within {timeout}s"
    except ConnectionRefusedError:
        return "refused", None, None, "connection refused (TCP reset or ICMP port unreachable)"
    except OSError as e:
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "refused", None, None, f"{e.strerror} (ICMP from the network)"
        return "refused", None, None, e.strerror or str(e)
    finally:
        sock.close()


def run(src: str, dst: str, netns: Path, address: str, port: int, protocol: str,
        timeout: float = 2.0) -> ProbeResult:
    t0 = time.monotonic()
    result, who, client, detail = connect(netns, address, port, protocol, timeout)
    return ProbeResult(src, dst, address, port, protocol, result, who, client, detail,
                       round(time.monotonic() - t0, 4))
