"""Small manifest builders for integration tests."""

from __future__ import annotations


def cluster(backend: str = "vxlan", nodes: int = 2, proxy_mode: str = "nftables") -> str:
    return (f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: {nodes}\n"
            f"  backend: {backend}\n  proxyMode: {proxy_mode}\n")


def pod(name: str, node: str | None = None, command: str = "sleep 3600",
        namespace: str = "default", labels: str = "{}") -> str:
    pin = f"  nodeName: {node}\n" if node else ""
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}, "
            f"labels: {labels}}}\nspec:\n{pin}  containers:\n  - name: main\n    image: busybox\n"
            f"    command: ['sh', '-c', '{command}']\n")


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll until predicate() is truthy (processes start asynchronously); return its value."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# A dual-stack lab without the DNS add-on: pods web-a (node-1, app=a) and web-b (node-2,
# app=b) serving 8080; the Service tests add their own documents after it.
DUAL_TWO_WEB_PODS = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  podCIDR: 10.244.0.0/16,fd00:10:244::/56
  dns: false
---
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: a}}
spec: {nodeName: node-1, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, labels: {app: b}}
spec: {nodeName: node-2, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
"""
