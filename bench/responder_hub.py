#!/usr/bin/env python3
"""Benchmark: one ResponderHub serving N pods (one network namespace each, tcp:80), against
the responder as it was run before, one interpreter per pod.

Hub: the time to add N pods (every socket opened inside its namespace), this process's RSS
before and after, and N concurrent TCP probes (one per pod, from inside its namespace)
answered. Baseline, measured in the same run: the start time (spawn until "listening on")
and the RSS of ONE `python3 -I -S netlab/responder.py`; the old cost is that x N.

The namespaces are throw-away (nlhubbench-<i>, only lo, brought up), always deleted; the
host's own network is never touched.

    sudo .venv/bin/python bench/responder_hub.py [N]      (default: 400)
"""

from __future__ import annotations

import fcntl
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from netlab.kernel.sockets import inside
from netlab.runtime.responder_hub import ResponderHub

PREFIX = "nlhubbench-"
SCRIPT = Path(__file__).resolve().parents[1] / "netlab" / "responder.py"
SIOCSIFFLAGS, IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x8914, 0x1, 0x8, 0x40


def rss_kb(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def ip_batch(lines: list[str]) -> None:
    if lines:
        subprocess.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n", text=True,
                       check=False, capture_output=True)


def leftovers() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [w.split()[0] for w in out.splitlines() if w.startswith(PREFIX)]


def make_netns(n: int) -> list[Path]:
    ip_batch([f"netns add {PREFIX}{i}" for i in range(n)])
    paths = [Path("/run/netns") / f"{PREFIX}{i}" for i in range(n)]
    for p in paths:  # lo up by ioctl: no process per namespace
        with inside(p) as open_socket, open_socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, SIOCSIFFLAGS,
                        struct.pack("16sH22x", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING))
    return paths


def baseline(netns: Path, runs: int = 3) -> tuple[list[float], int]:
    """Start times of the one-interpreter responder (inside a namespace, as a pod runs it),
    and the RSS of one once it listens."""
    times, rss = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen(["nsenter", f"--net={netns}", sys.executable, "-I", "-S",
                              str(SCRIPT), "--name", "bench/base", "--hostname", "base",
                              "tcp:80"], stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout is not None
            line = p.stdout.readline()
            times.append(time.perf_counter() - t0)
            assert line == "listening on tcp/80\n", line
            rss = rss_kb(p.pid)
        finally:
            p.kill()
            p.wait()
    return times, rss


def probe_all(paths: list[Path], data: bytes) -> tuple[float, int]:
    """One TCP probe per namespace, all at once; (seconds until all answered, answers
    naming their own pod)."""
    socks = {}
    for i, p in enumerate(paths):  # opened inside the namespace, used from here
        with inside(p) as open_socket:
            s = open_socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        socks[s] = i
    sel = selectors.DefaultSelector()
    bufs: dict[socket.socket, bytes] = {}
    t0 = time.perf_counter()
    for s in socks:
        s.connect_ex(("127.0.0.1", 80))
        sel.register(s, selectors.EVENT_WRITE)
    right = 0
    while sel.get_map():
        for key, mask in sel.select(10):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            if mask & selectors.EVENT_WRITE:
                if data:
                    s.send(data)
                sel.modify(s, selectors.EVENT_READ)
                bufs[s] = b""
                continue
            chunk = s.recv(4096)
            bufs[s] += chunk
            if not chunk:
                sel.unregister(s)
                right += f'"pod": "bench/p{socks[s]}"'.encode() in bufs[s]
                s.close()
    return time.perf_counter() - t0, right


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    ip_batch([f"netns del {x}" for x in leftovers()])
    try:
        paths = make_netns(n)
        base_times, base_rss = baseline(paths[0])

        hub = ResponderHub()
        rss0 = rss_kb()
        t0 = time.perf_counter()
        for i, p in enumerate(paths):
            lines = hub.add(f"bench/p{i}", f"p{i}", p, ["tcp:80"])
            assert lines == ["listening on tcp/80"], lines
        t_add = time.perf_counter() - t0
        rss1 = rss_kb()
        stop = threading.Event()
        thread = threading.Thread(target=hub.serve, args=(stop,), daemon=True)
        thread.start()
        t_line, ok_line = probe_all(paths, b"probe\n")
        t_silent, ok_silent = probe_all(paths, b"")
        rss2 = rss_kb()
        stop.set()
        hub.wake()
        thread.join(5)
        t0 = time.perf_counter()
        hub.close()
        t_close = time.perf_counter() - t0

        med = statistics.median(base_times)
        print(f"responder for {n} pods (tcp:80 in {n} network namespaces)")
        print(f"  before: 1 interpreter per pod: start {med * 1000:.0f} ms (median of "
              f"{len(base_times)}: {', '.join(f'{t * 1000:.0f}' for t in base_times)}), "
              f"RSS {base_rss / 1024:.1f} MiB  x {n} = {base_rss * n / 1024:.0f} MiB")
        print(f"  hub:    add {n} pods {t_add * 1000:.0f} ms "
              f"({t_add / n * 1e6:.0f} us/pod); close all {t_close * 1000:.0f} ms")
        print(f"          RSS {rss0 / 1024:.1f} MiB before, {rss1 / 1024:.1f} MiB after add, "
              f"{rss2 / 1024:.1f} MiB after probes: +{(rss2 - rss0) / 1024:.1f} MiB for {n} "
              f"pods ({(rss2 - rss0) / n:.1f} KiB/pod)")
        print(f"          {n} concurrent probes with a line: {t_line * 1000:.0f} ms, "
              f"{ok_line}/{n} answered by their own pod")
        print(f"          {n} concurrent silent probes (answer after LINE_WAIT): "
              f"{t_silent * 1000:.0f} ms, {ok_silent}/{n} answered by their own pod")
    finally:
        ip_batch([f"netns del {x}" for x in leftovers()])
        assert not leftovers(), leftovers()


if __name__ == "__main__":
    main()
