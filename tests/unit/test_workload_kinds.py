"""ReplicaSet, ReplicationController, DaemonSet, StatefulSet, Job and CronJob: planned into
pods like Deployments (stable names, owners), StatefulSet OrderedReady from readiness."""

from __future__ import annotations

import re

import pytest

from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.loader import build, read_text
from netlab.model import Cluster, NodeSpec
from netlab.plan import K8S_ALPHANUMS, make_plan

SUFFIX = f"[{K8S_ALPHANUMS}]{{5}}"


def workload(kind: str, name: str = "web", replicas: int | None = 3, api: str = "apps/v1",
             extra: str = "", template_spec: str = "{containers: [{name: c}]}",
             selector: str = "{matchLabels: {app: web}}") -> str:
    reps = f"  replicas: {replicas}\n" if replicas is not None else ""
    sel = f"  selector: {selector}\n" if selector else ""
    return (f"---\napiVersion: {api}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{reps}"
            f"{sel}{extra}  template:\n    metadata: {{labels: {{app: web}}}}\n"
            f"    spec: {template_spec}\n")


def plan_of(text: str, previous=None, readiness=None, cluster: Cluster | None = None):
    m = build(read_text(text, "t.yaml"))
    return make_plan("lab", m, cluster or m.cluster or Cluster(), previous, readiness)


@pytest.mark.parametrize("kind,api", [("ReplicaSet", "apps/v1"),
                                      ("ReplicationController", "v1")])
def test_replica_kinds_names_owner_and_stability(kind, api):
    sel = "{app: web}" if kind == "ReplicationController" else "{matchLabels: {app: web}}"
    a = plan_of(workload(kind, api=api, selector=sel))
    assert len(a.pods) == 3
    for p in a.pods.values():
        assert re.fullmatch(f"web-{SUFFIX}", p.name), p.name
        assert p.owner == f"{kind}/web"
    b = plan_of(workload(kind, api=api, selector=sel), previous=a)
    assert {k: (p.ip, p.node) for k, p in a.pods.items()} == \
        {k: (p.ip, p.node) for k, p in b.pods.items()}
    up = plan_of(workload(kind, api=api, replicas=5, selector=sel), previous=a)
    assert set(a.pods) < set(up.pods) and len(up.pods) == 5
    down = plan_of(workload(kind, api=api, replicas=2, selector=sel), previous=up)
    assert set(down.pods) < set(a.pods) and len(down.pods) == 2


def test_replication_controller_selector_defaults_to_template_labels():
    plan = plan_of(workload("ReplicationController", api="v1", selector=""))
    assert len(plan.pods) == 3


def test_daemonset_one_pod_per_node_pinned():
    cluster = Cluster(nodes=(NodeSpec("a"), NodeSpec("b"), NodeSpec("c")))
    plan = plan_of(workload("DaemonSet", replicas=None), cluster=cluster)
    assert sorted(p.node for p in plan.pods.values()) == ["a", "b", "c"]
    assert all(re.fullmatch(f"web-{SUFFIX}", p.name) and p.owner == "DaemonSet/web"
               for p in plan.pods.values())
    again = plan_of(workload("DaemonSet", replicas=None), cluster=cluster, previous=plan)
    assert {k: p.node for k, p in again.pods.items()} == {k: p.node for k, p in plan.pods.items()}


def test_daemonset_node_selector_and_node_labels():
    cluster = Cluster(nodes=(NodeSpec("a"), NodeSpec("b", labels={"disk": "ssd"}),
                             NodeSpec("c", labels={"disk": "ssd"})))
    spec = "{nodeSelector: {kubernetes.io/hostname: b}, containers: [{name: c}]}"
    plan = plan_of(workload("DaemonSet", replicas=None, template_spec=spec), cluster=cluster)
    assert [p.node for p in plan.pods.values()] == ["b"]
    spec = "{nodeSelector: {disk: ssd}, containers: [{name: c}]}"
    plan = plan_of(workload("DaemonSet", replicas=None, template_spec=spec), cluster=cluster)
    assert sorted(p.node for p in plan.pods.values()) == ["b", "c"]


STS = workload("StatefulSet", extra="  serviceName: nginx\n")


def test_statefulset_ordinal_names_hostname_subdomain():
    ready = {f"default/web-{i}": (True, "") for i in range(3)}
    plan = plan_of(STS, readiness=ready)
    assert sorted(plan.pods) == ["default/web-0", "default/web-1", "default/web-2"]
    for p in plan.pods.values():
        assert p.hostname == p.name and p.subdomain == "nginx"
        assert p.owner == "StatefulSet/web"
        assert p.labels["statefulset.kubernetes.io/pod-name"] == p.name


def test_statefulset_ordered_ready_plans_one_more_per_ready_pod():
    first = plan_of(STS)  # nothing reported: only web-0
    assert list(first.pods) == ["default/web-0"]
    still = plan_of(STS, previous=first, readiness={"default/web-0": (False, "probe")})
    assert list(still.pods) == ["default/web-0"]
    second = plan_of(STS, previous=still, readiness={"default/web-0": (True, "")})
    assert sorted(second.pods) == ["default/web-0", "default/web-1"]
    assert second.pods["default/web-0"].ip == first.pods["default/web-0"].ip
    third = plan_of(STS, previous=second, readiness={"default/web-0": (True, ""),
                                                     "default/web-1": (True, "")})
    assert len(third.pods) == 3
    # web-0 no longer ready: the pods that exist stay
    kept = plan_of(STS, previous=third, readiness={"default/web-0": (False, "probe")})
    assert len(kept.pods) == 3
    # scale down: from the highest ordinal
    down = plan_of(STS.replace("replicas: 3", "replicas: 2"), previous=third)
    assert sorted(down.pods) == ["default/web-0", "default/web-1"]


def test_statefulset_parallel_creates_all():
    plan = plan_of(workload("StatefulSet", extra="  serviceName: nginx\n"
                                                 "  podManagementPolicy: Parallel\n"))
    assert len(plan.pods) == 3


def test_statefulset_headless_service_dns_name():
    text = STS + """---
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
"""
    from netlab.features import dns
    from netlab.loader import read_text as rt

    ready = {f"default/web-{i}": (True, "") for i in range(3)}
    desired = compile_lab("lab", rt(text, "t.yaml"), readiness=ready)
    zone = dns.render_zone(desired.plan)
    assert zone["a"]["web-0.nginx.default.svc.cluster.local"] == \
        [desired.plan.pods["default/web-0"].ip]


def test_job_pods_and_warnings():
    spec = "{restartPolicy: Never, containers: [{name: c}]}"
    m = build(read_text(workload("Job", api="batch/v1", replicas=None, selector="",
                                 template_spec=spec,
                                 extra="  completions: 5\n  parallelism: 2\n"), "t.yaml"))
    plan = make_plan("lab", m, Cluster())
    assert len(plan.pods) == 2
    for p in plan.pods.values():
        assert re.fullmatch(f"web-{SUFFIX}", p.name) and p.owner == "Job/web"
        assert p.restart_policy == "Never" and p.labels["job-name"] == "web"
    assert not m.warnings  # the other completions run as pods finish (test_jobs.py)
    one = build(read_text(workload("Job", api="batch/v1", replicas=None, selector="",
                                   template_spec=spec), "t.yaml"))
    assert len(make_plan("lab", one, Cluster()).pods) == 1 and not one.warnings


def test_job_template_without_metadata():
    m = build(read_text("apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n"
                        "  template: {spec: {restartPolicy: OnFailure, containers: [{name: c}]}}\n",
                        "t.yaml"))
    assert [p.owner for p in make_plan("lab", m, Cluster()).pods.values()] == ["Job/once"]


def test_job_restart_policy_always_refused():
    with pytest.raises(InputError) as e:
        build(read_text(workload("Job", api="batch/v1", replicas=None, selector=""), "t.yaml"))
    assert 'Unsupported value: "Always": supported values: "OnFailure", "Never"' in str(e.value)
    assert "restartPolicy" in str(e.value) and "t.yaml" in str(e.value)


def test_cronjob_skipped_with_warning():
    m = build(read_text("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\n"
                        "spec: {schedule: '* * * * *'}\n", "t.yaml"))
    assert not make_plan("lab", m, Cluster()).pods
    assert any("not run: netlab does not schedule" in w for w in m.warnings)


@pytest.mark.parametrize("kind,api", [("ReplicaSet", "apps/v1"), ("DaemonSet", "apps/v1"),
                                      ("StatefulSet", "apps/v1"), ("Job", "batch/v1")])
def test_selector_must_match_template(kind, api):
    spec = "{restartPolicy: Never, containers: [{name: c}]}"
    text = workload(kind, api=api, replicas=None, selector="{matchLabels: {app: db}}",
                    template_spec=spec)
    with pytest.raises(InputError) as e:
        build(read_text(text, "t.yaml"))
    msg = str(e.value)
    assert "t.yaml" in msg and f"{kind} default/web" in msg and "selector" in msg


def test_replication_controller_selector_must_match():
    with pytest.raises(InputError) as e:
        build(read_text(workload("ReplicationController", api="v1", selector="{app: db}"),
                        "t.yaml"))
    assert "selector" in str(e.value)


def test_owner_references_in_pod_json():
    from netlab.views import PodInfo

    plan = plan_of(workload("StatefulSet", extra="  podManagementPolicy: Parallel\n"))
    for p in plan.pods.values():
        info = PodInfo(p.namespace, p.name, p.node, p.ip, p.labels, (), "", p.owner)
        assert info.to_k8s()["metadata"]["ownerReferences"] == \
            [{"kind": "StatefulSet", "name": "web"}]
