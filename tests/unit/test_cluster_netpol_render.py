"""ClusterNetworkPolicy rendered into the node's netlab-policy table: per pod and direction
an Admin chain (rules in priority and written order: return, drop remembered for probes, goto
the NetworkPolicy chain for a Pass), the NetworkPolicy chain (its rules, or on to the
Baseline), and the Baseline chain; a pod no cluster policy selects keeps NetworkPolicy's
single chain."""

from __future__ import annotations

from pathlib import Path

from netlab.compile import compile_lab
from netlab.loader import read_text

LAB = Path(__file__).parents[2] / "scenarios" / "cluster-guardrails" / "lab.yaml"


def test_tiered_chains():
    d = compile_lab("t", read_text(LAB.read_text(), str(LAB)))
    assert len(d.manifests.cluster_network_policies) == 5
    node1 = "".join(t.full() for t in d.rules[d.plan.nodes[0].netns])
    db = d.plan.pods["sensitive/db"].ip
    assert f"add element ip netlab-policy ingress-pods {{ {db} : jump ingress-sensitive/db }}" \
        in node1
    admin = [line for line in node1.splitlines()
             if line.startswith("add rule ip netlab-policy ingress-sensitive/db ")]
    # priority 5's Accept before priority 10's Deny (remembered, then plain), then the NP tier
    assert "(Accept)" in admin[0] and admin[0].split(" comment ")[0].endswith(" return")
    assert "add @dropped" in admin[1] and "(Deny)" in admin[1] and "(Deny)" in admin[2]
    assert admin[-1].endswith("goto np-ingress-sensitive/db")
    node2 = "".join(t.full() for t in d.rules[d.plan.nodes[1].netns])
    assert "goto np-ingress-team-a/web" in node2 and '(Pass)"' in node2
    assert "add rule ip netlab-policy base-ingress-team-a/web return" in node2
    other = d.plan.pods["team-a/other"].ip
    assert "egress-team-a/other ip daddr { 203.0.113.0/24 }" in node2, node2
    assert f"{other} : jump egress-team-a/other" in node2
