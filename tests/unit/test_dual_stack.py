"""Dual-stack clusters (kubeadm-style "v4,v6" ranges): the Cluster document's validation as
kube-controller-manager and kube-apiserver do it, the IPv6 side of the plan (a /64 per node,
flannel's device and VTEP address, pods on the same host part in both families), and the
intents that build it (addresses, routes, flannel-v6.1, masquerade, sysctls)."""

from __future__ import annotations

import pytest

from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.intents import Address, Fdb, Link, Neighbour, Netns, Route
from netlab.loader import build, read_text

CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n"
DUAL = CLUSTER + "  podCIDR: 10.244.0.0/16,fd00:10:244::/56\n"
PODS = """---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, '1']}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {nodeName: node-2, containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}
"""


def cluster(text: str):
    return build(read_text(text, "c.yaml")).cluster


def refused(text: str) -> str:
    with pytest.raises(InputError) as e:
        build(read_text(text, "c.yaml"))
    assert e.value.exit_code == 2
    return str(e.value)


def test_dual_stack_ranges_and_defaults():
    c = cluster(DUAL)
    assert c.dual_stack and c.families == ("IPv4", "IPv6")
    assert (c.pod_cidr, c.pod_cidr6, c.node_cidr_mask6) == (
        "10.244.0.0/16", "fd00:10:244::/56", 64)
    # serviceCIDR not given: dual-stack Services by default (kind's range)
    assert (c.service_cidr, c.service_cidr6) == ("10.96.0.0/12", "fd00:10:96::/112")
    assert (c.underlay_cidr6, c.internet_cidr6) == ("2001:db8:18::/64", "2001:db8:113::/64")
    single = cluster(DUAL + "  serviceCIDR: 10.96.0.0/16\n")  # single-stack Services
    assert single.service_cidr6 == ""
    plain = cluster(CLUSTER + "  nodes: 2\n")
    assert not plain.dual_stack and plain.families == ("IPv4",)


@pytest.mark.parametrize(("spec", "expected"), [
    ("  podCIDR: fd00:10:244::/56\n  serviceCIDR: 10.96.0.0/12\n",
     "spec.serviceCIDR: 10.96.0.0/12 is an IPv4 range but podCIDR has none: this is an "
     "IPv6-only cluster"),
    ("  podCIDR: fd00:10:244::/56,10.244.0.0/16\n  serviceCIDR: 10.96.0.0/12,fd00:10:96::/112\n",
     "spec.serviceCIDR: lists IPv4 first but podCIDR lists IPv6 first"),
    ("  podCIDR: fd00:10:244::/56\n  clusterDNS: 10.96.0.10\n",
     "clusterDNS: 10.96.0.10 is not inside serviceCIDR fd00:10:96::/112"),
    ("  podCIDR: fd00:10:244::/56\n  nodes: [{name: a, podCIDR: 10.244.0.0/24}]\n",
     "this is an IPv6-only cluster"),
    ("  podCIDR: 10.244.0.0/16,10.245.0.0/16\n", "must be of different IP families"),
    ("  podCIDR: 10.244.0.0/16,fd00::/40\n", "kube-controller-manager refuses it"),
    ("  podCIDR: 10.244.0.0/16,fd00::1/56\n", "'fd00::1/56' is not a valid CIDR"),
    ("  podCIDRMaskSizeIPv6: 64\n", "spec.podCIDRMaskSizeIPv6: is only for clusters with IPv6"),
    ("  serviceCIDR: 10.96.0.0/16,fd00:10:96::/112\n",
     "fd00:10:96::/112 is an IPv6 range but podCIDR has none: give podCIDR an IPv6 range"),
    ("  podCIDR: 10.244.0.0/16,fd00:10:244::/56\n  serviceCIDR: 10.96.0.0/16,fd00::/64\n",
     "fd00::/64 is too large: kube-apiserver takes at most 20 bits"),
    ("  podCIDR: 10.244.0.0/16,fd00:10:244::/56\n  serviceCIDR: 10.96.0.0/16,"
     "fd00:10:244::/112\n", "serviceCIDR: fd00:10:244::/112 overlaps podCIDR"),
    ("  podCIDR: 10.244.0.0/16,fd00:10:244::/56\n  internetCIDR: 203.0.113.0/24,"
     "2001:db8:18::/64\n", "internetCIDR: 2001:db8:18::/64 overlaps underlayCIDR"),
])
def test_cluster_refusals(spec: str, expected: str):
    assert expected in refused(CLUSTER + spec)


def test_ipv6_only_and_ipv6_primary_clusters():
    only = cluster(CLUSTER + "  podCIDR: fd00:10:244::/56\n")
    assert only.families == ("IPv6",) and only.ipv6 and not only.ipv4 and not only.dual_stack
    assert (only.pod_cidr, only.service_cidr, only.underlay_cidr, only.internet_cidr,
            only.load_balancer_pool) == ("", "", "", "", "")
    assert (only.service_cidr6, only.cluster_dns, only.underlay_cidr6,
            only.load_balancer_pool6) == ("fd00:10:96::/112", "fd00:10:96::a",
                                          "2001:db8:18::/64", "2001:db8:18::c8-2001:db8:18::fa")
    # kube-controller-manager's single-stack mask flag works for IPv6 too
    assert cluster(CLUSTER + "  podCIDR: fd00:10:244::/56\n  podCIDRMaskSize: 72\n"
                   ).node_cidr_mask6 == 72
    six = cluster(CLUSTER + "  podCIDR: fd00:10:244::/56,10.244.0.0/16\n")
    assert six.dual_stack and six.families == ("IPv6", "IPv4") and six.primary == "IPv6"
    assert (six.service_cidr, six.service_cidr6, six.cluster_dns) == (
        "10.96.0.0/12", "fd00:10:96::/112", "fd00:10:96::a")
    # the IPv4 pool follows a custom underlay (hosts .200-.250)
    assert cluster(CLUSTER + "  underlayCIDR: 172.19.0.0/24\n").load_balancer_pool == \
        "172.19.0.200-172.19.0.250"


def test_plan_gives_every_node_and_pod_both_families():
    d = compile_lab("t", read_text(DUAL + PODS, "t.yaml"))
    n1, n2 = d.plan.nodes
    assert (n1.pod_cidr6, n1.gateway6, n1.vtep_ip6, n1.underlay_ip6) == (
        "fd00:10:244::/64", "fd00:10:244::1", "fd00:10:244::", "2001:db8:18::2")
    assert (n2.pod_cidr6, n2.underlay_ip6) == ("fd00:10:244:1::/64", "2001:db8:18::3")
    assert n1.vtep_mac6 != n1.vtep_mac
    a, b = d.plan.pods["default/a"], d.plan.pods["default/b"]
    assert (a.ip, a.ip6) == ("10.244.0.2", "fd00:10:244::2")  # the same host part
    assert (b.ip, b.ip6) == ("10.244.1.2", "fd00:10:244:1::2")
    assert (d.plan.underlay_gateway6, d.plan.external_ip6, d.plan.internet_ip6) == (
        "2001:db8:18::1", "2001:db8:18::fe", "2001:db8:113::1")
    assert b"fd00:10:244::2\ta\n" in d.files["pods/default.a/hosts"].data


def intents(d, netns: str) -> list:
    return [i for i in [*d.network, *(i for v in d.pods.values() for i in v)]
            if i.netns == netns]


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_intents_in_both_families(backend: str):
    d = compile_lab("t", read_text(DUAL + f"  backend: {backend}\n" + PODS, "t.yaml"))
    node1 = intents(d, "netlab.t.node.node-1")
    assert Address("netlab.t.node.node-1", "cni0", 101, "fd00:10:244::1/64") in node1
    assert Address("netlab.t.node.node-1", "eth0", 100, "2001:db8:18::2/64") in node1
    assert Route("netlab.t.node.node-1", "::/0", "eth0", 100, gateway="2001:db8:18::1") in node1
    pod_a = intents(d, "netlab.t.pod.default.a")
    assert Address("netlab.t.pod.default.a", "eth0", 100, "fd00:10:244::2/64") in pod_a
    assert Route("netlab.t.pod.default.a", "::/0", "eth0", 100,
                 gateway="fd00:10:244::1") in pod_a
    (ns,) = [i for i in pod_a if isinstance(i, Netns)]
    assert ("net.ipv6.conf.all.disable_ipv6", "0") in ns.sysctls
    assert ("net.ipv6.conf.default.accept_dad", "0") in ns.sysctls
    (node_ns,) = [i for i in node1 if isinstance(i, Netns)]
    assert ("net.ipv6.conf.all.forwarding", "1") in node_ns.sysctls
    if backend == "host-gw":
        assert Route("netlab.t.node.node-1", "fd00:10:244:1::/64", "eth0", 100,
                     gateway="2001:db8:18::3") in node1
        assert not any(isinstance(i, Link) and i.kind == "vxlan" for i in node1)
    else:
        (v6dev,) = [i for i in node1 if isinstance(i, Link) and i.name == "flannel-v6.1"]
        assert v6dev.vxlan.local == "2001:db8:18::2" and v6dev.vxlan.vni == 1
        assert v6dev.vxlan.port == 8472 and v6dev.mtu == 1430  # VXLAN over IPv6: 70 bytes
        n2 = d.plan.nodes[1]
        assert Neighbour("netlab.t.node.node-1", "flannel-v6.1", 103, "fd00:10:244:1::",
                         n2.vtep_mac6) in node1
        assert Fdb("netlab.t.node.node-1", "flannel-v6.1", 103, n2.vtep_mac6,
                   "2001:db8:18::3") in node1
        assert Route("netlab.t.node.node-1", "fd00:10:244:1::/64", "flannel-v6.1", 103,
                     gateway="fd00:10:244:1::", onlink=True) in node1
    rules = {t.ref: t for t in d.rules["netlab.t.node.node-1"]}
    assert rules["ip6 flannel-ipv6"].chains["postrtg"][-1] == \
        "ip6 saddr fd00:10:244::/56 masquerade fully-random"


def test_single_stack_labs_keep_ipv6_off():
    d = compile_lab("t", read_text(CLUSTER + "  nodes: 2\n" + PODS, "t.yaml"))
    assert d.plan.pods["default/a"].ip6 == "" and d.plan.nodes[0].pod_cidr6 == ""
    for i in d.network:
        if isinstance(i, Netns) and i.sysctls:
            assert ("net.ipv6.conf.all.disable_ipv6", "1") in i.sysctls, i.name
    assert "ip6 flannel-ipv6" not in {t.ref for t in d.rules["netlab.t.node.node-1"]}


def test_probe_targets_in_either_family():
    from netlab import targets

    plan = compile_lab("t", read_text(DUAL + PODS, "t.yaml")).plan
    b = targets.parse("b", plan)
    assert targets.destination(plan, b, False, None, None) == ("10.244.1.2", 80, "tcp")
    assert targets.destination(plan, b, False, None, None, "IPv6") == (
        "fd00:10:244:1::2", 80, "tcp")
    assert targets.address(plan, targets.parse("node/node-2", plan), "IPv6") == "2001:db8:18::3"
    assert targets.address(plan, targets.parse("internet", plan), "IPv6") == "2001:db8:113::1"
    assert targets.parse("fd00:10:244:1:0::2", plan).name == "fd00:10:244:1::2"  # literal
    with pytest.raises(InputError, match="family 'IPv5' is not one of IPv4, IPv6"):
        targets.address(plan, b, "IPv5")
    single = compile_lab("t", read_text(CLUSTER + "  nodes: 2\n" + PODS, "t.yaml")).plan
    with pytest.raises(InputError, match="lab t is single-stack"):
        targets.address(single, targets.parse("b", single), "IPv6")


def test_pods_and_nodes_show_both_families_as_the_api_does():
    from netlab.views import PodInfo, node_infos

    text = DUAL + PODS.replace(
        "command: [sleep, '1']}",
        "command: [sleep, '1'], env: [{name: IPS, valueFrom: {fieldRef: "
        "{fieldPath: status.podIPs}}}, {name: HOSTS, valueFrom: {fieldRef: "
        "{fieldPath: status.hostIPs}}}]}")
    d = compile_lab("t", read_text(text, "t.yaml"))
    env = dict(d.workloads["default/a"].processes[0].env)
    assert env["IPS"] == "10.244.0.2,fd00:10:244::2"  # the kubelet's comma-separated form
    assert env["HOSTS"] == "172.18.0.2,2001:db8:18::2"
    info = PodInfo("default", "a", "node-1", "10.244.0.2", {}, (), "172.18.0.2",
                   pod_ips=("10.244.0.2", "fd00:10:244::2"),
                   host_ips=("172.18.0.2", "2001:db8:18::2"))
    status = info.to_k8s()["status"]
    assert status["podIP"] == "10.244.0.2"
    assert status["podIPs"] == [{"ip": "10.244.0.2"}, {"ip": "fd00:10:244::2"}]
    assert status["hostIPs"] == [{"ip": "172.18.0.2"}, {"ip": "2001:db8:18::2"}]
    node = node_infos(d.plan)[0].to_k8s()
    assert node["spec"]["podCIDRs"] == ["10.244.0.0/24", "fd00:10:244::/64"]
    assert {"type": "InternalIP", "address": "2001:db8:18::2"} in node["status"]["addresses"]
    assert "flannel.alpha.coreos.com/backend-v6-data" in node["metadata"]["annotations"]
    single = PodInfo("default", "a", "node-1", "10.244.0.2", {}, (), "172.18.0.2").to_k8s()
    assert single["status"]["podIPs"] == [{"ip": "10.244.0.2"}]


def test_nginx_listens_in_both_families_only_in_dual_stack_labs():
    ingress = """---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {selector: {app: b}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  tls: [{hosts: [shop.example]}]
  rules:
  - host: shop.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}]}
"""
    dual = compile_lab("t", read_text(DUAL + PODS + ingress, "t.yaml"))
    conf = dual.files["ingress/nginx.conf"].data.decode()
    for spec in ("80 default_server", "443 ssl default_server", "80", "443 ssl"):
        assert f"listen {spec};" in conf and f"listen [::]:{spec};" in conf, spec
    assert dual.plan.services["ingress-nginx/ingress-nginx-controller"].cluster_ip6
    single = compile_lab("t", read_text(CLUSTER + "  nodes: 2\n" + PODS + ingress, "t.yaml"))
    assert "[::]" not in single.files["ingress/nginx.conf"].data.decode()


def test_graph_draws_both_families():
    from netlab.graph import render_dot

    dual = render_dot(compile_lab("t", read_text(DUAL + PODS, "t.yaml")).plan)
    assert "fd00:10:244::2" in dual and "flannel-v6.1 fd00:10:244::" in dual
    assert "pods 10.244.0.0/16,fd00:10:244::/56" in dual
    single = render_dot(compile_lab("t", read_text(CLUSTER + "  nodes: 2\n" + PODS,
                                                   "t.yaml")).plan)
    assert "fd00" not in single and "flannel-v6.1" not in single
