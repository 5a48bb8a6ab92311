"""NetworkPolicy in a dual-stack lab, with real IPv6 packets: a default deny blocks IPv6 as
well as IPv4, an allow rule opens both families (across nodes and on one node, where
neighbour discovery has to get through the isolated pod's chain), an IPv6 ipBlock (with its
except) decides for the external host's IPv6 address while an IPv4 block opens IPv4 only,
and `netlab check` probes both families and agrees with the kernel in each."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.netlab

LAB = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  dns: false
  podCIDR: 10.244.0.0/16,fd00:10:244::/56
---
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: y, labels: {ns: y}}
"""


def pod(ns: str, name: str, node: str) -> str:
    return f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{pod: {name}}}}}
spec:
  nodeName: {node}
  containers: [{{name: c, image: x, ports: [{{containerPort: 80}}]}}]
"""


PODS = pod("x", "a", "node-1") + pod("x", "b", "node-2") + pod("y", "c", "node-1") \
    + pod("y", "d", "node-2")
DENY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
FROM_Y = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]
"""


def blocks(*peers: str) -> str:
    return f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: blocks, namespace: x}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  ingress: [{{from: [{", ".join(peers)}], ports: [{{port: 80}}]}}]
"""


def reach(lab, pairs: list[tuple[str, str, str]]) -> list[bool]:
    """Real TCP/80 connections (src, dst, family) at once: which got through."""
    asks = [(s, d, 80, "tcp", fam) for s, d, fam in pairs]
    return [r.connected for r in lab.probe_many(asks, timeout=1.5)]


def test_network_policy_filters_ipv6_too(netlab_lab):
    lab = netlab_lab(yaml=LAB + PODS, name="nldnp1")
    plan = lab.plan
    both = ("IPv4", "IPv6")
    # no policy: everything connects in both families
    assert reach(lab, [("x/b", "x/a", f) for f in both]) == [True, True]

    # default deny ingress in x: IPv6 is denied too, from another node and from this one
    lab.apply(manifests=[DENY])
    pairs = [(s, "x/a", f) for s in ("x/b", "y/c", "y/d") for f in both]
    assert reach(lab, pairs) == [False] * 6
    # an IPv6 ping from the isolated pod still gets its replies (established/related)
    assert lab.ping("x/a", "y/d", count=1, family="IPv6").ok

    # allow from namespace y on port 80: opens both families; x/b stays denied in both.
    # Neighbour caches flushed first: resolution has to pass x/a's isolated chain
    for who in ("x/a", "y/c"):
        lab.exec(who, ["ip", "-6", "neigh", "flush", "dev", "eth0"])
    lab.apply(manifests=[FROM_Y])
    assert reach(lab, pairs) == [False, False, True, True, True, True]
    r = lab.probe("y/c", "x/a", 80, family="IPv6")
    assert (r.answered_by, r.client_ip) == ("x/a", plan.pods["y/c"].ip6), r

    # an IPv4 block with the external host in it opens IPv4 only
    ext4 = f"{{ipBlock: {{cidr: {plan.external_ip}/32}}}}"
    lab.apply(manifests=[blocks(ext4)])
    ext = [("external", "x/a", f) for f in both]
    assert reach(lab, ext) == [True, False]
    # an IPv6 block whose except holds the external host: still denied in IPv6
    ext6_except = (f'{{ipBlock: {{cidr: "2001:db8:18::/64", '
                   f'except: ["{plan.external_ip6}/128"]}}}}')
    lab.apply(manifests=[blocks(ext4, ext6_except)])
    assert reach(lab, ext) == [True, False]
    # without the except: the external host reaches x/a over IPv6 too
    lab.apply(manifests=[blocks(ext4, '{ipBlock: {cidr: "2001:db8:18::/64"}}')])
    assert reach(lab, ext) == [True, True]
    r = lab.probe("external", "x/a", 80, family="IPv6")
    assert r.client_ip == plan.external_ip6, r

    # check: every pair in both families (and the external host, a policy has an ipBlock),
    # the engine's verdict against the probe in each
    report = lab.check()
    assert report.ok, [p.to_json() for p in report.mismatches]
    assert report.families == both
    doc = report.to_json()
    assert set(doc["summary"]["families"]) == set(both)
    by = {(p.src, p.dst, p.family): p for p in report.probes}
    assert len(by) == len(report.probes) == 2 * (4 * 3 + 4)  # pods x pods-1, external x 4
    expect = {("y/c", "x/a", "IPv6"): "allowed", ("x/b", "x/a", "IPv6"): "denied",
              ("x/b", "x/a", "IPv4"): "denied", ("external", "x/a", "IPv6"): "allowed",
              ("external", "x/a", "IPv4"): "allowed", ("external", "x/b", "IPv6"): "denied",
              ("x/a", "y/d", "IPv6"): "allowed"}
    for key, verdict in expect.items():
        assert (by[key].expected, by[key].observed) == (verdict, verdict), by[key]
    assert all(p["family"] in both for p in doc["probes"])

    # explain names the family, and the kernel trace shows the IPv6 table deciding
    e = lab.explain("x/b", "x/a", 80, family="IPv6")
    assert e.family == "IPv6" and e.expected == "denied" and e.agrees, e.reasoning
    assert e.reasoning[0].startswith("family IPv6")
    assert any("ip6 netlab-policy" in v for v in e.kernel_verdicts), e.kernel_verdicts
