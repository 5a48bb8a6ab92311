#!/usr/bin/env python3
"""Benchmark: `trace` in a lab of 100 pods (goal: under 2 s), against `probe` of the same
path in the same run (the cost of the traffic itself).

    sudo .venv/bin/python bench/trace.py [PODS]
"""

from __future__ import annotations

import sys
import time

from netlab import Lab, down


def main(n: int) -> None:
    docs = ["apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 4}\n"]
    docs += [f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, labels: {{app: web}}}}\n"
             f"spec:\n  containers: [{{name: c, ports: [{{containerPort: 80}}]}}]\n"
             for i in range(n)]
    docs.append("---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
                "  selector: {app: web}\n  ports: [{port: 80}]\n")
    down("nlbench-trace")
    try:
        lab = Lab.up(manifests=["".join(docs)], name="nlbench-trace")
        for dst in ("p1", "svc/web"):
            t0 = time.perf_counter()
            r = lab.trace("p0", dst)
            traced = time.perf_counter() - t0
            t0 = time.perf_counter()
            lab.probe("p0", dst)
            probed = time.perf_counter() - t0
            print(f"trace p0 -> {dst} in a {n}-pod lab: {traced:.2f}s, {len(r.hops)} hops, "
                  f"{r.verdict}   (goal < 2 s; a probe of the same path: {probed * 1000:.1f} ms)")
    finally:
        down("nlbench-trace")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
