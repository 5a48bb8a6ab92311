"""The packet walk over IPv6 in a dual-stack lab: one packet marked by its flow label,
followed hop by hop through flannel-v6.1's VXLAN over the IPv6 underlay, kube-proxy's IPv6
DNAT and the ip6 netlab-policy table that drops it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.netlab

LAB = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  backend: vxlan
  podCIDR: 10.244.0.0/16,fd00:10:244::/56
---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: a}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c, labels: {app: c}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: svc-c}
spec:
  ipFamilyPolicy: PreferDualStack
  selector: {app: c}
  ports: [{port: 80}]
"""

DENY_C = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-c}
spec:
  podSelector: {matchLabels: {app: c}}
  policyTypes: [Ingress]
"""


def walk(result, kind: str = "request") -> list[tuple[str, str, str]]:
    return [(h.netns, h.iface, h.direction) for h in result.hops if h.kind == kind]


def hop(result, netns: str, iface: str, kind: str = "request"):
    return next(h for h in result.hops if (h.netns, h.iface, h.kind) == (netns, iface, kind))


def cross(lab) -> list[tuple[str, str, str]]:
    va, vc = lab.plan.pods["default/a"].veth, lab.plan.pods["default/c"].veth
    return [("pod/default/a", "eth0", "out"), ("node/node-1", va, "in"),
            ("node/node-1", "cni0", "in"), ("node/node-1", "flannel-v6.1", "out"),
            ("node/node-1", "eth0", "out"), ("underlay", "node-1", "in"),
            ("underlay", "node-2", "out"), ("node/node-2", "eth0", "in"),
            ("node/node-2", "flannel-v6.1", "in"), ("node/node-2", "cni0", "out"),
            ("node/node-2", vc, "out"), ("pod/default/c", "eth0", "in")]


# A walk ends as soon as its reply is home; on a loaded machine (a CI run) the capture of the
# last hop can take longer than trace's default 1 s, so these walks may wait longer.
WAIT = 3.0


def test_trace_over_ipv6(netlab_lab):
    lab = netlab_lab(yaml=LAB, name="nltr6a")
    a, c = lab.plan.pods["default/a"], lab.plan.pods["default/c"]
    n1, n2 = lab.plan.nodes
    # pod to pod across nodes: VXLAN over the IPv6 underlay, routed twice
    r = lab.trace("a", "c", family="IPv6", timeout=WAIT)
    assert r.address == c.ip6 and r.ip_id is None and 0 < r.flow_label < 2**20
    assert walk(r) == cross(lab), r.hops
    first = hop(r, "pod/default/a", "eth0")
    assert first.summary.startswith(f"TCP [{a.ip6}]:") and first.summary.endswith(
        f"> [{c.ip6}]:80 [S] hlim 64")
    assert hop(r, "node/node-1", "flannel-v6.1").changes == ("hop limit 64 -> 63 (routed)",)
    out = hop(r, "node/node-1", "eth0")
    assert out.encapsulated and out.summary.startswith(
        f"VXLAN {n1.underlay_ip6} > {n2.underlay_ip6} UDP 8472 vni 1 [ TCP [{a.ip6}]:")
    assert (f"encapsulated: VXLAN VNI 1 in UDP 8472, outer {n1.underlay_ip6} > "
            f"{n2.underlay_ip6}") in out.changes
    assert "decapsulated (VXLAN removed)" in hop(r, "node/node-2", "flannel-v6.1").changes
    assert hop(r, "node/node-2", "cni0").changes == ("hop limit 63 -> 62 (routed)",)
    assert hop(r, "pod/default/c", "eth0").summary.endswith("hlim 62")
    assert r.delivered_to == "pod/default/c" and r.reply, r.verdict
    assert walk(r, "reply")[-1] == ("pod/default/a", "eth0", "in")
    # an IPv6 literal is traced over IPv6 without -6; ICMPv6 echo is answered
    ping = lab.trace("a", c.ip6, protocol="icmp", timeout=WAIT)
    assert ping.flow_label is not None and ping.delivered and ping.reply
    assert "echo reply" in hop(ping, "pod/default/a", "eth0", "reply").summary
    # a closed UDP port: the ICMPv6 port unreachable comes home
    closed = lab.trace("a", "c", 81, "udp", family="IPv6", timeout=WAIT)
    err = hop(closed, "pod/default/a", "eth0", "icmp-error")
    assert "destination unreachable (port unreachable)" in err.summary
    # pod to the Service's IPv6 ClusterIP: DNATed at the first node
    svc = lab.plan.services["default/svc-c"]
    r = lab.trace("a", "svc/svc-c", family="IPv6", timeout=WAIT)
    assert r.address == svc.cluster_ip6 and walk(r) == cross(lab)
    assert hop(r, "node/node-1", "cni0").changes[0] == \
        f"DNAT [{svc.cluster_ip6}]:80 -> [{c.ip6}]:80"
    assert r.delivered_to == "pod/default/c" and r.reply
    assert f"[{svc.cluster_ip6}]:80 >" in hop(r, "pod/default/a", "eth0", "reply").summary
    assert any(v.startswith("node-1: ip6 kube-proxy ") and "dnat" in v
               for v in r.kernel_verdicts), r.kernel_verdicts
    # the CLI: -6, and the flow label in the JSON document
    cli = subprocess.run([sys.executable, "-m", "netlab", "trace", "-6", "a", "svc/svc-c",
                          "--lab", lab.name, "-o", "json"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    data = json.loads(cli.stdout)
    assert data["address"] == svc.cluster_ip6 and data["flow_label"] and data["delivered"]
    table = subprocess.run([sys.executable, "-m", "netlab", "trace", "-6", "a", "c", "--lab",
                            lab.name], capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    assert f"([{c.ip6}]:80/tcp), flow label" in table.stdout
    assert f"[{c.ip6}]:80 [S] hlim 64" in table.stdout  # not eaten as markup


def test_ipv6_trace_names_the_policy_that_drops_it(netlab_lab):
    lab = netlab_lab(yaml=LAB + DENY_C, name="nltr6b")
    c = lab.plan.pods["default/c"]
    r = lab.trace("a", "svc/svc-c", family="IPv6", timeout=0.5)
    assert not r.delivered and not r.reply
    assert hop(r, "node/node-1", "cni0").changes[0].endswith(f"-> [{c.ip6}]:80")  # DNATed
    assert r.died_at == "node/node-2 flannel-v6.1 (in)", r.hops
    assert "dropped by NetworkPolicy" in r.reason and "ingress-default/c" in r.reason
    assert any(v.startswith("node-2: ip6 netlab-policy ") and "(verdict drop)" in v
               for v in r.kernel_verdicts), r.kernel_verdicts
    # IPv4 is still traced by its IP ID, and dropped the same way
    v4 = lab.trace("a", "c", timeout=0.5)
    assert v4.flow_label is None and v4.ip_id and not v4.delivered
    assert "ingress-default/c" in v4.reason
