#!/usr/bin/env python3
"""Benchmark: the cluster DNS, queried from one pod by a small concurrent client (a
window of outstanding UDP queries on one socket), for a few seconds.
Prints queries per second and answer latency p50/p99. Goal (issue 5): >= 5,000 qps and
p99 < 5 ms on this machine. Also measured in the same run: one query at a time (the
latency floor of the path pod -> kube-dns ClusterIP -> DNAT -> DNS pod).

    sudo .venv/bin/python bench/dns.py [SECONDS] [WINDOW]
"""

from __future__ import annotations

import selectors
import socket
import statistics
import sys
import time

from dnslib import DNSRecord

from netlab import Lab, down
from netlab.kernel import netns_path, ns

LAB = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: node-2
  containers: [{name: c, command: [sleep, infinity]}]
""" + "".join(f"""---
apiVersion: v1
kind: Service
metadata: {{name: svc{i}}}
spec:
  selector: {{app: x}}
  ports: [{{port: 80}}]
""" for i in range(50))


def run(netns, seconds: float, window: int) -> tuple[int, list[float]]:
    names = [f"svc{i}.default.svc.cluster.local" for i in range(50)]
    queries = [DNSRecord.question(n).pack() for n in names]
    with ns.entered(str(netns)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("10.96.0.10", 53))
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    qid = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or sent:
        while len(sent) < window and time.perf_counter() < end:
            qid = (qid + 1) & 0xFFFF
            q = queries[qid % len(queries)]
            sock.send(qid.to_bytes(2, "big") + q[2:])
            sent[qid] = time.perf_counter()
        if not sel.select(timeout=1.0):
            break  # lost answers: stop waiting for them
        while True:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                break
            t = sent.pop(int.from_bytes(data[:2], "big"), None)
            if t is not None:
                latencies.append(time.perf_counter() - t)
    sock.close()
    return len(latencies), latencies


def main(seconds: float, window: int) -> None:
    down("nlbench-dns")
    try:
        lab = Lab.up(manifests=[LAB], name="nlbench-dns")
        netns = netns_path(lab.plan.pods["default/client"].netns)
        n1, lat1 = run(netns, 1.0, 1)
        n, lat = run(netns, seconds, window)
    finally:
        down("nlbench-dns")
    q = statistics.quantiles(lat, n=100)
    q1 = statistics.quantiles(lat1, n=100)
    print(f"one query at a time: {n1} qps, p50 {q1[49] * 1000:.2f} ms, p99 {q1[98] * 1000:.2f} ms")
    print(f"window of {window}: {n / seconds:.0f} qps, p50 {q[49] * 1000:.2f} ms, "
          f"p99 {q[98] * 1000:.2f} ms   (goal: >= 5000 qps, p99 < 5 ms)")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0,
         int(sys.argv[2]) if len(sys.argv) > 2 else 8)
