"""graph: the edges policy decides, NetworkPolicy alone and with ClusterNetworkPolicy tiers."""

from __future__ import annotations

from pathlib import Path

from netlab.compile import compile_lab
from netlab.graph import _id, render_dot
from netlab.loader import read_files

GUARDRAILS = Path(__file__).parents[2] / "scenarios" / "cluster-guardrails" / "lab.yaml"


def _edges(dot: str, src: str, dst: str) -> list[str]:
    return [line for line in dot.splitlines()
            if line.strip().startswith(f"{_id('pod', src)} -> {_id('pod', dst)} ")]


def test_guardrails_edges_name_the_cluster_tier():
    desired = compile_lab("g", read_files([GUARDRAILS]))
    cnps = list(desired.manifests.cluster_network_policies.values())
    dot = render_dot(desired.plan, desired.policies, cluster_policies=cnps)
    # the Admin exception accepted by priority, named on the edge
    (edge,) = _edges(dot, "team-a/client", "sensitive/db")
    assert "forestgreen" in edge and "allowed 80/TCP" in edge and "Admin" in edge
    # the Admin isolation: a red dashed edge naming the policy
    (edge,) = _edges(dot, "team-a/web", "sensitive/db")
    assert "red3" in edge and "dashed" in edge and "Admin deny: isolate-sensitive" in edge
    # without the cluster policies the sensitive namespace's own NetworkPolicy lets it in:
    # the Admin tier is what overrides it
    plain = render_dot(desired.plan, desired.policies)
    (edge,) = _edges(plain, "team-a/web", "sensitive/db")
    assert "forestgreen" in edge
    assert "Admin" not in plain and "red3" not in plain


def test_baseline_deny_draws_no_edge_and_networkpolicy_allow_stays():
    desired = compile_lab("g", read_files([GUARDRAILS]))
    cnps = list(desired.manifests.cluster_network_policies.values())
    dot = render_dot(desired.plan, desired.policies, cluster_policies=cnps)
    (edge,) = _edges(dot, "team-a/client", "team-a/web")
    assert "allowed 80/TCP" in edge and "Admin" not in edge and "Baseline" not in edge
