"""The Gateway renderer's nginx.conf, proven with real requests and no lab: one private
network namespace (lo only), real nginx inside it, netlab's responder hub as the backend
pods (one 127.0.0.x address each, so every answer names its backend), and a recorder as
the mirror's backend. Everything is torn down even when a test fails."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netlab.gateway import dataplane as dp
from netlab.gateway.nginx import render
from netlab.http_client import HttpResult, request
from netlab.kernel.sockets import inside
from netlab.runtime.responder_hub import ResponderHub

PODS = {"v1": "127.0.0.2", "v2": "127.0.0.3", "v3": "127.0.0.4"}
MIRROR_ADDRESS = "127.0.0.9"
GATEWAY = "127.0.0.1"


def backend(pod: str, weight: int = 1, **kw) -> dp.Backend:
    return dp.Backend(f"gw-{pod}", weight, (f"{PODS[pod]}:9000",), ref=f"Service ns/{pod}:80",
                      **kw)


def rule(i: int, match: dp.Match, *backends: dp.Backend, **kw) -> dp.Rule:
    return dp.Rule("ns/route", i, match, backends=backends, **kw)


def prefix(path: str, **kw) -> dp.Match:
    return dp.Match("PathPrefix", path, **kw)


MIRROR = dp.Backend("gw-mirror", 1, (f"{MIRROR_ADDRESS}:9000",))
RULES = (
    rule(0, dp.Match("Exact", "/exact"), backend("v1")),
    rule(1, prefix("/exact"), backend("v2")),
    rule(2, prefix("/prefix/"), backend("v2")),  # a trailing / is ignored
    rule(3, dp.Match("RegularExpression", "/re/[0-9]+"), backend("v3")),
    rule(4, prefix("/method", method="POST"), backend("v1")),
    rule(5, prefix("/method"), backend("v2")),
    rule(6, prefix("/hdr", headers=(("Exact", "X-Ver", "a.b$"),)), backend("v1")),
    rule(7, prefix("/hdr", headers=(("RegularExpression", "x-re", "v[0-9]+"),)), backend("v2")),
    rule(8, prefix("/q", query=(("Exact", "q", "1"),)), backend("v1")),
    rule(9, prefix("/q", query=(("RegularExpression", "q", "[a-z]+"),)), backend("v2")),
    rule(10, prefix("/split"), backend("v1", 90), backend("v2", 10), backend("v3", 0)),
    rule(11, prefix("/invalid"), dp.Backend("gw-invalid", error=500)),
    rule(12, prefix("/empty"), dp.Backend("gw-empty")),
    rule(13, prefix("/allzero"), backend("v1", 0)),
    rule(14, prefix("/rule-error"), backend("v1"), error=500),
    rule(15, prefix("/half-invalid"), backend("v1", 1), dp.Backend("gw-invalid", 1, error=500)),
    rule(20, prefix("/req"), backend("v1", request_headers=dp.HeaderModifier(
        set=(("X-Backend-Set", "b"),))), request_headers=dp.HeaderModifier(
        set=(("X-Header-Set", "set-overwrites-values"),),
        add=(("X-Header-Add", "add-appends-values"),), remove=("X-Header-Remove",))),
    rule(21, prefix("/resp-add"), backend("v1"), response_headers=dp.HeaderModifier(
        add=(("X-Netlab-Pod", "extra"), ("X-New", "n$1")))),
    rule(22, prefix("/resp-set"), backend("v1"), response_headers=dp.HeaderModifier(
        set=(("x-netlab-pod", "replaced"),))),
    rule(23, prefix("/resp-remove"), backend("v1", response_headers=dp.HeaderModifier(
        remove=("X-Netlab-Pod",)))),
    rule(30, prefix("/redirect-prefix"), redirect=dp.Redirect(
        path=dp.PathModifier("ReplacePrefixMatch", "/replacement"))),
    rule(31, prefix("/redirect-full"), redirect=dp.Redirect(
        hostname="example.org", path=dp.PathModifier("ReplaceFullPath", "/full"),
        status_code=301)),
    rule(32, prefix("/redirect-https"), redirect=dp.Redirect(scheme="https")),
    rule(33, prefix("/redirect-port"), redirect=dp.Redirect(port=8443, status_code=308)),
    rule(40, prefix("/rewrite-prefix/one"), backend("v1"), rewrite=dp.Rewrite(
        path=dp.PathModifier("ReplacePrefixMatch", "/one"))),
    rule(41, prefix("/strip-prefix"), backend("v1"), rewrite=dp.Rewrite(
        path=dp.PathModifier("ReplacePrefixMatch", "/"))),
    rule(42, prefix("/rewrite-full"), backend("v1"), rewrite=dp.Rewrite(
        hostname="rewritten.example", path=dp.PathModifier("ReplaceFullPath", "/one"))),
    rule(50, prefix("/mirror"), backend("v2"), mirrors=(dp.Mirror(MIRROR),),
         request_headers=dp.HeaderModifier(set=(("X-Mirrored", "yes"),))),
)
CONFIG = dp.GatewayConfig("ns/gw", (
    dp.Server(8080, "HTTP", (
        dp.VirtualHost("exact.example.com", RULES),
        dp.VirtualHost("*.wild.example.com", (rule(0, prefix("/"), backend("v2")),)),
        dp.VirtualHost(None, (rule(0, prefix("/"), backend("v3")),)),
    )),
    dp.Server(8081, "HTTP", (  # no virtual host without hostname: other hosts get 404
        dp.VirtualHost("only.example.com", (rule(0, prefix("/"), backend("v1")),)),
        dp.VirtualHost("*.wild.example.com", (rule(0, prefix("/"), backend("v2")),)),
    )),
    dp.Server(8443, "HTTPS", (
        dp.VirtualHost("a.example.com", (rule(0, prefix("/"), backend("v1")),)),
        dp.VirtualHost("b.example.com", (rule(0, prefix("/"), backend("v2")),)),
    ), (dp.Certificate(("a.example.com",), "a.crt", "a.key"),
        dp.Certificate(("b.example.com",), "b.crt", "b.key"))),
))


@dataclass
class Recorder:
    """A tiny HTTP server that keeps the head of every request it gets (the mirror)."""

    sock: socket.socket
    seen: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data and (chunk := conn.recv(4096)):
                        data += chunk
                self.seen.append(data.decode(errors="replace"))
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")


@dataclass
class Env:
    netns: Path
    recorder: Recorder

    def get(self, url: str, method: str = "GET", headers: dict[str, str] | None = None
            ) -> HttpResult:
        return request(self.netns, url, GATEWAY, method, headers)


def _self_signed(d: Path, name: str) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(d / f"{name[0]}.key"), "-out", str(d / f"{name[0]}.crt")],
                   check=True, capture_output=True)


def _wait_listening(netns: Path, port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, "nginx exited"
        with inside(netns) as open_socket:
            s = open_socket(socket.AF_INET, socket.SOCK_STREAM)
        with s:
            s.settimeout(0.5)
            if s.connect_ex((GATEWAY, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nginx does not listen on {port}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    name = f"netlab-gwtest-{os.getpid()}"
    netns = Path("/run/netns") / name
    d = tmp_path_factory.mktemp("gateway-nginx")
    for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (d / "tmp" / t).mkdir(parents=True)
    _self_signed(d, "a.example.com")
    _self_signed(d, "b.example.com")
    conf = d / "nginx.conf"
    conf.write_text(render(CONFIG, d, ipv6=True))
    subprocess.run(["nginx", "-t", "-q", "-c", str(conf), "-p", str(d)], check=True)
    made = False
    hub = ResponderHub()
    stop = threading.Event()
    hub_thread = threading.Thread(target=hub.serve, args=(stop,), daemon=True)
    proc: subprocess.Popen | None = None
    recorder: Recorder | None = None
    rec_thread: threading.Thread | None = None
    try:
        subprocess.run(["ip", "netns", "add", name], check=True)
        made = True
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        hub_thread.start()
        for pod, address in PODS.items():
            assert hub.add(pod, f"{pod}-host", netns, [f"tcp:9000@{address}"],
                           name=f"ns/{pod}") == ["listening on tcp/9000@" + address]
        with inside(netns) as open_socket:
            s = open_socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((MIRROR_ADDRESS, 9000))
        s.listen(16)
        recorder = Recorder(s)
        rec_thread = threading.Thread(target=recorder.serve, daemon=True)
        rec_thread.start()
        proc = subprocess.Popen(["ip", "netns", "exec", name, "nginx", "-c", str(conf),
                                 "-p", str(d), "-g", "daemon off;"])
        for port in (8080, 8081, 8443):
            _wait_listening(netns, port, proc)
        yield Env(netns, recorder)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if recorder is not None and rec_thread is not None:
            recorder.stop.set()
            rec_thread.join(5)
            recorder.sock.close()
        stop.set()
        hub.wake()
        if hub_thread.is_alive():
            hub_thread.join(5)
        hub.close()
        if made:
            left = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                  text=True).stdout.split()
            subprocess.run(["ip", "netns", "del", name], check=False)
            assert not left, f"processes left in {name}: {left}"
            assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                              text=True).stdout


H = "http://exact.example.com:8080"


def pod(r: HttpResult) -> str | None:
    assert r.error is None, r.error
    return r.answered_by


# --- matching -------------------------------------------------------------------------------

def test_path_exact_prefix_regex(env: Env):
    assert pod(env.get(f"{H}/exact")) == "ns/v1"
    assert pod(env.get(f"{H}/exact/more")) == "ns/v2"  # Exact does not match: the prefix rule
    assert pod(env.get(f"{H}/%65xact")) == "ns/v1"  # matched on the normalized path
    assert pod(env.get(f"{H}/x/../exact")) == "ns/v1"
    assert pod(env.get(f"{H}/prefix")) == "ns/v2"
    assert pod(env.get(f"{H}/prefix/a/b")) == "ns/v2"
    assert env.get(f"{H}/prefixx").status == 404  # element-wise: not a prefix of /prefixx
    assert pod(env.get(f"{H}/re/123")) == "ns/v3"
    assert env.get(f"{H}/re/12a").status == 404  # the regex matches the whole path
    assert env.get(f"{H}/nothing").status == 404


def test_method(env: Env):
    assert pod(env.get(f"{H}/method", "POST")) == "ns/v1"
    assert pod(env.get(f"{H}/method", "GET")) == "ns/v2"


def test_headers(env: Env):
    assert pod(env.get(f"{H}/hdr", headers={"x-ver": "a.b$"})) == "ns/v1"  # name: any case
    assert env.get(f"{H}/hdr", headers={"X-Ver": "axb$"}).status == 404  # '.' is literal
    assert env.get(f"{H}/hdr", headers={"X-Ver": "A.B$"}).status == 404  # value: exact case
    assert env.get(f"{H}/hdr", headers={"X-Ver": "a.b$c"}).status == 404  # the whole value
    assert pod(env.get(f"{H}/hdr", headers={"X-RE": "v12"})) == "ns/v2"
    assert env.get(f"{H}/hdr", headers={"X-Re": "v12x"}).status == 404
    assert env.get(f"{H}/hdr").status == 404  # absent


def test_query(env: Env):
    assert pod(env.get(f"{H}/q?q=1")) == "ns/v1"
    assert pod(env.get(f"{H}/q?a=2&q=1&b")) == "ns/v1"
    assert pod(env.get(f"{H}/q?q=abc")) == "ns/v2"
    assert pod(env.get(f"{H}/q?q=abc&q=1")) == "ns/v2"  # the first occurrence counts
    assert env.get(f"{H}/q?Q=1").status == 404  # names are case-sensitive
    assert env.get(f"{H}/q?qq=1").status == 404
    assert env.get(f"{H}/q").status == 404


def test_ipv6_listener(env: Env):
    r = request(env.netns, f"{H}/exact", "::1")
    assert (pod(r), r.seen_headers["x-real-ip"]) == ("ns/v1", "::1")


def test_hostnames(env: Env):
    assert pod(env.get("http://EXACT.example.com:8080/exact")) == "ns/v1"
    assert pod(env.get("http://x.wild.example.com:8080/")) == "ns/v2"
    assert pod(env.get("http://y.x.wild.example.com:8080/")) == "ns/v2"  # one or more labels
    assert pod(env.get("http://wild.example.com:8080/")) == "ns/v3"  # not the bare suffix
    assert pod(env.get("http://other.example:8080/")) == "ns/v3"  # the host-less vhost
    assert pod(env.get("http://only.example.com:8081/")) == "ns/v1"
    assert pod(env.get("http://a.wild.example.com:8081/")) == "ns/v2"
    assert env.get("http://wild.example.com:8081/").status == 404
    assert env.get("http://other.example:8081/").status == 404


# --- backends -------------------------------------------------------------------------------

def test_weights(env: Env):
    seen = Counter(pod(env.get(f"{H}/split")) for _ in range(500))
    assert set(seen) <= {"ns/v1", "ns/v2"}, seen  # weight 0 never
    assert 20 <= seen["ns/v2"] <= 90, seen  # 10% of 500 = 50, σ ≈ 6.7


def test_errors(env: Env):
    assert env.get(f"{H}/invalid").status == 500
    assert env.get(f"{H}/empty").status == 503
    assert env.get(f"{H}/allzero").status == 500
    assert env.get(f"{H}/rule-error").status == 500
    statuses = Counter(env.get(f"{H}/half-invalid").status for _ in range(60))
    assert set(statuses) == {200, 500}, statuses  # the invalid backend's share only
    assert pod(env.get(f"{H}/exact")) == "ns/v1"  # the other rules keep working


# --- filters --------------------------------------------------------------------------------

def test_request_headers(env: Env):
    r = env.get(f"{H}/req", headers={"X-Header-Set": "old", "x-header-add": "orig",
                                     "X-Header-Remove": "gone", "Other": "kept"})
    assert pod(r) == "ns/v1"
    seen = r.seen_headers
    assert seen["x-header-set"] == "set-overwrites-values"
    assert seen["x-header-add"] == "orig,add-appends-values"
    assert "x-header-remove" not in seen
    assert seen["other"] == "kept"
    assert seen["x-backend-set"] == "b"  # the backendRef's own filter
    assert seen["host"] == "exact.example.com:8080"  # the Host header as sent, port included
    assert seen["x-forwarded-host"] == "exact.example.com"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-port"] == "8080"
    assert seen["x-real-ip"] == seen["x-forwarded-for"] == "127.0.0.1"
    r = env.get(f"{H}/req")
    assert r.seen_headers["x-header-add"] == "add-appends-values"


def test_response_headers(env: Env):
    r = env.get(f"{H}/resp-add")
    assert r.status == 200
    assert r.headers["X-Netlab-Pod"] == "ns/v1,extra"
    assert r.headers["X-New"] == "n$1"  # a literal '$'
    r = env.get(f"{H}/resp-set")
    assert r.status == 200 and r.headers["x-netlab-pod"] == "replaced"
    r = env.get(f"{H}/resp-remove")
    assert r.status == 200 and '"pod": "ns/v1"' in r.body
    assert "X-Netlab-Pod" not in r.headers


def test_redirect(env: Env):
    r = env.get(f"{H}/redirect-prefix/lemon?x=1")
    assert (r.status, r.headers["Location"]) == (
        302, "http://exact.example.com:8080/replacement/lemon?x=1")
    r = env.get(f"{H}/redirect-prefix")
    assert r.headers["Location"] == "http://exact.example.com:8080/replacement"
    r = env.get(f"{H}/redirect-full/a")
    assert (r.status, r.headers["Location"]) == (301, "http://example.org:8080/full")
    r = env.get(f"{H}/redirect-https/a?b")  # a scheme given: its well-known port, left out
    assert (r.status, r.headers["Location"]) == (302, "https://exact.example.com/redirect-https/a?b")
    r = env.get(f"{H}/redirect-port/%0d%0aX-Bad:%20yes")  # raw: no header splitting
    assert r.status == 308
    assert r.headers["Location"] == \
        "http://exact.example.com:8443/redirect-port/%0d%0aX-Bad:%20yes"
    assert "X-Bad" not in r.headers


def test_rewrite(env: Env):
    r = env.get(f"{H}/rewrite-prefix/one/two?k=v")
    assert pod(r) == "ns/v1"
    assert r.body and '"path": "/one/two"' in r.body
    assert '"path": "/one"' in env.get(f"{H}/rewrite-prefix/one").body
    # the new path is escaped again on its way upstream
    assert '"path": "/one/a%20b"' in env.get(f"{H}/rewrite-prefix/one/a%20b").body
    assert '"path": "/three"' in env.get(f"{H}/strip-prefix/three").body
    assert '"path": "/"' in env.get(f"{H}/strip-prefix").body
    assert '"path": "/"' in env.get(f"{H}/strip-prefix/").body
    r = env.get(f"{H}/rewrite-full/a/b")
    assert '"path": "/one"' in r.body
    assert r.seen_headers["host"] == "rewritten.example"


def test_mirror(env: Env):
    before = len(env.recorder.seen)
    r = env.get(f"{H}/mirror/path?z=1", headers={"X-Client": "c"})
    assert pod(r) == "ns/v2"
    assert r.seen_headers["x-mirrored"] == "yes"
    deadline = time.monotonic() + 5
    while len(env.recorder.seen) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(env.recorder.seen) == before + 1
    head = env.recorder.seen[-1].lower()
    assert head.startswith("get /mirror/path?z=1 http/1.")
    assert "x-client: c" in head and "x-mirrored: yes" in head


# --- TLS ------------------------------------------------------------------------------------

def test_https_sni(env: Env):
    a = env.get("https://a.example.com:8443/")
    assert (pod(a), a.certificate_names) == ("ns/v1", ["a.example.com"])
    assert a.seen_headers["x-forwarded-proto"] == "https"
    b = env.get("https://b.example.com:8443/")
    assert (pod(b), b.certificate_names) == ("ns/v2", ["b.example.com"])
    other = env.get("https://c.example.com:8443/")  # the port's first certificate, no vhost
    assert (other.status, other.certificate_names) == (404, ["a.example.com"])
