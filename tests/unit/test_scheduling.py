"""Scheduling on node labels: node labels, nodeSelector, required node affinity (every
operator, terms ORed, matchFields), Pending pods with kube-scheduler's reason."""

from __future__ import annotations

import json

import pytest

from netlab.compile import plan_lab
from netlab.errors import InputError
from netlab.loader import build, read_text
from netlab.model import Cluster, NodeSpec
from netlab.plan import Plan, make_plan
from netlab.scheduling import machine_arch, node_labels
from netlab.views import node_infos, service_info

CLUSTER = """\
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  nodes:
  - {name: node-1, labels: {zone: a, disk: ssd, cores: "4"}}
  - {name: node-2, labels: {zone: b, cores: "16"}}
"""


def pod(name: str, extra: str, labels: str = "{app: x}") -> str:
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {labels}}}\n"
            f"spec:\n  containers: [{{name: c}}]\n{extra}")


def affinity(*terms: str) -> str:
    body = "".join(f"        - {t}\n" for t in terms)
    return ("  affinity:\n    nodeAffinity:\n"
            "      requiredDuringSchedulingIgnoredDuringExecution:\n"
            f"        nodeSelectorTerms:\n{body}")


def plan_of(text: str, previous=None, cluster: str = CLUSTER):
    m = build(read_text(cluster + text, "t.yaml"))
    return make_plan("lab", m, m.cluster or Cluster(), previous), m


def node_of(extra: str) -> str | None:
    plan, _ = plan_of(pod("p", extra))
    return plan.pods["default/p"].node if "default/p" in plan.pods else None


MISMATCH = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."


def test_node_labels_builtin_and_declared():
    m = build(read_text(CLUSTER, "t.yaml"))
    n1 = m.cluster.nodes[0]
    assert n1.labels == {"zone": "a", "disk": "ssd", "cores": "4"}
    assert node_labels(n1) == {"kubernetes.io/arch": machine_arch(),
                               "kubernetes.io/hostname": "node-1",
                               "kubernetes.io/os": "linux", "zone": "a", "disk": "ssd",
                               "cores": "4"}
    assert machine_arch() in ("amd64", "arm64") or machine_arch()
    assert node_labels(NodeSpec("node-9"))["kubernetes.io/hostname"] == "node-9"
    plan, _ = plan_of("")
    infos = node_infos(plan)
    assert infos[1].labels["zone"] == "b"
    assert infos[1].to_k8s()["metadata"]["labels"]["kubernetes.io/os"] == "linux"


def test_node_labels_validated():
    bad = CLUSTER.replace("zone: a,", "'bad key!': a,")
    with pytest.raises(InputError, match="label key"):
        build(read_text(bad, "t.yaml"))


def test_node_selector():
    assert node_of("  nodeSelector: {zone: b}\n") == "node-2"
    assert node_of("  nodeSelector: {zone: a, disk: ssd}\n") == "node-1"
    assert node_of("  nodeSelector: {kubernetes.io/hostname: node-2}\n") == "node-2"
    assert node_of("  nodeSelector: {kubernetes.io/os: linux, zone: a}\n") == "node-1"
    assert node_of("  nodeSelector: {zone: b, disk: ssd}\n") is None


@pytest.mark.parametrize(("expr", "node"), [
    ("{key: zone, operator: In, values: [b, c]}", "node-2"),
    ("{key: zone, operator: NotIn, values: [a]}", "node-2"),
    ("{key: disk, operator: Exists}", "node-1"),
    ("{key: disk, operator: DoesNotExist}", "node-2"),
    ("{key: cores, operator: Gt, values: ['8']}", "node-2"),
    ("{key: cores, operator: Lt, values: ['8']}", "node-1"),
    ("{key: cores, operator: Gt, values: ['16']}", None),
    ("{key: zone, operator: Gt, values: ['1']}", None),  # not an integer: no match
    ("{key: zone, operator: In, values: [c]}", None),
    ("{key: gpu, operator: NotIn, values: [present]}", "node-1"),  # missing label: NotIn matches
])
def test_match_expressions_operators(expr: str, node: str | None):
    assert node_of(affinity(f"matchExpressions: [{expr}]")) == node


def test_expressions_anded_terms_ored():
    both = ("matchExpressions: [{key: zone, operator: In, values: [a, b]}, "
            "{key: disk, operator: DoesNotExist}]")
    assert node_of(affinity(both)) == "node-2"
    none = ("matchExpressions: [{key: zone, operator: In, values: [a]}, "
            "{key: disk, operator: DoesNotExist}]")
    assert node_of(affinity(none)) is None
    ored = affinity("matchExpressions: [{key: zone, operator: In, values: [c]}]",
                    "matchExpressions: [{key: zone, operator: In, values: [b]}]")
    assert node_of(ored) == "node-2"
    # an empty term matches no node
    assert node_of(affinity("{}")) is None


def test_match_fields_and_selector_with_affinity():
    assert node_of(affinity("matchFields: [{key: metadata.name, operator: In, "
                            "values: [node-2]}]")) == "node-2"
    assert node_of(affinity("matchFields: [{key: metadata.name, operator: NotIn, "
                            "values: [node-1]}]")) == "node-2"
    # nodeSelector and node affinity must both hold
    both = "  nodeSelector: {zone: a}\n" + affinity(
        "matchFields: [{key: metadata.name, operator: In, values: [node-2]}]")
    assert node_of(both) is None


@pytest.mark.parametrize(("extra", "message"), [
    (affinity("matchExpressions: [{key: zone, operator: In}]"), "must be specified"),
    (affinity("matchExpressions: [{key: zone, operator: Exists, values: [a]}]"),
     "may not be specified"),
    (affinity("matchExpressions: [{key: cores, operator: Gt, values: ['1', '2']}]"),
     "single value"),
    (affinity("matchExpressions: [{key: zone, operator: Near, values: [a]}]"), "operator"),
    (affinity("matchExpressions: [{key: 'bad key', operator: Exists}]"), "label key"),
    (affinity("matchFields: [{key: metadata.labels, operator: In, values: [a]}]"),
     "only metadata.name"),
    (affinity("matchFields: [{key: metadata.name, operator: Exists}]"), "operator"),
    (affinity("matchFields: [{key: metadata.name, operator: In, values: [a, b]}]"),
     "only one value"),
    ("  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
     "        nodeSelectorTerms: []\n", "at least one node selector term"),
    ("  nodeSelector: {zone: 'a b'}\n", "label value"),
])
def test_validation_exits_2(extra: str, message: str):
    with pytest.raises(InputError, match=message) as e:
        plan_of(pod("p", extra))
    assert e.value.exit_code == 2


def test_preferences_are_warned():
    extra = ("  affinity:\n    podAntiAffinity: {}\n    nodeAffinity:\n"
             "      preferredDuringSchedulingIgnoredDuringExecution: []\n")
    _, m = plan_of(pod("p", extra))
    text = "\n".join(m.warnings)
    assert "podAntiAffinity is not modelled" in text
    assert "preferredDuringSchedulingIgnoredDuringExecution is a preference" in text


def test_pending_pod_and_reasons():
    plan, _ = plan_of(pod("p", "  nodeSelector: {zone: c}\n") + pod("q", ""))
    assert "default/p" not in plan.pods and "default/q" in plan.pods
    pp = plan.pending["default/p"]
    assert pp.reason == MISMATCH and pp.labels == {"app": "x"} and pp.containers == ("c",)
    # the matching node is full: Too many pods for it, the other does not match
    small = CLUSTER.replace("spec:\n", "spec:\n  podCIDRMaskSize: 29\n")  # 5 pods a node
    pods = "".join(pod(f"p{i}", "  nodeSelector: {zone: a}\n") for i in range(6))
    plan, _ = plan_of(pods, cluster=small)
    assert len(plan.pods) == 5 and list(plan.pending) == ["default/p5"]
    assert plan.pending["default/p5"].reason == (
        "0/2 nodes are available: 1 Too many pods, 1 node(s) didn't match Pod's node "
        "affinity/selector.")


def test_node_name_rules_stay():
    with pytest.raises(InputError, match="does not exist"):
        plan_of(pod("p", "  nodeName: node-9\n"))
    with pytest.raises(InputError, match="kubelet would reject"):
        plan_of(pod("p", "  nodeName: node-1\n  nodeSelector: {zone: b}\n"))
    plan, _ = plan_of(pod("p", "  nodeName: node-2\n  nodeSelector: {zone: b}\n"))
    assert plan.pods["default/p"].node == "node-2"


def test_pending_pod_scheduled_after_a_change():
    first, _ = plan_of(pod("p", "  nodeSelector: {zone: c}\n"))
    assert "default/p" in first.pending
    second, _ = plan_of(pod("p", "  nodeSelector: {zone: a}\n"), previous=first)
    assert second.pods["default/p"].node == "node-1" and not second.pending


def test_deployment_template_selector():
    dep = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {zone: b}
      containers: [{name: c}]
"""
    plan, _ = plan_of(dep)
    assert {p.node for p in plan.pods.values()} == {"node-2"} and len(plan.pods) == 3


def test_persistence_round_trip_and_old_state():
    plan, _ = plan_of(pod("p", "  nodeSelector: {zone: c}\n") + pod("q", ""))
    data = json.loads(json.dumps(plan.to_json()))
    back = Plan.from_json(data)
    assert back.pending == plan.pending
    assert back.cluster.nodes[0].labels == {"zone": "a", "disk": "ssd", "cores": "4"}
    assert back.to_json() == plan.to_json()
    data.pop("pending")
    for n in data["cluster"]["nodes"]:
        n.pop("labels")
    old = Plan.from_json(data)
    assert old.pending == {} and old.cluster.nodes[0].labels == {}


def test_service_selecting_only_pending_pods():
    svc = """---
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  selector: {app: x}
  ports: [{port: 80}]
"""
    m = build(read_text(CLUSTER + pod("p", "  nodeSelector: {zone: c}\n") + svc, "t.yaml"))
    plan = plan_lab("lab", m, m.cluster)
    info = service_info(plan.services["default/s"], plan)
    assert info.endpoints == []
    why = info.why_no_endpoints()
    assert why and "pod default/p is Pending" in why and MISMATCH in why


def test_pending_pod_info():
    from netlab.lab import _pending_info

    plan, _ = plan_of(pod("p", "  nodeSelector: {zone: c}\n"))
    info = _pending_info(plan.pending["default/p"])
    assert info.status == "Pending" and info.ip == "" and info.node == ""
    doc = info.to_k8s()
    assert doc["status"]["phase"] == "Pending" and "nodeName" not in doc["spec"]
    cond = doc["status"]["conditions"][0]
    assert cond["type"] == "PodScheduled" and cond["status"] == "False"
    assert cond["message"] == MISMATCH
