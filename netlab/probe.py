"""Probes: real connections from inside a lab namespace, and what came back.

The socket is opened while the calling thread has entered the source namespace (a socket
belongs to the namespace it was created in), then used from anywhere, so many probes run
concurrently from one process without spawning anything. The other side is normally a
netlab responder, whose answer names the pod and the client address it saw.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from netlab.kernel.sockets import inside

REFUSED = "connection refused (TCP reset or ICMP port unreachable)"
DROPPED = ("dropped by NetworkPolicy: the kernel's netlab-policy rule dropped it (read from "
           "its set of dropped connections, not waited for)")
# Dropped connections the kernel remembers, as (source address, protocol, source port)
DroppedReader = Callable[[], set[tuple[str, str, int]]]
FIRST_LOOK, LOOK_EVERY = 0.03, 0.05  # seconds: when a silent probe is first looked up


@dataclass(frozen=True)
class ProbeResult:
    src: str
    dst: str
    address: str
    port: int | None
    protocol: str
    result: str  # connected | refused | timeout | dropped (the kernel says so: no waiting)
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
        client = info.get("client", "").rsplit(":", 1)[0].strip("[]")  # "[v6]:port" too
        return info.get("pod", "unknown"), client or None, ""
    except (ValueError, IndexError, AttributeError):
        return "unknown", None, f"answer was not a netlab responder's: {data[:80]!r}"


@dataclass
class _Pending:
    index: int
    job: tuple
    sock: socket.socket
    started: float
    stage: str  # connecting | waiting
    source: tuple[str, str, int] = ("", "", 0)  # (address, protocol, port) it sends from
    connected: float = 0.0  # when the TCP handshake completed


def run_many(jobs: list[tuple[str, str, Path, str, int, str]], timeout: float = 2.0,
             dropped: DroppedReader | None = None, answer_wait: float | None = None
             ) -> list[ProbeResult]:
    """Many probes at once from one thread: every socket opened in its namespace, then
    non-blocking connects and one selector, so that n silent (dropped) probes cost one
    timeout, not n / threads. Jobs: (src, dst, netns, address, port, protocol).

    `dropped`: what the kernel's NetworkPolicy rules dropped (features/netpol's `dropped`
    set, by source address, protocol and port): a probe still silent after FIRST_LOOK is
    looked up there every LOOK_EVERY, and one found is `dropped` at once instead of waiting
    out the timeout. One not found (dropped elsewhere, or its source rewritten on the way)
    still waits.

    `answer_wait`: how long a TCP probe whose handshake completed waits for the server's
    answer (default: the rest of the timeout). The handshake is the network's verdict; the
    answer only names who answered, and a server that is not a netlab responder (a DNS
    server reading a length prefix) never sends one. `check` needs the verdict only."""
    from netlab.kernel import raise_fd_limit

    batch = max(64, min(len(jobs), raise_fd_limit() // 2 - 64))
    results: list[ProbeResult | None] = [None] * len(jobs)
    for start in range(0, len(jobs), batch):
        _run_batch(jobs, range(start, min(start + batch, len(jobs))), timeout, results,
                   selectors.DefaultSelector(), dropped, answer_wait)
    return [r for r in results if r is not None]


def _run_batch(jobs, indices, timeout, results, sel, dropped: DroppedReader | None = None,
               answer_wait: float | None = None) -> None:
    def finish(p: _Pending, result: str, who: str | None = None, client: str | None = None,
               detail: str = "") -> None:
        src, dst, _, address, port, proto = p.job
        results[p.index] = ProbeResult(src, dst, address, port, proto, result, who, client,
                                       detail, round(time.monotonic() - p.started, 4))
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(p.sock)
        p.sock.close()

    def say_hello(p: _Pending) -> bool:
        """Send the probe line; the probe now waits for an answer (False: it failed)."""
        try:
            p.sock.send(b"netlab-probe\n")
        except OSError as e:
            finish(p, "refused", detail=e.strerror or str(e))
            return False
        p.stage = "waiting"
        return True

    pending: list[_Pending] = []
    by_netns: dict[Path, list[int]] = {}
    for i in indices:
        by_netns.setdefault(jobs[i][2], []).append(i)
    for netns, idx in by_netns.items():
        with inside(netns) as open_socket:
            for i in idx:
                proto = jobs[i][5]
                kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
                number = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP,
                          "sctp": socket.IPPROTO_SCTP}[proto]
                try:
                    family = socket.AF_INET6 if ":" in jobs[i][3] else socket.AF_INET
                    s = open_socket(family, kind | socket.SOCK_NONBLOCK, number)
                except OSError as e:
                    src, dst, _, address, port, _p = jobs[i]
                    results[i] = ProbeResult(src, dst, address, port, proto, "refused",
                                             detail=f"cannot open a {proto} socket: {e.strerror}")
                    continue
                pending.append(_Pending(i, jobs[i], s, time.monotonic(), "connecting"))
    for p in pending:
        address, port = p.job[3], p.job[4]
        err = p.sock.connect_ex((address, port))
        if err not in (0, errno.EINPROGRESS):
            finish(p, "refused", detail=os.strerror(err))
            continue
        with contextlib.suppress(OSError):
            local = p.sock.getsockname()
            p.source = (str(local[0]), p.job[5], int(local[1]))
        if p.job[5] == "udp":
            if say_hello(p):
                sel.register(p.sock, selectors.EVENT_READ, p)
        else:
            sel.register(p.sock, selectors.EVENT_WRITE, p)
    next_look = time.monotonic() + FIRST_LOOK
    while sel.get_map():
        now = time.monotonic()
        if dropped is not None and now >= next_look:
            silent = [key.data for key in sel.get_map().values()
                      if key.data.stage == "connecting" or key.data.job[5] == "udp"]
            if silent:
                gone = dropped()
                for p in silent:
                    if p.source in gone:
                        finish(p, "dropped", detail=DROPPED)
            next_look = time.monotonic() + LOOK_EVERY
        for key in list(sel.get_map().values()):
            p = key.data
            answered_late = (answer_wait is not None and p.stage == "waiting"
                             and p.job[5] != "udp" and now - p.connected > answer_wait)
            if now - p.started > timeout or answered_late:
                if p.stage == "waiting" and p.job[5] != "udp":
                    # the handshake completed: the network let it through; the server is
                    # simply not one that answers our line (a DNS server over TCP, say)
                    finish(p, "connected", "unknown", None,
                           "connected, but the server sent nothing back")
                else:
                    finish(p, "timeout", detail=f"no answer within {timeout}s")
        if not sel.get_map():
            break
        for key, _ in sel.select(timeout=0.02):
            p = key.data
            if p.stage == "connecting":
                err = p.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    detail = REFUSED if err == errno.ECONNREFUSED else os.strerror(err)
                    finish(p, "refused", detail=detail)
                    continue
                if say_hello(p):
                    p.connected = time.monotonic()
                    sel.modify(p.sock, selectors.EVENT_READ, p)
                continue
            try:
                data = p.sock.recv(4096)
            except ConnectionRefusedError:
                finish(p, "refused", detail=REFUSED)
                continue
            except OSError as e:
                finish(p, "refused", detail=e.strerror or str(e))
                continue
            if not data:
                finish(p, "connected", "unknown", None,
                       "the connection was closed without an answer")
                continue
            who, client, detail = _answer(data)
            finish(p, "connected", who, client, detail)
