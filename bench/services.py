#!/usr/bin/env python3
"""Benchmark: kube-proxy-style rules for 1,000 Services with 3 endpoints each, in both of
kube-proxy's modes.

1. render + load the whole ruleset into one node in one `nft -f` transaction;
2. change one Service's selector in a running lab of 1,000 Services (`Lab.apply`): the
   time of the whole apply, and of its nft transaction alone (only the changed chains
   and map elements), with the full reload measured in the same run as the baseline.
3. the same two in iptables mode (kube-proxy's iptables proxier: one iptables-restore
   --noflush transaction; a partial sync rewrites only the changed Service's chains),
   loaded into the same node beside the nft table (a benchmark, not a lab), then removed.
Goals (issue 3): full load < 1 s; single update < 50 ms. Issue 17: iptables full load <= 2 s,
its one-Service change <= 5x the nftables mode's.

    sudo .venv/bin/python bench/services.py [SERVICES]
"""

from __future__ import annotations

import sys
import time

from netlab import Lab, down
from netlab.features import kubeproxy_iptables as ipt
from netlab.features.kubeproxy import _service_rules, render_tables
from netlab.kernel import Kernel

GROUPS = 10  # 10 groups of 3 pods; Service i selects group i % 10: 3 endpoints each


def pods() -> str:
    return "".join(
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{g}-{i}, labels: {{group: g{g}}}}}\n"
        f"spec:\n  containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]\n"
        f"  nodeName: node-{1 + (i % 2)}\n"
        for g in range(GROUPS) for i in range(3))


def service(i: int, group: int) -> str:
    return (f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\nspec:\n"
            f"  selector: {{group: g{group}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n")


def main(n: int) -> None:
    cluster = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 2}\n"
    services = "".join(service(i, i % GROUPS) for i in range(n))
    down("nlbench-svc")
    try:
        t0 = time.perf_counter()
        lab = Lab.up(manifests=[cluster + pods() + services], name="nlbench-svc")
        up = time.perf_counter() - t0
        plan = lab.plan
        node = plan.node("node-1")
        kernel = Kernel(lab.name)

        _service_rules.cache_clear()  # a cold render, as in a fresh `netlab` process
        t0 = time.perf_counter()
        tables = render_tables(plan, node)
        full = "".join(t.full() for t in tables)
        render = time.perf_counter() - t0
        t0 = time.perf_counter()
        kernel.nft(node.netns, full)
        load = time.perf_counter() - t0
        rules = full.count("\nadd rule ")

        t0 = time.perf_counter()
        lab.apply(manifests=[service(7, 3)])  # s7 moves from group 7 to group 3
        apply = time.perf_counter() - t0
        new_plan = lab.plan
        t0 = time.perf_counter()
        new_tables = render_tables(new_plan, node)
        diff = "".join(t.diff(o) for t, o in zip(new_tables, tables, strict=True))
        diff_render = time.perf_counter() - t0
        # put the old rules back, then time the partial transaction against a full reload
        kernel.nft(node.netns, full)
        t0 = time.perf_counter()
        kernel.nft(node.netns, diff)
        partial = time.perf_counter() - t0
        t0 = time.perf_counter()
        kernel.nft(node.netns, "".join(t.full() for t in new_tables))
        reload = time.perf_counter() - t0
        # iptables mode: the old plan's rules loaded whole, then the change as a partial sync
        t0 = time.perf_counter()
        old_rules = ipt.render_node(plan, node)
        ipt_full = ipt.restore_text(old_rules)
        ipt_render = time.perf_counter() - t0
        t0 = time.perf_counter()
        kernel.iptables_restore(node.netns, "IPv4", ipt_full)
        ipt_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        new_rules = ipt.render_node(new_plan, node)
        ipt_diff = ipt.restore_text(new_rules, old_rules)
        ipt_diff_render = time.perf_counter() - t0
        t0 = time.perf_counter()
        kernel.iptables_restore(node.netns, "IPv4", ipt_diff)
        ipt_partial = time.perf_counter() - t0
        kernel.iptables_restore(node.netns, "IPv4", ipt.cleanup_text(new_rules))
        ipt_lines = ipt_full.count("\n-A ")
        kernel.close()
    finally:
        down("nlbench-svc")
    print(f"{n} Services x 3 endpoints, {rules} rules per node (lab up in {up:.2f}s)")
    print(f"  full ruleset: render {render * 1000:.0f} ms + nft load {load * 1000:.0f} ms "
          f"= {(render + load) * 1000:.0f} ms   (goal < 1000 ms)")
    print(f"  one Service changed: nft transaction {partial * 1000:.1f} ms "
          f"({diff.count(chr(10))} lines; full reload baseline {reload * 1000:.0f} ms, "
          f"{reload / partial:.0f}x) + render and diff {diff_render * 1000:.1f} ms = "
          f"{(partial + diff_render) * 1000:.1f} ms   (goal < 50 ms)")
    print(f"  whole `apply` of that change (load, plan, render, diff, both nodes, state): "
          f"{apply * 1000:.0f} ms")
    nft_full, nft_change = render + load, partial + diff_render
    ipt_change = ipt_partial + ipt_diff_render
    print(f"iptables mode: {ipt_lines} rules per node")
    print(f"  full ruleset: render {ipt_render * 1000:.0f} ms + iptables-restore "
          f"{ipt_load * 1000:.0f} ms = {(ipt_render + ipt_load) * 1000:.0f} ms   (goal <= 2000 "
          f"ms; {(ipt_render + ipt_load) / nft_full:.1f}x the nftables mode's)")
    print(f"  one Service changed: iptables-restore {ipt_partial * 1000:.1f} ms "
          f"({ipt_diff.count(chr(10))} lines) + render and diff {ipt_diff_render * 1000:.1f} ms"
          f" = {ipt_change * 1000:.1f} ms = {ipt_change / nft_change:.1f}x the nftables mode's "
          f"{nft_change * 1000:.1f} ms   (goal <= 5x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
