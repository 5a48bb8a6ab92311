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

The replies and the loop are netlab/runtime/responder_hub.py's, serving this one pod (the
lab agent serves all pods with the same code); this script only runs it.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

if __package__:  # imported as netlab.responder (netlab.dns_server answers UDP with it)
    from netlab.runtime.responder_hub import (
        HTTP_WAIT,
        IP_PKTINFO,
        LINE_WAIT,
        ResponderHub,
        pktinfo_dst,
        plain_opener,
        reply_udp,
    )
else:  # the script, run isolated (-I: its own directory is not on sys.path): load the hub
    # by its directory, appended so that nothing there can shadow the standard library
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime"))
    from responder_hub import (  # type: ignore[no-redef]
        HTTP_WAIT,
        IP_PKTINFO,
        LINE_WAIT,
        ResponderHub,
        pktinfo_dst,
        plain_opener,
        reply_udp,
    )

__all__ = ["HTTP_WAIT", "IP_PKTINFO", "LINE_WAIT", "main", "pktinfo_dst", "reply_udp"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--hostname", default=socket.gethostname())
    p.add_argument("ports", nargs="*")
    args = p.parse_args(argv)
    hub = ResponderHub(opener=plain_opener)  # this process runs inside its pod already
    for line in hub.add(args.name, args.hostname, None, args.ports):
        print(line, file=sys.stdout if line.startswith("listening") else sys.stderr,
              flush=True)
    hub.serve()


if __name__ == "__main__":
    main()
