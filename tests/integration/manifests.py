"""Small manifest builders for integration tests."""

from __future__ import annotations


def cluster(backend: str = "vxlan", nodes: int = 2) -> str:
    return (f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: {nodes}\n"
            f"  backend: {backend}\n")


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
