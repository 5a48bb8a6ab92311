"""Sockets inside a lab's namespaces, for the probes, captures, traces and clients. A socket
belongs to the network namespace it was opened in, so the thread enters the namespace only
to open it; everything else (connect, send, select) happens from where the caller is.

    with inside(netns_path) as open_socket:
        s = open_socket(socket.AF_INET, socket.SOCK_STREAM)
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from netlab.kernel import ns


def knock(path: Path | str) -> None:
    """Connect to a unix stream socket and hang up: the listening daemon's event loop wakes
    for it. Nothing happens if nobody listens there."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        s.connect(str(path))


@contextlib.contextmanager
def inside(netns: Path | str) -> Iterator[Callable[..., socket.socket]]:
    with ns.entered(str(netns)):
        yield socket.socket
