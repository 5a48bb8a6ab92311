#!/usr/bin/env python3
"""Benchmark: a dual-stack `up` against the IPv4-only `up` of the same lab, same run (issue 15
goal: <= 1.3x).

The lab: N pods with a containerPort (served by the agent's responder, so each is a listening
socket per family) over 4 nodes, vxlan, a Service over all of them; the IPv4-only lab has
`podCIDR: 10.244.0.0/16`, the dual-stack one `10.244.0.0/16,fd00:10:244::/56` (so every pod,
node, bridge and route exists twice, a second VXLAN device per node, an ip6 kube-proxy table,
a second listening socket per pod). Runs alternate (v4, dual, v4, dual, ...) so that drift on
the machine hits both; the medians are compared. `down` is timed too. Labs `nlbench-ds*`,
torn down in finally blocks.

    sudo .venv/bin/python bench/dual_stack.py            # 400 pods, 3 rounds
    sudo .venv/bin/python bench/dual_stack.py --pods 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from netlab import Lab, down

LAB = "nlbench-ds"


def manifests(pods: int, dual: bool) -> str:
    cidr = "10.244.0.0/16,fd00:10:244::/56" if dual else "10.244.0.0/16"
    policy = "  ipFamilyPolicy: PreferDualStack\n" if dual else ""
    head = ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 4\n"
            f"  podCIDRMaskSize: 22\n  podCIDR: {cidr}\n---\napiVersion: v1\nkind: Service\n"
            f"metadata: {{name: web}}\nspec:\n{policy}  selector: {{app: web}}\n"
            "  ports: [{port: 80}]\n")
    return head + "".join(
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, labels: {{app: web}}}}\n"
        "spec: {containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}\n"
        for i in range(pods))


def one(pods: int, dual: bool) -> tuple[float, float]:
    text = manifests(pods, dual)
    try:
        t0 = time.perf_counter()
        lab = Lab.up(manifests=[text], name=LAB)
        up = time.perf_counter() - t0
        assert len(lab.pods("default")) == pods
        time.sleep(1.0)  # let the agent and the DNS server settle before tearing down
        t0 = time.perf_counter()
        down(LAB)
        return up, time.perf_counter() - t0
    finally:
        down(LAB)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    print(f"netlab at {rev}; {args.pods} serving pods on 4 nodes, vxlan, {args.rounds} rounds",
          flush=True)
    one(8, False)  # warm-up (imports, templates), not counted
    v4: list[tuple[float, float]] = []
    ds: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        v4.append(one(args.pods, False))
        ds.append(one(args.pods, True))
    up4, up6 = statistics.median(u for u, _ in v4), statistics.median(u for u, _ in ds)
    dn4, dn6 = statistics.median(d for _, d in v4), statistics.median(d for _, d in ds)
    ratio = up6 / up4
    print(f"  up    IPv4-only {up4:6.3f}s  dual-stack {up6:6.3f}s  {ratio:4.2f}x  "
          f"(goal <= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'})  "
          f"runs: v4 {[round(u, 3) for u, _ in v4]} dual {[round(u, 3) for u, _ in ds]}")
    print(f"  down  IPv4-only {dn4:6.3f}s  dual-stack {dn6:6.3f}s  {dn6 / dn4:4.2f}x")


if __name__ == "__main__":
    main()
