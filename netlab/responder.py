"""The built-in responder: what every pod runs so that there is something to talk to,
like the agnhost `netexec` image of Kubernetes' e2e tests. Standard library only (and no
asyncio: it starts in ~10 ms, which matters with hundreds of pods); run as
`python3 -I -S responder.py --name NS/POD [--hostname H] tcp:80 udp:53 sctp:9000 ...`.

Every answer names the pod and the client address it saw, as one JSON object:
  TCP    the client sends a line (or nothing, for 200 ms): a JSON line back; an HTTP request
         gets an HTTP/1.1 response (paths /hostname, /clientip, /echo?msg=..., else JSON).
  UDP    each datagram is answered with one JSON datagram.
  SCTP   as TCP, where the kernel has SCTP.
It prints one line per port ("listening on tcp/80" or "cannot listen on ..."): netlab
waits for them before it calls a pod ready.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time
from urllib.parse import parse_qs, urlsplit

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")
LINE_WAIT = 0.2  # a client that says nothing gets its answer after this
IP_PKTINFO = 8


def pktinfo_dst(ancillary: list) -> str:
    """The address a datagram was sent to (struct in_pktinfo's ipi_addr)."""
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            return socket.inet_ntoa(data[8:12])
    return "0.0.0.0"


def reply_udp(sock: socket.socket, data: bytes, addr: tuple, ancillary: list) -> None:
    """Answer from the address the request went to (ipi_spec_dst): with several addresses,
    the kernel would otherwise pick the outgoing interface's, and NAT would drop it."""
    for level, kind, info in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            out = bytes(4) + info[8:12] + bytes(4)  # ifindex 0, spec_dst, addr
            sock.sendmsg([data], [(socket.IPPROTO_IP, IP_PKTINFO, out)], 0, addr)
            return
    sock.sendto(data, addr)
HTTP_WAIT = 2.0


class Responder:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.conns: dict[socket.socket, dict] = {}

    def answer(self, proto: str, client: tuple, server: tuple) -> dict:
        return {"pod": self.args.name, "hostname": self.args.hostname, "protocol": proto,
                "client": f"{client[0]}:{client[1]}", "server": f"{server[0]}:{server[1]}"}

    def listen(self, spec: str) -> None:
        proto, _, port_s = spec.partition(":")
        port = int(port_s)
        try:
            if proto == "udp":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM,
                                  socket.IPPROTO_SCTP if proto == "sctp" else 0)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            if proto != "udp":
                s.listen(128)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, ("udp" if proto == "udp" else "accept",
                                                        proto))
            print(f"listening on {proto}/{port}", flush=True)
        except OSError as e:
            print(f"cannot listen on {proto}/{port}: {e.strerror}", file=sys.stderr, flush=True)

    def reply_stream(self, conn: socket.socket, state: dict) -> None:
        data: bytes = state["buf"]
        info = self.answer(state["proto"], state["peer"], state["local"])
        if data.startswith(HTTP_METHODS):
            head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
            request = head[0].split()
            headers = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            url = urlsplit(request[1] if len(request) > 1 else "/")
            info |= {"method": request[0], "path": url.path, "headers": headers}
            if url.path == "/hostname":
                body, ctype = f"{self.args.hostname}\n".encode(), "text/plain"
            elif url.path == "/clientip":
                body, ctype = f"{info['client']}\n".encode(), "text/plain"
            elif url.path == "/echo":
                body, ctype = parse_qs(url.query).get("msg", [""])[0].encode(), "text/plain"
            else:
                body, ctype = (json.dumps(info) + "\n").encode(), "application/json"
            out = (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                   f"Connection: close\r\nX-Netlab-Pod: {self.args.name}\r\n\r\n").encode() + body
        else:
            out = (json.dumps(info) + "\n").encode()
        self.close(conn, out)

    def close(self, conn: socket.socket, out: bytes = b"") -> None:
        self.sel.unregister(conn)
        self.conns.pop(conn, None)
        try:
            if out:
                conn.setblocking(True)
                conn.settimeout(1)
                conn.sendall(out)
        except OSError:
            pass
        conn.close()

    def ready(self, conn: socket.socket, state: dict) -> bool:
        data = state["buf"]
        if data.startswith(HTTP_METHODS):
            return b"\r\n\r\n" in data
        return b"\n" in data

    def run(self) -> None:
        while True:
            for key, _ in self.sel.select(timeout=0.05):
                sock = key.fileobj
                kind, proto = key.data
                if kind == "udp":
                    try:
                        _, anc, _, addr = sock.recvmsg(65535, socket.CMSG_SPACE(12))
                        local = pktinfo_dst(anc)
                        info = self.answer("udp", addr, (local, sock.getsockname()[1]))
                        reply_udp(sock, (json.dumps(info) + "\n").encode(), addr, anc)
                    except OSError:
                        pass
                elif kind == "accept":
                    try:
                        conn, peer = sock.accept()
                    except OSError:
                        continue
                    conn.setblocking(False)
                    self.conns[conn] = {"buf": b"", "proto": proto, "peer": peer,
                                        "local": conn.getsockname(), "t": time.monotonic()}
                    self.sel.register(conn, selectors.EVENT_READ, ("conn", proto))
                else:
                    state = self.conns[sock]
                    try:
                        chunk = sock.recv(65536)
                    except OSError:
                        chunk = b""
                    state["buf"] += chunk
                    if not chunk or self.ready(sock, state):
                        self.reply_stream(sock, state)
            now = time.monotonic()
            for conn, state in list(self.conns.items()):
                waited = now - state["t"]
                if state["buf"].startswith(HTTP_METHODS):
                    if waited > HTTP_WAIT:
                        self.close(conn)
                elif waited > LINE_WAIT:
                    self.reply_stream(conn, state)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--hostname", default=socket.gethostname())
    p.add_argument("ports", nargs="*")
    args = p.parse_args()
    r = Responder(args)
    for spec in args.ports:
        r.listen(spec)
    r.run()


if __name__ == "__main__":
    main()
