#!/usr/bin/env python3
"""Benchmark: NetworkPolicy.

1. `check` on the 9-pod e2e-shaped lab (288 probes; goal < 5 s) and on a 50-pod lab;
2. loading 500 policies over 200 pods: render (engine + rules) and one `nft -f` per node;
3. verdicts from the kernel (issue 18): `check` of the 9-pod grid under deny-all, against
   one dropped `probe` at its default timeout (2 s) and against the same check waiting out
   timeouts (the kernel's record of dropped connections ignored), same run; goal <= 0.25x
   the one probe; and the 50-pod matrix (2,450 probes) under mostly-deny, goal < 1 s.

    sudo .venv/bin/python bench/netpol.py
"""

from __future__ import annotations

import time
from pathlib import Path

from netlab import Lab, down
from netlab.lab import Lab as LabClass

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


DENY_ALL = ("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: "
            "deny-all, namespace: {ns}}}\nspec: {{podSelector: {{}}, policyTypes: [Ingress, "
            "Egress]}}\n")


def kernel_verdicts() -> None:
    try:
        lab = Lab.up(ROOT / "tests" / "integration" / "netpol_lab.yaml", name="nlbench-npkv",
                     manifests=["".join(DENY_ALL.format(ns=ns) for ns in "xyz")])
        s, n, bad = timed_check(lab)
        t0 = time.perf_counter()
        one = lab.probe("x/a", "y/b", 80, timeout=2.0)
        probe_s = time.perf_counter() - t0
        reader = LabClass._dropped_reader
        LabClass._dropped_reader = lambda self: None  # type: ignore[method-assign]
        try:
            t0 = time.perf_counter()
            one_waited = lab.probe("x/a", "y/b", 80, timeout=2.0)
            waited_probe = time.perf_counter() - t0
            waited, _, _ = timed_check(lab)
        finally:
            LabClass._dropped_reader = reader  # type: ignore[method-assign]
        print(f"kernel verdicts, 9-pod grid under deny-all: check {n} probes in {s:.3f}s "
              f"({bad} mismatches) = {s / waited_probe:.2f}x one dropped probe at its default "
              f"timeout ({one_waited.result}, {waited_probe:.2f}s)   (goal <= 0.25x); the same "
              f"check waiting out timeouts {waited:.2f}s; one probe now {one.result} in "
              f"{probe_s:.3f}s")
        down(lab.name)
        lab = Lab.up(manifests=[lab_of(50, 5, 0) + "".join(DENY_ALL.format(ns=f"n{i}")
                                                          for i in range(4))],
                     name="nlbench-npkv")
        s, n, bad = timed_check(lab)
        # before: every drop waited out, every connection waiting for its answer
        import netlab.check as check_mod

        wait, check_mod.ANSWER_WAIT = check_mod.ANSWER_WAIT, None
        LabClass._dropped_reader = lambda self: None  # type: ignore[method-assign]
        try:
            before, _, _ = timed_check(lab)
        finally:
            LabClass._dropped_reader = reader  # type: ignore[method-assign]
            check_mod.ANSWER_WAIT = wait
        print(f"kernel verdicts, 50-pod matrix, 4 of 5 namespaces deny-all: {n} probes in "
              f"{s:.2f}s ({bad} mismatches)   (goal < 1 s); before (timeouts waited out, "
              f"answers awaited): {before:.2f}s")
    finally:
        down("nlbench-npkv")


def main() -> None:
    for name in ("nlbench-np9", "nlbench-np50", "nlbench-np500"):
        down(name)
    kernel_verdicts()
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
