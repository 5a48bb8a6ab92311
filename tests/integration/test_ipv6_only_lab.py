"""IPv6-only and IPv6-primary labs with real packets, on both backends: no IPv4 address,
route or table anywhere in an IPv6-only lab; pods reach each other across nodes (flannel-v6.1
over the IPv6 underlay, or host-gw routes); a Service without ipFamilies gets an IPv6
ClusterIP, answered over the ClusterIP, a NodePort and a LoadBalancer address; the cluster
DNS answers AAAA at its IPv6 ClusterIP; egress is masqueraded to the node's IPv6 address; a
policy with an IPv6 ipBlock is enforced and `check` agrees. An IPv6-primary dual-stack lab
orders everything IPv6 first and still answers over IPv4."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.netlab

PODS = """---
apiVersion: v1
kind: Pod
metadata: {name: a1, labels: {app: client}}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: a2, labels: {app: other}}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, nodePort: 30080}]
"""

POLICY = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: client}}
    - ipBlock: {cidr: "2001:db8:18::fe/128"}
    - ipBlock: {cidr: 172.18.0.0/24}
"""


def cluster(pod_cidr: str, backend: str = "vxlan") -> str:
    return f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {{nodes: 2, backend: {backend}, podCIDR: "{pod_cidr}"}}
"""


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_an_ipv6_only_lab_has_no_ipv4_and_works(netlab_lab, backend):
    lab = netlab_lab(yaml=cluster("fd00:10:244::/56", backend) + PODS + POLICY)
    plan = lab.plan
    a1, web = plan.pods["default/a1"], plan.pods["default/web"]
    n1, n2 = plan.nodes
    assert (a1.ip, a1.ip6, web.ip6) == ("", "fd00:10:244::2", "fd00:10:244:1::2")
    # no IPv4 on any interface but lo, in pods, nodes and hosts; no IPv4 nft table
    for target in ("a1", "web", "node/node-1", "external", "internet"):
        v4 = lab.exec(target, ["ip", "-4", "-o", "addr", "show", "scope", "global"]).stdout
        assert v4.strip() == "", (target, v4)
    tables = lab.exec("node/node-1", ["nft", "list", "tables"]).stdout
    assert "table ip6 kube-proxy" in tables and "table ip6 netlab-policy" in tables
    assert "table ip " not in tables, tables
    links = lab.exec("node/node-1", ["ip", "-o", "link", "show"]).stdout
    if backend == "vxlan":  # flannel's IPv6 device alone, and pods sized for VXLAN over IPv6
        assert "flannel-v6.1" in links and "flannel.1" not in links
        assert "mtu 1430" in lab.exec("a1", ["ip", "link", "show", "eth0"]).stdout
    else:
        assert "flannel" not in links
        assert f"{n2.pod_cidr6} via {n2.underlay_ip6}" in lab.exec(
            "node/node-1", ["ip", "-6", "route"]).stdout
    # pod to pod across nodes, and to a Service's IPv6 ClusterIP (the only family)
    assert lab.ping("a1", "web", count=1).ok
    svc = plan.services["default/web"]
    assert svc.ip_families == ("IPv6",) and svc.cluster_ip is None and svc.cluster_ip6
    r = lab.probe("a1", "svc/web")
    assert (r.address, r.answered_by, r.client_ip) == (svc.cluster_ip6, "default/web",
                                                       a1.ip6), r
    assert not lab.probe("a2", "svc/web", timeout=1.0).connected  # the policy isolates web
    # NodePort on node-2's IPv6 address and the LoadBalancer address from the IPv6 pool,
    # both keeping the external client's address (externalTrafficPolicy Local; its ipBlock)
    node_port = lab.probe("external", "node/node-2", 30080)
    assert (node_port.address, node_port.client_ip) == (n2.underlay_ip6,
                                                        plan.external_ip6), node_port
    lb = lab.probe("external", "svc/web")
    assert (lb.address, lb.answered_by, lb.client_ip) == (svc.lb_ip6, "default/web",
                                                          plan.external_ip6), lb
    # the cluster DNS: AAAA at its IPv6 ClusterIP, the pods' only nameserver
    assert "nameserver fd00:10:96::a\n" in lab.exec("a1", ["cat", "/etc/resolv.conf"]).stdout
    answer = lab.dns("web", "a1")
    assert (answer.type, answer.server, answer.addresses) == ("AAAA", "fd00:10:96::a",
                                                              [svc.cluster_ip6]), answer
    # egress to the internet host, masqueraded to node-1's IPv6 address
    out = lab.probe("a1", "internet")
    assert (out.address, out.client_ip) == (plan.internet_ip6, n1.underlay_ip6), out
    # the engine and the kernel agree, per family the lab has (IPv6 alone)
    report = lab.check()
    assert report.families == ("IPv6",) and report.ok, report.mismatches
    assert any(p.src == "default/a2" and p.observed == "denied" for p in report.probes)


def test_an_ipv6_primary_dual_stack_lab_orders_ipv6_first(netlab_lab):
    lab = netlab_lab(yaml=cluster("fd00:10:244::/56,10.244.0.0/16") + PODS)
    plan = lab.plan
    a1, web = plan.pods["default/a1"], plan.pods["default/web"]
    info = next(p for p in lab.pods() if p.name == "a1").to_k8s()["status"]
    assert info["podIP"] == a1.ip6
    assert info["podIPs"] == [{"ip": a1.ip6}, {"ip": a1.ip}]
    svc = plan.services["default/web"]  # no ipFamilies: the primary family, IPv6
    assert svc.ip_families == ("IPv6",) and svc.cluster_ips == (svc.cluster_ip6,)
    assert "nameserver fd00:10:96::a\n" in lab.exec("a1", ["cat", "/etc/resolv.conf"]).stdout
    r = lab.probe("a1", "web", 80)  # the primary family by default
    assert (r.address, r.client_ip) == (web.ip6, a1.ip6), r
    v4 = lab.probe("a1", "web", 80, family="IPv4")
    assert (v4.address, v4.client_ip) == (web.ip, a1.ip), v4
    assert lab.probe("a1", "svc/web").answered_by == "default/web"
