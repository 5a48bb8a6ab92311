"""The built-in responder: what every pod runs so that there is something to talk to,
like the agnhost `netexec` image of Kubernetes' e2e tests. Standard library only; run as
`python3 -I -S responder.py --name NS/POD [--hostname H] tcp:80 udp:53 sctp:9000 ...`.

Every answer names the pod and the client address it saw, as one JSON object:
  TCP    the client sends a line (or nothing, for 200 ms): a JSON line back; an HTTP request
         gets an HTTP/1.1 response (paths /hostname, /clientip, /echo?msg=..., else JSON).
  UDP    each datagram is answered with one JSON datagram.
  SCTP   as TCP, where the kernel has SCTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from urllib.parse import parse_qs, urlsplit

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")


def answer(args: argparse.Namespace, proto: str, client: tuple, server: tuple) -> dict:
    return {"pod": args.name, "hostname": args.hostname, "protocol": proto,
            "client": f"{client[0]}:{client[1]}", "server": f"{server[0]}:{server[1]}"}


def http_response(body: bytes, status: str = "200 OK", ctype: str = "application/json",
                  extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n{extra}\r\n").encode() + body


async def handle_stream(args, proto, reader, writer) -> None:
    peer = writer.get_extra_info("peername")
    local = writer.get_extra_info("sockname")
    info = answer(args, proto, peer, local)
    try:
        try:
            first = await asyncio.wait_for(reader.readline(), 0.2)
        except TimeoutError:
            first = b""
        if first.startswith(HTTP_METHODS):
            headers = {}
            while True:
                line = await asyncio.wait_for(reader.readline(), 2)
                if line in (b"\r\n", b"\n", b""):
                    break
                k, _, v = line.decode(errors="replace").partition(":")
                headers[k.strip().lower()] = v.strip()
            target = first.split()[1].decode(errors="replace") if len(first.split()) > 1 else "/"
            url = urlsplit(target)
            info |= {"method": first.split()[0].decode(), "path": url.path,
                     "headers": headers}
            if url.path == "/hostname":
                body, ctype = f"{args.hostname}\n".encode(), "text/plain"
            elif url.path == "/clientip":
                body, ctype = f"{info['client']}\n".encode(), "text/plain"
            elif url.path == "/echo":
                body, ctype = parse_qs(url.query).get("msg", [""])[0].encode(), "text/plain"
            else:
                body, ctype = (json.dumps(info) + "\n").encode(), "application/json"
            writer.write(http_response(body, ctype=ctype,
                                       extra=f"X-Netlab-Pod: {args.name}\r\n"))
        else:
            writer.write((json.dumps(info) + "\n").encode())
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


class Datagram(asyncio.DatagramProtocol):
    def __init__(self, args) -> None:
        self.args = args

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        info = answer(self.args, "udp", addr, self.transport.get_extra_info("sockname"))
        self.transport.sendto((json.dumps(info) + "\n").encode(), addr)


async def serve(args: argparse.Namespace) -> None:
    for spec in args.ports:
        proto, _, port_s = spec.partition(":")
        port = int(port_s)
        try:
            if proto == "tcp":
                await asyncio.start_server(
                    lambda r, w: handle_stream(args, "tcp", r, w), "0.0.0.0", port,
                    reuse_address=True)
            elif proto == "udp":
                await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: Datagram(args), local_addr=("0.0.0.0", port))
            elif proto == "sctp":
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port))
                await asyncio.start_server(lambda r, w: handle_stream(args, "sctp", r, w),
                                           sock=s)
            print(f"listening on {proto}/{port}", flush=True)
        except OSError as e:
            print(f"cannot listen on {proto}/{port}: {e}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--hostname", default=socket.gethostname())
    p.add_argument("ports", nargs="*")
    args = p.parse_args()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
