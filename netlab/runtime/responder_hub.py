"""The responder for many pods in one process: one selectors loop, one listening socket per
pod and port, each opened inside its pod's network namespace (a socket stays in the
namespace it was opened in) and carrying the pod's identity, so every answer names its pod.

This module is the one implementation of the responder's replies: the standalone script
netlab/responder.py runs it for one pod. Standard library only at import time (the script
loads it with `python3 -I -S`); only the default opener reaches for netlab.kernel, and only
when it is given a namespace.

Port specs are "proto:port" (IPv4) and "proto6:port" (IPv6 only: a dual-stack pod listens
on both, each its own socket). Replies, as one JSON object naming the pod, hostname,
protocol, client and server (an IPv6 address in brackets, as net.JoinHostPort writes it):
  TCP/SCTP  a line (or silence, for LINE_WAIT): a JSON line back, then close; an HTTP
            request (headers and a body of up to MAX_BODY bytes within HTTP_WAIT) gets an
            HTTP/1.1 response, and the connection stays open for the next request (HTTP/1.1
            keep-alive, as Go's server and nginx do; closed after KEEPALIVE_WAIT idle, or
            when the request says `Connection: close`, is HTTP/1.0 without `keep-alive`,
            has a chunked body, or is refused): /hostname, /clientip, /echo?msg=...,
            anything else the JSON,
            with what the request said, as the Gateway API conformance echo server reports
            it: method, path, uri (path and query), query, host and headers (a header sent
            on several lines joined with ","). Like that server it adds the response headers
            a request asks for in `X-Echo-Set-Header: Name:value,Name:value`, and logs
            each request it answers ("Echoing back request made to /path to client
            (10.244.1.5:40112)": the suite finds mirrored requests by it) to the pod's log
            file, when it has one.
  UDP       each datagram one JSON datagram, sent from the address it was sent to.
Nothing blocks: reads, writes and timeouts are all states of the one loop (a log line is
one write to a local file, before the answer is sent, as the echo server prints it).
"""

from __future__ import annotations

import _thread
import contextlib
import heapq
import json
import os
import selectors
import socket
import string
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, urlsplit

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")
LINE_WAIT = 0.2  # a client that says nothing gets its answer after this
HTTP_WAIT = 2.0  # an HTTP request not complete by then (headers, body) gets no answer
KEEPALIVE_WAIT = 60.0  # a kept-alive HTTP connection idle this long is closed
MAX_BODY = 64 * 1024  # a larger request body is refused (413) instead of read
WRITE_WAIT = 1.0  # a client that does not read its answer is dropped after this
LOG_MAX = 4 * 1024 * 1024  # a pod's request log starts over past this (kubelet rotates too)
IDLE_WAIT = 0.1  # serve() checks its stop event at least this often
BACKLOG = 1024  # connections a pod's port queues while the loop is busy with others
IP_PKTINFO = 8
IPV6_RECVPKTINFO, IPV6_PKTINFO = 49, 50
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
# what a port with a fixed HTTP reply answers to a request that is not HTTP (as Go's server)
BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Connection: close\r\n\r\n400 Bad Request")

NetnsPath = str | os.PathLike[str] | None
SocketFactory = Callable[..., socket.socket]
# opener(netns): a context manager whose value opens sockets in that namespace
Opener = Callable[[NetnsPath], contextlib.AbstractContextManager[SocketFactory]]


# --- the replies (pure) ---------------------------------------------------------------------

def host_port(address: tuple) -> str:
    host = address[0]
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def answer(pod: str, hostname: str, proto: str, client: tuple, server: tuple) -> dict:
    return {"pod": pod, "hostname": hostname, "protocol": proto,
            "client": host_port(client), "server": host_port(server)}


def _http_head(data: bytes) -> tuple[list[str], dict[str, str]]:
    """The request line's words and the headers (names in lower case) of an HTTP request; a
    header sent on several lines is one, its values joined with "," (as RFC 9110 section 5.3
    allows, and as the conformance suite compares them)."""
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
    headers: dict[str, str] = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        k, v = k.strip().lower(), v.strip()
        headers[k] = f"{headers[k]},{v}" if k in headers else v
    return head[0].split(), headers


# headers a request may not set on its answer: they frame the response, or name the pod
_FRAMING = frozenset(("content-length", "content-type", "connection", "transfer-encoding",
                      "x-netlab-pod"))
_TOKEN = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")  # RFC 9110 5.6.2


def echo_set_headers(value: str) -> list[tuple[str, str]]:
    """The response headers an `X-Echo-Set-Header` value asks for, as the conformance echo
    server reads it: "Name:value" pairs separated by ","; a name given twice gets its values
    joined with ",". Pairs without a valid name (an RFC 9110 token), and the headers that
    frame the answer, are left out."""
    out: dict[str, tuple[str, str]] = {}
    for pair in value.split(","):
        name, _, v = pair.strip().partition(":")
        key, v = name.lower(), v.strip()
        if not name or not _TOKEN.issuperset(name) or key in _FRAMING or "\n" in v \
                or "\r" in v:
            continue
        out[key] = (out[key][0], f"{out[key][1]},{v}") if key in out else (name, v)
    return list(out.values())


def request_log_line(data: bytes, client: tuple) -> str:
    """The conformance echo server's line for an HTTP request it answers: the request target
    as received, the client's address and port."""
    words = data.split(b"\r\n", 1)[0].split()  # as stream_reply reads it; no line breaks
    target = words[1].decode(errors="replace") if len(words) > 1 else "/"
    return f"Echoing back request made to {target} to client ({host_port(client)})\n"


def _body_length(headers: dict[str, str]) -> int | None:
    """The Content-Length a request announces (0 without one); None if it is not a number.
    A chunked body is not read: a client sending one (curl -d sends Content-Length, so does
    nginx to its upstreams) gets its answer after the headers."""
    value = headers.get("content-length", "0") or "0"
    return int(value) if value.isdigit() else None


def _http_response(status: str, pod: str, body: bytes, ctype: str,
                   extra: list[tuple[str, str]] | None = None, keep: bool = False,
                   head: bool = False) -> bytes:
    """An HTTP/1.1 response; `keep`: the connection stays open for the next request;
    `head`: the answer to a HEAD request (its headers only, Content-Length as for GET)."""
    more = "".join(f"{k}: {v}\r\n" for k, v in extra or ())
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\nX-Netlab-Pod: {pod}\r\n"
            f"{more}\r\n").encode() + (b"" if head else body)


def keeps_alive(data: bytes) -> bool:
    """Whether the connection of this complete HTTP request stays open after its answer
    (RFC 9112 section 9.3): HTTP/1.1 unless it says `Connection: close`, HTTP/1.0 only if
    it says `Connection: keep-alive`; never after a body this server does not read exactly
    (chunked, too large, a bad Content-Length): its rest would be read as a request."""
    if not data.startswith(HTTP_METHODS):
        return False
    request, headers = _http_head(data)
    length = _body_length(headers)
    if length is None or length > MAX_BODY or "transfer-encoding" in headers:
        return False
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    version = request[2] if len(request) > 2 else "HTTP/1.0"
    if version == "HTTP/1.1":
        return "close" not in tokens
    return version == "HTTP/1.0" and "keep-alive" in tokens


def request_length(data: bytes) -> int:
    """How many bytes of `data` the first request takes (a complete HTTP request: its
    headers and the body they announce); what follows is the next request."""
    end = data.find(b"\r\n\r\n") + 4
    return end + (_body_length(_http_head(data)[1]) or 0)


def stream_reply(pod: str, hostname: str, proto: str, client: tuple, server: tuple,
                 data: bytes, keep: bool = False) -> bytes:
    """What a TCP/SCTP client that sent `data` gets back (then the connection closes, unless
    `keep`: keeps_alive(data) said it stays open)."""
    info = answer(pod, hostname, proto, client, server)
    if not data.startswith(HTTP_METHODS):
        return (json.dumps(info) + "\n").encode()
    request, headers = _http_head(data)
    length = _body_length(headers)
    if length is None:
        return _http_response("400 Bad Request", pod, b"bad Content-Length\n", "text/plain")
    if length > MAX_BODY:
        return _http_response("413 Payload Too Large", pod,
                              f"a body of at most {MAX_BODY} bytes\n".encode(), "text/plain")
    target = request[1] if len(request) > 1 else "/"
    url = urlsplit(target)
    # the conformance echo server's fields (gateway-api conformance/echo-basic): its "path" is
    # the request URI; here "path" stays the path alone and "uri" is the target as received
    info |= {"method": request[0], "path": url.path, "uri": target,
             "query": parse_qs(url.query, keep_blank_values=True),
             "host": headers.get("host", ""), "headers": headers}
    if url.path == "/hostname":
        body, ctype = f"{hostname}\n".encode(), "text/plain"
    elif url.path == "/clientip":
        body, ctype = f"{info['client']}\n".encode(), "text/plain"
    elif url.path == "/echo":
        body, ctype = parse_qs(url.query).get("msg", [""])[0].encode(), "text/plain"
    else:
        body, ctype = (json.dumps(info) + "\n").encode(), "application/json"
    echo = headers.get("x-echo-set-header")
    return _http_response("200 OK", pod, body, ctype, echo_set_headers(echo) if echo else None,
                          keep=keep, head=request[0] == "HEAD")


def stream_complete(data: bytes) -> bool:
    """Whether a client has said all it will be answered for: a line, or an HTTP request's
    headers and the body they announce (at once when the body is refused: too large, or a
    Content-Length that is not a number)."""
    if not data.startswith(HTTP_METHODS):
        return b"\n" in data
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = _body_length(_http_head(data)[1])
    return length is None or length > MAX_BODY or len(data) - end - 4 >= length


def pktinfo_dst(ancillary: list) -> str:
    """The address a datagram was sent to (struct in_pktinfo's ipi_addr, in6_pktinfo's
    ipi6_addr)."""
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            return socket.inet_ntoa(data[8:12])
        if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
            return socket.inet_ntop(socket.AF_INET6, data[:16])
    return "0.0.0.0"


def reply_udp(sock: socket.socket, data: bytes, addr: tuple, ancillary: list) -> None:
    """Answer from the address the request went to (ipi_spec_dst, ipi6_addr): with several
    addresses, the kernel would otherwise pick the outgoing interface's, and NAT would
    drop it."""
    for level, kind, info in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            out = bytes(4) + info[8:12] + bytes(4)  # ifindex 0, spec_dst, addr
            sock.sendmsg([data], [(socket.IPPROTO_IP, IP_PKTINFO, out)], 0, addr)
            return
        if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
            out = info[:16] + bytes(4)  # the address it came to, ifindex 0
            sock.sendmsg([data], [(socket.IPPROTO_IPV6, IPV6_PKTINFO, out)], 0, addr)
            return
    sock.sendto(data, addr)


# --- where sockets are opened ---------------------------------------------------------------

def plain_opener(netns: NetnsPath) -> contextlib.AbstractContextManager[SocketFactory]:
    """Sockets where the calling thread is, whatever `netns` says: the standalone script's
    opener (it runs inside its pod already) and the unprivileged tests'."""
    return contextlib.nullcontext(socket.socket)


def netns_opener(netns: NetnsPath) -> contextlib.AbstractContextManager[SocketFactory]:
    """Sockets inside `netns` (netlab.kernel.sockets.inside), or here when it is None."""
    if netns is None:
        return contextlib.nullcontext(socket.socket)
    from netlab.kernel.sockets import inside  # the agent's side only: the script has no netns
    return inside(netns)


# --- the loop -------------------------------------------------------------------------------

class _Pod:
    __slots__ = ("conns", "hostname", "key", "listeners", "log", "name")

    def __init__(self, key: str, name: str, hostname: str) -> None:
        self.key, self.name, self.hostname = key, name, hostname
        self.listeners: dict[str, _Listener] = {}  # "tcp:80" -> its socket
        self.conns: set[_Conn] = set()
        self.log: _Log | None = None


class _Log:
    """A pod's request log: each line appended to its file (opened at the first, kept open)
    before the answer goes out, so a client that has its answer finds the line; past LOG_MAX
    it starts over. A file that cannot be written loses its lines: the responder answers all
    the same."""

    __slots__ = ("fd", "path", "size")

    def __init__(self, path: str) -> None:
        self.path, self.fd, self.size = path, -1, 0

    def write(self, line: str) -> None:
        data = line.encode(errors="replace")
        try:
            if self.fd < 0:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT |
                                  os.O_CLOEXEC, 0o644)
                self.size = os.fstat(self.fd).st_size
            if self.size + len(data) > LOG_MAX:
                os.ftruncate(self.fd, 0)  # O_APPEND: the next write goes to the new end
                self.size = 0
            self.size += os.write(self.fd, data)
        except OSError:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class _Listener:
    __slots__ = ("closed", "pod", "proto", "reply", "sock")

    def __init__(self, pod: _Pod, proto: str, sock: socket.socket,
                 reply: bytes | None = None) -> None:
        self.pod, self.proto, self.sock, self.closed = pod, proto, sock, False
        self.reply = reply  # a fixed HTTP response instead of the responder's


class _Conn:
    __slots__ = ("buf", "closed", "deadline", "keep", "local", "out", "peer", "pod", "proto",
                 "reply", "served", "sock", "t0")

    def __init__(self, pod: _Pod, proto: str, sock: socket.socket, peer: tuple, local: tuple,
                 now: float, reply: bytes | None = None) -> None:
        self.pod, self.proto, self.sock, self.peer, self.local = pod, proto, sock, peer, local
        self.reply = reply
        self.buf = b""
        self.out: memoryview | None = None  # set once answered: what is left to send
        self.t0 = now
        self.deadline = now + LINE_WAIT
        self.closed = False
        self.keep = False  # the answer being sent leaves the connection open
        self.served = 0  # HTTP requests answered on it (kept alive)


class ResponderHub:
    """Serve the responder for many pods from one thread.

    add/remove/ports/close may be called from any thread while another runs serve() or
    run_once(): they take the loop's lock, which the loop holds except while it waits.
    """

    def __init__(self, opener: Opener = netns_opener) -> None:
        self._opener = opener
        self._sel = selectors.DefaultSelector()
        self._lock = _thread.allocate_lock()
        self._pods: dict[str, _Pod] = {}
        self._timers: list[tuple[float, int, _Conn]] = []  # (deadline, seq, conn), lazy
        self._seq = 0
        # a byte on this pair ends the loop's wait: add/remove/close take effect at once
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, READ, None)
        self._closed = False
        self._waiting = False  # a thread is in select(): close() leaves the selector to it

    # the API -----------------------------------------------------------------------------

    def add(self, key: str, hostname: str, netns: NetnsPath, ports: Sequence[str], *,
            name: str | None = None, replies: dict[str, bytes] | None = None,
            log: str | os.PathLike[str] | None = None) -> list[str]:
        """Listen for pod `key` on each "proto:port" (or "proto:port@address", bound to that
        one address) inside `netns`; one log line per port, as the responder prints them
        ("listening on tcp/80", "cannot listen on tcp/80: ..."). Answers name the pod `name`
        (default: `key`; the responder's --name). `replies`: ports answered with a fixed
        HTTP response instead (a request that is not HTTP gets 400, as from an HTTP server).
        `log`: the file that gets a line per HTTP request answered (created at the first).
        Adding a pod again adds its new ports (open ones stay), takes the new hostname and
        name, the new replies (for connections accepted from then on) and the new log."""
        replies = replies or {}
        with self._lock:
            pod = self._pods.get(key)
            have = set(pod.listeners) if pod else set()
        todo = list(dict.fromkeys(s for s in ports if s not in have))
        opened: dict[str, socket.socket] = {}
        failed: dict[str, str] = {}
        try:
            with self._opener(netns) as open_socket:  # sockets stay in the namespace
                for spec in todo:
                    proto, _, rest = spec.partition(":")
                    port, _, address = rest.partition("@")
                    try:
                        opened[spec] = _listen(open_socket, proto, int(port), address)
                    except OSError as e:
                        failed[spec] = e.strerror or str(e)
        except OSError as e:  # the namespace could not be entered: no port opens
            failed |= {spec: e.strerror or str(e) for spec in todo if spec not in opened}
        with self._lock:
            if self._closed:
                for s in opened.values():
                    s.close()
                raise RuntimeError("the responder hub is closed")
            pod = self._pods.setdefault(key, _Pod(key, key, hostname))
            pod.name, pod.hostname = name or key, hostname
            path = None if log is None else os.fspath(log)
            if (pod.log.path if pod.log else None) != path:
                self._close_log(pod)
                pod.log = None if path is None else _Log(path)
            for spec, s in opened.items():
                if spec in pod.listeners:  # a concurrent add() of the same port won
                    s.close()
                    continue
                listener = _Listener(pod, spec.partition(":")[0].rstrip("6"), s)
                pod.listeners[spec] = listener
                self._sel.register(s, READ, listener)
            for spec, listener in pod.listeners.items():
                listener.reply = replies.get(spec)
        self._wake()
        out = []
        for spec in ports:
            proto, _, port = spec.partition(":")
            why = failed.get(spec)
            out.append(f"cannot listen on {proto}/{port}: {why}" if why is not None
                       else f"listening on {proto}/{port}")
        return out

    def remove(self, key: str) -> bool:
        """Close pod `key`'s listening sockets and its open connections. False if unknown."""
        with self._lock:
            pod = self._pods.pop(key, None)
            if pod is None:
                return False
            for listener in pod.listeners.values():
                listener.closed = True
                self._drop(listener.sock)
            for conn in list(pod.conns):
                self._close(conn)
            self._close_log(pod)
        self._wake()
        return True

    def ports(self, key: str) -> list[str]:
        """The port specs pod `key` listens on ([] if unknown)."""
        with self._lock:
            pod = self._pods.get(key)
            return list(pod.listeners) if pod else []

    def pods(self) -> list[str]:
        with self._lock:
            return list(self._pods)

    def connections(self) -> int:
        """Connections open now (accepted, not yet answered and closed)."""
        with self._lock:
            return sum(len(p.conns) for p in self._pods.values())

    def serve(self, stop: threading.Event | None = None) -> None:
        """Run the loop until `stop` is set (forever without one) or the hub is closed."""
        while not self._closed and not (stop is not None and stop.is_set()):
            self.run_once(IDLE_WAIT if stop is not None else None)

    def run_once(self, timeout: float | None = None) -> int:
        """Wait up to `timeout` (None: until something happens), handle what is ready and
        what is due; return how many events were handled."""
        with self._lock:
            if self._closed:
                return 0
            due = self._timers[0][0] - time.monotonic() if self._timers else None
            self._waiting = True
        if due is not None:
            timeout = max(0.0, due if timeout is None else min(timeout, due))
        try:
            events = self._sel.select(timeout)  # the only place the lock is not held
        finally:
            with self._lock:
                self._waiting = False
                if self._closed:
                    self._release()
        with self._lock:
            if self._closed:
                return 0
            for key, mask in events:
                data = key.data
                if data is None:
                    self._drain_wake()
                elif isinstance(data, _Conn):
                    if not data.closed:
                        self._on_conn(data, mask)
                elif not data.closed:
                    self._on_listener(data)
            self._expire(time.monotonic())
        return len(events)

    def wake(self) -> None:
        """End the loop's current wait (after setting serve's stop event, to stop now)."""
        self._wake()

    def close(self) -> None:
        """Close every pod's sockets, then the loop's own (at once, or when a loop that is
        waiting wakes up)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for pod in self._pods.values():
                for listener in pod.listeners.values():
                    listener.closed = True
                    self._drop(listener.sock)
                for conn in list(pod.conns):
                    self._close(conn)
                self._close_log(pod)
            self._pods.clear()
            if self._waiting:
                self._wake()
            else:
                self._release()

    def __enter__(self) -> ResponderHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the loop's work (lock held) ---------------------------------------------------------

    def _on_listener(self, listener: _Listener) -> None:
        if listener.proto == "udp":
            self._on_datagrams(listener)
            return
        now = time.monotonic()
        for _ in range(64):  # a burst of connections in one wake-up, yet others get turns
            try:
                sock, peer = listener.sock.accept()
            except OSError:  # nothing left to accept (or the client is gone already)
                return
            try:
                sock.setblocking(False)
                conn = _Conn(listener.pod, listener.proto, sock, peer, sock.getsockname(), now,
                             listener.reply)
                self._sel.register(sock, READ, conn)
            except OSError:
                sock.close()
                continue
            listener.pod.conns.add(conn)
            self._timer(conn)

    def _on_datagrams(self, listener: _Listener) -> None:
        pod, sock = listener.pod, listener.sock
        for _ in range(64):
            try:
                # room for in6_pktinfo (20 bytes; in_pktinfo is 12)
                _, anc, _, addr = sock.recvmsg(65535, socket.CMSG_SPACE(20))
            except OSError:  # BlockingIOError: none left; else an ICMP error queued
                return
            try:
                info = answer(pod.name, pod.hostname, "udp", addr,
                              (pktinfo_dst(anc), sock.getsockname()[1]))
                reply_udp(sock, (json.dumps(info) + "\n").encode(), addr, anc)
            except OSError:  # buffer full or unreachable: UDP may drop, the client retries
                pass

    def _on_conn(self, conn: _Conn, mask: int) -> None:
        if conn.out is not None:
            if mask & WRITE:
                self._send(conn)
            return
        try:
            chunk = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        conn.buf += chunk
        complete = stream_complete(conn.buf)
        if not chunk and conn.served and not conn.buf:
            self._close(conn)  # the client ended a kept-alive connection
        elif not chunk or complete:
            self._answer(conn, complete)

    def _answer(self, conn: _Conn, complete: bool) -> None:
        """Answer what the client sent (`complete`: a whole request, which may leave the
        connection open; else what a client that went silent or away sent)."""
        pod = conn.pod
        if conn.reply is not None:
            out = conn.reply if conn.buf.startswith(HTTP_METHODS) else BAD_REQUEST
        else:
            conn.keep = complete and keeps_alive(conn.buf)
            out = stream_reply(pod.name, pod.hostname, conn.proto, conn.peer, conn.local,
                               conn.buf, conn.keep)
            if pod.log is not None and out.startswith(b"HTTP/1.1 200"):
                pod.log.write(request_log_line(conn.buf, conn.peer))
        conn.out = memoryview(out)
        if self._send(conn):  # the socket's buffer is full: wait until the client reads
            try:
                self._sel.modify(conn.sock, WRITE, conn)
            except (OSError, KeyError, ValueError):
                self._close(conn)
                return
            conn.deadline = time.monotonic() + WRITE_WAIT
            self._timer(conn)

    def _send(self, conn: _Conn) -> bool:
        """Send what is left of the answer; True if the socket's buffer is full (the rest
        waits), else the answer is out: the connection is closed or waits for the next
        request."""
        assert conn.out is not None
        try:
            while conn.out:
                conn.out = conn.out[conn.sock.send(conn.out):]
        except BlockingIOError:
            return True
        except OSError:
            conn.keep = False
        if conn.keep:
            self._next_request(conn)
        else:
            self._close(conn)
        return False

    def _next_request(self, conn: _Conn) -> None:
        """A kept-alive connection, its answer sent, waits for the next request: what the
        client sent after the last one (pipelined) is that request's start."""
        now = time.monotonic()
        conn.buf = conn.buf[request_length(conn.buf):]
        conn.out, conn.keep, conn.t0 = None, False, now
        conn.served += 1
        conn.deadline = now + (HTTP_WAIT if conn.buf else KEEPALIVE_WAIT)
        try:
            self._sel.modify(conn.sock, READ, conn)
        except (OSError, KeyError, ValueError):
            self._close(conn)
            return
        self._timer(conn)
        if conn.buf and stream_complete(conn.buf):
            self._answer(conn, True)  # the next one is here already
    def _expire(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, conn = heapq.heappop(timers)
            if conn.closed or deadline != conn.deadline:
                continue  # answered, closed or rescheduled since
            # the client did not read its answer; or kept alive and idle since the last
            if conn.out is not None or (conn.served and not conn.buf):
                self._close(conn)
            elif not conn.buf.startswith(HTTP_METHODS):
                self._answer(conn, False)  # a silent (or line-less) client
            elif now - conn.t0 < HTTP_WAIT:
                conn.deadline = conn.t0 + HTTP_WAIT
                self._timer(conn)
            else:  # an HTTP request (headers, body) that never ended
                self._close(conn)

    def _timer(self, conn: _Conn) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (conn.deadline, self._seq, conn))

    def _close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.pod.conns.discard(conn)
        self._drop(conn.sock)

    def _close_log(self, pod: _Pod) -> None:
        if pod.log is not None:
            pod.log.close()

    def _drop(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):  # not registered (any more)
            self._sel.unregister(sock)
        sock.close()

    def _release(self) -> None:
        if self._wake_r.fileno() >= 0:
            self._sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_w.send(b"x")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass


def _listen(open_socket: SocketFactory, spec_proto: str, port: int,
            address: str = "") -> socket.socket:
    """A listening socket: "tcp", "udp", "sctp" on IPv4; "tcp6", "udp6", "sctp6" on IPv6
    only (IPV6_V6ONLY: the IPv4 socket answers IPv4, so clients are never ::ffff:a.b.c.d);
    on every address of the namespace, or on `address` only."""
    v6 = spec_proto.endswith("6")
    proto, family = spec_proto.rstrip("6"), socket.AF_INET6 if v6 else socket.AF_INET
    if proto == "udp":
        s = open_socket(family, socket.SOCK_DGRAM)
    else:
        s = open_socket(family, socket.SOCK_STREAM,
                        socket.IPPROTO_SCTP if proto == "sctp" else 0)
    try:
        if v6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if proto == "udp":
            s.setsockopt(*((socket.IPPROTO_IPV6, IPV6_RECVPKTINFO) if v6 else
                           (socket.IPPROTO_IP, IP_PKTINFO)), 1)
        else:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address or ("::" if v6 else "0.0.0.0"), port))
        if proto != "udp":
            s.listen(BACKLOG)
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s

