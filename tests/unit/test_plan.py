"""Scheduling, IPAM and naming: deterministic, stable across re-plans, and checked."""

from __future__ import annotations

import pytest

from netlab import names
from netlab.errors import InputError
from netlab.loader import build, read_text
from netlab.model import Cluster, NodeSpec
from netlab.plan import make_plan


def pods_yaml(n: int, node: str | None = None, prefix: str = "p") -> str:
    pin = f"  nodeName: {node}\n" if node else ""
    return "".join(f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {prefix}{i}}}\nspec:\n"
                   f"{pin}  containers: [{{name: c}}]\n" for i in range(n))


def plan_of(text: str, cluster: Cluster | None = None, previous=None):
    m = build(read_text(text, "t.yaml"))
    return make_plan("lab", m, cluster or m.cluster or Cluster(), previous)


def test_spread_is_deterministic_and_balanced():
    a = plan_of(pods_yaml(5))
    b = plan_of(pods_yaml(5))
    assert a.to_json() == b.to_json()
    per_node = [sum(p.node == n.name for p in a.pods.values()) for n in a.nodes]
    assert per_node == [3, 2]


def test_node_cidrs_and_addresses():
    plan = plan_of(pods_yaml(2, "node-2"))
    assert [n.pod_cidr for n in plan.nodes] == ["10.244.0.0/24", "10.244.1.0/24"]
    assert [n.underlay_ip for n in plan.nodes] == ["172.18.0.2", "172.18.0.3"]
    assert plan.nodes[1].gateway == "10.244.1.1" and plan.nodes[1].vtep_ip == "10.244.1.0"
    assert sorted(p.ip for p in plan.pods.values()) == ["10.244.1.2", "10.244.1.3"]


def test_own_node_cidr_is_skipped_by_allocation():
    cluster = Cluster(nodes=(NodeSpec("a"), NodeSpec("b", "10.244.0.0/24"), NodeSpec("c")))
    plan = plan_of(pods_yaml(1), cluster)
    assert [n.pod_cidr for n in plan.nodes] == ["10.244.1.0/24", "10.244.0.0/24",
                                                "10.244.2.0/24"]


def test_addresses_stay_and_are_not_reused_while_in_use():
    first = plan_of(pods_yaml(4))
    # p1 goes away, p9 arrives: p0, p2, p3 keep their addresses; p9 may take p1's freed one
    text = "---".join(part for i, part in enumerate(pods_yaml(4).split("---")) if i != 2)
    second = plan_of(text + pods_yaml(1, prefix="p9"), previous=first)
    for k in ("default/p0", "default/p2", "default/p3"):
        assert second.pods[k].ip == first.pods[k].ip
        assert second.pods[k].node == first.pods[k].node
    ips = [p.ip for p in second.pods.values()]
    assert len(ips) == len(set(ips))


def test_capacity_and_unknown_node():
    cluster = Cluster(nodes=(NodeSpec("node-1"),), node_cidr_mask=29)  # 8 - 3 = 5 pods
    plan_of(pods_yaml(5, "node-1"), cluster)
    full = r"node node-1 is full: its podCIDR 10\.244\.0\.0/29 holds 5"
    with pytest.raises(InputError, match=full):
        plan_of(pods_yaml(6, "node-1"), cluster)
    # without nodeName, a pod no node has room for is Pending, as kube-scheduler leaves it
    plan = plan_of(pods_yaml(6), cluster)
    assert len(plan.pods) == 5 and len(plan.pending) == 1
    (pending,) = plan.pending.values()
    assert pending.reason == "0/1 nodes are available: 1 Too many pods."
    with pytest.raises(InputError, match=r"spec.nodeName: node 'nope' does not exist"):
        plan_of(pods_yaml(1, "nope"))


def test_deployment_names_are_stable_and_kubernetes_shaped():
    dep = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c}]}
"""
    a = sorted(plan_of(dep).pods)
    assert a == sorted(plan_of(dep).pods)
    assert len(a) == 3
    for key in a:
        name = key.split("/")[1]
        assert names.is_dns1123_label(name)
        _, template_hash, suffix = name.rsplit("-", 2)
        assert len(template_hash) == 10 and len(suffix) == 5
    changed = plan_of(dep.replace("name: c", "name: d"))
    assert not set(changed.pods) & set(a)  # a new template means new pods


def test_interface_names_fit_the_kernel_limit():
    long = "a" * 63
    plan = plan_of(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {long}}}\n---\n"
                   f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {long}, namespace: {long}}}\n"
                   "spec: {containers: [{name: c}]}\n")
    pod = next(iter(plan.pods.values()))
    assert len(pod.veth) <= names.IFNAMSIZ
    for n in plan.nodes:
        assert len(n.fabric_port) <= names.IFNAMSIZ
    for fixed in (names.NODE_VXLAN, names.NODE_BRIDGE, names.FABRIC_BRIDGE):
        assert len(fixed) <= names.IFNAMSIZ


def test_plan_round_trips_through_json():
    from netlab.plan import Plan

    plan = plan_of(pods_yaml(3))
    assert Plan.from_json(plan.to_json()).to_json() == plan.to_json()


def test_lab_names():
    assert names.check_lab_name("demo-1") == "demo-1"
    for bad in ("Demo", "a.b", "-a", "x" * 41, ""):
        with pytest.raises(InputError):
            names.check_lab_name(bad)
    assert names.lab_of_netns("netlab.demo.pod.default.a") == "demo"
    assert names.lab_of_netns("other") is None
