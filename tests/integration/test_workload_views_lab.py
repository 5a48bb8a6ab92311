"""The workload kinds on a real lab, as kubectl shows them (`netlab get deploy,rs,rc,sts,ds`
with READY from the agent's readiness), `Lab.settle` before checks (OrderedReady StatefulSets
with readiness probes grow; never-ready pods and crash loops do not hold it up), a Pending
pod named as a target (exit 2, the scheduler's reason), and `Lab.http` without an ingress
controller naming the Ingress's class; ReplicaSet, ReplicationController and DaemonSet
pods serving real traffic through their Services, their names resolved by the cluster
DNS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from manifests import wait_until

from netlab.errors import InputError

pytestmark = pytest.mark.netlab

CLUSTER = ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 2\n"
           "  restartBackOff: {initialSeconds: 0.5, maxSeconds: 2}\n")


def workload(kind: str, name: str, spec: str = "", api: str = "apps/v1", ns: str = "default",
             pod_spec: str = "", container: str = "") -> str:
    selector = (f"  selector: {{app: {name}}}\n" if kind == "ReplicationController"
                else f"  selector: {{matchLabels: {{app: {name}}}}}\n")
    return (f"---\napiVersion: {api}\nkind: {kind}\nmetadata: {{name: {name}, namespace: {ns}, "
            f"labels: {{tier: {kind.lower()}}}}}\nspec:\n{spec}{selector}"
            f"  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n{pod_spec}"
            f"      containers:\n      - name: main\n        image: nginx:1.27\n"
            f"        ports: [{{containerPort: 80}}]\n{container}")


PROBE = "        readinessProbe: {tcpSocket: {port: PORT}, periodSeconds: 1}\n"
NOWHERE = "      nodeSelector: {disk: none}\n"

VIEWS = (CLUSTER
         + workload("Deployment", "api", "  replicas: 2\n")
         + workload("Deployment", "other", "  replicas: 1\n", ns="blue")
         + workload("ReplicaSet", "cache", "  replicas: 2\n")
         + workload("ReplicaSet", "big", "  replicas: 1\n", pod_spec=NOWHERE)
         + workload("ReplicationController", "legacy", "  replicas: 1\n", api="v1")
         + workload("DaemonSet", "agent")
         + workload("StatefulSet", "web", "  replicas: 3\n  serviceName: web\n",
                    container=PROBE.replace("PORT", "80"))
         + """---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: traefik}
spec: {controller: traefik.io/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: traefik
  rules:
  - host: shop.example
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
""")


def lab_name(what: str) -> str:
    return f"nlwv-{what}-{os.getpid() % 100000}"


def netlab(lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netlab", args[0], "--lab", lab.name,
                           *args[1:]],
                          capture_output=True, text=True, timeout=60)


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines() if line.strip()]


def test_workloads_as_kubectl_shows_them(netlab_lab):
    lab = netlab_lab(yaml=VIEWS, name=lab_name("views"))
    t0 = time.monotonic()
    assert lab.settle(30) == []
    print(f"settled in {time.monotonic() - t0:.2f}s")
    # settled: the OrderedReady StatefulSet has all its pods (each after the one before it
    # passed its readiness probe), and they are ready
    (web,) = lab.workloads("StatefulSet")
    assert (web.current, web.ready, web.replicas) == (3, 3, 3), [
        (p.name, p.ready, p.status) for p in lab.pods()]

    def ready_everywhere() -> bool:
        return all(w.ready == w.desired for k in ("Deployment", "DaemonSet",
                                                  "ReplicationController")
                   for w in lab.workloads(k))
    assert wait_until(ready_everywhere, 10)

    r = netlab(lab, "get", "deploy")
    assert r.returncode == 0, r.stderr
    table = rows(r.stdout)
    assert table[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1][:4] == ["api", "2/2", "2", "2"] and len(table) == 2

    r = netlab(lab, "get", "rs,rc", "-o", "wide")
    assert r.returncode == 0, r.stderr
    table = rows(r.stdout)
    assert table[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES",
                        "SELECTOR"]
    by_name = {row[0]: row for row in table if row[0] != "NAME"}
    # the Pending pod of `big` is created (CURRENT) but not ready
    assert by_name["replicaset.apps/big"][1:4] == ["1", "1", "0"]
    assert by_name["replicaset.apps/cache"][1:4] == ["2", "2", "2"]
    assert by_name["replicaset.apps/cache"][5:] == ["main", "nginx:1.27", "app=cache"]
    (made,) = [n for n in by_name if n.startswith("replicaset.apps/api-")]
    assert by_name[made][1:4] == ["2", "2", "2"]
    assert by_name["replicationcontroller/legacy"][1:4] == ["1", "1", "1"]

    r = netlab(lab, "get", "sts,ds")
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.strip().splitlines() if x.strip()]
    print(r.stdout)
    assert lines[0].split() == ["NAME", "READY", "AGE"]
    assert lines[1].split()[:2] == ["statefulset.apps/web", "3/3"]
    assert lines[2].split()[:8] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE",
                                    "AVAILABLE", "NODE", "SELECTOR"]
    assert lines[3].split()[:7] == ["daemonset.apps/agent", "2", "2", "2", "2", "2", "<none>"]

    r = netlab(lab, "get", "statefulset", "web", "-o", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["kind"], doc["apiVersion"]) == ("StatefulSet", "apps/v1")
    assert doc["spec"]["replicas"] == 3 and doc["spec"]["serviceName"] == "web"
    assert doc["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert doc["status"]["replicas"] == 3 and doc["status"]["readyReplicas"] == 3
    assert doc["status"]["availableReplicas"] == 3 and doc["status"]["updatedReplicas"] == 3

    r = netlab(lab, "get", "deploy", "-A", "-o",
               "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}="
               "{.status.readyReplicas}/{.spec.replicas} {end}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["blue/other=1/1", "default/api=2/2"]
    r = netlab(lab, "get", "deploy,rs,rc,sts,ds", "-l", "tier in (replicaset,daemonset)",
               "-o", "name")
    assert r.stdout.split() == ["replicaset.apps/big", "replicaset.apps/cache",
                                "daemonset.apps/agent"], r.stderr
    r = netlab(lab, "get", "deployments", "-n", "blue", "-o", "name")
    assert r.stdout.split() == ["deployment.apps/other"]
    r = netlab(lab, "get", "sts", "nope")
    assert r.returncode == 1 and 'statefulsets.apps "nope" not found' in r.stderr

    # a Pending pod named as a target: Pending, the scheduler's reason, exit 2
    (pending,) = [p.name for p in lab.pods() if p.owner == "ReplicaSet/big"]
    for args in (["exec", pending, "--", "true"], ["label", pending, "x=y"],
                 ["ping", "web-0", pending], ["ping", pending, "web-0"],
                 ["logs", pending], ["probe", "web-0", pending, "-p", "80"]):
        r = netlab(lab, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        text = " ".join(r.stderr.split())
        assert f"pod default/{pending} is Pending: 0/2 nodes are available" in text, (args, text)

    # no ingress controller: the Ingress's class, and where it came from, are named
    with pytest.raises(InputError) as e:
        lab.http("http://shop.example/")
    assert "Ingress default/shop (class 'traefik' from spec.ingressClassName): " \
           "ingressClassName 'traefik': IngressClass traefik is for controller " \
           "traefik.io/ingress-controller" in str(e.value), str(e.value)


NEVER = (CLUSTER
         + workload("StatefulSet", "db", "  replicas: 3\n  serviceName: db\n",
                    container=PROBE.replace("PORT", "81"))
         + workload("Deployment", "web", "  replicas: 2\n",
                    container="        readinessProbe: {httpGet: {path: /, port: 8000}, "
                              "periodSeconds: 2}\n")
         + """---
apiVersion: v1
kind: Pod
metadata: {name: crasher, annotations: {netlab.dev/responder: "off"}}
spec:
  containers: [{name: c, image: busybox, command: [sh, -c, 'echo bye; exit 1']}]
""")


def test_settle_does_not_wait_for_pods_that_never_get_ready(netlab_lab):
    lab = netlab_lab(yaml=NEVER, name=lab_name("never"))
    t0 = time.monotonic()
    still = lab.settle(30)
    took = time.monotonic() - t0
    print(f"settled in {took:.2f}s")
    assert still == [] and took < 10, (still, took)
    pods = {p.name: p for p in lab.pods()}
    # db-0's probe failed (nothing on 81): db-1 will never be created, and that is settled
    assert "db-1" not in pods and pods["db-0"].ready == "0/1"
    assert pods["db-0"].containers[0].state == "running"
    (db,) = lab.workloads("StatefulSet")
    assert (db.current, db.ready, db.replicas) == (1, 0, 3)
    (web,) = lab.workloads("Deployment")
    assert (web.current, web.ready) == (2, 0)
    r = netlab(lab, "get", "deploy", "web", "-o", "json")
    assert json.loads(r.stdout)["status"] == {"replicas": 2, "updatedReplicas": 2,
                                              "unavailableReplicas": 2}
    # settling again at once: nothing to wait for
    t0 = time.monotonic()
    assert lab.settle(30) == [] and time.monotonic() - t0 < 2


def service_for(name: str) -> str:
    return (f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
            f"  selector: {{app: {name}}}\n  ports: [{{port: 80}}]\n")


TRAFFIC = (CLUSTER
           + workload("ReplicaSet", "cache", "  replicas: 2\n") + service_for("cache")
           + workload("ReplicationController", "legacy", "  replicas: 2\n", api="v1")
           + service_for("legacy")
           + workload("DaemonSet", "agent") + service_for("agent")
           + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: client}\nspec:\n"
             "  containers: [{name: c, image: busybox, command: [sleep, infinity]}]\n")


def test_each_kind_serves_real_traffic_through_its_service(netlab_lab):
    """The pods of a ReplicaSet, a ReplicationController and a DaemonSet (one per node) are
    their Services' endpoints: real connections through each ClusterIP reach every one of
    them, and the names resolve through the cluster DNS."""
    lab = netlab_lab(yaml=TRAFFIC)
    by_owner: dict[str, set[str]] = {}
    for p in lab.pods("default"):
        if p.owner:
            by_owner.setdefault(p.owner, set()).add(p.key)
    assert {k: len(v) for k, v in by_owner.items()} == {
        "ReplicaSet/cache": 2, "ReplicationController/legacy": 2, "DaemonSet/agent": 2}
    assert {lab.pod(k).node for k in by_owner["DaemonSet/agent"]} == {"node-1", "node-2"}
    for svc, owner in (("cache", "ReplicaSet/cache"), ("legacy", "ReplicationController/legacy"),
                       ("agent", "DaemonSet/agent")):
        answered = {r.answered_by for r in lab.probe_many([("client", f"svc/{svc}")] * 24)}
        assert answered == by_owner[owner], (svc, answered)
        assert lab.dns(f"{svc}.default.svc.cluster.local", "client").addresses == [
            lab.service(svc).cluster_ip]
