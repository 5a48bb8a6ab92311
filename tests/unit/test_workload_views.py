"""`netlab get deployments|rs|rc|sts|ds`: the workload views (netlab.views.WorkloadInfo) built
from the manifests and the pods the lab runs, their kubectl columns and API-shaped objects."""

from __future__ import annotations

import pytest

from netlab.cli.resources import kind, listing
from netlab.loader import build, read_text
from netlab.model import Cluster, NodeSpec
from netlab.plan import Plan, make_plan
from netlab.views import ContainerStatus, PodInfo, selector_text, workload_infos

TEMPLATE = """  template:
    metadata: {labels: {app: APP}}
    spec:
NODESEL      containers:
      - {name: web, image: nginx:1.27, ports: [{containerPort: 80}]}
      - {name: log, image: busybox, command: [sleep, infinity]}
"""


def workload(kind_: str, name: str, extra: str = "", api: str = "apps/v1",
             nodesel: str = "") -> str:
    selector = (f"  selector: {{app: {name}}}\n" if kind_ == "ReplicationController"
                else f"  selector: {{matchLabels: {{app: {name}}}}}\n")
    return (f"---\napiVersion: {api}\nkind: {kind_}\nmetadata: {{name: {name}, "
            f"labels: {{team: t-{name}}}}}\nspec:\n{extra}{selector}"
            + TEMPLATE.replace("APP", name).replace(
                "NODESEL", f"      {nodesel}\n" if nodesel else ""))


YAML = (workload("Deployment", "api", "  replicas: 3\n")
        + workload("ReplicaSet", "cache", "  replicas: 2\n")
        + workload("ReplicationController", "legacy", "  replicas: 1\n", api="v1")
        + workload("StatefulSet", "db", "  replicas: 3\n  serviceName: db\n")
        + workload("DaemonSet", "agent", "", nodesel="nodeSelector: {disk: ssd}")
        + workload("Deployment", "other", "  replicas: 1\n").replace(
            "metadata: {name: other,", "metadata: {namespace: blue, name: other,"))


def cluster() -> Cluster:
    return Cluster(nodes=(NodeSpec("node-1", labels={"disk": "ssd"}),
                          NodeSpec("node-2", labels={"disk": "ssd"}),
                          NodeSpec("node-3")))


def lab(readiness: dict[str, bool] | None = None, yaml: str = YAML
        ) -> tuple[Plan, object, list[PodInfo]]:
    """The plan with the pods as the agent would report them: `readiness` by pod name
    (default: ready), a StatefulSet planned in full (Parallel-like, as after settling)."""
    m = build(read_text(yaml, "w.yaml"))
    plan = make_plan("lab", m, cluster())
    for _ in range(4):  # OrderedReady: each pod once the one before is ready
        ready = {k: ((readiness or {}).get(p.name, True), "") for k, p in plan.pods.items()}
        plan = make_plan("lab", m, cluster(), plan, ready)
    pods = [PodInfo(p.namespace, p.name, p.node, p.ip, dict(p.labels), tuple(
        ContainerStatus(c.name, c.argv, "running", ready=ready[k][0]) for c in p.containers),
        "172.18.0.2", p.owner, 1000.0 + i) for i, (k, p) in enumerate(plan.pods.items())]
    return plan, m, pods


def test_counts_columns_and_objects_of_every_kind():
    plan, m, pods = lab()
    deploy = workload_infos(plan, m, pods, "Deployment")
    assert [(d.namespace, d.name) for d in deploy] == [("blue", "other"), ("default", "api")]
    api = workload_infos(plan, m, pods, "Deployment", "default")[0]
    assert (api.replicas, api.current, api.ready, api.updated, api.available) == (3, 3, 3, 3, 3)
    assert api.container_names == "web,log" and api.images == "nginx:1.27,busybox"
    assert api.selector == "app=api"
    doc = api.to_k8s()
    assert (doc["apiVersion"], doc["kind"]) == ("apps/v1", "Deployment")
    assert doc["metadata"]["labels"] == {"team": "t-api"}
    assert doc["spec"]["replicas"] == 3
    assert doc["spec"]["selector"] == {"matchLabels": {"app": "api"}}
    assert doc["spec"]["template"]["metadata"]["labels"] == {"app": "api"}
    assert [c["image"] for c in doc["spec"]["template"]["spec"]["containers"]] == [
        "nginx:1.27", "busybox"]
    assert doc["status"] == {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3,
                             "updatedReplicas": 3}

    rs = {r.name: r for r in workload_infos(plan, m, pods, "ReplicaSet", "default")}
    assert "cache" in rs
    (made,) = [r for n, r in rs.items() if n != "cache"]  # the Deployment's ReplicaSet
    pod_hash = next(p.labels["pod-template-hash"] for p in pods if p.owner == "Deployment/api")
    assert made.name == f"api-{pod_hash}" and made.current == 3
    assert made.to_k8s()["metadata"]["ownerReferences"][0]["name"] == "api"
    assert made.to_k8s()["spec"]["selector"]["matchLabels"] == {
        "app": "api", "pod-template-hash": pod_hash}
    assert rs["cache"].to_k8s()["status"] == {"replicas": 2, "fullyLabeledReplicas": 2,
                                              "readyReplicas": 2, "availableReplicas": 2}

    (rc,) = workload_infos(plan, m, pods, "ReplicationController")
    assert rc.to_k8s()["apiVersion"] == "v1" and rc.to_k8s()["spec"]["selector"] == {
        "app": "legacy"}

    (ds,) = workload_infos(plan, m, pods, "DaemonSet")
    assert (ds.desired, ds.current, ds.ready) == (2, 2, 2)  # node-3 has no disk=ssd
    st = ds.to_k8s()["status"]
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberReady"],
            st["numberMisscheduled"]) == (2, 2, 2, 0)
    assert "replicas" not in ds.to_k8s()["spec"]

    (sts,) = workload_infos(plan, m, pods, "StatefulSet")
    doc = sts.to_k8s()
    assert doc["spec"]["serviceName"] == "db" and doc["spec"]["replicas"] == 3
    assert doc["spec"]["podManagementPolicy"] == "OrderedReady"
    assert doc["status"]["readyReplicas"] == 3 and doc["status"]["updatedReplicas"] == 3
    assert doc["status"]["currentReplicas"] == 3
    assert doc["status"]["updateRevision"] == plan.statefulsets["default/db"].update


def test_readiness_and_ordered_ready_statefulset_counts():
    plan, m, pods = lab({"db-1": False})
    (sts,) = workload_infos(plan, m, pods, "StatefulSet")
    assert [p.name for p in sts.pods] == ["db-0", "db-1"]  # db-2 waits for db-1
    assert (sts.replicas, sts.current, sts.ready) == (3, 2, 1)
    assert sts.to_k8s()["status"]["replicas"] == 2
    table = listing(kind("sts"), [sts], False)
    assert [c.header for c in table.columns if not c.wide] == ["NAME", "READY", "AGE"]
    assert [c.cell(sts) for c in table.columns][:2] == ["db", "1/3"]


def test_pending_pods_count_as_current_not_ready():
    plan, m, pods = lab()
    pending = PodInfo("default", "cache-zzzzz", "", "", {"app": "cache"}, (
        ContainerStatus("web", (), "waiting", ""),), "", "ReplicaSet/cache",
        pending_reason="0/3 nodes are available: 3 Too many pods.")
    cache = next(r for r in workload_infos(plan, m, [*pods, pending], "ReplicaSet")
                 if r.name == "cache")
    assert (cache.desired, cache.current, cache.ready) == (2, 3, 2)


def test_not_ready_pods_and_zero_counts_omitted():
    names = {p.name for p in lab()[0].pods.values() if p.name.startswith("api-")}
    plan, m, pods = lab({n: False for n in names})
    api = workload_infos(plan, m, pods, "Deployment", "default")[0]
    assert f"{api.ready}/{api.replicas}" == "0/3"
    assert api.to_k8s()["status"] == {"replicas": 3, "updatedReplicas": 3,
                                      "unavailableReplicas": 3}


@pytest.mark.parametrize("name, headers", [
    ("deploy", ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]),
    ("rs", ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]),
    ("rc", ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]),
    ("sts", ["NAME", "READY", "AGE"]),
    ("ds", ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR",
            "AGE"]),
])
def test_kubectl_columns(name, headers):
    k = kind(name)
    assert [c.header for c in k.columns if not c.wide] == headers
    wide = [c.header for c in k.columns if c.wide]
    assert wide == (["CONTAINERS", "IMAGES"] if name == "sts"
                    else ["CONTAINERS", "IMAGES", "SELECTOR"])


def test_kind_names_as_kubectl():
    assert kind("deployments").singular == "deployment.apps"
    assert kind("replicaset") is kind("rs")
    assert kind("replicationcontrollers").singular == "replicationcontroller"
    assert kind("statefulset").not_found_name == "statefulsets.apps"
    assert kind("ds").plural == "daemonsets"


def test_daemonset_row():
    plan, m, pods = lab()
    (ds,) = workload_infos(plan, m, pods, "DaemonSet")
    k = kind("ds")
    row = [c.cell(ds) for c in k.columns]
    assert row[:7] == ["agent", "2", "2", "2", "2", "2", "disk=ssd"]
    assert row[-3:] == ["web,log", "nginx:1.27,busybox", "app=agent"]


def test_selector_text():
    from netlab.model import LabelSelectorRequirement as Req

    assert selector_text({}) == "<none>"
    assert selector_text({"b": "2", "a": "1"}, (Req("t", "In", ("y", "x")),
                                                  Req("d", "DoesNotExist"),
                                                  Req("e", "Exists"),
                                                  Req("n", "NotIn", ("z",)))) == \
        "a=1,b=2,t in (x,y),!d,e,n notin (z)"
