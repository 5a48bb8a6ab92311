"""A StatefulSet on a real lab: ordinal pods created one after another (OrderedReady, from
the agent's readiness), stable DNS names through a headless Service, scale down from the
highest ordinal."""

from __future__ import annotations

import time

from manifests import cluster, pod

STS = """---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        ports: [{containerPort: 80}]
        readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}
"""
SVC = """---
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
"""


def test_statefulset_ordered_dns_and_scale_down(netlab_lab):
    lab = netlab_lab(yaml=cluster() + pod("client") + STS.replace("REPLICAS", "3") + SVC)
    seen: list[tuple[float, list[str]]] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        names = sorted(p.name for p in lab.pods() if p.name.startswith("web-"))
        if not seen or seen[-1][1] != names:
            seen.append((time.monotonic() - t0, names))
        if len(names) == 3:
            break
        time.sleep(0.02)
    # one after another: each pod given to the agent after the one before it (the
    # gating itself is proven by test_statefulset_waits_for_a_ready_pod)
    lists = [names for _, names in seen]
    assert lists[-1] == ["web-0", "web-1", "web-2"], seen
    assert seen[-1][0] < 10, seen
    print("StatefulSet pods over time:", seen)
    created: dict[str, float] = {}
    deadline = time.monotonic() + 5
    while not all(created.get(f"web-{i}") for i in range(3)) and time.monotonic() < deadline:
        created = {p.name: p.created for p in lab.pods() if p.name.startswith("web-")}
        time.sleep(0.05)  # the agent's status says when it was given each pod
    assert created["web-0"] < created["web-1"] < created["web-2"], created
    pods = {p.name: p for p in lab.pods()}
    assert pods["web-1"].owner == "StatefulSet/web"
    deadline = time.monotonic() + 10
    while lab.dns("web-0.nginx", "client").addresses != [pods["web-0"].ip]:
        assert time.monotonic() < deadline, lab.dns("web-0.nginx", "client")
        time.sleep(0.2)
    while lab.dns("web-2.nginx.default.svc.cluster.local", "client").addresses != \
            [pods["web-2"].ip]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    lab.apply(manifests=[STS.replace("REPLICAS", "2")])
    names = sorted(p.name for p in lab.pods() if p.name.startswith("web-"))
    assert names == ["web-0", "web-1"]
    deadline = time.monotonic() + 10
    while lab.dns("web-2.nginx", "client").rcode != "NXDOMAIN":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert lab.dns("web-0.nginx", "client").addresses == [pods["web-0"].ip]


def test_statefulset_waits_for_a_ready_pod(netlab_lab):
    """web-0 never passes its probe (nothing serves port 81): web-1 is never created."""
    yaml = STS.replace("REPLICAS", "2").replace("port: 80}, periodSeconds", "port: 81}, "
                                                "periodSeconds")
    lab = netlab_lab(yaml=cluster() + yaml)
    time.sleep(3)
    pods = [p for p in lab.pods() if p.name.startswith("web-")]
    assert [p.name for p in pods] == ["web-0"] and pods[0].ready == "0/1"
