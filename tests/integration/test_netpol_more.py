"""NetworkPolicy beyond the e2e matrix: the documentation's examples check clean, a new
pod is isolated before its workload runs, and random policy sets (hypothesis) give the
same matrix in the kernel as in the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifests import cluster, wait_until

from netlab.pytest_plugin import shared_lab

ROOT = Path(__file__).resolve().parents[2]


def test_documentation_examples_check_clean(netlab_lab):
    lab = netlab_lab(ROOT / "scenarios" / "netpol-docs-examples" / "docs-examples.yaml")
    report = lab.check(timeout=0.6)
    assert report.ok, [p for p in report.mismatches]
    allowed = {(p.src, p.dst, p.port) for p in report.probes if p.observed == "allowed"
               and "kube-system/" not in p.src + p.dst}  # the DNS add-on is not the point
    # Together the examples leave little open: db accepts only 172.17.0.0/16 (minus
    # 172.17.1.0/24), namespace myproject and role=frontend on 6379, but frontend's egress
    # is limited to 10.0.0.0/24:32000-32768 and myproject denies all egress; other's
    # default-deny-ingress is undone by allow-all-ingress (policies add up).
    assert allowed == {("external", "myproject/client", 5978),
                       ("external", "other/stranger", 80),
                       ("other/stranger", "myproject/client", 5978)}


def test_new_pod_is_isolated_before_its_workload_starts(netlab_lab):
    lab = netlab_lab(yaml=cluster() + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: no-egress}
spec:
  podSelector: {matchLabels: {app: early}}
  policyTypes: [Egress]
""")
    # the very first thing this pod does is try to leave; the policy must already hold
    lab.apply(manifests=["apiVersion: v1\nkind: Pod\nmetadata: {name: early, labels: "
                         "{app: early}}\nspec:\n  containers: [{name: c, command: [sh, -c, "
                         "'ping -c1 -W1 203.0.113.1 >/dev/null && echo LEAKED || echo "
                         "BLOCKED']}]\n"])
    assert wait_until(lambda: lab.logs("early"), timeout=5) == "BLOCKED\n"


# --- property: kernel == engine for random small policy sets ------------------------------

LAB = cluster(nodes=2) + "".join(
    f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{ns: {ns}}}}}\n"
    for ns in ("p", "q")) + "".join(
    f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: {ns}, labels: "
    f"{{pod: {pod}}}}}\nspec:\n  nodeName: node-{1 + (i % 2)}\n  containers:\n  - name: c\n"
    f"    ports: [{{name: web, containerPort: 80}}, {{name: dns, containerPort: 81, "
    f"protocol: UDP}}]\n"
    for ns in ("p", "q") for i, pod in enumerate(("a", "b")))

selectors = st.sampled_from(["{}", "{matchLabels: {pod: a}}", "{matchLabels: {pod: b}}",
                             "{matchExpressions: [{key: pod, operator: NotIn, values: [a]}]}"])
ns_selectors = st.sampled_from(["{}", "{matchLabels: {ns: p}}", "{matchLabels: {ns: q}}"])
peers = st.one_of(
    selectors.map(lambda s: f"{{podSelector: {s}}}"),
    ns_selectors.map(lambda s: f"{{namespaceSelector: {s}}}"),
    st.tuples(ns_selectors, selectors).map(
        lambda t: f"{{namespaceSelector: {t[0]}, podSelector: {t[1]}}}"),
    st.sampled_from(["{ipBlock: {cidr: 10.244.0.0/24}}",
                     "{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.0/24]}}"]))
ports = st.sampled_from(["", "{port: 80}", "{port: web}", "{protocol: UDP, port: 81}",
                         "{protocol: UDP, port: dns}", "{port: 79, endPort: 80}",
                         "{protocol: UDP}"])
rules = st.tuples(st.lists(peers, max_size=2), st.lists(ports, max_size=2))


def _rule(key: str, rule: tuple[list[str], list[str]]) -> str:
    peer_list, port_list = rule
    parts = []
    if peer_list:
        parts.append(f"{key}: [{', '.join(peer_list)}]")
    if [p for p in port_list if p]:
        parts.append(f"ports: [{', '.join(p for p in port_list if p)}]")
    return "{" + ", ".join(parts) + "}"


policy = st.fixed_dictionaries({
    "ns": st.sampled_from(["p", "q"]), "selector": selectors,
    "types": st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
    "ingress": st.one_of(st.none(), st.lists(rules, max_size=2)),
    "egress": st.one_of(st.none(), st.lists(rules, max_size=2))})


def _policies_yaml(drawn: list[dict]) -> str:
    out = []
    for i, d in enumerate(drawn):
        spec = [f"  podSelector: {d['selector']}"]
        if d["types"]:
            spec.append(f"  policyTypes: [{', '.join(d['types'])}]")
        for key, peer_key in (("ingress", "from"), ("egress", "to")):
            if d[key] is not None:
                spec.append(f"  {key}: [{', '.join(_rule(peer_key, r) for r in d[key])}]")
        out.append(f"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: "
                   f"{{name: r{i}, namespace: {d['ns']}}}\nspec:\n" + "\n".join(spec) + "\n")
    return "".join(out)


@pytest.fixture(scope="module")
def small_lab(request):
    return shared_lab(request, yaml=LAB, label="property")


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=st.lists(policy, min_size=1, max_size=3))
def test_random_policies_kernel_equals_engine(small_lab, drawn):
    text = _policies_yaml(drawn)
    small_lab.apply(manifests=[text])
    try:
        report = small_lab.check(timeout=0.5)
        assert report.ok, (text, [(p.src, p.dst, p.protocol, p.port, p.expected, p.observed)
                                  for p in report.mismatches])
    finally:
        small_lab.delete(manifests=[text])
