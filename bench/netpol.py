#!/usr/bin/env python3
"""Benchmark: NetworkPolicy.

1. `check` on the 9-pod e2e-shaped lab (288 probes; goal < 5 s) and on a 50-pod lab;
2. loading 500 policies over 200 pods: render (engine + rules) and one `nft -f` per node.

    sudo .venv/bin/python bench/netpol.py
"""

from __future__ import annotations

import time
from pathlib import Path

from netlab import Lab, down

ROOT = Path(__file__).resolve().parents[1]
POLICY = ("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p{i}, "
          "namespace: n{ns}}}\nspec:\n  podSelector: {{matchLabels: {{app: a{app}}}}}\n"
          "  ingress:\n  - from:\n    - namespaceSelector: {{matchLabels: {{team: t{team}}}}}\n"
          "      podSelector: {{matchLabels: {{app: a{peer}}}}}\n    ports: [{{port: 80}}, "
          "{{port: 8000, endPort: 8100}}]\n")


def lab_of(pods: int, namespaces: int, policies: int, nodes: int = 4) -> str:
    docs = [f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec: {{nodes: {nodes}}}\n"]
    docs += [f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: n{n}, labels: "
             f"{{team: t{n % 5}}}}}\n" for n in range(namespaces)]
    docs += [f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: "
             f"n{i % namespaces}, labels: {{app: a{i % 20}}}}}\nspec:\n  containers: [{{name: c, "
             f"ports: [{{containerPort: 80}}]}}]\n" for i in range(pods)]
    docs += [POLICY.format(i=i, ns=i % namespaces, app=i % 20, team=i % 5, peer=(i * 7) % 20)
             for i in range(policies)]
    return "".join(docs)


def timed_check(lab: Lab) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    report = lab.check(timeout=1.0)
    return time.perf_counter() - t0, len(report.probes), len(report.mismatches)


def main() -> None:
    for name in ("nlbench-np9", "nlbench-np50", "nlbench-np500"):
        down(name)
    try:
        lab = Lab.up(ROOT / "tests" / "integration" / "netpol_lab.yaml", name="nlbench-np9")
        lab.apply(manifests=[POLICY.format(i=0, ns="x", app=0, team=0, peer=0).replace(
            "namespace: nx", "namespace: x")])
        s, n, bad = timed_check(lab)
        print(f"check, 9-pod e2e lab: {n} probes in {s:.2f}s ({bad} mismatches)   (goal < 5 s)")
        down(lab.name)

        lab = Lab.up(manifests=[lab_of(50, 5, 20)], name="nlbench-np50")
        s, n, bad = timed_check(lab)
        print(f"check, 50-pod lab with 20 policies: {n} probes in {s:.2f}s ({bad} mismatches)")
        down(lab.name)

        t0 = time.perf_counter()
        lab = Lab.up(manifests=[lab_of(200, 10, 0)], name="nlbench-np500")
        base = time.perf_counter() - t0
        policies = "".join(POLICY.format(i=i, ns=i % 10, app=i % 20, team=i % 5,
                                         peer=(i * 7) % 20) for i in range(500))
        t0 = time.perf_counter()
        lab.apply(manifests=[policies])
        load = time.perf_counter() - t0
        rules = sum(len(lab.exec(f"node/{n.name}", ["nft", "-a", "list", "table", "ip",
                                                     "netlab-policy"]).stdout.splitlines())
                    for n in lab.nodes())
        print(f"500 policies over 200 pods on 4 nodes: apply {load:.2f}s (lab of 200 pods up "
              f"in {base:.2f}s; ~{rules} lines of netlab-policy ruleset in all)")
    finally:
        for name in ("nlbench-np9", "nlbench-np50", "nlbench-np500"):
            down(name)


if __name__ == "__main__":
    main()
