"""The responder hub without root: one hub on 127.0.0.1 (sockets opened where the test is),
two fake pods on ports of their own, served from a thread while the test adds and removes."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from netlab.runtime import responder_hub
from netlab.runtime.responder_hub import (
    LINE_WAIT,
    MAX_BODY,
    ResponderHub,
    echo_set_headers,
    plain_opener,
    request_log_line,
    stream_complete,
)

SCRIPT = Path(__file__).resolve().parents[2] / "netlab" / "responder.py"


def addr(s: socket.socket) -> str:
    host, port = s.getsockname()
    return f"{host}:{port}"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pod:
    def __init__(self, key: str, hostname: str) -> None:
        self.key, self.hostname = key, hostname
        self.tcp, self.udp = free_port(), free_port(socket.SOCK_DGRAM)


@pytest.fixture
def hub() -> Iterator[ResponderHub]:
    h = ResponderHub(opener=plain_opener)
    stop = threading.Event()
    t = threading.Thread(target=h.serve, args=(stop,), daemon=True)
    t.start()
    yield h
    stop.set()
    h.wake()
    t.join(5)
    assert not t.is_alive()
    h.close()


@pytest.fixture
def pods(hub: ResponderHub) -> tuple[Pod, Pod]:
    a, b = Pod("ns1/a", "a-host"), Pod("ns2/b", "b-host")
    for p in (a, b):
        lines = hub.add(p.key, p.hostname, None, [f"tcp:{p.tcp}", f"udp:{p.udp}"])
        assert lines == [f"listening on tcp/{p.tcp}", f"listening on udp/{p.udp}"]
    return a, b


def response_complete(out: bytes) -> bool:
    """An HTTP response whose headers and Content-Length bytes of body have all arrived."""
    head, sep, body = out.partition(b"\r\n\r\n")
    if not out.startswith(b"HTTP/") or not sep:
        return False
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n")
               if line.lower().startswith(b"content-length:")]
    return bool(lengths) and len(body) >= int(lengths[0])


def ask(port: int, data: bytes = b"", timeout: float = 5) -> tuple[bytes, str]:
    """Send `data`, read to EOF, or to the end of an HTTP response on a connection kept
    alive; (the answer, the client's address as the server sees it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        client = addr(s)
        if data:
            s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
            if b"Connection: keep-alive" in out and response_complete(out):
                break
    return out, client


def http(port: int, path: str) -> tuple[str, dict[str, str], bytes, str]:
    raw, client = ask(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n\r\n".encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    assert int(headers["content-length"]) == len(body)
    return status, headers, body, client


def test_a_line_is_answered_with_the_pods_identity(pods):
    for p in pods:
        raw, client = ask(p.tcp, b"hello\n")
        assert raw.endswith(b"\n") and raw.count(b"\n") == 1
        assert json.loads(raw) == {"pod": p.key, "hostname": p.hostname, "protocol": "tcp",
                                   "client": client, "server": f"127.0.0.1:{p.tcp}"}


def test_a_silent_client_is_answered_after_the_line_wait(pods):
    t0 = time.monotonic()
    raw, _ = ask(pods[0].tcp)
    waited = time.monotonic() - t0
    assert json.loads(raw)["pod"] == "ns1/a"
    assert LINE_WAIT <= waited < LINE_WAIT + 0.5


def test_http_paths(pods):
    a, b = pods
    status, headers, body, _ = http(a.tcp, "/hostname")
    assert status == "HTTP/1.1 200 OK" and body == b"a-host\n"
    assert headers["content-type"] == "text/plain" and headers["x-netlab-pod"] == "ns1/a"
    assert headers["connection"] == "keep-alive"  # HTTP/1.1: open for the next request
    _, _, body, client = http(b.tcp, "/clientip")
    assert body == f"{client}\n".encode()
    _, _, body, _ = http(b.tcp, "/echo?msg=hi%20there")
    assert body == b"hi there"
    _, headers, body, client = http(b.tcp, "/other?x=1")
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "pod": "ns2/b", "hostname": "b-host", "protocol": "tcp", "client": client,
        "server": f"127.0.0.1:{b.tcp}", "method": "GET", "path": "/other",
        "uri": "/other?x=1", "query": {"x": ["1"]}, "host": "x",
        "headers": {"host": "x", "x-test": "yes"}}


def test_http_echo_reports_query_uri_and_host_as_received(pods):
    raw, _ = ask(pods[0].tcp, b"GET /a/b?x=1&x=2&empty=&y=%20z HTTP/1.1\r\n"
                              b"Host: shop.example:8080\r\n\r\n")
    info = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert (info["path"], info["uri"], info["host"]) == ("/a/b", "/a/b?x=1&x=2&empty=&y=%20z",
                                                         "shop.example:8080")
    assert info["query"] == {"x": ["1", "2"], "empty": [""], "y": [" z"]}
    raw, _ = ask(pods[0].tcp, b"GET / HTTP/1.0\r\n\r\n")  # no Host header at all
    info = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert (info["host"], info["query"], info["uri"]) == ("", {}, "/")


def test_a_request_body_is_read_before_the_answer(pods):
    body = bytes(range(256)) * 256  # 64 KiB, the most that is read
    assert len(body) == MAX_BODY
    head = (f"POST /upload?k=v HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()  # read to the end below
    with socket.create_connection(("127.0.0.1", pods[0].tcp), timeout=5) as s:
        s.sendall(head)
        time.sleep(LINE_WAIT + 0.2)  # headers alone are not the whole request: no answer yet
        s.setblocking(False)
        with pytest.raises(BlockingIOError):
            s.recv(1)
        s.setblocking(True)
        s.sendall(body[:1000])
        time.sleep(0.1)
        s.sendall(body[1000:])
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw[:100]
    info = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert (info["method"], info["uri"]) == ("POST", "/upload?k=v")
    assert info["headers"]["content-length"] == str(MAX_BODY)


def test_a_body_too_large_or_a_bad_length_is_refused_at_once(pods):
    raw, _ = ask(pods[0].tcp, f"POST / HTTP/1.1\r\nContent-Length: {MAX_BODY + 1}\r\n"
                              "\r\n".encode())
    assert raw.startswith(b"HTTP/1.1 413 Payload Too Large\r\n"), raw
    raw, _ = ask(pods[0].tcp, b"POST / HTTP/1.1\r\nContent-Length: lots\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n"), raw


def _answer_of(raw: bytes) -> tuple[str, list[tuple[str, str]], dict]:
    """An HTTP answer: its status line, its header lines in order, its JSON body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    return status, [(k, v.strip()) for k, _, v in (x.partition(":") for x in lines)], \
        json.loads(body)


def test_a_header_sent_on_several_lines_is_echoed_joined_with_commas(pods):
    raw, _ = ask(pods[0].tcp, b"GET / HTTP/1.1\r\nHost: x\r\nX-Multi: a\r\nx-multi: b \r\n"
                              b"X-One: 1\r\nX-MULTI: c,d\r\n\r\n")
    _, _, info = _answer_of(raw)
    assert info["headers"] == {"host": "x", "x-multi": "a,b,c,d", "x-one": "1"}


def test_x_echo_set_header_adds_headers_to_the_answer(pods):
    """upstream echo-basic's writeEchoResponseHeaders: every X-Echo-Set-Header line, each a
    comma-separated list of Name:value; a name given twice gets its values joined."""
    raw, _ = ask(pods[0].tcp, b"GET /p HTTP/1.1\r\nHost: x\r\n"
                              b"X-Echo-Set-Header: X-Header-Set: set-overwrites-values, "
                              b"X-Header-Add:add-appends-values\r\n"
                              b"X-Echo-Set-Header: x-header-add: again,X-Empty:\r\n\r\n")
    status, headers, info = _answer_of(raw)
    assert status == "HTTP/1.1 200 OK"
    assert headers[-3:] == [("X-Header-Set", "set-overwrites-values"),
                            ("X-Header-Add", "add-appends-values,again"), ("X-Empty", "")]
    # the request header itself is echoed as received, both lines joined
    assert info["headers"]["x-echo-set-header"] == (
        "X-Header-Set: set-overwrites-values, X-Header-Add:add-appends-values,"
        "x-header-add: again,X-Empty:")
    raw, _ = ask(pods[0].tcp, b"GET /hostname HTTP/1.1\r\nX-Echo-Set-Header: X-A:1\r\n\r\n")
    assert ("X-A", "1") in _answer_of(raw.replace(b"a-host\n", b"{}"))[1]  # any path


def test_echo_set_headers_leaves_out_bad_names_and_framing_headers():
    assert echo_set_headers("X-A:1,, no-colon ,Bad Name:2,Content-Length:0,"
                            "content-type:text/html,Connection:keep-alive,X-Netlab-Pod:me,"
                            "X-B: two words ") == [("X-A", "1"), ("no-colon", ""),
                                                   ("X-B", "two words")]
    assert echo_set_headers("") == []


def test_request_log_lines_are_the_echo_servers():
    line = "Echoing back request made to /mirror?id=7 to client ({}:40112)\n"
    assert request_log_line(b"GET /mirror?id=7 HTTP/1.1\r\nHost: x\r\n\r\n",
                            ("10.244.1.1", 40112)) == line.format("10.244.1.1")
    assert request_log_line(b"GET /mirror?id=7 HTTP/1.1\r\n\r\n",
                            ("fd00::1", 40112, 0, 0)) == line.format("[fd00::1]")
    assert request_log_line(b"GET\r\n\r\n", ("10.0.0.1", 1)).startswith(
        "Echoing back request made to / to client")


def test_http_requests_are_logged_to_the_pods_log_file(hub, tmp_path):
    port, log = free_port(), tmp_path / "echo.log"
    hub.add("ns/m", "m", None, [f"tcp:{port}"], log=log)
    assert not log.exists()  # created by the first request
    clients = [http(port, f"/mirror?n={i}")[3] for i in range(3)]
    ask(port, b"a line, not HTTP\n")
    ask(port, b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n")  # refused (400): not logged
    assert log.read_text().splitlines() == [
        f"Echoing back request made to /mirror?n={i} to client ({c})"
        for i, c in enumerate(clients)]
    hub.add("ns/m", "m", None, [f"tcp:{port}"], log=log)  # served again: the same log
    http(port, "/again")
    assert log.read_text().count("\n") == 4
    other = tmp_path / "other.log"
    hub.add("ns/m", "m", None, [f"tcp:{port}"], log=other)
    http(port, "/moved")
    assert log.read_text().count("\n") == 4 and "/moved" in other.read_text()
    hub.add("ns/m", "m", None, [f"tcp:{port}"])  # no log any more
    http(port, "/unlogged")
    assert "/unlogged" not in other.read_text()


def test_a_log_starts_over_past_its_limit(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(responder_hub, "LOG_MAX", 300)
    port, log = free_port(), tmp_path / "c.log"
    log.write_text("from an earlier run of the agent\n")
    hub.add("ns/m", "m", None, [f"tcp:{port}"], log=log)
    http(port, "/first")
    assert log.read_text().startswith("from an earlier run")  # appended to
    for i in range(10):
        http(port, f"/{i}")
        assert 0 < log.stat().st_size <= 300
    assert log.read_text().splitlines()[-1].startswith("Echoing back request made to /9 ")
    assert "from an earlier run" not in log.read_text()


def test_a_log_that_cannot_be_written_does_not_stop_the_answers(hub, tmp_path):
    port = free_port()
    hub.add("ns/m", "m", None, [f"tcp:{port}"], log=tmp_path / "no-such-dir" / "c.log")
    assert http(port, "/")[0] == "HTTP/1.1 200 OK"
    assert http(port, "/")[0] == "HTTP/1.1 200 OK"
    assert hub.remove("ns/m")


def test_the_line_is_written_before_the_answer_is_sent(tmp_path):
    """A client that has its answer finds its line (as the echo server prints it first),
    also when the pod is removed and the hub closed right after."""
    port, log = free_port(), tmp_path / "c.log"
    h = ResponderHub(opener=plain_opener)
    h.add("x/y", "y", None, [f"tcp:{port}"], log=log)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /last HTTP/1.1\r\n\r\n")
        deadline = time.monotonic() + 5
        while h.connections() == 0 and time.monotonic() < deadline:
            h.run_once(0.05)  # accept
        h.run_once(1)  # read, log, answer
        assert s.recv(20).startswith(b"HTTP/1.1 200 OK")
        assert "/last" in log.read_text()
    assert h.remove("x/y")
    h.close()
    assert log.read_text().count("\n") == 1


def test_stream_complete_waits_for_the_announced_body():
    head = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
    assert not stream_complete(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n")
    assert not stream_complete(head)
    assert not stream_complete(head + b"abcd")
    assert stream_complete(head + b"abcde")
    assert stream_complete(b"GET / HTTP/1.1\r\n\r\n")  # no Content-Length: no body
    assert stream_complete(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n")  # refused
    assert stream_complete(b"hello\n") and not stream_complete(b"hello")


def test_udp_datagrams(pods):
    for p in pods:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", p.udp))  # only the queried address's answer gets in
            for _ in range(3):
                s.send(b"x")
                got = json.loads(s.recv(65535))
                assert got == {"pod": p.key, "hostname": p.hostname, "protocol": "udp",
                               "client": addr(s),
                               "server": f"127.0.0.1:{p.udp}"}


def test_concurrent_clients_wait_for_nobody(pods):
    """200 clients at once, half of them silent: all answered in about one LINE_WAIT, while
    an HTTP client that never ends its headers and one that does not read hold on."""
    a, b = pods
    stuck = socket.create_connection(("127.0.0.1", a.tcp))
    stuck.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no blank line: waits HTTP_WAIT
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", b.tcp))
    big = "x" * 2_000_000
    slow.sendall(f"GET /echo?msg={big} HTTP/1.1\r\n\r\n".encode())  # an answer it won't read
    time.sleep(0.3)
    t0 = time.monotonic()
    with ThreadPoolExecutor(200) as pool:
        jobs = [pool.submit(ask, p.tcp, b"hi\n" if i % 2 else b"")
                for i in range(100) for p in pods]
        answers = [json.loads(j.result()[0]) for j in jobs]
    assert time.monotonic() - t0 < 1.5
    assert {x["pod"] for x in answers} == {"ns1/a", "ns2/b"} and len(answers) == 200
    slow.settimeout(5)
    got = b""
    while not got.endswith(big.encode()) and (chunk := slow.recv(1 << 20)):
        got += chunk
    assert got.endswith(big.encode())
    stuck.settimeout(5)
    assert stuck.recv(100) == b""  # closed without an answer after HTTP_WAIT
    stuck.close()
    slow.close()


def test_remove_closes_listeners_and_connections(hub, pods):
    a, b = pods
    pending = socket.create_connection(("127.0.0.1", a.tcp))
    pending.sendall(b"GET / HTTP/1.1\r\n")  # open until remove() closes it
    time.sleep(0.1)
    assert hub.connections() == 1
    assert hub.remove(a.key) is True and hub.remove(a.key) is False
    assert hub.ports(a.key) == [] and hub.pods() == [b.key]
    pending.settimeout(5)
    with contextlib.suppress(ConnectionResetError):  # closed, maybe with data unread
        assert pending.recv(100) == b""
    pending.close()
    with pytest.raises(ConnectionRefusedError):
        ask(a.tcp)
    assert json.loads(ask(b.tcp, b"x\n")[0])["pod"] == b.key  # the other pod serves on
    assert hub.ports(b.key) == [f"tcp:{b.tcp}", f"udp:{b.udp}"]


def test_add_again_and_ports_that_cannot_open(hub, pods):
    a, _ = pods
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    port = taken.getsockname()[1]
    extra = free_port()
    lines = hub.add(a.key, "renamed", None, [f"tcp:{a.tcp}", f"tcp:{port}", f"tcp:{extra}"])
    assert lines == [f"listening on tcp/{a.tcp}",
                     f"cannot listen on tcp/{port}: Address already in use",
                     f"listening on tcp/{extra}"]
    assert hub.ports(a.key) == [f"tcp:{a.tcp}", f"udp:{a.udp}", f"tcp:{extra}"]
    assert json.loads(ask(extra, b"\n")[0])["hostname"] == "renamed"
    taken.close()


def test_run_once_without_a_thread():
    port = free_port()
    with ResponderHub(opener=plain_opener) as h:
        assert h.add("x/y", "y", None, [f"tcp:{port}"]) == [f"listening on tcp/{port}"]
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"q\n")
            deadline = time.monotonic() + 5
            while h.connections() == 0 and time.monotonic() < deadline:
                h.run_once(0.05)  # accept
            while h.connections() and time.monotonic() < deadline:
                h.run_once(0.05)  # read, answer, close
            assert json.loads(s.recv(1000))["pod"] == "x/y"
    with pytest.raises(RuntimeError):
        h.add("x/z", "z", None, [])


def test_the_standalone_script_serves_one_pod_with_the_hub():
    port, uport = free_port(), free_port(socket.SOCK_DGRAM)
    p = subprocess.Popen([sys.executable, "-I", "-S", str(SCRIPT), "--name", "ns/s",
                          "--hostname", "s-host", f"tcp:{port}", f"udp:{uport}"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        assert [p.stdout.readline(), p.stdout.readline()] == [
            f"listening on tcp/{port}\n", f"listening on udp/{uport}\n"]
        assert json.loads(ask(port, b"x\n")[0])["hostname"] == "s-host"
        _, headers, body, _ = http(port, "/hostname")
        assert body == b"s-host\n" and headers["x-netlab-pod"] == "ns/s"
    finally:
        p.kill()
        p.wait()


def test_answers_may_name_the_pod_apart_from_its_key(hub):
    port = free_port()
    assert hub.add("host/internet", "internet", None, [f"tcp:{port}"], name="internet") == [
        f"listening on tcp/{port}"]
    assert json.loads(ask(port, b"\n")[0])["pod"] == "internet"
    _, headers, _, _ = http(port, "/")
    assert headers["x-netlab-pod"] == "internet"
    assert hub.remove("host/internet") and hub.pods() == []


def test_close_from_another_thread_ends_serve():
    h = ResponderHub(opener=plain_opener)
    h.add("x/y", "y", None, [f"tcp:{free_port()}"])
    t = threading.Thread(target=h.serve, daemon=True)  # no stop event: until closed
    t.start()
    time.sleep(0.1)
    h.close()
    t.join(5)
    assert not t.is_alive() and h.pods() == []


def test_ipv6_addresses_in_answers_are_bracketed_and_parsed_back():
    """IPv6 client and server addresses are written as net.JoinHostPort does ([addr]:port),
    IPv4 ones unchanged; the prober and the HTTP client read both back."""
    import json

    from netlab.probe import _answer
    from netlab.runtime.responder_hub import answer, pktinfo_dst

    v6 = answer("default/web", "web", "tcp", ("fd00:10:244::2", 40000, 0, 0),
                ("fd00:10:244:1::2", 8080, 0, 0))
    assert (v6["client"], v6["server"]) == ("[fd00:10:244::2]:40000", "[fd00:10:244:1::2]:8080")
    v4 = answer("default/web", "web", "tcp", ("10.244.0.2", 40000), ("10.244.1.2", 8080))
    assert (v4["client"], v4["server"]) == ("10.244.0.2:40000", "10.244.1.2:8080")
    assert _answer(json.dumps(v6).encode()) == ("default/web", "fd00:10:244::2", "")
    assert _answer(json.dumps(v4).encode()) == ("default/web", "10.244.0.2", "")
    # in6_pktinfo (IPV6_PKTINFO = 50): the address the datagram came to, then the ifindex
    data = socket.inet_pton(socket.AF_INET6, "fd00:10:244:1::2") + bytes(4)
    assert pktinfo_dst([(socket.IPPROTO_IPV6, 50, data)]) == "fd00:10:244:1::2"


# --- HTTP keep-alive ---------------------------------------------------------------------------

def read_response(f) -> tuple[str, dict[str, str], bytes]:
    """One HTTP response from a connection that may stay open (`f`: its buffered reader),
    read by its Content-Length; a HEAD answer has none of the body it announces."""
    status = f.readline().decode().rstrip("\r\n")
    assert status, "closed before a response"
    headers = {}
    while (line := f.readline().decode().rstrip("\r\n")):
        k, _, v = line.partition(":")
        headers[k.lower()] = v.strip()
    return status, headers, b"" if f.head else f.read(int(headers["content-length"]))


class Conn:
    """A client connection: its socket and a buffered reader of its answers."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = self.sock.makefile("rb")
        self.reader.head = False

    def send(self, data: bytes) -> None:
        self.reader.head = data.startswith(b"HEAD ")
        self.sock.sendall(data)

    def response(self) -> tuple[str, dict[str, str], bytes]:
        return read_response(self.reader)

    def closed(self) -> bool:
        return self.reader.read(1) == b""

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()
        self.sock.close()


def test_an_http_11_connection_serves_request_after_request(pods, tmp_path, hub):
    port = free_port()
    hub.add("ns/k", "k", None, [f"tcp:{port}"], log=tmp_path / "k.log")
    with Conn(port) as c:
        for path in ("/hostname", "/echo?msg=two", "/x"):
            c.send(f"GET {path} HTTP/1.1\r\nHost: k\r\n\r\n".encode())
            status, headers, body = c.response()
            assert status == "HTTP/1.1 200 OK" and headers["connection"] == "keep-alive"
        assert json.loads(body)["client"] == addr(c.sock)  # the same connection all along
        c.send(b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\na=1")
        assert json.loads(c.response()[2])["method"] == "POST"
        c.send(b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n")
        status, headers, _ = c.response()
        assert headers["connection"] == "close" and c.closed()
    logged = (tmp_path / "k.log").read_text().splitlines()
    assert [line.split()[5] for line in logged] == ["/hostname", "/echo?msg=two", "/x", "/p",
                                                    "/last"]


def test_pipelined_requests_are_answered_in_order(pods):
    with Conn(pods[0].tcp) as c:
        c.send(b"GET /echo?msg=1 HTTP/1.1\r\n\r\nPOST /echo?msg=2 HTTP/1.1\r\n"
               b"Content-Length: 4\r\n\r\nbodyGET /echo?msg=3 HTTP/1.1\r\n\r\n")
        assert [c.response()[2] for _ in range(3)] == [b"1", b"2", b"3"]


def test_http_10_closes_unless_it_asks_to_keep_alive(pods):
    with Conn(pods[0].tcp) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        assert c.response()[1]["connection"] == "close" and c.closed()
    with Conn(pods[0].tcp) as c:
        c.send(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        assert c.response()[1]["connection"] == "keep-alive"
        c.send(b"GET /hostname HTTP/1.0\r\n\r\n")
        assert c.response()[2] == b"a-host\n" and c.closed()


def test_head_gets_the_headers_only_and_the_connection_goes_on(pods):
    with Conn(pods[0].tcp) as c:
        c.send(b"HEAD /hostname HTTP/1.1\r\n\r\n")
        status, headers, _ = c.response()
        assert status == "HTTP/1.1 200 OK" and headers["content-length"] == "7"  # "a-host\n"
        c.send(b"GET /hostname HTTP/1.1\r\n\r\n")  # a body after HEAD's would come first
        assert c.response() [0::2] == ("HTTP/1.1 200 OK", b"a-host\n")


def test_a_body_it_does_not_read_exactly_closes_the_connection(pods):
    for request in (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                    b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                    f"POST / HTTP/1.1\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode()):
        with Conn(pods[0].tcp) as c:
            c.send(request)
            assert c.response()[1]["connection"] == "close" and c.closed()


def test_an_idle_kept_connection_is_closed_without_a_word(pods, monkeypatch):
    monkeypatch.setattr(responder_hub, "KEEPALIVE_WAIT", 0.3)
    with Conn(pods[0].tcp) as c:
        c.send(b"GET / HTTP/1.1\r\n\r\n")
        c.response()
        t0 = time.monotonic()
        assert c.closed()  # no JSON line for a silent client: it was served already
        assert 0.25 <= time.monotonic() - t0 < 2
    with Conn(pods[0].tcp) as c:
        c.send(b"GET / HTTP/1.1\r\n\r\n")
        c.response()
        c.sock.shutdown(socket.SHUT_WR)  # the client is done: closed at once, nothing sent
        t0 = time.monotonic()
        assert c.closed() and time.monotonic() - t0 < 0.25
