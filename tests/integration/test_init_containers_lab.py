"""initContainers and native sidecars on a real lab: init containers run to completion in
order before the containers start (sharing an emptyDir), a failing one holds the pod back
(Init:Error with restartPolicy Never, Init:CrashLoopBackOff otherwise), a pod is no
Service endpoint while it initializes, and a sidecar (restartPolicy Always) starts in its
turn, serves its port, counts in READY, and is stopped when a Job-like pod's container
completes. Every lab shortens kubelet's back-off (Cluster restartBackOff)."""

from __future__ import annotations

import pytest
from manifests import wait_until

pytestmark = pytest.mark.netlab

CLUSTER = ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 2\n"
           "  restartBackOff: {initialSeconds: 0.2, maxSeconds: 0.4}\n")
CLIENT = """---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: c, image: busybox, command: [sleep, infinity]}]
"""

ORDERED = """---
apiVersion: v1
kind: Pod
metadata: {name: ordered, labels: {app: ordered}}
spec:
  volumes: [{name: work, emptyDir: {}}]
  initContainers:
  - name: first
    image: busybox
    command: [sh, -c, 'sleep 0.5; echo first >> /work/order']
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: busybox
    command: [sh, -c, 'echo second >> /work/order; date +%s.%N > /work/init-done']
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'date +%s.%N > /work/main-started; cat /work/order; exec sleep 3600']
    volumeMounts: [{name: work, mountPath: /work}]
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ordered}
spec:
  selector: {app: ordered}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_init_containers_run_in_order_before_the_containers(netlab_lab):
    lab = netlab_lab(yaml=CLUSTER + CLIENT + ORDERED)
    # While the first init container sleeps, the pod initializes: no endpoint, no serving
    early = lab.pod("ordered")
    if early.status.startswith("Init:"):
        assert lab.service("ordered").endpoints == []
        assert "not ready: initializing: " in lab.service("ordered").why_no_endpoints()
    assert wait_until(lambda: lab.pod("ordered").status == "Running", timeout=10)
    assert wait_until(lambda: lab.logs("ordered", "main"), timeout=5) == "first\nsecond\n"
    done = float(lab.exec("ordered", ["cat", "/work/init-done"]).stdout)
    started = float(lab.exec("ordered", ["cat", "/work/main-started"]).stdout)
    assert started >= done  # main started only after the last init container completed
    p = lab.pod("ordered")
    assert [(c.name, c.state, c.reason, c.exit_code) for c in p.init_containers] == [
        ("first", "terminated", "Completed", 0), ("second", "terminated", "Completed", 0)]
    assert p.ready == "1/1" and p.phase == "Running"
    k8s = p.to_k8s()
    assert [s["state"]["terminated"]["reason"] for s in k8s["status"]["initContainerStatuses"]] \
        == ["Completed", "Completed"]
    assert {"type": "Initialized", "status": "True"} in k8s["status"]["conditions"]
    # initialized: the pod is an endpoint and its port is served
    assert wait_until(lambda: lab.probe("client", "svc/ordered").answered_by
                      == "default/ordered", timeout=5)
    assert lab.logs("ordered", "first") == ""  # an init container's log is readable by name


FAILING = """---
apiVersion: v1
kind: Pod
metadata: {name: fails-once}
spec:
  restartPolicy: Never
  initContainers: [{name: setup, image: busybox, command: [sh, -c, 'echo setup failed; exit 4']}]
  containers: [{name: main, image: busybox, command: [sh, -c, 'echo main ran; sleep 3600']}]
---
apiVersion: v1
kind: Pod
metadata: {name: fails-again}
spec:
  initContainers: [{name: setup, image: busybox, command: [sh, -c, 'exit 1']}]
  containers: [{name: main, image: busybox, command: [sh, -c, 'echo main ran; sleep 3600']}]
"""


def test_a_failing_init_container_holds_the_pod_back(netlab_lab):
    lab = netlab_lab(yaml=CLUSTER + FAILING)
    # restartPolicy Never: the pod fails, its container never runs
    assert wait_until(lambda: lab.pod("fails-once").status == "Init:Error", timeout=5)
    p = lab.pod("fails-once")
    assert p.phase == "Failed" and p.init_containers[0].exit_code == 4
    assert lab.logs("fails-once", "setup") == "setup failed\n"
    # restartPolicy Always: the init container is restarted with back-off, the pod waits
    assert wait_until(lambda: lab.pod("fails-again").restarts >= 2, timeout=8)
    assert wait_until(lambda: lab.pod("fails-again").status in
                      ("Init:CrashLoopBackOff", "Init:Error"), timeout=5)
    again = lab.pod("fails-again")
    assert again.phase == "Pending" and again.containers[0].state == "waiting"
    assert again.containers[0].reason == "PodInitializing"
    assert lab.logs("fails-once", "main") == "" and lab.logs("fails-again", "main") == ""


SIDECAR = """---
apiVersion: v1
kind: Pod
metadata: {name: proxied, labels: {app: proxied}}
spec:
  initContainers:
  - name: proxy
    image: envoy
    restartPolicy: Always
    ports: [{containerPort: 9000, name: proxy}]
  - name: migrate
    image: busybox
    command: [sh, -c, 'echo migrated']
  containers:
  - name: app
    image: busybox
    command: [sleep, '3600']
---
apiVersion: v1
kind: Service
metadata: {name: proxied}
spec:
  selector: {app: proxied}
  ports: [{port: 80, targetPort: proxy}]
---
apiVersion: v1
kind: Pod
metadata: {name: job-like}
spec:
  restartPolicy: Never
  initContainers:
  - name: logger
    image: busybox
    restartPolicy: Always
    command: [sh, -c, 'echo logger up; exec sleep 3600']
  containers:
  - name: work
    image: busybox
    command: [sh, -c, 'sleep 0.3; echo done']
"""


def test_native_sidecars_serve_count_and_end_with_the_pod(netlab_lab):
    lab = netlab_lab(yaml=CLUSTER + CLIENT + SIDECAR)
    assert wait_until(lambda: lab.pod("proxied").ready == "2/2", timeout=10)
    p = lab.pod("proxied")
    assert p.status == "Running"
    assert [(c.name, c.sidecar, c.state) for c in p.init_containers] == [
        ("proxy", True, "running"), ("migrate", False, "terminated")]
    # the sidecar's named port (served by the built-in responder) backs the Service
    # (once the agent's readiness sync has put the pod back into the Service's rules)
    assert wait_until(lambda: lab.probe("client", "svc/proxied").answered_by
                      == "default/proxied", timeout=5), lab.probe("client", "svc/proxied")
    assert lab.probe("client", "proxied", 9000).connected
    # A pod whose container completes: its sidecar is stopped, not restarted; the pod
    # ends Completed (phase Succeeded), the sidecar's exit not counted against it.
    assert wait_until(lambda: lab.pod("job-like").status == "Completed", timeout=10)
    done = lab.pod("job-like")
    assert done.phase == "Succeeded"
    logger = done.init_containers[0]
    assert logger.sidecar and logger.state == "terminated" and logger.restarts == 0
    assert lab.logs("job-like", "logger") == "logger up\n"
    assert lab.logs("job-like", "work") == "done\n"
