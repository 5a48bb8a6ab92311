"""The policy engine on its own: every edge case of NetworkPolicy v1 semantics."""

from __future__ import annotations

import pytest

from netlab.loader import build, read_text
from netlab.policy.engine import PodRef, PolicyEngine

NAMESPACES = {ns: {"kubernetes.io/metadata.name": ns, "team": team}
              for ns, team in (("x", "blue"), ("y", "red"), ("z", "red"))}


def pod(ns: str, name: str, ip: str, node: str = "node-1", **labels: str) -> PodRef:
    ports = (("http", "TCP", 8080 if name != "b" else 9090), ("dns", "UDP", 53))
    return PodRef(ns, name, ip, {"pod": name, **labels}, ports, node)


PODS = [pod("x", "a", "10.244.0.2", app="web"), pod("x", "b", "10.244.0.3", app="db"),
        pod("y", "a", "10.244.1.2", app="web"), pod("z", "c", "10.244.2.2", node="node-3")]
P = {p.key: p for p in PODS}


def engine(yaml: str) -> PolicyEngine:
    m = build(read_text(yaml, "p.yaml"))
    return PolicyEngine(PODS, NAMESPACES, m.network_policies.values(),
                        {"node-1": {"172.18.0.2", "10.244.0.1"}})


def policy(ns: str, spec: str, name: str = "p") -> str:
    return (f"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: "
            f"{{name: {name}, namespace: {ns}}}\nspec:\n{spec}")


def allowed(e: PolicyEngine, src, dst, port=80, proto="TCP") -> bool:
    return e.decide(P.get(src, src), P.get(dst, dst), port, proto).allowed


def test_no_policy_allows_everything():
    e = engine("")
    assert allowed(e, "x/a", "y/a") and allowed(e, "203.0.113.1", "x/b")


def test_default_deny_ingress_and_allow_all():
    e = engine(policy("x", "  podSelector: {}\n  policyTypes: [Ingress]\n"))
    assert not allowed(e, "y/a", "x/a") and not allowed(e, "x/b", "x/a")
    assert allowed(e, "x/a", "y/a")  # only x is isolated
    e = engine(policy("x", "  podSelector: {}\n  ingress: [{}]\n"))
    assert allowed(e, "y/a", "x/a") and allowed(e, "203.0.113.1", "x/a", 1, "UDP")


def test_ingress_empty_list_denies():
    e = engine(policy("x", "  podSelector: {}\n  ingress: []\n"))
    assert not allowed(e, "y/a", "x/a")


def test_pod_selector_means_the_policy_namespace():
    e = engine(policy("x", "  podSelector: {matchLabels: {app: db}}\n  ingress:\n"
                           "  - from: [{podSelector: {matchLabels: {app: web}}}]\n"))
    assert allowed(e, "x/a", "x/b")
    assert not allowed(e, "y/a", "x/b")  # same labels, other namespace
    assert allowed(e, "y/a", "x/a")  # x/a is not selected


def test_namespace_selector_and_the_automatic_label():
    e = engine(policy("x", "  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: "
                           "{matchLabels: {kubernetes.io/metadata.name: y}}}]\n"))
    assert allowed(e, "y/a", "x/a") and not allowed(e, "z/c", "x/a")
    assert not allowed(e, "x/b", "x/a")  # its own namespace is not y


def test_and_within_a_peer_or_between_peers():
    both = engine(policy("x", "  podSelector: {}\n  ingress:\n  - from:\n"
                              "    - namespaceSelector: {matchLabels: {team: red}}\n"
                              "      podSelector: {matchLabels: {app: web}}\n"))
    assert allowed(both, "y/a", "x/a") and not allowed(both, "z/c", "x/a")
    either = engine(policy("x", "  podSelector: {}\n  ingress:\n  - from:\n"
                                "    - namespaceSelector: {matchLabels: {team: red}}\n"
                                "    - podSelector: {matchLabels: {app: web}}\n"))
    assert allowed(either, "y/a", "x/b") and allowed(either, "z/c", "x/b")
    assert allowed(either, "x/a", "x/b")  # web in x, via the second peer


def test_ip_block_with_except():
    e = engine(policy("x", "  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: "
                           "203.0.113.0/24, except: [203.0.113.128/25]}}]\n"))
    assert allowed(e, "203.0.113.5", "x/a")
    assert not allowed(e, "203.0.113.200", "x/a")
    assert not allowed(e, "y/a", "x/a")


def test_named_ports_resolve_per_destination_pod():
    e = engine(policy("x", "  podSelector: {}\n  ingress:\n  - ports: [{port: http}]\n"))
    assert allowed(e, "y/a", "x/a", 8080) and not allowed(e, "y/a", "x/a", 9090)
    assert allowed(e, "y/a", "x/b", 9090) and not allowed(e, "y/a", "x/b", 8080)
    assert not allowed(e, "y/a", "x/a", 8080, "UDP")  # the name is a TCP port


def test_end_port_and_protocols():
    e = engine(policy("x", "  podSelector: {}\n  ingress:\n  - ports: [{port: 32000, "
                           "endPort: 32768}, {protocol: UDP, port: 53}, {protocol: SCTP}]\n"))
    assert allowed(e, "y/a", "x/a", 32000) and allowed(e, "y/a", "x/a", 32768)
    assert not allowed(e, "y/a", "x/a", 32769) and not allowed(e, "y/a", "x/a", 53)
    assert allowed(e, "y/a", "x/a", 53, "UDP")
    assert allowed(e, "y/a", "x/a", 9, "SCTP") and not allowed(e, "y/a", "x/a", 9, "TCP")
    assert not allowed(e, "y/a", "x/a", None, "ICMP")  # rules with ports admit no ICMP


def test_egress_isolation_needs_both_ends():
    e = engine(policy("x", "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n"
                           "  egress:\n  - to: [{namespaceSelector: {matchLabels: {team: red}}}]"
                           "\n") + policy("y", "  podSelector: {}\n  policyTypes: [Ingress]\n",
                                          "deny"))
    assert not allowed(e, "x/a", "y/a")  # egress allows, y/a's ingress does not
    assert allowed(e, "x/a", "z/c")
    assert not allowed(e, "x/a", "x/b")  # egress allows only red namespaces
    assert not allowed(e, "x/a", "203.0.113.1")


def test_policy_types_default_with_egress_rules():
    e = engine(policy("x", "  podSelector: {}\n  egress: [{}]\n"))
    assert allowed(e, "x/a", "y/a")
    assert not allowed(e, "y/a", "x/a")  # Ingress is listed by default: isolated, no rules


def test_policies_are_additive_and_explained():
    e = engine(policy("x", "  podSelector: {}\n  policyTypes: [Ingress]\n", "deny")
               + policy("x", "  podSelector: {matchLabels: {app: web}}\n  ingress:\n"
                             "  - from: [{podSelector: {}}]\n    ports: [{port: 80}]\n",
                        "allow-web"))
    d = e.decide(P["x/b"], P["x/a"], 80, "TCP")
    assert d.allowed and [str(r) for r in d.ingress.allowed_by] == ["x/allow-web ingress[0]"]
    assert d.ingress.isolated_by == ("x/allow-web", "x/deny")
    d = e.decide(P["x/a"], P["x/b"], 80, "TCP")
    assert not d.allowed and d.ingress.isolated_by == ("x/deny",)
    text = "\n".join(d.explain("x/a", "x/b", 80, "tcp"))
    assert "isolated by x/deny" in text and "DENIED" in text


@pytest.mark.parametrize(("op", "values", "matches"), [
    ("In", "[web]", {"x/a"}), ("NotIn", "[web]", {"x/b"}),
    ("Exists", None, {"x/a", "x/b"}), ("DoesNotExist", None, set())])
def test_match_expressions(op: str, values: str | None, matches: set[str]):
    vals = f", values: {values}" if values else ""
    e = engine(policy("x", f"  podSelector: {{matchExpressions: [{{key: app, operator: {op}"
                           f"{vals}}}]}}\n  policyTypes: [Ingress]\n"))
    isolated = {k for k in ("x/a", "x/b") if e.selecting(P[k], "Ingress")}
    assert isolated == matches


def test_self_and_own_node_are_always_allowed():
    e = engine(policy("x", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"))
    assert allowed(e, "x/a", "x/a")
    assert allowed(e, "172.18.0.2", "x/a")  # x/a's node
    assert not allowed(e, "172.18.0.3", "x/a")  # another node
