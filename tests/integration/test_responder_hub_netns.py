"""One responder hub serves pods in two network namespaces of their own, on the same port:
each socket is opened inside its pod's namespace, and each answer names its own pod."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab.kernel.sockets import inside
from netlab.runtime.responder_hub import ResponderHub


@pytest.fixture
def two_netns() -> Iterator[list[Path]]:
    """Two throw-away namespaces with lo up (never the host's network), always deleted."""
    names = [f"nlhub-{secrets.token_hex(4)}-{i}" for i in range(2)]
    made: list[str] = []
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True)
            made.append(name)
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield [Path("/run/netns") / n for n in names]
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def hub() -> Iterator[ResponderHub]:
    h = ResponderHub()  # the default opener: inside(netns)
    stop = threading.Event()
    t = threading.Thread(target=h.serve, args=(stop,), daemon=True)
    t.start()
    yield h
    stop.set()
    h.wake()
    t.join(5)
    h.close()


def ask_tcp(netns: Path, data: bytes) -> tuple[dict, str]:
    with inside(netns) as open_socket:
        s = open_socket(socket.AF_INET, socket.SOCK_STREAM)
    with s:
        s.settimeout(5)
        s.connect(("127.0.0.1", 80))
        host, port = s.getsockname()
        s.sendall(data)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return json.loads(out), f"{host}:{port}"


def ask_udp(netns: Path) -> tuple[dict, str]:
    with inside(netns) as open_socket:
        s = open_socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.settimeout(5)
        s.connect(("127.0.0.1", 53))
        host, port = s.getsockname()
        s.send(b"?")
        return json.loads(s.recv(65535)), f"{host}:{port}"


def test_one_hub_serves_the_same_port_in_two_namespaces(hub, two_netns):
    pods = [("ns/a", "a-host"), ("ns/b", "b-host")]
    for (key, hostname), netns in zip(pods, two_netns, strict=True):
        assert hub.add(key, hostname, netns, ["tcp:80", "udp:53"]) == [
            "listening on tcp/80", "listening on udp/53"]
    for (key, hostname), netns in zip(pods, two_netns, strict=True):
        got, client = ask_tcp(netns, b"hello\n")
        assert got == {"pod": key, "hostname": hostname, "protocol": "tcp",
                       "client": client, "server": "127.0.0.1:80"}
        got, client = ask_udp(netns)
        assert got == {"pod": key, "hostname": hostname, "protocol": "udp",
                       "client": client, "server": "127.0.0.1:53"}
    # removing one pod closes its port in its namespace only
    hub.remove("ns/a")
    with inside(two_netns[0]) as open_socket:
        s = open_socket(socket.AF_INET, socket.SOCK_STREAM)
    with s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", 80))
    assert ask_tcp(two_netns[1], b"x\n")[0]["pod"] == "ns/b"


def test_a_namespace_that_is_gone(hub, tmp_path):
    lines = hub.add("ns/gone", "gone", tmp_path / "no-such-netns", ["tcp:80", "udp:53"])
    assert lines == ["cannot listen on tcp/80: No such file or directory",
                     "cannot listen on udp/53: No such file or directory"]
    assert hub.ports("ns/gone") == []
