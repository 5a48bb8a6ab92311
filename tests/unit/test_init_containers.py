"""initContainers and native sidecars: loaded and validated as the API server does, compiled
into ordered processes for the agent (init first, sidecars marked), sidecars counted where
a running pod's containers are (ports, probes, readiness), and the STATUS/READY columns
kubectl prints for initializing pods (printPod)."""

from __future__ import annotations

import pytest

from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.loader import build, read_text
from netlab.runtime.agent import container_policy, workload_from_json, workload_to_json
from netlab.views import ContainerStatus, PodInfo

POD = """apiVersion: v1
kind: Pod
metadata: {{name: p, labels: {{app: p}}}}
spec:
  restartPolicy: {policy}
  initContainers:
  - name: setup
    image: busybox
    command: [sh, -c, 'echo setup']
  - name: proxy
    image: envoy
    restartPolicy: Always
    ports: [{{containerPort: 9000, name: proxy}}]
    readinessProbe: {{tcpSocket: {{port: 9000}}}}
  - name: nothing
    image: busybox
  containers:
  - name: app
    image: busybox
    command: [sleep, '3600']
    ports: [{{containerPort: 8080}}]
"""


def load(text: str):
    return build(read_text(text, "t.yaml"))


def refused(text: str) -> str:
    with pytest.raises(InputError) as e:
        load(text)
    return str(e.value)


def test_init_containers_and_sidecars_load():
    spec = load(POD.format(policy="Always")).pods["default/p"].spec
    assert [c.name for c in spec.init_containers] == ["setup", "proxy", "nothing"]
    assert [c.restart_policy for c in spec.init_containers] == [None, "Always", None]
    assert [c.name for c in spec.sidecars] == ["proxy"]
    assert [c.name for c in spec.long_running] == ["proxy", "app"]


def test_validation_as_the_api_server():
    base = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
            "  containers: [{name: app, image: x, command: [x]}]\n")
    msg = refused(base + "  initContainers: [{name: app, image: x}]\n")
    assert "duplicate container name 'app'" in msg and "initContainers[0].name" in msg
    msg = refused(base + "  initContainers: [{name: i, image: x, restartPolicy: Never}]\n")
    assert "initContainers[0].restartPolicy" in msg and "Always" in msg
    msg = refused(base + "  initContainers: [{name: i, image: x, "
                         "readinessProbe: {tcpSocket: {port: 80}}}]\n")
    assert "may not be set for init containers without restartPolicy=Always" in msg
    assert "initContainers[0].readinessProbe" in msg
    msg = refused(base.replace("command: [x]", "command: [x], restartPolicy: Always"))
    assert "containers[0].restartPolicy" in msg and "non-init containers" in msg
    # a sidecar may be probed
    load(base + "  initContainers: [{name: s, image: x, restartPolicy: Always, "
                "livenessProbe: {tcpSocket: {port: 80}}}]\n")


def test_compiled_processes_are_ordered_and_marked():
    d = compile_lab("t", read_text(POD.format(policy="Always"), "t.yaml"))
    w = d.workloads["default/p"]
    assert [(p.container, p.init, p.sandboxed) for p in w.processes] == [
        ("setup", "init", True), ("app", "", True)]  # commands only: proxy has none
    assert w.containers == ("proxy", "app")  # what readiness is made of
    assert [p.container for p in w.probes] == ["proxy"]
    assert w.serve is not None and set(w.serve.ports) == {"tcp:8080", "tcp:9000"}
    pod = d.plan.pods["default/p"]
    assert ("proxy", "TCP", 9000) in pod.named_ports
    assert [(c.name, c.sidecar) for c in pod.init_containers] == [
        ("setup", False), ("proxy", True), ("nothing", False)]
    # the agent's JSON keeps the marks
    assert workload_from_json(workload_to_json(w)) == w


def test_a_pod_with_init_containers_is_no_endpoint_until_the_agent_says_so():
    text = POD.format(policy="Always") + ("---\napiVersion: v1\nkind: Service\nmetadata: "
                                          "{name: s}\nspec: {selector: {app: p}, ports: "
                                          "[{port: 80, targetPort: 8080}]}\n")
    d = compile_lab("t", read_text(text, "t.yaml"))
    pod = d.plan.pods["default/p"]
    assert not pod.ready and pod.not_ready_reason.startswith("initializing")
    assert d.plan.services["default/s"].ports[0].endpoints == ()
    ready = compile_lab("t", read_text(text, "t.yaml"), readiness={"default/p": (True, "")})
    assert len(ready.plan.services["default/s"].ports[0].endpoints) == 1


@pytest.mark.parametrize("init,pod_policy,policy", [
    ("init", "Always", "OnFailure"), ("init", "OnFailure", "OnFailure"),
    ("init", "Never", "Never"), ("sidecar", "Never", "Always"), ("", "Never", "Never"),
    ("", "Always", "Always")])
def test_container_restart_policies(init, pod_policy, policy):
    d = compile_lab("t", read_text(POD.format(policy="Always"), "t.yaml"))
    p = d.workloads["default/p"].processes[0]
    from dataclasses import replace

    assert container_policy(replace(p, init=init), pod_policy) == policy


def status(name, state, reason="", code=None, sidecar=False, ready=False, restarts=0):
    return ContainerStatus(name, ("x",), state, reason, code, sidecar=sidecar, ready=ready,
                           restarts=restarts)


def info(inits, mains, policy="Always"):
    return PodInfo("default", "p", "node-1", "10.244.0.2", {}, tuple(mains), "192.168.0.2",
                   restart_policy=policy, init_containers=tuple(inits))


WAIT = status("app", "waiting", "PodInitializing")


@pytest.mark.parametrize("inits,mains,policy,shown,phase,ready", [
    ([status("a", "running")], [WAIT], "Always", "Init:0/1", "Pending", "0/1"),
    ([status("a", "terminated", "Completed", 0), status("b", "running")], [WAIT], "Always",
     "Init:1/2", "Pending", "0/1"),
    ([status("a", "terminated", "Error", 3)], [WAIT], "Never", "Init:Error", "Failed", "0/1"),
    ([status("a", "waiting", "CrashLoopBackOff", restarts=2)], [WAIT], "Always",
     "Init:CrashLoopBackOff", "Pending", "0/1"),
    ([status("s", "running", sidecar=True, ready=True), status("a", "running")], [WAIT],
     "Always", "Init:1/2", "Pending", "1/2"),
    ([status("s", "running", sidecar=True, ready=True),
      status("a", "terminated", "Completed", 0)], [status("app", "running", ready=True)],
     "Always", "Running", "Running", "2/2"),
    # a Job-like pod: its container completed, its sidecar stopped (137): Completed
    ([status("s", "terminated", "Error", 137, sidecar=True)],
     [status("app", "terminated", "Completed", 0)], "Never", "Completed", "Succeeded", "0/2"),
])
def test_kubectl_status_of_initializing_pods(inits, mains, policy, shown, phase, ready):
    p = info(inits, mains, policy)
    assert (p.status, p.phase, p.ready) == (shown, phase, ready)
    k8s = p.to_k8s()
    assert [s["name"] for s in k8s["status"]["initContainerStatuses"]] == [c.name for c in inits]
    initialized = {"type": "Initialized", "status": str(shown in ("Running", "Completed"))}
    assert initialized in k8s["status"]["conditions"]
    assert p.restarts == sum(c.restarts for c in (*inits, *mains))
