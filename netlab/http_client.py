"""HTTP(S) requests from inside a lab namespace, with the Host header and SNI a browser
would send, and what the answering side saw (netlab's responder reports it)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from netlab.kernel import commands
from netlab.kernel.sockets import inside


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


def request(netns: Path, url: str, address: str, method: str = "GET",
            headers: dict[str, str] | None = None, timeout: float = 3.0) -> HttpResult:
    t0 = time.monotonic()
    u = urlsplit(url)
    https = u.scheme == "https"
    port = u.port or (443 if https else 80)
    host = u.hostname or address
    result = HttpResult(url, address, None)
    with inside(netns) as open_socket:
        sock = open_socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                           socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        if https:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # lab certificates are self-signed: we report them
            sock = ctx.wrap_socket(sock, server_hostname=host)
            der = sock.getpeercert(binary_form=True)
            if der:
                result.certificate_names = _names_in(der)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        conn.request(method, path, headers={"User-Agent": "netlab-http", **(headers or {})})
        resp = conn.getresponse()
        result.status, result.reason = resp.status, resp.reason
        result.headers = {k: v for k, v in resp.getheaders()}
        result.body = resp.read().decode(errors="replace")
        result.answered_by = result.headers.get("X-Netlab-Pod")
        try:
            info = json.loads(result.body)
            result.seen_client = info.get("client", "").rsplit(":", 1)[0].strip("[]") or None
            result.seen_headers = info.get("headers", {})
        except ValueError:
            pass
    except (OSError, http.client.HTTPException) as e:
        result.error = f"{type(e).__name__}: {e}"
    finally:
        sock.close()
    result.seconds = round(time.monotonic() - t0, 4)
    return result
