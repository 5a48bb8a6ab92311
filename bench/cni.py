#!/usr/bin/env python3
"""Benchmark: a CNI-mode `up` against the native `up` of the same lab, same run, with the
cost per plugin call (issue goal: CNI mode <= 4x native).

The lab: N pods with a containerPort (served by the agent's responder) over 4 nodes, vxlan, a
Service over all of them. The native lab plumbs pods with netlab's own bridge; the CNI lab
carries `spec.cni` with Debian's reference plugins (/usr/lib/cni): bridge (with host-local as
its IPAM, allocating from the node's podCIDR given as runtimeConfig.ipRanges) + portmap, the
list of the README's example without bandwidth (no pod has bandwidth annotations, so it would
only add a pass-through call). Per pod that is 2 plugins in the list (bridge, portmap) and 3
executables (bridge runs host-local itself); each runs through `nsenter` in the node's netns.
Pods are pinned round-robin to the 4 nodes (spec.nodeName) in both labs, so both have the same
placement: left to netlab's scheduler every CNI-mode pod lands on node-1 (plan.make_plan
spreads by address slots, which CNI mode does not take), and the CNI lab would be another
lab, its plugin calls all in one node, one after the other, instead of 4 nodes at once;
`--scheduled` measures that instead. Runs alternate (native, cni, native, cni, ...) so that
drift on the machine hits both; the medians are compared. `down` is timed too (CNI mode DELs
every pod: the same plugin calls again).

    cost per plugin call = (cni up - native up) / (pods x plugins in the list)

Labs `nlbench-cni*`, torn down in finally blocks.

    sudo .venv/bin/python bench/cni.py            # 400 pods, 3 rounds
    sudo .venv/bin/python bench/cni.py --pods 100 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from netlab import Lab, down

LAB_NATIVE, LAB_CNI = "nlbench-cni-native", "nlbench-cni"

# The README's example list without bandwidth; MTU 1450: vxlan over a 1500 underlay.
CONFLIST = {
    "cniVersion": "1.0.0", "name": "cbr0",
    "plugins": [
        {"type": "bridge", "capabilities": {"ipRanges": True}, "bridge": "cni0",
         "isDefaultGateway": True, "ipMasq": False, "hairpinMode": True, "mtu": 1450,
         "ipam": {"type": "host-local"}},
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
    ],
}
PLUGINS = len(CONFLIST["plugins"])


def manifests(pods: int, cni: bool, pinned: bool = True) -> str:
    extra = f"  cni:\n    config: {json.dumps(CONFLIST)}\n" if cni else ""
    head = ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 4\n"
            f"  podCIDRMaskSize: 22\n  podCIDR: 10.244.0.0/16\n{extra}---\napiVersion: v1\n"
            "kind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
            "  ports: [{port: 80}]\n")
    return head + "".join(
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, labels: {{app: web}}}}\n"
        f"spec: {{{f'nodeName: node-{i % 4 + 1}, ' if pinned else ''}"
        "containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}\n"
        for i in range(pods))


def revision() -> str:
    """The checkout's commit, read from .git (no git process), or '?'."""
    git = Path(__file__).resolve().parents[1] / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            try:
                head = (git / ref).read_text().strip()
            except FileNotFoundError:
                packed = (git / "packed-refs").read_text().splitlines()
                head = next(line.split()[0] for line in packed if line.endswith(" " + ref))
        return head[:7]
    except (OSError, StopIteration):
        return "?"


def one(pods: int, cni: bool, pinned: bool = True) -> tuple[float, float]:
    name = LAB_CNI if cni else LAB_NATIVE
    text = manifests(pods, cni, pinned)
    try:
        t0 = time.perf_counter()
        lab = Lab.up(manifests=[text], name=name)
        up = time.perf_counter() - t0
        got = lab.pods("default")
        assert len(got) == pods, len(got)
        if cni:  # every pod has the address host-local gave it
            assert all(p.ip for p in lab.plan.pods.values() if p.namespace == "default")
        time.sleep(1.0)  # let the agent and the DNS server settle before tearing down
        t0 = time.perf_counter()
        down(name)
        return up, time.perf_counter() - t0
    finally:
        down(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scheduled", action="store_true",
                    help="leave the pods' placement to netlab (not pinned round-robin)")
    args = ap.parse_args()
    rev = revision()
    print(f"netlab at {rev}; {args.pods} serving pods on 4 nodes, vxlan, {args.rounds} rounds; "
          f"CNI list: {' + '.join(p['type'] for p in CONFLIST['plugins'])} "
          "(host-local as bridge's IPAM); pods "
          f"{'placed by netlab' if args.scheduled else 'pinned round-robin'}", flush=True)
    one(8, False)  # warm-up (imports, templates), not counted
    one(8, True)
    nat: list[tuple[float, float]] = []
    cni: list[tuple[float, float]] = []
    for i in range(args.rounds):
        nat.append(one(args.pods, False, not args.scheduled))
        cni.append(one(args.pods, True, not args.scheduled))
        print(f"  round {i + 1}: up native {nat[-1][0]:6.3f}s cni {cni[-1][0]:6.3f}s; "
              f"down native {nat[-1][1]:6.3f}s cni {cni[-1][1]:6.3f}s", flush=True)
    upn, upc = statistics.median(u for u, _ in nat), statistics.median(u for u, _ in cni)
    dnn, dnc = statistics.median(d for _, d in nat), statistics.median(d for _, d in cni)
    ratio = upc / upn
    per_call = (upc - upn) / (args.pods * PLUGINS)
    print(f"  up    native {upn:6.3f}s  cni {upc:6.3f}s  {ratio:4.2f}x  "
          f"(goal <= 4x: {'met' if ratio <= 4 else 'NOT met'})  "
          f"runs: native {[round(u, 3) for u, _ in nat]} cni {[round(u, 3) for u, _ in cni]}")
    print(f"  down  native {dnn:6.3f}s  cni {dnc:6.3f}s  {dnc / dnn:4.2f}x  "
          f"runs: native {[round(d, 3) for _, d in nat]} cni {[round(d, 3) for _, d in cni]}")
    print(f"  per plugin call (up): ({upc:.3f} - {upn:.3f}) / ({args.pods} pods x {PLUGINS} "
          f"plugins) = {per_call * 1000:.2f} ms; per pod {(upc - upn) / args.pods * 1000:.2f} ms")


if __name__ == "__main__":
    main()
