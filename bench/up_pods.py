#!/usr/bin/env python3
"""Benchmark: `up` and `down` of a lab of N pods over 4 nodes, against a raw baseline.

Baseline, measured in the same run: the same number of network namespaces, veth pairs and
bridge ports made by `ip -batch` (one batch per node namespace, entered with nsenter; no
addresses, routes, sysctls or hostnames, so netlab does strictly more work than it).
Goal (issue 2): netlab up of 1000 pods within 2x of the baseline.

    sudo .venv/bin/python bench/up_pods.py [N ...]      (default: 10 100 1000)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netlab import Lab, down
from netlab.kernel import destroy_lab, lab_netns

NODES = 4
RAW = "nlbenchraw"  # the baseline's namespaces are netlab.nlbenchraw.* so leftovers are findable


def manifests(n: int) -> str:
    docs = ["apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n"
            f"  nodes: {NODES}\n  podCIDRMaskSize: 22\n"]
    docs += [f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\n"
             "spec: {containers: [{name: c, image: pause}]}\n" for i in range(n)]
    return "---\n".join(docs)


def netlab_run(n: int) -> tuple[float, float]:
    text = manifests(n)
    settle()
    t0 = time.perf_counter()
    lab = Lab.up(manifests=[text], name="nlbench")
    t1 = time.perf_counter()
    assert len(lab.pods("default")) == n  # plus the cluster DNS add-on in kube-system
    settle()
    t2 = time.perf_counter()
    down("nlbench")
    t3 = time.perf_counter()
    return t1 - t0, t3 - t2


def settle(timeout: float = 15.0) -> float:
    """Wait until the machine is quiet (under 10% of its CPUs busy over 200 ms): the kernel
    frees deleted network namespaces in a worker long after `ip netns del` or `down` has
    returned (seconds for a thousand), and a measurement made meanwhile pays for the
    previous one's teardown. Every timed step starts after it. The time waited."""
    def ticks() -> tuple[int, int]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # all, idle + iowait

    t0 = time.perf_counter()
    total, idle = ticks()
    while time.perf_counter() - t0 < timeout:
        time.sleep(0.2)
        total2, idle2 = ticks()
        busy = 1 - (idle2 - idle) / max(1, total2 - total)
        total, idle = total2, idle2
        if busy < 0.10:
            break
    return time.perf_counter() - t0


def raw_up(n: int) -> float:
    """Make the baseline's namespaces, veths and bridge ports; the time it took."""
    settle()
    with tempfile.TemporaryDirectory() as tmp:
        node_ns = [f"netlab.{RAW}.node.n{j}" for j in range(NODES)]
        files = []
        for j in range(NODES):
            lines = ["link add br0 type bridge", "link set br0 up"]
            for i in range(j, n, NODES):
                pod = f"netlab.{RAW}.pod.p{i}"
                lines += [f"netns add {pod}",
                          f"link add v{i} type veth peer name eth0 netns {pod}",
                          f"link set v{i} master br0 up"]
            f = Path(tmp) / f"n{j}.batch"
            f.write_text("\n".join(lines) + "\n")
            files.append(f)
        t0 = time.perf_counter()
        subprocess.run(["ip", "-batch", "-"], input="".join(f"netns add {ns}\n" for ns in node_ns),
                       text=True, check=True)
        for ns, f in zip(node_ns, files, strict=True):
            subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "ip", "-batch", str(f)],
                           check=True)
        return time.perf_counter() - t0


def raw_down(n: int) -> float:
    """Delete the baseline's namespaces (which raw_up made for n pods); the time it took."""
    names = lab_netns(RAW)
    assert len(names) == n + NODES, len(names)
    settle()
    t0 = time.perf_counter()
    subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {x}\n" for x in names),
                   text=True, check=True)
    return time.perf_counter() - t0


def raw_run(n: int) -> tuple[float, float]:
    return raw_up(n), raw_down(n)


def main(sizes: list[int]) -> None:
    destroy_lab(RAW)
    down("nlbench")
    print(f"{'pods':>6} {'raw up':>9} {'netlab up':>10} {'ratio':>6} {'ms/pod':>7} "
          f"{'raw down':>9} {'netlab down':>12}")
    for n in sizes:
        try:
            raw_up, raw_down = raw_run(n)
        finally:
            destroy_lab(RAW)
        try:
            nl_up, nl_down = netlab_run(n)
        finally:
            down("nlbench")
        print(f"{n:>6} {raw_up:>8.3f}s {nl_up:>9.3f}s {nl_up / raw_up:>5.2f}x "
              f"{1000 * nl_up / n:>7.2f} {raw_down:>8.3f}s {nl_down:>11.3f}s", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 1000])
