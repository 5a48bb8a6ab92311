"""Verdicts from the kernel: a connection NetworkPolicy drops is recorded by the dropping
rule (the `dropped` set of netlab-policy, by source address, protocol and port), so `probe`
and `check` know at once that it was dropped instead of waiting out a timeout; what the
policy allows still connects, and check still agrees with the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.netlab

HERE = Path(__file__).parent
DENY_INGRESS_Y = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-in, namespace: y}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-out, namespace: z}
spec: {podSelector: {}, policyTypes: [Egress]}
"""


def test_dropped_connections_are_known_at_once(netlab_lab):
    lab = netlab_lab(HERE / "netpol_lab.yaml", manifests=(DENY_INGRESS_Y,))
    for proto in ("tcp", "udp"):
        r = lab.probe("x/a", "y/b", 80, proto, timeout=5.0)  # dropped at y/b's ingress
        assert r.result == "dropped" and r.seconds < 1.0, r
        assert "NetworkPolicy" in r.detail
    out = lab.probe("z/a", "x/b", 80, timeout=5.0)  # dropped at z/a's egress
    assert out.result == "dropped" and out.seconds < 1.0, out
    assert lab.probe("x/a", "x/b", 80).connected  # not isolated: connects as before
    report = lab.check(timeout=3.0)
    assert report.ok, report.mismatches
    dropped = [p for p in report.probes if p.result == "dropped"]
    assert dropped and all(p.observed == "denied" for p in dropped)
    assert not [p for p in report.probes if p.result == "timeout"]


def test_a_completed_handshake_is_the_verdict_for_check(netlab_lab):
    """The cluster DNS never answers a probe's line over TCP: `probe` waits for an answer
    until its timeout (then says the server sent nothing); check's probes take the completed
    handshake as the verdict after a short wait (probe.run_many's answer_wait)."""
    lab = netlab_lab(yaml="apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 1}\n"
                     "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n"
                     "spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\n"
                     "---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: y}\n"
                     "spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\n")
    waited = lab.probe("x/a", "kube-system/coredns", 53, "tcp", timeout=1.5)
    assert waited.connected and waited.seconds >= 1.4, waited
    assert "sent nothing back" in waited.detail
    (quick,) = lab.probe_many([("x/a", "kube-system/coredns", 53, "tcp")], timeout=1.5,
                              answer_wait=0.2)
    assert quick.connected and quick.seconds < 1.0, quick
    # an answering pod still names itself within the wait
    (named,) = lab.probe_many([("x/a", "y/b", 80, "tcp")], timeout=1.5, answer_wait=0.5)
    assert named.connected and named.answered_by == "y/b", named
