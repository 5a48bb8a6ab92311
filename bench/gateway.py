#!/usr/bin/env python3
"""Benchmark: HTTP requests per second from `external` through a Gateway (its nginx data
plane behind its LoadBalancer address, an HTTPRoute to a Service) to a backend pod, beside
the same load straight to the pod, in the same run (wrk, Debian's; one connection pool of
16, one thread). Goal (issue): through the Gateway within 1.5x of straight, i.e. at least
1/1.5 = 0.67 of its requests per second.

Two backends, each measured both ways, rounds interleaved and the best round kept:
- `echo`: netlab's built-in responder (Python, the echo server every scenario uses);
- `static`: nginx in the pod answering a fixed 200, so the backend is not the bottleneck
  and the ratio shows what the Gateway's hop costs.
The data plane runs on node-1 (netlab's add-on node) and the backends on node-2, so the
Gateway's path crosses the overlay, as it usually does in a cluster.

    sudo .venv/bin/python bench/gateway.py [SECONDS] [ROUNDS]
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from netlab import Lab, down

NAME = "nlbench-gw"
HOST = "web.example.com"
GOAL = 1.5  # through the Gateway at most this many times slower than straight

# nginx in the `static` pod: one worker (as the Gateway's data plane has), every file in
# the sandbox's own /tmp
STATIC_CONF = """worker_processes 1;
user root;
pid /tmp/nginx.pid;
error_log /tmp/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path /tmp/body; proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi; uwsgi_temp_path /tmp/uwsgi; scgi_temp_path /tmp/scgi;
  server { listen 8080; location / { return 200 "ok\\n"; } }
}
"""


def _indent(text: str, by: int) -> str:
    return "".join(" " * by + line for line in text.splitlines(keepends=True))


LAB = f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {{nodes: 2}}
---
apiVersion: v1
kind: Pod
metadata: {{name: echo, labels: {{app: echo}}}}
spec:
  nodeName: node-2
  containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: static-nginx}}
data:
  nginx.conf: |
{_indent(STATIC_CONF, 4)}---
apiVersion: v1
kind: Pod
metadata:
  name: static
  labels: {{app: static}}
  annotations: {{netlab.dev/responder: "off"}}
spec:
  nodeName: node-2
  containers:
  - name: nginx
    command: [nginx, -c, /etc/static/nginx.conf, -g, "daemon off;"]
    ports: [{{containerPort: 8080}}]
    volumeMounts: [{{name: conf, mountPath: /etc/static}}]
  volumes: [{{name: conf, configMap: {{name: static-nginx}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec:
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: static}}
spec:
  selector: {{app: static}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw}}
spec:
  gatewayClassName: netlab
  listeners: [{{name: http, protocol: HTTP, port: 80, hostname: "{HOST}"}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: ["{HOST}"]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /static}}}}]
    backendRefs: [{{name: static, port: 80}}]
  - backendRefs: [{{name: echo, port: 80}}]
"""


@dataclass
class Run:
    rps: float
    p99: str
    errors: int  # non-2xx/3xx answers and socket errors: a run with any is not a result


def wrk(lab: Lab, url: str, seconds: int, host: str | None = None) -> Run:
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency"]
    if host:
        cmd += ["-H", f"Host: {host}"]
    r = lab.exec("external", [*cmd, url], timeout=seconds + 30)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    # the Latency Distribution line, not a "...99%" that ends a Thread Stats column
    p99 = re.search(r"^\s+99%\s+(\S+)", r.stdout, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", r.stdout)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        r.stdout)
    errors = (int(non2xx.group(1)) if non2xx else 0) + \
        (sum(int(g) for g in sockets.groups()) if sockets else 0)
    if rps is None:
        raise RuntimeError(f"wrk {url}: no result\n{r.stdout}{r.stderr}")
    return Run(float(rps.group(1)), p99.group(1) if p99 else "?", errors)


def best(runs: list[Run]) -> Run:
    return max(runs, key=lambda r: r.rps)


def measure(lab: Lab, pod_url: str, gw_url: str, seconds: int, rounds: int
            ) -> tuple[Run, Run]:
    """Straight to the pod and through the Gateway, alternating, `rounds` times each."""
    direct, via = [], []
    for _ in range(rounds):
        direct.append(wrk(lab, pod_url, seconds))
        via.append(wrk(lab, gw_url, seconds, HOST))
    return best(direct), best(via)


def report(backend: str, direct: Run, via: Run) -> bool:
    ratio = via.rps / direct.rps if direct.rps else 0.0
    met = ratio >= 1 / GOAL and not (direct.errors or via.errors)
    errors = "" if not (direct.errors or via.errors) else \
        f"  ERRORS: {direct.errors} straight, {via.errors} through the Gateway"
    print(f"{backend}:")
    print(f"  straight to the pod:      {direct.rps:8.0f} req/s, p99 {direct.p99}")
    print(f"  through the Gateway:      {via.rps:8.0f} req/s, p99 {via.p99}  "
          f"({ratio:.2f}x of straight; goal >= {1 / GOAL:.2f}: "
          f"{'met' if met else 'NOT met'}){errors}")
    return met


def main(seconds: int, rounds: int) -> None:
    down(NAME)
    try:
        lab = Lab.up(manifests=[LAB], name=NAME)
        lab.settle(timeout=20)
        gw = lab.gateway_api_status()["Gateway/default/gw"]["addresses"][0]["value"]
        for path in ("/", "/static"):  # both routes answer before the load starts
            r = lab.http(f"http://{HOST}{path}")
            if r.status != 200:
                raise RuntimeError(f"http://{HOST}{path}: {r.status} {r.error or ''}")
        results = {
            "echo (netlab's Python responder)": measure(
                lab, f"http://{lab.pod('echo').ip}:8080/", f"http://{gw}/", seconds, rounds),
            "static (nginx in the pod)": measure(
                lab, f"http://{lab.pod('static').ip}:8080/static", f"http://{gw}/static",
                seconds, rounds),
        }
    finally:
        down(NAME)
    print(f"wrk -t1 -c16 -d{seconds}s from `external`, best of {rounds} interleaved rounds")
    for backend, (direct, via) in results.items():
        report(backend, direct, via)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5,
         int(sys.argv[2]) if len(sys.argv) > 2 else 2)
