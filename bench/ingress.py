#!/usr/bin/env python3
"""Benchmark: HTTP requests per second from `external` through the ingress controller to a
backend pod, beside the same load straight to the pod in the same run (wrk, Debian's).

    sudo .venv/bin/python bench/ingress.py [SECONDS]
"""

from __future__ import annotations

import re
import sys

from netlab import Lab, down

LAB = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  nodeName: node-2
  containers: [{name: c, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"""


def wrk(lab: Lab, url: str, seconds: int, host: str | None = None) -> tuple[float, str]:
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency"]
    if host:
        cmd += ["-H", f"Host: {host}"]
    r = lab.exec("external", [*cmd, url], timeout=seconds + 30)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    p99 = re.search(r"99%\s+(\S+)", r.stdout)
    return (float(rps.group(1)) if rps else 0.0), (p99.group(1) if p99 else "?")


def main(seconds: int) -> None:
    down("nlbench-ing")
    try:
        lab = Lab.up(manifests=[LAB], name="nlbench-ing")
        lb = lab.service("ingress-nginx/ingress-nginx-controller").external_ip
        pod = lab.pod("web").ip
        direct, p99d = wrk(lab, f"http://{pod}:8080/", seconds)
        via, p99i = wrk(lab, f"http://{lb}/", seconds, "web.example.com")
    finally:
        down("nlbench-ing")
    print(f"straight to the pod:     {direct:8.0f} req/s, p99 {p99d}")
    print(f"through the ingress:     {via:8.0f} req/s, p99 {p99i}  "
          f"({via / direct:.2f}x of direct; the backend is netlab's Python responder)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
