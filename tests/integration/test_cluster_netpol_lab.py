"""ClusterNetworkPolicy with real traffic: the Admin tier over NetworkPolicy (a Deny that a
NetworkPolicy allow cannot undo; priority order; a Pass handing over to NetworkPolicy), the
Baseline tier only where no NetworkPolicy isolates, egress to `networks`, and `check`
finding the kernel in agreement with the tiered semantics on every pair (fast: the kernel
records what it dropped)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.netlab

LAB = Path(__file__).parents[2] / "scenarios" / "cluster-guardrails" / "lab.yaml"


def test_tiers_with_real_traffic(netlab_lab):
    lab = netlab_lab(LAB)
    # Admin: priority 5 Accepts the client before priority 10's Deny; the Deny beats the
    # sensitive namespace's own allow-all NetworkPolicy for everyone else
    assert lab.probe("team-a/client", "sensitive/db", 80).connected
    assert lab.probe("team-a/other", "sensitive/db", 80, timeout=3).result == "dropped"
    # a Pass hands web over to its NetworkPolicy: the client in, the other out
    assert lab.probe("team-a/client", "team-a/web", 80).connected
    assert not lab.probe("team-a/other", "team-a/web", 80, timeout=3).connected
    # Baseline where no NetworkPolicy isolates: client is denied by the baseline
    assert not lab.probe("team-a/web", "team-a/client", 80, timeout=3).connected
    # egress to a network: other may not reach the internet, web may
    assert not lab.probe("team-a/other", "internet", 80, timeout=3).connected
    assert lab.probe("team-a/web", "internet", 80).connected
    e = lab.explain("team-a/other", "sensitive/db", 80)
    assert e.agrees and any('isolate-sensitive rule ingress[0] "deny-all" (Deny)' in line
                            for line in e.reasoning), e.reasoning
    # `get clusternetworkpolicies` (cnp): the CRD's columns, the document as applied
    infos = {p.name: p for p in lab.cluster_policy_infos()}
    assert [(infos[n].tier, infos[n].priority) for n in ("client-to-db", "default")] == [
        ("Admin", 5), ("Baseline", 0)]
    assert infos["no-internet"].to_k8s()["spec"]["egress"][0]["action"] == "Deny"
    report = lab.check(timeout=3.0)
    assert report.ok, report.mismatches
    assert report.seconds < 2.0  # drops read from the kernel, not waited for
