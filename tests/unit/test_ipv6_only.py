"""IPv6-only and IPv6-primary clusters, compiled: an IPv6-only lab renders no IPv4 address,
route, device or nft table anywhere; nodes, pods, Services, kube-dns, the LoadBalancer pool,
the internet host's resolver and the Ingress controller are IPv6; an IPv6-primary dual-stack
lab orders podIPs, Service families, kube-dns and resolv.conf IPv6 first."""

from __future__ import annotations

import ipaddress

import pytest

from netlab import names, targets
from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.intents import Address, Link, Neighbour, Route
from netlab.loader import read_text

CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n"
ONLY = CLUSTER + "  podCIDR: fd00:10:244::/56\n"
PRIMARY = CLUSTER + "  podCIDR: fd00:10:244::/56,10.244.0.0/16\n"
LAB = """---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: a}}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, '1'],
       env: [{name: IPS, valueFrom: {fieldRef: {fieldPath: status.podIPs}}}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: b}}
spec: {nodeName: node-2, containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {type: LoadBalancer, selector: {app: b}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress: [{from: [{podSelector: {matchLabels: {app: a}}}, {ipBlock: {cidr: 10.0.0.0/8}}]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: b}
spec:
  ingressClassName: nginx
  rules: [{host: b.example, http: {paths: [{path: /, pathType: Prefix,
           backend: {service: {name: b, port: {number: 80}}}}]}}]
"""


def compiled(text: str):
    return compile_lab("t", read_text(text, "t.yaml"))


def _is_v4(text: str) -> bool:
    try:
        return ipaddress.ip_network(text.split()[0], strict=False).version == 4
    except ValueError:
        return False


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_an_ipv6_only_lab_renders_no_ipv4(backend: str):
    d = compiled(ONLY + f"  backend: {backend}\n" + LAB)
    intents = [*d.network, *(i for v in d.pods.values() for i in v)]
    for i in intents:
        if isinstance(i, Address):
            assert not _is_v4(i.cidr) or i.cidr.startswith("127."), i
        if isinstance(i, Route):
            assert i.dst != "default" and not _is_v4(i.dst), i
            assert i.gateway is None or ":" in i.gateway, i
        if isinstance(i, Neighbour):
            assert ":" in i.ip, i
    devices = {i.name for i in intents if isinstance(i, Link)}
    assert names.NODE_VXLAN not in devices
    assert (names.NODE_VXLAN6 in devices) == (backend == "vxlan")
    for tables in d.rules.values():
        assert {t.family for t in tables} == {"ip6"}
    assert d.plan.cluster.pod_mtu == (1430 if backend == "vxlan" else 1500)
    a, b = d.plan.pods["default/a"], d.plan.pods["default/b"]
    assert (a.ip, a.ip6, b.ip6) == ("", "fd00:10:244::2", "fd00:10:244:1::2")
    # the MAC rule: 0a:58 + the address's last four bytes
    assert names.pod_mac(b.ip6) == "0a:58:00:00:00:02"
    assert dict(d.workloads["default/a"].processes[0].env)["IPS"] == "fd00:10:244::2"
    n1 = d.plan.nodes[0]
    assert (n1.underlay_ip, n1.pod_cidr, n1.underlay_ip6, n1.pod_cidr6) == (
        "", "", "2001:db8:18::2", "fd00:10:244::/64")
    assert (d.plan.external_ip, d.plan.external_ip6, d.plan.internet_ip6) == (
        "", "2001:db8:18::fe", "2001:db8:113::1")


def test_ipv6_only_services_dns_and_ingress():
    d = compiled(ONLY + LAB)
    svc = d.plan.services["default/b"]
    assert (svc.ip_families, svc.cluster_ip, svc.cluster_ip6, svc.lb_ip, svc.lb_ip6) == (
        ("IPv6",), None, "fd00:10:96::2", None, "2001:db8:18::c8")  # ::1 is `kubernetes`'s
    dns = d.plan.services["kube-system/kube-dns"]
    assert dns.cluster_ips == ("fd00:10:96::a",)
    assert b"nameserver fd00:10:96::a\n" in d.files["pods/default.a/resolv.conf"].data
    zone = d.files["dns/zone.json"].data.decode()
    assert '"b.default.svc.cluster.local":["fd00:10:96::2"]' in zone
    assert '"a":{}' in zone and "in-addr.arpa" not in zone
    (internet,) = d.workloads["host/internet"].processes
    assert "--ipv6" in internet.argv and "example.com=2001:db8:113::1" in internet.argv
    assert not any(a.endswith("=203.0.113.1") for a in internet.argv)
    (coredns,) = d.workloads["kube-system/coredns"].processes
    assert coredns.argv[coredns.argv.index("--upstream") + 1] == "2001:db8:113::1"
    conf = next(f.data.decode() for k, f in d.files.items() if k.endswith("nginx.conf"))
    assert "listen [::]:80" in conf and "server [fd00:10:244:1::2]:80" in conf
    # an IPv4 ipBlock admits nothing in IPv6; the selector stands for the pod's IPv6 address
    rules = "".join(t.full() for t in d.rules[d.plan.nodes[1].netns])
    assert "ip6 saddr { fd00:10:244::2 }" in rules and "10.0.0.0/8" not in rules


def test_ipv6_only_refusals_and_targets():
    with pytest.raises(InputError, match=r'spec.ipFamilies\[0\]: Invalid value: "IPv4": '
                                         "not configured on this cluster"):
        compiled(ONLY + LAB + "---\napiVersion: v1\nkind: Service\nmetadata: {name: v4}\n"
                 "spec: {ipFamilies: [IPv4], selector: {app: b}, ports: [{port: 80}]}\n")
    plan = compiled(ONLY + LAB).plan
    b = targets.parse("b", plan)
    assert targets.destination(plan, b, False, None, None) == ("fd00:10:244:1::2", 80, "tcp")
    assert targets.address(plan, targets.parse("internet", plan)) == "2001:db8:113::1"
    with pytest.raises(InputError, match="lab t is IPv6-only: b has no IPv4 address"):
        targets.address(plan, b, "IPv4")


def test_an_ipv6_primary_lab_orders_ipv6_first():
    d = compiled(PRIMARY + LAB)
    c = d.plan.cluster
    assert c.families == ("IPv6", "IPv4") and c.cluster_dns == "fd00:10:96::a"
    a = d.plan.pods["default/a"]
    assert dict(d.workloads["default/a"].processes[0].env)["IPS"] == f"{a.ip6},{a.ip}"
    svc = d.plan.services["default/b"]
    assert svc.ip_families == ("IPv6",) and svc.cluster_ip is None
    dns = d.plan.services["kube-system/kube-dns"]
    assert dns.cluster_ips == ("fd00:10:96::a", "10.96.0.10")
    assert b"nameserver fd00:10:96::a\n" in d.files["pods/default.a/resolv.conf"].data
    # the first address of the primary (IPv6) range is reserved, not the IPv4 one's
    v4 = compiled(PRIMARY + LAB + "---\napiVersion: v1\nkind: Service\nmetadata: {name: v4}\n"
                  "spec: {ipFamilies: [IPv4], selector: {app: b}, ports: [{port: 80}]}\n")
    assert v4.plan.services["default/v4"].cluster_ip == "10.96.0.1"
    pod_b = targets.parse("b", d.plan)
    assert targets.destination(d.plan, pod_b, False, None, None)[0] == "fd00:10:244:1::2"
    assert targets.destination(d.plan, pod_b, False, None, None, "IPv4")[0] == "10.244.1.2"
