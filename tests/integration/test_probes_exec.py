"""Probe executors on a real network namespace of their own (no lab): tcpSocket, httpGet
(HTTP and HTTPS) and exec, their successes, failures and timeouts, with the messages."""

from __future__ import annotations

import secrets
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab.kernel.commands import run
from netlab.kernel.sockets import inside
from netlab.model import Probe
from netlab.runtime.probes import ProbeRunner, Target, run_probe

BLACKHOLE = "10.9.9.2"  # behind a dead veth: SYNs vanish, connects time out


def _ip(*args: str) -> None:
    r = run(["ip", *args], timeout=10)
    assert r.returncode == 0, r.stderr.decode()


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"nlprobe-{secrets.token_hex(4)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        # a veth whose peer stays down, with a static neighbour: SYNs to BLACKHOLE vanish
        _ip("-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        _ip("-n", name, "addr", "add", "10.9.9.1/24", "dev", "v0")
        _ip("-n", name, "link", "set", "v0", "up")
        _ip("-n", name, "neigh", "add", BLACKHOLE, "lladdr", "02:00:00:00:00:01", "dev", "v0",
            "nud", "permanent")
        yield name
    finally:
        run(["ip", "netns", "del", name], timeout=10)


def _path(name: str) -> str:
    return f"/run/netns/{name}"


class Server:
    """A listener inside the namespace: answers HTTP with `status`, or stays silent."""

    def __init__(self, netns: str, status: int | None = 200, tls: ssl.SSLContext | None = None
                 ) -> None:
        with inside(_path(netns)) as open_socket:
            self.sock = open_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.status, self.tls = status, tls
        self.requests: list[bytes] = []
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                if self.status is None:
                    self.held.append(conn)  # accept, never answer
                    continue
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                conn.sendall(f"HTTP/1.1 {self.status} X\r\nContent-Length: 2\r\n\r\nok"
                             .encode())
                conn.close()
            except OSError:
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture
def server(netns: str) -> Iterator[Server]:
    s = Server(netns)
    yield s
    s.close()


def target(netns: str, **kw) -> Target:
    return Target(_path(netns), "127.0.0.1", **kw)


def timed(probe: Probe, t: Target) -> tuple[bool, str, float]:
    start = time.monotonic()
    ok, msg = run_probe(probe, t)
    return ok, msg, time.monotonic() - start


def test_tcp_success_and_named_port(netns: str, server: Server):
    assert run_probe(Probe("tcpSocket", port=server.port), target(netns)) == (True, "connected")
    named = Probe("tcpSocket", port="web")
    assert run_probe(named, target(netns, ports={"web": server.port}))[0]
    assert run_probe(named, target(netns)) == (
        False, "couldn't find port 'web' in the container's ports")


def test_tcp_refused_inside_the_namespace(netns: str, server: Server):
    # the listener is in the namespace, not on the host: a free port there is refused
    free = server.port + 1 if server.port < 65535 else server.port - 1
    ok, msg, took = timed(Probe("tcpSocket", port=free), target(netns))
    assert (ok, msg) == (False, "connection refused") and took < 0.5


def test_tcp_timeout(netns: str):
    ok, msg, took = timed(Probe("tcpSocket", port=80, host=BLACKHOLE), target(netns))
    assert (ok, msg) == (False, "timed out after 1s")
    assert 0.9 <= took < 1.5


def test_http_200_with_headers(netns: str, server: Server):
    probe = Probe("httpGet", port=server.port, path="/healthz",
                  http_headers=(("Custom-Header", "Awesome"),))
    assert run_probe(probe, target(netns)) == (True, "HTTP 200")
    req = server.requests[-1].decode()
    assert req.startswith("GET /healthz HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in req
    assert "User-Agent: kube-probe/" in req and "Custom-Header: Awesome\r\n" in req


def test_http_host_header_override_and_redirect_is_success(netns: str, server: Server):
    server.status = 302
    probe = Probe("httpGet", port=server.port, http_headers=(("Host", "example.com"),))
    assert run_probe(probe, target(netns)) == (True, "HTTP 302")
    req = server.requests[-1].decode()
    assert "Host: example.com\r\n" in req and req.count("Host:") == 1


def test_http_500_fails(netns: str, server: Server):
    server.status = 500
    assert run_probe(Probe("httpGet", port=server.port, path="/healthz"), target(netns)) == (
        False, "HTTP 500")


def test_http_timeout_when_the_server_never_answers(netns: str):
    s = Server(netns, status=None)
    try:
        ok, msg, took = timed(Probe("httpGet", port=s.port, timeout_seconds=1), target(netns))
    finally:
        s.close()
    assert (ok, msg) == (False, "timed out after 1s") and 0.9 <= took < 1.5


def test_https_without_verification(netns: str, tmp_path: Path):
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=probe", "-keyout", str(key), "-out", str(cert)], timeout=60)
    if r.returncode != 0:
        pytest.skip(f"openssl cannot make a certificate: {r.stderr.decode()[:200]}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    s = Server(netns, status=204, tls=ctx)
    try:
        probe = Probe("httpGet", port=s.port, scheme="HTTPS", path="/ready")
        assert run_probe(probe, target(netns)) == (True, "HTTP 204")
        # plain HTTP to the TLS port: the server drops it, the probe fails, it does not hang
        ok, _, took = timed(Probe("httpGet", port=s.port), target(netns))
        assert not ok and took < 1.5
    finally:
        s.close()


def exec_target(netns: str) -> Target:
    return target(netns, exec_argv=lambda cmd: ["ip", "netns", "exec", netns, *cmd])


def test_exec_success_failure_and_timeout(netns: str):
    t = exec_target(netns)
    assert run_probe(Probe("exec", command=("sh", "-c", "exit 0")), t) == (True,
                                                                            "exit status 0")
    # the command runs inside the namespace: it sees only lo, v0 and v1
    ok, msg = run_probe(Probe("exec", command=("sh", "-c", "ip -o link | wc -l")), t)
    assert (ok, msg) == (True, "3")
    assert run_probe(Probe("exec", command=("sh", "-c", "echo nope >&2; exit 3")), t) == (
        False, "exit status 3: nope")
    ok, msg, took = timed(Probe("exec", command=("sleep", "5"), timeout_seconds=1), t)
    assert (ok, msg) == (False, "command timed out after 1s") and took < 2.5
    assert run_probe(Probe("exec", command=("true",)), target(netns))[0] is False


def test_runner_runs_probes_in_parallel(netns: str):
    runner = ProbeRunner(workers=4)
    try:
        start = time.monotonic()
        futures = [runner.submit(Probe("tcpSocket", port=80 + i, host=BLACKHOLE),
                                 target(netns)) for i in range(4)]
        results = [f.result(timeout=5) for f in futures]
        took = time.monotonic() - start
    finally:
        runner.close()
    assert results == [(False, "timed out after 1s")] * 4 and took < 2.0
