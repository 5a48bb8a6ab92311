"""NetworkPolicy on a lab shaped like Kubernetes' e2e network-policy suite: for every
scenario the kernel's full matrix must equal the engine's (`check`), and a few cells are
pinned by hand so that the engine itself is held to the documented semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.check import CheckReport
from netlab.pytest_plugin import shared_lab

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def lab(request):
    return shared_lab(request, HERE / "netpol_lab.yaml", label="netpol")


@pytest.fixture
def policies(lab):
    """apply(yaml) policies for one test; they are deleted afterwards."""
    applied: list[str] = []

    def apply(yaml: str) -> CheckReport:
        applied.append(yaml)
        lab.apply(manifests=[yaml])
        report = lab.check(timeout=0.6)
        assert report.ok, "\n".join(f"{p.src}->{p.dst} {p.protocol}/{p.port}: expected "
                                    f"{p.expected}, kernel {p.observed}"
                                    for p in report.mismatches)
        return report

    yield apply
    for yaml in applied:
        lab.delete(manifests=[yaml])


def np(ns: str, spec: str, name: str = "p") -> str:
    return (f"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: "
            f"{{name: {name}, namespace: {ns}}}\nspec:\n{spec}")


def cell(report: CheckReport, src: str, dst: str, port: int = 80, proto: str = "TCP") -> bool:
    p = next(p for p in report.probes
             if (p.src, p.dst, p.port, p.protocol) == (src, dst, port, proto))
    return p.observed == "allowed"


def test_no_policies_everything_connects(lab):
    report = lab.check(timeout=0.6)
    assert report.ok and len(report.probes) == 288
    assert all(p.observed == "allowed" for p in report.probes)
    assert report.seconds < 5


def test_deny_all_ingress(policies):
    r = policies(np("x", "  podSelector: {}\n  policyTypes: [Ingress]\n"))
    assert not cell(r, "y/a", "x/a") and not cell(r, "x/b", "x/a", 81, "UDP")
    assert cell(r, "x/a", "y/a")


def test_deny_all_egress(policies):
    r = policies(np("x", "  podSelector: {}\n  policyTypes: [Egress]\n"))
    assert not cell(r, "x/a", "y/a") and cell(r, "y/a", "x/a")


def test_allow_from_a_namespace(policies):
    r = policies(np("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: "
                         "[{namespaceSelector: {matchLabels: {ns: y}}}]\n"))
    assert cell(r, "y/c", "x/a") and not cell(r, "z/c", "x/a") and not cell(r, "x/b", "x/a")


def test_pod_in_any_namespace_and(policies):
    r = policies(np("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
                         "    - namespaceSelector: {}\n      podSelector: {matchLabels: "
                         "{pod: b}}\n"))
    assert cell(r, "z/b", "x/a") and cell(r, "x/b", "x/a") and not cell(r, "y/c", "x/a")


def test_or_of_peers(policies):
    r = policies(np("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
                         "    - namespaceSelector: {matchLabels: {ns: y}}\n"
                         "    - podSelector: {matchLabels: {pod: b}}\n"))
    assert cell(r, "y/c", "x/a") and cell(r, "x/b", "x/a")
    assert not cell(r, "z/b", "x/a") and not cell(r, "x/c", "x/a")


def test_ip_block_with_except(lab, policies):
    b_node = lab.pod("y/b").ip.rsplit(".", 1)[0] + ".0/24"
    r = policies(np("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
                         f"    - ipBlock: {{cidr: 10.244.0.0/16, except: [{b_node}]}}\n"
                         "    - ipBlock: {cidr: 172.18.0.254/32}\n"))
    assert not cell(r, "y/b", "x/a")  # in the except
    assert cell(r, "y/a", "x/a") and cell(r, "external", "x/a")
    assert any(p.src == "external" for p in r.probes)


def test_named_port(policies):
    r = policies(np("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
                         "  - ports: [{port: serve-81-udp, protocol: UDP}]\n"))
    assert cell(r, "y/a", "x/a", 81, "UDP")
    assert not cell(r, "y/a", "x/a", 81, "TCP") and not cell(r, "y/a", "x/a", 80, "UDP")


def test_end_port_range(policies):
    r = policies(np("x", "  podSelector: {}\n  ingress:\n  - ports: [{port: 79, endPort: 80}]\n"))
    assert cell(r, "y/a", "x/a", 80) and not cell(r, "y/a", "x/a", 81)


def test_udp_is_not_tcp(policies):
    r = policies(np("x", "  podSelector: {}\n  ingress:\n  - ports: [{protocol: UDP, port: 80}]\n"))
    assert cell(r, "y/a", "x/b", 80, "UDP") and not cell(r, "y/a", "x/b", 80, "TCP")


def test_sctp_only_rule_never_admits_tcp(policies):
    r = policies(np("x", "  podSelector: {}\n  ingress:\n  - ports: [{protocol: SCTP, port: 80}]"
                         "\n"))
    assert not cell(r, "y/a", "x/b", 80, "TCP") and not cell(r, "y/a", "x/b", 80, "UDP")


def test_both_directions(policies):
    r = policies(np("x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
                         "  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: y}}}]\n",
                    "egress") + np("y", "  podSelector: {matchLabels: {pod: b}}\n"
                                        "  policyTypes: [Ingress]\n", "deny-b"))
    assert cell(r, "x/a", "y/a") and not cell(r, "x/a", "y/b") and not cell(r, "x/a", "z/a")


def test_union_of_two_policies(policies):
    r = policies(np("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: "
                         "[{podSelector: {matchLabels: {pod: b}}}]\n", "one")
                 + np("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: "
                           "[{podSelector: {matchLabels: {pod: c}}}]\n", "two"))
    assert cell(r, "x/b", "x/a") and cell(r, "x/c", "x/a") and not cell(r, "y/b", "x/a")


def test_match_expressions(policies):
    r = policies(np("x", "  podSelector: {matchExpressions: [{key: pod, operator: NotIn, "
                         "values: [a]}]}\n  ingress:\n  - from: [{namespaceSelector: "
                         "{matchExpressions: [{key: ns, operator: In, values: [y, z]}]}}]\n"))
    assert cell(r, "x/a", "x/b") is False and cell(r, "y/a", "x/b") and cell(r, "x/b", "x/a")


def test_policy_types_default_isolates_ingress_too(policies):
    r = policies(np("x", "  podSelector: {matchLabels: {pod: a}}\n  egress: [{}]\n"))
    assert cell(r, "x/a", "y/a") and not cell(r, "y/a", "x/a")


def test_return_traffic_passes(policies):
    # x/a may not start anything (egress deny), but answers what it is allowed to receive
    r = policies(np("x", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"))
    assert cell(r, "y/a", "x/a") and not cell(r, "x/a", "y/a")


def test_policy_with_a_service(lab, policies):
    svc = ("---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-a, namespace: x}\nspec:\n"
           "  selector: {pod: a}\n  ports: [{port: 8000, targetPort: serve-81-tcp}]\n")
    policies(svc + np("x", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: "
                           "[{namespaceSelector: {matchLabels: {ns: y}}}]\n    ports: "
                           "[{port: 81}]\n"))
    # policy applies after DNAT: it sees the pod and target port 81, not 8000
    assert lab.probe("y/b", "svc/x/svc-a").connected
    assert lab.probe("z/b", "svc/x/svc-a", timeout=0.5).result == "dropped"  # the kernel says so
    e = lab.explain("z/b", "svc/x/svc-a")
    assert e.expected == "denied" and e.agrees
    assert any("verdict drop" in v and "ingress-x/a" in v for v in e.kernel_verdicts), \
        e.kernel_verdicts
    assert any("to endpoint x/a port 81" in line for line in e.reasoning)


def test_label_change_and_new_pod(lab, policies):
    policies(np("x", "  podSelector: {}\n  ingress:\n  - from: [{podSelector: {matchLabels: "
                     "{role: friend}}}]\n"))
    assert lab.probe("x/b", "x/a", 80, timeout=0.5).result == "dropped"
    lab.label("x/b", {"role": "friend"})
    try:
        assert lab.probe("x/b", "x/a", 80).connected
        # a new pod in x is isolated at once; a new friend gets in
        lab.apply(manifests=["apiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: x, "
                             "labels: {role: friend}}\nspec:\n  containers: [{name: c, ports: "
                             "[{containerPort: 80}]}]\n"])
        assert lab.probe("x/d", "x/a", 80).connected
        assert lab.probe("y/a", "x/d", 80, timeout=0.5).result == "dropped"
        report = lab.check(timeout=0.6)
        assert report.ok, report.mismatches
    finally:
        lab.label("x/b", {"role": None})
        lab.delete(manifests=["apiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: x}\n"])
