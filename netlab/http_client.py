"""HTTP(S) requests from inside a lab namespace, like curl: the Host header and SNI a browser
would send, a body, headers of one's own, the certificate verified against a CA or only
reported, and what the answering side saw (netlab's responder echoes it, as the Gateway API
conformance echo server does: method, path, host, query, headers).

Certificates: by default (no `cacert`, not `insecure`) nothing is verified and the
certificate's DNS names are reported: lab certificates are usually self-signed, and a test
wants to see which certificate a proxy chose. With `cacert` the chain is verified against that
CA file and the URL's host must match the certificate (curl --cacert); a failure is the
result's error. `insecure` is the default made explicit (curl -k), and wins over `cacert`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from netlab.kernel import commands
from netlab.kernel.sockets import inside

USER_AGENT = "netlab-http"


@dataclass
class HttpResult:
    url: str
    address: str
    status: int | None  # None when no HTTP answer came
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    answered_by: str | None = None  # NS/POD of the responder behind the proxy
    seen_client: str | None = None  # the address the pod saw (the proxy's)
    seen_headers: dict[str, str] = field(default_factory=dict)  # what reached the pod
    certificate_names: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    # what the backend received, from the responder's echo (None/empty: not a responder)
    seen_method: str | None = None
    seen_path: str | None = None  # the request target: path and query, as received
    seen_host: str | None = None  # its Host header
    seen_query: dict[str, list[str]] = field(default_factory=dict)
    # what was sent (curl -v's "> " lines)
    request_line: str = ""
    sent_headers: dict[str, str] = field(default_factory=dict)
    verified: bool = False  # the certificate was verified against `cacert`
    version: str = ""  # the answer's HTTP version ("HTTP/1.1")

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 400

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _names_in(der: bytes) -> list[str]:
    """subjectAltName DNS names of a certificate (openssl reads it; stdlib cannot)."""
    r = commands.run(["openssl", "x509", "-inform", "DER", "-noout", "-ext", "subjectAltName"],
                     input=der)
    text = r.stdout.decode(errors="replace")
    return [part.strip()[4:] for part in text.replace("\n", ",").split(",")
            if part.strip().startswith("DNS:")]


def host_header(url: str) -> str:
    """The Host header a client sends for `url`: the host, with the port when it is not the
    scheme's default (RFC 9110 section 7.2), an IPv6 literal in brackets."""
    u = urlsplit(url)
    host = u.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = 443 if u.scheme == "https" else 80
    return host if u.port in (None, default) else f"{host}:{u.port}"


def request_headers(url: str, headers: dict[str, str] | None = None,
                    data: bytes | None = None) -> dict[str, str]:
    """Every header a request for `url` carries, in order: Host, User-Agent, Accept (as
    curl sends them, each replaced by one of `headers` with the same name, in any case),
    then `headers`, then Content-Length when there is a body."""
    given = {k.lower(): k for k in headers or {}}
    out = {name: value for name, value in (("Host", host_header(url)),
                                           ("User-Agent", USER_AGENT), ("Accept", "*/*"))
           if name.lower() not in given}
    out |= headers or {}
    if data is not None and "content-length" not in given:
        out["Content-Length"] = str(len(data))
    return out


def _tls_context(cacert: str | None, insecure: bool) -> ssl.SSLContext:
    if cacert and not insecure:
        return ssl.create_default_context(cafile=cacert)  # CERT_REQUIRED, check_hostname
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # lab certificates are self-signed: we report them
    return ctx


def _open(netns: Path | None, address: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    opener = inside(netns) if netns is not None else contextlib.nullcontext(socket.socket)
    with opener as open_socket:
        return open_socket(family, socket.SOCK_STREAM)


def joined_headers(pairs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Headers by name, one that appears more than once (its name in any case) with its
    values joined with "," under the name it came with first (RFC 9110 section 5.3; the
    Gateway API conformance suite compares a header's values joined so). A value that is a
    list (the conformance echo server's JSON) is joined too."""
    out: dict[str, str] = {}
    first: dict[str, str] = {}
    for k, v in pairs:
        v = ",".join(map(str, v)) if isinstance(v, list) else str(v)
        name = first.setdefault(k.lower(), k)
        out[name] = f"{out[name]},{v}" if name in out else v
    return out


def _read_echo(result: HttpResult) -> None:
    """Fill the seen_* fields from the answer of netlab's responder, or of the Gateway API
    conformance echo server (its headers lists of values, its "path" the request URI); any
    other body leaves them empty."""
    try:
        info = json.loads(result.body)
    except ValueError:
        return
    if not isinstance(info, dict) or not isinstance(info.get("method"), str):
        return  # not an echo of a request (a line probe's JSON has no method)
    headers = info.get("headers")
    result.seen_headers = {k.lower(): v for k, v in joined_headers(
        headers.items() if isinstance(headers, dict) else ()).items()}
    result.seen_client = str(info.get("client", "")).rsplit(":", 1)[0].strip("[]") or None
    result.seen_method = info["method"]
    result.seen_path = info.get("uri") or info.get("path")
    result.seen_host = info.get("host") or result.seen_headers.get("host", "")
    query = info.get("query")
    result.seen_query = query if isinstance(query, dict) else {}


def request(netns: Path | None, url: str, address: str, method: str = "GET",
            headers: dict[str, str] | None = None, timeout: float = 3.0,
            data: bytes | None = None, cacert: str | None = None,
            insecure: bool = False) -> HttpResult:
    """One HTTP/1.1 request for `url`, connected to `address` (at the URL's port) from a
    socket opened in `netns` (None: where the caller is). The URL's host is the Host header
    (unless `headers` has one) and the TLS SNI. `data`: a body, with its Content-Length.
    Certificates: see the module's docstring. Never raises for network or TLS trouble: the
    result's `error` says what went wrong."""
    t0 = time.monotonic()
    u = urlsplit(url)
    https = u.scheme == "https"
    port = u.port or (443 if https else 80)
    host = u.hostname or address
    result = HttpResult(url, address, None)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    sent = request_headers(url, headers, data)
    result.request_line, result.sent_headers = f"{method} {path} HTTP/1.1", sent
    sock = _open(netns, address)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        if https:
            sock = _tls_context(cacert, insecure).wrap_socket(sock, server_hostname=host)
            result.verified = bool(cacert) and not insecure
            der = sock.getpeercert(binary_form=True)
            if der:
                result.certificate_names = _names_in(der)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        # every header explicit, so that sent_headers is what went on the wire
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in sent.items():
            conn.putheader(k, v)
        conn.endheaders(data)
        resp = conn.getresponse()
        result.status, result.reason = resp.status, resp.reason
        result.version = "HTTP/1.0" if resp.version == 10 else "HTTP/1.1"
        result.headers = joined_headers(resp.getheaders())
        result.body = resp.read().decode(errors="replace")
        result.answered_by = result.headers.get("X-Netlab-Pod")
        _read_echo(result)
    except ssl.SSLCertVerificationError as e:
        result.error = f"certificate verification failed: {e.verify_message or e.reason}"
    except (OSError, ValueError, http.client.HTTPException) as e:  # ValueError: a bad header
        result.error = f"{type(e).__name__}: {e}"
    finally:
        sock.close()
    result.seconds = round(time.monotonic() - t0, 4)
    return result
