"""netlab.http_client without a lab: requests from the test's own namespace to servers on
127.0.0.1 (the responder hub, and a TLS echo server with certificates openssl makes in a
temporary directory), and curl's option forms it parses."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from netlab.http_client import HttpResult, host_header, request, request_headers
from netlab.runtime.responder_hub import ResponderHub, plain_opener


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def responder() -> Iterator[int]:
    """The responder for pod default/web-1, served on 127.0.0.1:PORT; yields PORT."""
    hub = ResponderHub(opener=plain_opener)
    port = free_port()
    assert hub.add("default/web-1", "web-1", None, [f"tcp:{port}"]) == [
        f"listening on tcp/{port}"]
    stop = threading.Event()
    t = threading.Thread(target=hub.serve, args=(stop,), daemon=True)
    t.start()
    yield port
    stop.set()
    hub.wake()
    t.join(5)
    hub.close()


def test_the_backend_reports_what_it_received(responder: int):
    url = f"http://Shop.Example:{responder}/a/b?x=1&x=2&y="
    r = request(None, url, "127.0.0.1", headers={"X-Canary": "always"})
    assert (r.status, r.reason, r.error, r.ok) == (200, "OK", None, True)
    assert r.answered_by == "default/web-1" and r.version == "HTTP/1.1"
    assert (r.seen_method, r.seen_path, r.seen_host) == ("GET", "/a/b?x=1&x=2&y=",
                                                        f"shop.example:{responder}")
    assert r.seen_query == {"x": ["1", "2"], "y": [""]}
    assert r.seen_client == "127.0.0.1"
    assert r.seen_headers["x-canary"] == "always"
    assert r.seen_headers["user-agent"] == "netlab-http"
    assert r.request_line == "GET /a/b?x=1&x=2&y= HTTP/1.1"
    # what was sent is what arrived, header for header
    assert {k.lower(): v for k, v in r.sent_headers.items()} == r.seen_headers


def test_a_body_is_sent_with_its_length(responder: int):
    body = b"name=ada&" * 3000  # 27 000 bytes: more than one segment
    r = request(None, f"http://shop.example:{responder}/users", "127.0.0.1", "POST",
                {"Content-Type": "application/x-www-form-urlencoded"}, data=body)
    assert r.status == 200 and r.seen_method == "POST", r
    assert r.seen_headers["content-length"] == str(len(body))
    assert r.seen_headers["content-type"] == "application/x-www-form-urlencoded"


def test_a_host_header_of_ones_own_replaces_the_urls(responder: int):
    r = request(None, f"http://127.0.0.1:{responder}/", "127.0.0.1",
                headers={"host": "shop.example", "user-agent": "curl/8"})
    assert (r.seen_host, r.seen_headers["user-agent"]) == ("shop.example", "curl/8")
    assert list(r.sent_headers) == ["Accept", "host", "user-agent"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_the_method_and_host_the_backend_saw_are_always_filled(responder: int, method: str):
    r = request(None, f"http://shop.example:{responder}/m", "127.0.0.1", method)
    assert (r.status, r.seen_method, r.seen_host, r.seen_path) == (
        200, method, f"shop.example:{responder}", "/m"), r


def test_the_responder_sets_the_response_headers_asked_for(responder: int):
    r = request(None, f"http://shop.example:{responder}/", "127.0.0.1",
                headers={"X-Echo-Set-Header": "X-Header-Set:v1,X-Header-Add:a,X-Header-Add:b"})
    assert (r.headers["X-Header-Set"], r.headers["X-Header-Add"]) == ("v1", "a,b")


@pytest.fixture
def canned() -> Iterator[tuple[list[bytes], int]]:
    """A server on 127.0.0.1:PORT answering each connection with the next of `answers` (a
    raw HTTP response the test appends), then closing; yields (answers, PORT)."""
    answers: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(answers.pop(0))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield answers, server.getsockname()[1]
    stop.set()
    t.join(5)
    server.close()


def test_a_response_header_sent_twice_is_joined_not_overwritten(canned):
    answers, port = canned
    answers.append(b"HTTP/1.1 200 OK\r\nX-Dup: a\r\nContent-Length: 0\r\nx-dup: b\r\n"
                   b"X-DUP: c, d\r\nX-One: 1\r\nConnection: close\r\n\r\n")
    r = request(None, f"http://a.example:{port}/", "127.0.0.1")
    assert r.status == 200, r
    assert r.headers == {"X-Dup": "a,b,c, d", "Content-Length": "0", "X-One": "1",
                         "Connection": "close"}


def test_the_conformance_echo_servers_answer_is_read_too(canned):
    """gateway-api's echo-basic: headers are lists of values under canonical names, its
    "path" is the request URI, and it has no "uri"."""
    answers, port = canned
    body = json.dumps({"path": "/a?b=1", "host": "shop.example", "method": "PATCH",
                       "proto": "HTTP/1.1", "headers": {"User-Agent": ["netlab-http"],
                                                        "X-Multi": ["a", "b"]},
                       "namespace": "ns", "pod": "echo-1"}).encode()
    answers.append(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    r = request(None, f"http://shop.example:{port}/a?b=1", "127.0.0.1", "PATCH")
    assert (r.seen_method, r.seen_path, r.seen_host) == ("PATCH", "/a?b=1", "shop.example")
    assert r.seen_headers == {"user-agent": "netlab-http", "x-multi": "a,b"}


def test_a_json_answer_that_is_no_echo_leaves_the_seen_fields_empty(canned):
    answers, port = canned
    body = b'{"pod": "ns/p", "client": "10.0.0.1:5", "headers": {"a": "b"}}'
    answers.append(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    r = request(None, f"http://a.example:{port}/", "127.0.0.1")
    assert r.status == 200
    assert (r.seen_method, r.seen_path, r.seen_host, r.seen_headers) == (None, None, None, {})


def test_no_answer_is_an_error_not_an_exception():
    r = request(None, f"http://shop.example:{free_port()}/", "127.0.0.1", timeout=1)
    assert r.status is None and not r.ok
    assert r.error and r.error.startswith("ConnectionRefusedError")


def test_host_header_and_default_headers():
    assert host_header("http://a.example/") == "a.example"
    assert host_header("https://a.example:443/") == "a.example"
    assert host_header("https://a.example:8443/") == "a.example:8443"
    assert host_header("http://[fd00::1]:8080/x") == "[fd00::1]:8080"
    assert request_headers("http://a.example/", {"X-A": "1"}, b"abc") == {
        "Host": "a.example", "User-Agent": "netlab-http", "Accept": "*/*", "X-A": "1",
        "Content-Length": "3"}


def test_results_keep_every_field_for_json():
    r = HttpResult("http://a/", "10.0.0.1", None)
    assert {"answered_by", "seen_headers", "certificate_names", "seen_method", "seen_path",
            "seen_host", "seen_query", "error"} <= set(r.to_json())


# --- TLS: a server with a certificate for shop.example from a CA of the test's ---------------

def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "1",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem (signed shop.example's server.pem, key server.key) and other-ca.pem."""
    d = tmp_path_factory.mktemp("certs")
    _ca(d, "ca")
    _ca(d, "other-ca")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=shop.example",
             cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:shop.example,DNS:www.shop.example\n"
                               "basicConstraints=CA:FALSE\n"
                               "keyUsage=critical,digitalSignature\n"
                               "extendedKeyUsage=serverAuth\n"
                               "authorityKeyIdentifier=keyid\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf",
             cwd=d)
    return d


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with what it received, the body included."""

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        out = json.dumps({"method": self.command, "uri": self.path,
                          "host": self.headers.get("Host"), "body": body,
                          "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = _echo

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tls_server(certs: Path) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    t.join(5)


def test_default_https_reports_the_names_without_verifying(tls_server: int):
    r = request(None, f"https://not-the-name.example:{tls_server}/", "127.0.0.1")
    assert r.status == 200 and r.error is None, r
    assert r.certificate_names == ["shop.example", "www.shop.example"]
    assert r.verified is False


def test_cacert_verifies_the_chain_and_the_host(tls_server: int, certs: Path):
    r = request(None, f"https://shop.example:{tls_server}/p?q=1", "127.0.0.1", "PUT",
                {"Content-Type": "text/plain"}, data=b"hello", cacert=str(certs / "ca.pem"))
    assert (r.status, r.error, r.verified) == (200, None, True), r
    assert r.certificate_names == ["shop.example", "www.shop.example"]
    echoed = json.loads(r.body)
    assert (echoed["method"], echoed["uri"], echoed["body"]) == ("PUT", "/p?q=1", "hello")
    assert echoed["host"] == f"shop.example:{tls_server}"
    assert echoed["headers"]["content-length"] == "5"
    assert (r.seen_method, r.seen_path) == ("PUT", "/p?q=1")


def test_cacert_refuses_a_certificate_for_another_name(tls_server: int, certs: Path):
    r = request(None, f"https://other.example:{tls_server}/", "127.0.0.1",
                cacert=str(certs / "ca.pem"))
    assert r.status is None and not r.verified
    assert r.error and r.error.startswith("certificate verification failed:"), r.error
    assert "Hostname mismatch" in r.error and "other.example" in r.error


def test_cacert_refuses_a_certificate_of_another_ca(tls_server: int, certs: Path):
    r = request(None, f"https://shop.example:{tls_server}/", "127.0.0.1",
                cacert=str(certs / "other-ca.pem"))
    assert r.status is None
    assert r.error and r.error.startswith("certificate verification failed:"), r.error
    assert "issuer" in r.error, r.error


def test_insecure_wins_over_cacert_as_in_curl(tls_server: int, certs: Path):
    r = request(None, f"https://other.example:{tls_server}/", "127.0.0.1",
                cacert=str(certs / "other-ca.pem"), insecure=True)
    assert (r.status, r.verified) == (200, False), r


# --- Lab.http: where a request goes (a plan, no lab: the client is recorded) -----------------

@pytest.fixture
def lab_http(monkeypatch):
    """lab_http(url, **kwargs) -> (the address the client was given, the proxy `to` asked
    for, the client's keyword arguments), with Lab.http's plan from a two-pod manifest."""
    from netlab import lab as api
    from netlab import targets
    from netlab.loader import build, read_text
    from netlab.model import Cluster
    from netlab.plan import make_plan

    m = build(read_text("apiVersion: v1\nkind: Pod\nmetadata: {name: client}\n"
                        "spec:\n  containers: [{name: c}]\n", "t.yaml"))
    plan = make_plan("lab", m, Cluster(), None)
    frontends: list[str | None] = []
    sent: list[tuple[tuple, dict]] = []

    class PlannedLab(api.Lab):
        @property
        def plan(self):  # type: ignore[override]
            return plan

        def _http_frontend(self, hostname, port, to):  # type: ignore[override]
            frontends.append(to)
            return type("Svc", (), {"key": "ingress-nginx/ingress-nginx-controller"})()

    monkeypatch.setattr(api, "require_root", lambda: None)
    monkeypatch.setattr(targets, "destination", lambda *a, **k: ("172.18.0.200", 80, "tcp"))
    monkeypatch.setattr(api.http_client, "request",
                        lambda *a, **k: sent.append((a, k)) or HttpResult(a[1], a[2], None))

    def _http(url: str, **kwargs):
        frontends.clear()
        sent.clear()
        PlannedLab("lab").http(url, **kwargs)
        (args, kw), = sent
        return args[2], (frontends[0] if frontends else "not asked"), kw

    return _http


def test_lab_http_resolve_pins_only_its_host_and_port(lab_http):
    pins = {"shop.example:443": "172.18.0.201"}
    assert lab_http("https://Shop.Example/", resolve=pins)[:2] == ("172.18.0.201",
                                                                  "not asked")
    assert lab_http("http://shop.example/", resolve=pins)[:2] == ("172.18.0.200", None)
    assert lab_http("https://other.example/", resolve=pins)[:2] == ("172.18.0.200", None)
    assert lab_http("https://shop.example:443/", resolve=pins, to="gateway/g")[:2] == (
        "172.18.0.201", "not asked")  # the pin is the most precise: it wins over --to


def test_lab_http_to_names_the_proxy_even_for_an_address(lab_http):
    assert lab_http("http://10.96.0.5/", to="gateway/infra/public")[:2] == (
        "172.18.0.200", "gateway/infra/public")
    assert lab_http("http://10.96.0.5/")[:2] == ("10.96.0.5", "not asked")


def test_lab_http_passes_the_body_and_certificate_options_on(lab_http):
    _, _, kw = lab_http("https://shop.example/", data=b"x", cacert="/ca.pem", insecure=True)
    assert kw == {"data": b"x", "cacert": "/ca.pem", "insecure": True}
