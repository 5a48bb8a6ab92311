#!/usr/bin/env python3
"""Benchmark: `up` of a 10-node lab with backend bgp (BIRD in every node, an iBGP full mesh:
45 sessions, 90 routes learned) against the host-gw `up` of the same lab, same run (issue 20
goal: <= 2x), and whether every route is present when `up` returns (it waits for them).

The lab: 10 nodes, 2 pods with a containerPort on each. Runs alternate (host-gw, bgp, ...)
and the medians are compared. Labs `nlbench-bgp*`, torn down in finally blocks.

    sudo .venv/bin/python bench/bgp.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import time

from netlab import Lab, down

LAB = "nlbench-bgp"
NODES = 10


def manifests(backend: str, pods: int = 2 * NODES) -> str:
    head = ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\n"
            f"spec: {{nodes: {NODES}, backend: {backend}}}\n")
    return head + "".join(
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\n"
        f"spec: {{nodeName: node-{i % NODES + 1}, containers: [{{name: c, "
        "ports: [{containerPort: 80}]}]}\n" for i in range(pods))


def routes_missing(lab: Lab) -> int:
    """Remote pod blocks a node has no route for, over all nodes, right after `up`."""
    nodes = lab.nodes()
    missing = 0
    for n in nodes:
        have = lab.exec(f"node/{n.name}", ["ip", "-4", "route", "show"]).stdout
        missing += sum(o.pod_cidr not in have for o in nodes if o.name != n.name)
    return missing


def one(backend: str, pods: int) -> tuple[float, int]:
    name = f"{LAB}-{backend.replace('-', '')}"
    down(name)
    try:
        t0 = time.perf_counter()
        lab = Lab.up(manifests=[manifests(backend, pods)], name=name)
        seconds = time.perf_counter() - t0
        return seconds, routes_missing(lab)
    finally:
        down(name)


def main(rounds: int) -> None:
    # BIRD waits at least ~0.75-1 s before its first connect (proto/bgp/bgp.c bgp_active:
    # MAX(1, connect delay time), randomized): a fixed cost; a bigger lab shows its share
    for pods in (2 * NODES, 20 * NODES):
        times: dict[str, list[float]] = {"host-gw": [], "bgp": []}
        missing = 0
        for _ in range(rounds):
            for backend in times:
                s, m = one(backend, pods)
                times[backend].append(s)
                if backend == "bgp":
                    missing += m
        hg, bgp = (statistics.median(times[b]) for b in ("host-gw", "bgp"))
        print(f"up of a {NODES}-node lab, {pods} pods, median of {rounds}: "
              f"host-gw {hg:.2f}s, bgp {bgp:.2f}s = {bgp / hg:.2f}x   (goal <= 2x: "
              f"{'met' if bgp / hg <= 2 else 'NOT met'}); routes missing when bgp's up "
              f"returned: {missing} (of {NODES * (NODES - 1)} per round)")
        print("  each bgp up: " + " ".join(f"{t:.2f}" for t in sorted(times["bgp"]))
              + "s; host-gw: " + " ".join(f"{t:.2f}" for t in sorted(times["host-gw"])) + "s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
