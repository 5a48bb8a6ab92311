"""ClusterNetworkPolicy (netlab.policy.cluster): parsing with the CRD's validation, the
v1alpha1 AdminNetworkPolicy / BaselineAdminNetworkPolicy mapping, the tiered engine, and
conformance as data under data/cluster_netpol/:

- conformance.yaml: every test of network-policy-api's ClusterNetworkPolicy conformance
  profile (conformance/tests/*.go), named by its ShortName, each subtest a step; run in
  IPv4 and in IPv6.
- policy_assistant.yaml: policy-assistant's ANP/BANP connectivity truth tables
  (test/integration/integration_test.go), named by their Go test and case.
- tiers.yaml: the (Admin, NetworkPolicy, Baseline) -> verdict table of policy-assistant's
  DirectionResult.IsAllowed, for each direction.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cnp_conformance import Replay, cases, conformance

from netlab.errors import InputError
from netlab.loader import as_docs, build
from netlab.model import NetworkPolicy
from netlab.policy.cluster import (
    KINDS,
    ClusterNetworkPolicy,
    ClusterPolicyEngine,
    PortMatch,
    parse,
)
from netlab.policy.engine import PodRef, PolicyEngine

DATA = Path(__file__).parent / "data" / "cluster_netpol"
V2 = "policy.networking.k8s.io/v1alpha2"
V1 = "policy.networking.k8s.io/v1alpha1"


# --- helpers -----------------------------------------------------------------------------


def load_policies(docs: list[dict]) -> tuple[list[ClusterNetworkPolicy], list[NetworkPolicy]]:
    """Cluster policies through netlab.policy.cluster.parse, NetworkPolicies through the
    loader."""
    cnps = [parse(d, "<test>") for d in docs if d["kind"] in KINDS]
    nps = [d for d in docs if d["kind"] == "NetworkPolicy"]
    return cnps, list(build(as_docs(nps)).network_policies.values()) if nps else []


def make_engine(pods: list[PodRef], namespaces: dict[str, dict[str, str]], docs: list[dict],
                node_labels: dict[str, dict[str, str]] | None = None,
                node_addresses: dict[str, set[str]] | None = None) -> ClusterPolicyEngine:
    cnps, nps = load_policies(docs)
    netpol = PolicyEngine(pods, namespaces, nps, node_addresses or {})
    return ClusterPolicyEngine(pods, namespaces, node_labels or {}, node_addresses or {}, cnps,
                               netpol)


def cnp(name: str = "cnp", **spec: Any) -> dict:
    spec = {"tier": "Admin", "priority": 10, "subject": {"namespaces": {}}, **spec}
    return {"apiVersion": V2, "kind": "ClusterNetworkPolicy", "metadata": {"name": name},
            "spec": spec}


# --- parsing and validation ----------------------------------------------------------------

BASE = {
    "apiVersion": V2, "kind": "ClusterNetworkPolicy", "metadata": {"name": "cnp"},
    "spec": {
        "tier": "Admin", "priority": 10, "subject": {"namespaces": {}},
        "ingress": [{"name": "in", "action": "Deny", "from": [{"namespaces": {}}]}],
        "egress": [{"name": "out", "action": "Accept", "to": [{"pods": {"podSelector": {}}}],
                    "protocols": [{"tcp": {"destinationPort": {"number": 80}}}]}],
    },
}
ANP = {
    "apiVersion": V1, "kind": "AdminNetworkPolicy", "metadata": {"name": "anp"},
    "spec": {
        "priority": 10, "subject": {"namespaces": {}},
        "ingress": [{"action": "Allow", "from": [{"namespaces": {}}]}],
        "egress": [{"action": "Deny", "to": [{"namespaces": {}}],
                    "ports": [{"portNumber": {"port": 80}}]}],
    },
}
BANP = {
    "apiVersion": V1, "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
    "spec": {
        "subject": {"namespaces": {}},
        "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}],
        "egress": [{"action": "Allow", "to": [{"namespaces": {}}]}],
    },
}
DELETE = object()


def edited(doc: dict, edits: dict[str, Any]) -> dict:
    """`doc` with fields replaced (or removed: DELETE), by path like spec.egress[0].to."""
    out = copy.deepcopy(doc)
    for path, value in edits.items():
        *parents, last = _path(path)
        node = out
        for p in parents:
            node = node[p]
        if value is DELETE:
            del node[last]
        else:
            node[last] = copy.deepcopy(value)
    return out


def _path(path: str) -> list[str | int]:
    return [int(i) if i else k for k, i in re.findall(r"(\w+)|\[(\d+)\]", path)]


def _peer_ns(n: int) -> list[dict]:
    return [{"namespaces": {"matchLabels": {"n": str(i)}}} for i in range(n)]


def _rules(n: int, key: str = "from") -> list[dict]:
    return [{"action": "Deny", key: [{"namespaces": {}}]} for _ in range(n)]


def _tcp(n: int) -> list[dict]:
    return [{"tcp": {"destinationPort": {"number": i + 1}}} for i in range(n)]


_NETS = [f"10.0.{i}.0/24" for i in range(26)]
_OUT = "spec.egress[0]"
_DP = f"{_OUT}.protocols[0].tcp.destinationPort"

# (id, base manifest, edits, the error's field and message)
INVALID = [
    ("apiVersion", BASE, {"apiVersion": V1},
     f"apiVersion: {V1!r} is not supported for ClusterNetworkPolicy: use {V2}"),
    ("name", BASE, {"metadata.name": "Bad_Name"},
     "metadata.name: 'Bad_Name' is not a valid ClusterNetworkPolicy name: a DNS-1123 "
     "subdomain"),
    ("spec required", BASE, {"spec": DELETE}, "spec: is required"),
    ("tier required", BASE, {"spec.tier": DELETE}, "spec.tier: is required"),
    ("tier enum", BASE, {"spec.tier": "Cluster"},
     'spec.tier: Unsupported value: "Cluster": supported values: "Admin", "Baseline"'),
    ("priority required", BASE, {"spec.priority": DELETE}, "spec.priority: is required"),
    ("priority maximum", BASE, {"spec.priority": 1001},
     "spec.priority: Invalid value: 1001: should be less than or equal to 1000"),
    ("priority minimum", BASE, {"spec.priority": -1},
     "spec.priority: Invalid value: -1: should be greater than or equal to 0"),
    ("priority type", BASE, {"spec.priority": "10"},
     "spec.priority: must be an integer, not '10'"),
    ("subject required", BASE, {"spec.subject": DELETE}, "spec.subject: is required"),
    ("subject MinProperties", BASE, {"spec.subject": {}},
     "spec.subject: should have at least 1 properties: set one of namespaces, pods"),
    ("subject MaxProperties", BASE,
     {"spec.subject": {"namespaces": {}, "pods": {"podSelector": {}}}},
     "spec.subject: Too many: 2: must have at most 1 properties: set only one of namespaces, "
     "pods, not namespaces and pods"),
    ("subject podSelector required", BASE, {"spec.subject": {"pods": {"namespaceSelector": {}}}},
     "spec.subject.pods.podSelector: is required"),
    ("selector operator", BASE,
     {"spec.subject.namespaces": {"matchExpressions": [{"key": "a", "operator": "Equals"}]}},
     "spec.subject.namespaces.matchExpressions[0].operator: 'Equals' is not one of In, NotIn, "
     "Exists, DoesNotExist"),
    ("selector label", BASE, {"spec.subject.namespaces": {"matchLabels": {"a": "b c"}}},
     "spec.subject.namespaces.matchLabels.a: label value 'b c' is not valid"),
    ("ingress MaxItems 25", BASE, {"spec.ingress": _rules(26)},
     "spec.ingress: Too many: 26: must have at most 25 items"),
    ("egress MaxItems 25", BASE, {"spec.egress": _rules(26, "to")},
     "spec.egress: Too many: 26: must have at most 25 items"),
    ("egress type", BASE, {"spec.egress": 5}, "spec.egress: must be a list, not an integer"),
    ("rule name MaxLength 100", BASE, {"spec.ingress[0].name": "n" * 101},
     "spec.ingress[0].name: Too long: may not be more than 100 characters"),
    ("action required", BASE, {"spec.ingress[0].action": DELETE},
     "spec.ingress[0].action: is required"),
    ("action enum", BASE, {"spec.ingress[0].action": "Drop"},
     'spec.ingress[0].action: Unsupported value: "Drop": supported values: "Accept", "Deny", '
     '"Pass"'),
    ("action Allow is v1alpha1's", BASE, {"spec.ingress[0].action": "Allow"},
     'spec.ingress[0].action: Unsupported value: "Allow": supported values: "Accept", "Deny", '
     '"Pass" (v1alpha2 calls it "Accept")'),
    ("from required", BASE, {"spec.ingress[0].from": DELETE},
     "spec.ingress[0].from: is required"),
    ("from MinItems 1", BASE, {"spec.ingress[0].from": []},
     "spec.ingress[0].from: should have at least 1 items"),
    ("from MaxItems 25", BASE, {"spec.ingress[0].from": _peer_ns(26)},
     "spec.ingress[0].from: Too many: 26: must have at most 25 items"),
    ("to MaxItems 25", BASE, {f"{_OUT}.to": _peer_ns(26)},
     f"{_OUT}.to: Too many: 26: must have at most 25 items"),
    ("peer MinProperties", BASE, {"spec.ingress[0].from": [{}]},
     "spec.ingress[0].from[0]: should have at least 1 properties: set one of namespaces, pods"),
    ("ingress peer networks", BASE, {"spec.ingress[0].from": [{"networks": ["10.0.0.0/8"]}]},
     'spec.ingress[0].from[0].networks: unknown field "networks": an ingress peer is '
     "namespaces or pods"),
    ("ingress peer nodes", BASE, {"spec.ingress[0].from": [{"nodes": {}}]},
     'spec.ingress[0].from[0].nodes: unknown field "nodes": an ingress peer is namespaces or '
     "pods"),
    ("peer MaxProperties", BASE,
     {f"{_OUT}.to": [{"namespaces": {}, "networks": ["10.0.0.0/8"]}]},
     f"{_OUT}.to[0]: Too many: 2: must have at most 1 properties: set only one of namespaces, "
     "pods, nodes, networks, domainNames, not namespaces and networks"),
    ("networks MinItems 1", BASE, {f"{_OUT}.to": [{"networks": []}]},
     f"{_OUT}.to[0].networks: should have at least 1 items"),
    ("networks MaxItems 25", BASE, {f"{_OUT}.to": [{"networks": _NETS}]},
     f"{_OUT}.to[0].networks: Too many: 26: must have at most 25 items"),
    ("networks set", BASE, {f"{_OUT}.to": [{"networks": ["10.0.0.0/8", "10.0.0.0/8"]}]},
     f'{_OUT}.to[0].networks[1]: Duplicate value: "10.0.0.0/8"'),
    ("CIDR without prefix", BASE, {f"{_OUT}.to": [{"networks": ["10.0.0.0"]}]},
     f"{_OUT}.to[0].networks[0]: Invalid CIDR format provided"),
    ("CIDR prefix too long", BASE, {f"{_OUT}.to": [{"networks": ["10.0.0.0/33"]}]},
     f"{_OUT}.to[0].networks[0]: Invalid CIDR format provided"),
    ("CIDR leading zero", BASE, {f"{_OUT}.to": [{"networks": ["10.0.0.0/08"]}]},
     f"{_OUT}.to[0].networks[0]: Invalid CIDR format provided"),
    ("CIDR IPv4-mapped", BASE, {f"{_OUT}.to": [{"networks": ["::ffff:10.0.0.0/104"]}]},
     f"{_OUT}.to[0].networks[0]: Invalid CIDR format provided"),
    ("CIDR garbage", BASE, {f"{_OUT}.to": [{"networks": ["ten/8"]}]},
     f"{_OUT}.to[0].networks[0]: Invalid CIDR format provided"),
    ("CIDR MaxLength 43", BASE, {f"{_OUT}.to": [{"networks": ["1" * 44]}]},
     f"{_OUT}.to[0].networks[0]: Too long: may not be more than 43 characters"),
    ("domainNames pattern", BASE, {f"{_OUT}.to": [{"domainNames": ["*kubernetes.io"]}]},
     f'{_OUT}.to[0].domainNames[0]: Invalid value: "*kubernetes.io": should match'),
    ("protocols MinItems 1", BASE, {f"{_OUT}.protocols": []},
     f"{_OUT}.protocols: should have at least 1 items"),
    ("protocols MaxItems 25", BASE, {f"{_OUT}.protocols": _tcp(26)},
     f"{_OUT}.protocols: Too many: 26: must have at most 25 items"),
    ("protocol MinProperties", BASE, {f"{_OUT}.protocols": [{}]},
     f"{_OUT}.protocols[0]: should have at least 1 properties: set one of tcp, udp, sctp, "
     "destinationNamedPort"),
    ("protocol MaxProperties", BASE,
     {f"{_OUT}.protocols": [{"tcp": {"destinationPort": {"number": 1}},
                             "udp": {"destinationPort": {"number": 1}}}]},
     f"{_OUT}.protocols[0]: Too many: 2: must have at most 1 properties"),
    ("tcp MinProperties", BASE, {f"{_OUT}.protocols": [{"tcp": {}}]},
     f"{_OUT}.protocols[0].tcp: should have at least 1 properties: set destinationPort"),
    ("port MinProperties", BASE, {_DP: {}},
     f"{_DP}: should have at least 1 properties: set one of number, range"),
    ("port MaxProperties", BASE, {_DP: {"number": 80, "range": {"start": 1, "end": 2}}},
     f"{_DP}: Too many: 2: must have at most 1 properties"),
    ("port minimum", BASE, {f"{_DP}.number": 0},
     f"{_DP}.number: Invalid value: 0: should be greater than or equal to 1"),
    ("port maximum", BASE, {f"{_DP}.number": 65536},
     f"{_DP}.number: Invalid value: 65536: should be less than or equal to 65535"),
    ("range end required", BASE, {_DP: {"range": {"start": 80}}},
     f"{_DP}.range.end: is required"),
    ("range start < end", BASE, {_DP: {"range": {"start": 90, "end": 80}}},
     f"{_DP}.range: Start port must be less than End port"),
    ("range start == end", BASE, {_DP: {"range": {"start": 80, "end": 80}}},
     f"{_DP}.range: Start port must be less than End port"),
    ("named port with networks", BASE,
     {f"{_OUT}.to": [{"networks": ["10.0.0.0/8"]}],
      f"{_OUT}.protocols": [{"destinationNamedPort": "web"}]},
     f"{_OUT}: networks/nodes/domainNames peer cannot be set with namedPorts since there are "
     "no namedPorts for networks/nodes/domainNames"),
    ("named port with nodes", BASE,
     {f"{_OUT}.to": [{"namespaces": {}}, {"nodes": {}}],
      f"{_OUT}.protocols": [{"destinationNamedPort": "web"}]},
     f"{_OUT}: networks/nodes/domainNames peer cannot be set with namedPorts"),
    # v1alpha1
    ("ANP apiVersion", ANP, {"apiVersion": V2},
     f"apiVersion: {V2!r} is not supported for AdminNetworkPolicy: use {V1}"),
    ("ANP action enum", ANP, {"spec.ingress[0].action": "Accept"},
     'spec.ingress[0].action: Unsupported value: "Accept": supported values: "Allow", "Deny", '
     '"Pass"'),
    ("ANP priority", ANP, {"spec.priority": 1001},
     "spec.priority: Invalid value: 1001: should be less than or equal to 1000"),
    ("ANP ingress MaxItems 100", ANP, {"spec.ingress": _rules(101)},
     "spec.ingress: Too many: 101: must have at most 100 items"),
    ("ANP from MaxItems 100", ANP, {"spec.ingress[0].from": _peer_ns(101)},
     "spec.ingress[0].from: Too many: 101: must have at most 100 items"),
    ("ANP namespaceSelector required", ANP, {"spec.subject": {"pods": {"podSelector": {}}}},
     "spec.subject.pods.namespaceSelector: is required"),
    ("ANP port MinProperties", ANP, {"spec.egress[0].ports": [{}]},
     "spec.egress[0].ports[0]: should have at least 1 properties: set one of portNumber, "
     "namedPort, portRange"),
    ("ANP port protocol", ANP, {"spec.egress[0].ports[0].portNumber.protocol": "ICMP"},
     'spec.egress[0].ports[0].portNumber.protocol: Unsupported value: "ICMP": supported '
     'values: "TCP", "UDP", "SCTP"'),
    ("ANP port required", ANP, {"spec.egress[0].ports[0].portNumber": {"protocol": "UDP"}},
     "spec.egress[0].ports[0].portNumber.port: is required"),
    ("ANP named port with networks", ANP,
     {"spec.egress[0].to": [{"networks": ["10.0.0.0/8"]}],
      "spec.egress[0].ports": [{"namedPort": "web"}]},
     "spec.egress[0]: networks/nodes/domainNames peer cannot be set with namedPorts since "
     "there are no namedPorts for networks/nodes/domainNames"),
    ("BANP name", BANP, {"metadata.name": "baseline"},
     'metadata.name: Only one baseline admin network policy with metadata.name="default" can '
     "be created in the cluster"),
    ("BANP action enum", BANP, {"spec.ingress[0].action": "Pass"},
     'spec.ingress[0].action: Unsupported value: "Pass": supported values: "Allow", "Deny"'),
    ("BANP domainNames", BANP, {"spec.egress[0].to": [{"domainNames": ["example.com"]}]},
     'spec.egress[0].to[0].domainNames: unknown field "domainNames": a '
     "BaselineAdminNetworkPolicy egress peer is one of namespaces, pods, nodes, networks"),
    ("BANP named port with nodes", BANP,
     {"spec.egress[0].to": [{"nodes": {}}], "spec.egress[0].ports": [{"namedPort": "web"}]},
     "spec.egress[0]: networks/nodes peer cannot be set with namedPorts since there are no "
     "namedPorts for networks/nodes"),
]


@pytest.mark.parametrize(("base", "edits", "message"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_invalid(base: dict, edits: dict, message: str) -> None:
    doc = edited(base, edits)
    with pytest.raises(InputError) as e:
        parse(doc, "p.yaml", 3)
    assert e.value.exit_code == 2
    name = doc.get("metadata", {}).get("name")
    assert str(e.value).startswith(f"p.yaml:3: {doc['kind']} {name}: "), str(e.value)
    assert message in str(e.value)


VALID_LIMITS = [
    ("25 rules", BASE, {"spec.ingress": _rules(25), "spec.egress": _rules(25, "to")}),
    ("25 peers", BASE, {"spec.ingress[0].from": _peer_ns(25)}),
    ("25 networks", BASE, {f"{_OUT}.to": [{"networks": _NETS[:25]}], f"{_OUT}.protocols": DELETE}),
    ("25 protocols", BASE, {f"{_OUT}.protocols": _tcp(25)}),
    ("name of 100", BASE, {"spec.ingress[0].name": "n" * 100}),
    ("priorities 0 and 1000", BASE, {"spec.priority": 0}),
    ("priority 1000", BASE, {"spec.priority": 1000, "spec.tier": "Baseline"}),
    ("ports 1 and 65535", BASE, {_DP: {"range": {"start": 1, "end": 65535}}}),
    ("no rules", BASE, {"spec.ingress": DELETE, "spec.egress": []}),
    ("named port with pods", BASE, {f"{_OUT}.protocols": [{"destinationNamedPort": "web"}]}),
    ("ANP 100 rules", ANP, {"spec.ingress": _rules(100)}),
    ("BANP without priority", BANP, {}),
]


@pytest.mark.parametrize(("base", "edits"), [c[1:] for c in VALID_LIMITS],
                         ids=[c[0] for c in VALID_LIMITS])
def test_valid_at_the_limits(base: dict, edits: dict) -> None:
    parse(edited(base, edits), "p.yaml")


def test_v1alpha2_model() -> None:
    doc = edited(BASE, {
        "spec.subject": {"pods": {"podSelector": {"matchLabels": {"app": "db"}}}},
        f"{_OUT}.to": [{"networks": ["10.1.2.3/8", "fd00::1/64"]},
                       {"nodes": {"matchLabels": {"kubernetes.io/os": "linux"}}}],
        f"{_OUT}.protocols": [{"udp": {"destinationPort": {"range": {"start": 53,
                                                                      "end": 54}}}},
                              {"sctp": {"destinationPort": {"number": 9003}}}],
    })
    p = parse(doc, "p.yaml", 1)
    assert (p.name, p.tier, p.priority, p.kind, p.key) == ("cnp", "Admin", 10,
                                                           "ClusterNetworkPolicy",
                                                           "ClusterNetworkPolicy/cnp")
    assert p.subject.pods is not None and p.subject.pods.namespace_selector.match_labels == ()
    assert p.subject.pods.pod_selector.match_labels == (("app", "db"),)
    rule = p.egress[0]
    assert (rule.direction, rule.index, rule.name, rule.action) == ("egress", 0, "out", "Accept")
    assert rule.peers[0].networks == ("10.0.0.0/8", "fd00::/64")  # host bits masked, as netip
    assert rule.peers[1].nodes is not None
    assert rule.protocols == (PortMatch("UDP", 53, 54), PortMatch("SCTP", 9003, 9003))
    assert str(p.ingress[0]) == 'rule ingress[0] "in" (Deny)'
    assert p.source is not None and str(p.source) == "p.yaml:1"


def test_v1alpha1_mapping() -> None:
    """ANP: Admin tier with its priority, Allow read as Accept; BANP: Baseline tier, named
    default; v1alpha1 ports (portNumber defaults to TCP, portRange, namedPort)."""
    anp = parse(edited(ANP, {"spec.egress[0].ports": [
        {"portNumber": {"port": 80}}, {"portRange": {"protocol": "UDP", "start": 53, "end": 60}},
        {"namedPort": "web"}]}), "a.yaml")
    assert (anp.tier, anp.priority, anp.kind) == ("Admin", 10, "AdminNetworkPolicy")
    assert anp.ingress[0].action == "Accept" and anp.ingress[0].written == "Allow"
    assert str(anp.ingress[0]) == "rule ingress[0] (Allow)"
    assert anp.egress[0].protocols == (PortMatch("TCP", 80, 80), PortMatch("UDP", 53, 60),
                                       PortMatch(name="web"))
    banp = parse(BANP, "b.yaml")
    assert (banp.tier, banp.priority, banp.name, banp.kind) == (
        "Baseline", 0, "default", "BaselineAdminNetworkPolicy")
    assert banp.egress[0].action == "Accept" and banp.ingress[0].action == "Deny"
    assert banp.key != parse(cnp("default", tier="Baseline"), "c.yaml").key


def test_warnings_for_what_is_not_modelled() -> None:
    doc = edited(BASE, {"metadata.namespace": "default", "status": {"conditions": []},
                        "spec.colour": "blue", "spec.ingress[0].from[0].namespaces.extra": 1,
                        f"{_OUT}.to": [{"domainNames": ["*.example.com"]}],
                        f"{_OUT}.action": "Deny"})
    seen: list[str] = []
    p = parse(doc, "w.yaml", 1, seen)
    assert seen == list(p.warnings)
    assert seen == [
        "ClusterNetworkPolicy cnp: metadata.namespace is ignored: ClusterNetworkPolicy is "
        "cluster-scoped",
        "ClusterNetworkPolicy cnp: spec.ingress[0].from[0].namespaces.extra is not modelled by "
        "netlab and is ignored",
        "ClusterNetworkPolicy cnp: spec.egress[0].to[0].domainNames is not modelled by netlab: "
        "this peer matches no traffic",
        "ClusterNetworkPolicy cnp: spec.egress[0]: domainNames is only supported for Accept "
        "rules",
        "ClusterNetworkPolicy cnp: spec.colour is not modelled by netlab and is ignored",
    ]
    assert parse(edited(ANP, {"spec.egress[0].ports[0]": {"portRange": {"start": 90, "end": 80}}}),
                 "w.yaml").warnings == (
        "AdminNetworkPolicy anp: spec.egress[0].ports[0].portRange: start 90 is above end 80: "
        "the range matches no port",)


def test_other_kinds_are_refused() -> None:
    with pytest.raises(InputError, match="kind 'NetworkPolicy' is not one of"):
        parse({"kind": "NetworkPolicy"}, "x.yaml")


# --- the engine ------------------------------------------------------------------------------

NS = {"x": {"kubernetes.io/metadata.name": "x", "ns": "x"},
      "y": {"kubernetes.io/metadata.name": "y", "ns": "y"}}
XA = PodRef("x", "a", "10.244.0.2", {"pod": "a"}, (("web", "TCP", 80),), "node-1",
            "fd00:10:244::2")
XB = PodRef("x", "b", "10.244.0.3", {"pod": "b"}, (), "node-1", "fd00:10:244::3")
YA = PodRef("y", "a", "10.244.1.2", {"pod": "a"}, (), "node-2", "fd00:10:244:1::2")
PODS = [XA, XB, YA]
NODES = {"node-1": {"172.18.0.2", "2001:db8:18::2"}, "node-2": {"172.18.0.3"}}
NODE_LABELS = {"node-1": {"kubernetes.io/os": "linux", "role": "infra"},
               "node-2": {"kubernetes.io/os": "linux"}}
FROM_B = [{"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "b"}}}}]
X_A = {"pods": {"namespaceSelector": {"matchLabels": {"ns": "x"}},
                "podSelector": {"matchLabels": {"pod": "a"}}}}


def engine(*docs: dict) -> ClusterPolicyEngine:
    return make_engine(PODS, NS, list(docs), NODE_LABELS, NODES)


def test_reasons_name_tier_policy_and_rule() -> None:
    e = engine(cnp("admin-deny", subject=X_A,
                   ingress=[{"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]}]))
    d = e.decide(XB, XA, 80, "tcp")
    assert not d.allowed and d.ingress.tier == "Admin" and d.egress.tier == "default"
    assert d.ingress.rule is not None
    assert str(d.ingress.rule) == \
        'ClusterNetworkPolicy admin-deny rule ingress[0] "deny-all" (Deny)'
    assert d.explain("x/b", "x/a", 80, "tcp") == [
        "egress of x/b: no ClusterNetworkPolicy rule or NetworkPolicy applies: allowed",
        'ingress of x/a: Admin tier: ClusterNetworkPolicy admin-deny rule ingress[0] "deny-all" '
        "(Deny): denied",
        "verdict: DENIED",
    ]


def test_pass_hands_over_tier_by_tier() -> None:
    np = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "np", "namespace": "x"},
          "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Ingress"],
                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}}
    admin = cnp("admin", subject=X_A, ingress=[{"name": "p", "action": "Pass", "from": FROM_B}])
    base = cnp("base", tier="Baseline", subject=X_A,
               ingress=[{"action": "Pass", "from": [{"namespaces": {}}]}])
    d = engine(admin, np, base).decide(XB, XA, 80, "TCP")
    assert d.allowed and d.ingress.tier == "NetworkPolicy"
    assert [str(h) for h in d.ingress.passed] == ['ClusterNetworkPolicy admin rule ingress[0] '
                                                  '"p" (Pass)']
    assert d.ingress.reasons == (
        'ingress of x/a: Admin tier: ClusterNetworkPolicy admin rule ingress[0] "p" (Pass): '
        "passed to the NetworkPolicy tier",
        "ingress of x/a: NetworkPolicy tier: isolated by x/np; allowed by x/np ingress[0]")
    d = engine(admin, base).decide(XB, XA, 80, "TCP")
    assert d.allowed and d.ingress.tier == "default" and len(d.ingress.passed) == 2
    assert d.ingress.reasons[1:] == (
        "ingress of x/a: NetworkPolicy tier: no NetworkPolicy isolates it for Ingress: on to the "
        "Baseline tier",
        "ingress of x/a: Baseline tier: ClusterNetworkPolicy base rule ingress[0] (Pass): "
        "passed to the default",
        "ingress of x/a: no further tier decides: allowed (the Kubernetes default)")


def test_accept_at_egress_leaves_the_destination_its_ingress() -> None:
    d = engine(cnp("out", egress=[{"action": "Accept", "to": [{"namespaces": {}}]}]),
               cnp("in", priority=20, subject=X_A,
                   ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}])
               ).decide(XB, XA, 80, "TCP")
    assert not d.allowed and d.egress.allowed and d.egress.tier == "Admin"
    assert not d.ingress.allowed


def test_priority_then_rule_order_and_ambiguity() -> None:
    deny = {"action": "Deny", "from": FROM_B}
    accept = {"action": "Accept", "from": FROM_B}
    d = engine(cnp("b", priority=5, subject=X_A, ingress=[deny]),
               cnp("a", priority=7, subject=X_A, ingress=[accept])).decide(XB, XA, 80, "TCP")
    assert not d.allowed and d.ingress.rule is not None and d.ingress.rule.policy.name == "b"
    assert d.ingress.ambiguous == ()  # a later priority is no ambiguity
    # equal priorities: the API lets an implementation pick either; netlab takes name order
    # and says so
    d = engine(cnp("b", priority=5, subject=X_A, ingress=[deny]),
               cnp("a", priority=5, subject=X_A, ingress=[accept])).decide(XB, XA, 80, "TCP")
    assert d.allowed and [str(h) for h in d.ingress.ambiguous] == [
        "ClusterNetworkPolicy b rule ingress[0] (Deny)"]
    assert "also matched at the same priority 5: ClusterNetworkPolicy b rule ingress[0] " \
           "(Deny)" in d.ingress.reasons[0]


def test_networks_are_family_aware() -> None:
    deny4 = cnp(egress=[{"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}])
    e = engine(deny4)
    assert not e.decide(XA, XB, 80, "TCP").allowed  # pod-to-pod traffic is matched too
    assert e.decide(XA, XB, 80, "TCP", "IPv6").allowed
    assert not e.decide(XA, "203.0.113.1", 80, "TCP").allowed
    assert e.decide(XA, "2001:db8:113::1", 80, "TCP").allowed
    deny6 = cnp(egress=[{"action": "Deny", "to": [{"networks": ["fd00:10:244::/64"]}]}])
    assert not engine(deny6).decide(XA, XB, 80, "TCP", "IPv6").allowed
    assert engine(deny6).decide(XA, YA, 80, "TCP", "IPv6").allowed


def test_nodes_match_node_addresses_by_labels() -> None:
    e = engine(cnp(egress=[{"action": "Deny",
                            "to": [{"nodes": {"matchLabels": {"role": "infra"}}}]}]))
    assert not e.decide(XA, "172.18.0.2", 10250, "TCP").allowed
    assert not e.decide(XA, "2001:db8:18::2", 10250, "TCP").allowed
    assert e.decide(XA, "172.18.0.3", 10250, "TCP").allowed  # node-2 lacks role=infra
    assert e.decide(XA, "203.0.113.1", 80, "TCP").allowed  # not a node
    assert e.decide(XA, XB, 80, "TCP").allowed  # a pod is no node peer


def test_pod_peers_select_pods_only() -> None:
    e = engine(cnp(ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}],
                   egress=[{"action": "Deny", "to": [{"namespaces": {}}]}]))
    assert e.decide("203.0.113.1", XA, 80, "TCP").allowed
    assert e.decide(XA, "203.0.113.1", 80, "TCP").allowed
    assert not e.decide("10.244.0.3", XA, 80, "TCP").allowed  # an address of a pod is it


def test_where_policy_does_not_apply() -> None:
    e = engine(cnp(ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}],
                   egress=[{"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}]))
    d = e.decide(XA, XA, 80, "TCP")
    assert d.allowed and d.reason.startswith("a pod's traffic to itself")
    d = e.decide("172.18.0.2", XA, 80, "TCP")
    assert d.allowed and "own node" in d.reason


def test_protocols() -> None:
    e = engine(cnp(egress=[{"action": "Deny", "to": [{"namespaces": {}}],
                            "protocols": [{"destinationNamedPort": "web"}]}]))
    assert not e.decide(XB, XA, 80, "TCP").allowed  # x/a names TCP 80 "web"
    assert e.decide(XB, XA, 80, "UDP").allowed
    assert e.decide(XA, XB, 80, "TCP").allowed  # x/b has no port named web
    every = engine(cnp(egress=[{"action": "Deny", "to": [{"namespaces": {}}]}]))
    assert not every.decide(XA, XB, None, "ICMP").allowed  # no protocols: all traffic
    some = engine(cnp(egress=[{"action": "Deny", "to": [{"namespaces": {}}],
                               "protocols": _tcp(1)}]))
    assert some.decide(XA, XB, None, "ICMP").allowed


def test_domain_names_match_nothing() -> None:
    e = engine(cnp(egress=[{"action": "Accept", "to": [{"domainNames": ["example.com"]}]},
                           {"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}]))
    assert not e.decide(XA, "203.0.113.1", 443, "TCP").allowed


def test_cluster_engine_for_a_plan() -> None:
    from netlab.policy.cluster import cluster_engine_for

    @dataclass
    class Node:
        name: str
        underlay_ip: str
        underlay_ip6: str = ""
        gateway: str = ""
        vtep_ip: str = ""
        gateway6: str = ""
        vtep_ip6: str = ""

    @dataclass
    class Pod:
        namespace: str
        name: str
        ip: str
        labels: dict
        named_ports: tuple = ()
        node: str = "node-1"
        ip6: str = ""
        host_network: bool = False

    from netlab.model import Cluster, NodeSpec

    @dataclass
    class Plan:
        cluster: Cluster
        nodes: list
        pods: dict
        namespaces: dict

    plan = Plan(Cluster(nodes=(NodeSpec("node-1", labels={"role": "infra"}),)),
                [Node("node-1", "172.18.0.2")],
                {"x/a": Pod("x", "a", "10.244.0.2", {"pod": "a"})}, {"x": {}})
    policy = parse(cnp(egress=[{"action": "Deny", "to": [
        {"nodes": {"matchLabels": {"role": "infra", "kubernetes.io/os": "linux"}}}]}]), "p")
    e = cluster_engine_for(plan, [], [policy])
    assert not e.decide(e.pods["x/a"], "172.18.0.2", 22, "TCP").allowed


# --- the tiers' truth table (policy-assistant's DirectionResult.IsAllowed) --------------------


def _tier_rows() -> list[tuple[str, str, str, bool]]:
    rows = yaml.safe_load((DATA / "tiers.yaml").read_text())["rows"]
    out = []
    for row in rows:
        m = re.fullmatch(r"(\S+) +(\S+) +(\S+) +-> (allowed|denied)", row)
        assert m, row
        out.append((m.group(1), m.group(2), m.group(3), m.group(4) == "allowed"))
    return out


@pytest.mark.parametrize("direction", ["ingress", "egress"])
@pytest.mark.parametrize(("admin", "netpol", "baseline", "allowed"), _tier_rows(),
                         ids=lambda v: str(v))
def test_tiers(direction: str, admin: str, netpol: str, baseline: str, allowed: bool) -> None:
    """x/a's `direction` toward x/b (TCP 80), one policy per tier."""
    key, peers = ("from", "ingress") if direction == "ingress" else ("to", "egress")
    b = [{"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "b"}}}}]
    elsewhere = [{"namespaces": {"matchLabels": {"ns": "y"}}}]

    def rule(action: str) -> dict:
        return ({"action": "Deny", key: elsewhere} if action == "no-match"
                else {"action": action, key: b})

    docs = [cnp("admin", subject=X_A, **{peers: [rule(admin)]}),
            cnp("baseline", tier="Baseline", subject=X_A, **{peers: [rule(baseline)]})]
    if netpol != "not-selected":
        spec: dict = {"podSelector": {"matchLabels": {"pod": "a"}},
                      "policyTypes": [direction.capitalize()]}
        if netpol == "allows":
            spec[peers] = [{key: [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]
        docs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "np", "namespace": "x"}, "spec": spec})
    e = engine(*docs)
    d = e.decide(XB, XA, 80, "TCP") if direction == "ingress" else e.decide(XA, XB, 80, "TCP")
    verdict = d.ingress if direction == "ingress" else d.egress
    assert verdict.allowed == allowed == d.allowed, verdict.reasons


# --- policy-assistant's ANP/BANP truth tables ----------------------------------------------------


@dataclass(frozen=True)
class TruthTable:
    name: str
    pods: list[PodRef]
    namespaces: dict[str, dict[str, str]]
    ports: list[int]
    protocols: list[str]
    defaults: dict[str, bool]  # direction -> allowed
    flipped: dict[str, set[tuple[str, str, int, str]]]
    policies: list[dict]


def truth_tables() -> list[TruthTable]:
    data = yaml.safe_load((DATA / "policy_assistant.yaml").read_text())
    tables = []
    for c in data["cases"]:
        ports = [(f"serve-{p}-{proto.lower()}", proto, p) for p in c["ports"]
                 for proto in c["protocols"]]
        pods = [PodRef(ns, p, f"10.244.{i}.{j + 2}", {"pod": p}, tuple(ports), "node-1")
                for i, ns in enumerate(c["namespaces"]) for j, p in enumerate(c["pods"])]
        namespaces = {ns: {"kubernetes.io/metadata.name": ns, "ns": ns} for ns in c["namespaces"]}
        flipped = {}
        for d in ("ingress", "egress"):
            flows = set()
            for f in c[f"non_default_{d}"]:
                m = re.fullmatch(r"(\S+) -> (\S+) (\d+)/(\w+)", f)
                assert m, f
                flows.add((m.group(1), m.group(2), int(m.group(3)), m.group(4)))
            flipped[d] = flows
        api = {"NetworkPolicy": "networking.k8s.io/v1", **KINDS}
        policies = [{"apiVersion": api[p["kind"]], **p} for p in c["policies"]]
        tables.append(TruthTable(c["name"], pods, namespaces, c["ports"], c["protocols"],
                                 {d: c[f"default_{d}"] == "allowed" for d in ("ingress", "egress")},
                                 flipped, policies))
    return tables


TABLES = truth_tables()


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_policy_assistant(table: TruthTable) -> None:
    e = make_engine(table.pods, table.namespaces, table.policies)
    wrong = []
    for src in table.pods:
        for dst in table.pods:
            if src == dst:
                continue  # undefined upstream; netlab does not police a pod's own traffic
            for port in table.ports:
                for proto in table.protocols:
                    d = e.decide(src, dst, port, proto)
                    flow = (src.key, dst.key, port, proto)
                    for direction, got in (("ingress", d.ingress), ("egress", d.egress)):
                        want = table.defaults[direction] != (flow in table.flipped[direction])
                        if got.allowed != want:
                            wrong.append(f"{direction} {src.key} -> {dst.key} {port}/{proto}: "
                                         f"want {want}, got {got.reasons}")
    assert not wrong, "\n".join(wrong)


def test_policy_assistant_tables_are_all_there() -> None:
    names = {t.name.split("/")[0] for t in TABLES}
    assert names == {"TestANPConnectivity", "TestBANPConnectivity", "TestANPWithNetPolV1",
                     "TestBANPWithNetPolV1", "TestANPWithBANP", "TestNetPolV1Connectivity"}
    assert len(TABLES) == 21


# --- network-policy-api conformance -------------------------------------------------------------

@dataclass
class House:
    """The conformance topology in one family: pods (the host-networked centaurs are their
    node's address), nodes."""

    pods: dict[str, PodRef]
    host: dict[str, str]  # hostNetwork pod -> its node
    node_addresses: dict[str, set[str]]
    node_labels: dict[str, dict[str, str]]

    def address(self, pod: str, family: str) -> str:
        if pod in self.host:
            v6 = family == "IPv6"
            return next(a for a in sorted(self.node_addresses[self.host[pod]])
                        if (":" in a) == v6)
        return self.pods[pod].address(family)


def house() -> House:
    nodes = ["node-1", "node-2"]
    node_addresses = {n: {f"172.18.0.{i + 2}", f"2001:db8:18::{i + 2}"}
                      for i, n in enumerate(nodes)}
    node_labels = {n: {"kubernetes.io/os": "linux", "kubernetes.io/hostname": n} for n in nodes}
    pods: dict[str, PodRef] = {}
    host: dict[str, str] = {}
    count = [0, 0]
    for sts in conformance()["statefulsets"]:
        for r in range(sts["replicas"]):
            name, node = f"{sts['name']}-{r}", r % len(nodes)
            key = f"{sts['namespace']}/{name}"
            if sts.get("hostNetwork"):
                host[key] = nodes[node]
                continue
            count[node] += 1
            named = tuple((n, proto, int(p)) for n, proto, p in
                          (s.split("/") for s in sts.get("ports", [])))
            labels = {**sts["labels"], "statefulset.kubernetes.io/pod-name": name}
            pods[key] = PodRef(sts["namespace"], name, f"10.244.{node}.{count[node] + 1}",
                               labels, named, nodes[node],
                               f"fd00:10:244:{node}::{count[node] + 1:x}")
    return House(pods, host, node_addresses, node_labels)


CASES = cases()


@pytest.mark.parametrize("family", ["IPv4", "IPv6"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_conformance(case: dict, family: str) -> None:
    h = house()
    replay = Replay(case["manifests"], family, lambda key: h.address(key, family))
    wrong = []
    for step in case["steps"]:
        for item in step["do"]:
            if isinstance(item, dict):
                (op, arg), = item.items()
                replay.change(op, arg)
                continue
            p = replay.probe(item)
            dst = h.pods.get(p.dst) or h.address(p.dst, family)
            e = make_engine(list(h.pods.values()), replay.namespaces,
                            list(replay.objects.values()), h.node_labels, h.node_addresses)
            d = e.decide(h.pods[p.src], dst, p.port, p.protocol, family)
            if d.allowed != p.allow:
                wrong.append(f"{step['run']}: {item}: got {'allow' if d.allowed else 'deny'}: "
                             + " / ".join(d.reasons))
    assert not wrong, "\n".join(wrong)


def test_conformance_profile_is_all_there() -> None:
    """The 24 tests of the ClusterNetworkPolicy conformance profile at v0.2.0."""
    tiers = ("Admin", "Baseline")
    standard = [f"CNP{t}Tier{x}" for t in tiers for x in (
        "IngressTCP", "IngressUDP", "IngressSCTP", "EgressTCP", "EgressUDP", "EgressSCTP",
        "Gress", "EgressInlineCIDRPeers")] + ["CNPAdminTierPriorityField",
                                               "CNPAdminTierIntegration"]
    experimental = [f"CNP{t}Tier{x}" for t in tiers for x in (
        "IngressNamedPort", "EgressNamedPort", "EgressNodePeers")]
    assert sorted(c["name"] for c in CASES) == sorted(standard + experimental)
    probes = sum(isinstance(i, str) for c in CASES for s in c["steps"] for i in s["do"])
    assert probes == 301  # PokeServer calls upstream
