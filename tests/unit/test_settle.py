"""Lab.settle's pure part (netlab.expectations.unsettled): what a lab is still doing by
itself, from the plan, the pods as the agent reports them and its status. Pods that never get
ready (a failing probe, a crash loop) are settled; first results and creation are not."""

from __future__ import annotations

from netlab.expectations import unsettled
from netlab.loader import build, read_text
from netlab.model import Cluster
from netlab.plan import make_plan
from netlab.views import ContainerStatus, PodInfo

STS = """apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        ports: [{containerPort: 80}]
        readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}
"""
POD = """---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: c, image: busybox, command: [sleep, infinity]}]
"""


def setup(ready: dict[str, bool], yaml: str = STS + POD):
    m = build(read_text(yaml, "s.yaml"))
    readiness = {f"default/{n}": (r, "") for n, r in ready.items()}
    plan = make_plan("lab", m, Cluster())
    plan = make_plan("lab", m, Cluster(), plan, readiness)
    return plan, m, readiness


def info(plan, name: str, state: str = "running", reason: str = "", restarts: int = 0,
         ready: bool = True, inits: tuple[ContainerStatus, ...] = ()) -> PodInfo:
    p = plan.pods[f"default/{name}"]
    return PodInfo(p.namespace, p.name, p.node, p.ip, dict(p.labels), tuple(
        ContainerStatus(c.name, c.argv, state, reason, restarts=restarts,
                        ready=ready and state == "running") for c in p.containers),
        "172.18.0.2", p.owner, 1.0, init_containers=inits)


def status(pods: list[PodInfo], probes: dict[str, str] | None = None,
           ready: dict[str, bool] | None = None) -> dict:
    return {"pods": {p.key: {"created": 1.0, "ready": (ready or {}).get(p.name, True)}
                     for p in pods},
            "probes": {f"default/{k}": {"started": True, "ready": "succeeded" in r,
                                        "reason": r, "awaiting": "has not run" in r
                                        or "waits initialDelaySeconds" in r}
                       for k, r in (probes or {}).items()}}


OK = "readiness probe tcp 80 succeeded"


def test_settled_when_every_pod_runs_and_has_its_first_probe_result():
    plan, m, readiness = setup({"web-0": True, "web-1": True, "web-2": True})
    assert sorted(plan.pods) == ["default/client", "default/web-0", "default/web-1",
                                 "default/web-2"]
    pods = [info(plan, n) for n in ("client", "web-0", "web-1", "web-2")]
    st = status(pods, {"web-0/web": OK, "web-1/web": OK, "web-2/web": OK})
    assert unsettled(plan, m, pods, st, readiness) == []


def test_a_probe_without_its_first_result_is_unsettled_a_failed_one_is_not():
    plan, m, readiness = setup({"web-0": False})
    assert "default/web-1" not in plan.pods  # OrderedReady: web-1 waits for web-0
    pods = [info(plan, "client"), info(plan, "web-0", ready=False)]
    waiting = status(pods, {"web-0/web": "readiness probe tcp 80 has not run yet"},
                     {"web-0": False})
    assert unsettled(plan, m, pods, waiting, readiness) == [
        "pod default/web-0: container web: readiness probe tcp 80 has not run yet"]
    delayed = status(pods, {"web-0/web": "readiness probe tcp 80 waits initialDelaySeconds "
                                         "(5s)"}, {"web-0": False})
    assert len(unsettled(plan, m, pods, delayed, readiness)) == 1
    failed = status(pods, {"web-0/web": "readiness probe tcp 80 failed: connection refused "
                                        "(1 of 3 failures)"}, {"web-0": False})
    # never ready: web-1 will not come by itself, and that is settled
    assert unsettled(plan, m, pods, failed, readiness) == []
    # a probe the agent has not registered yet for a running container
    assert unsettled(plan, m, pods, status(pods, {}, {"web-0": False}), readiness) == [
        "pod default/web-0: its readiness probe has not started"]


def test_ordered_ready_statefulset_about_to_grow():
    plan, m, readiness = setup({"web-0": True})
    assert sorted(plan.pods) == ["default/client", "default/web-0", "default/web-1"]
    pods = [info(plan, n) for n in ("client", "web-0")] + [info(plan, "web-1", ready=False)]
    st = status(pods, {"web-0/web": OK, "web-1/web": OK}, {"web-1": True})
    # the agent says web-1 is ready; the lab has not converged on it: web-2 is coming
    readiness = {**readiness, "default/web-1": (False, "")}
    busy = unsettled(plan, m, pods, st, readiness)
    assert busy == ["the lab has not yet followed the readiness of default/web-1",
                    "StatefulSet default/web: 2 of 3 pods, the next ordinal is about to be "
                    "created"]


def test_creation_in_progress_and_crash_loops():
    plan, m, readiness = setup({"web-0": True, "web-1": True, "web-2": True})
    client = info(plan, "client", "waiting", "ContainerCreating", ready=False)
    st = status([client])
    assert unsettled(plan, m, [client], st, readiness) == [
        "pod default/client: container c is ContainerCreating"]
    looping = info(plan, "client", "waiting", "CrashLoopBackOff", restarts=3, ready=False)
    assert unsettled(plan, m, [looping], st, readiness) == []
    # not yet given to the agent
    assert unsettled(plan, m, [info(plan, "client")], {"pods": {}}, readiness) == [
        "pod default/client: not yet started by the lab's agent"]
    # a restarted container whose probe starts over is not a first result
    web0 = info(plan, "web-0", restarts=1, ready=False)
    st = status([web0], {"web-0/web": "readiness probe tcp 80 has not run yet"},
                {"web-0": True})
    assert unsettled(plan, m, [web0], st, readiness) == []


def test_init_containers():
    plan, m, readiness = setup({})
    running = ContainerStatus("setup", ("sh",), "running")
    held = info(plan, "client", "waiting", "PodInitializing", ready=False, inits=(running,))
    st = status([held])
    assert unsettled(plan, m, [held], st, readiness) == [
        "pod default/client: Init:0/1: init container setup has not completed yet"]
    failing = ContainerStatus("setup", ("sh",), "waiting", "CrashLoopBackOff", restarts=2)
    held = info(plan, "client", "waiting", "PodInitializing", ready=False, inits=(failing,))
    assert unsettled(plan, m, [held], st, readiness) == []


def test_pending_pods_do_not_hold_it_up():
    plan, m, readiness = setup({})
    pending = PodInfo("default", "big", "", "", {}, (ContainerStatus("c", (), "waiting"),), "",
                      pending_reason="0/2 nodes are available: 2 Too many pods.")
    assert unsettled(plan, m, [pending], {"pods": {}}, readiness) == []


def test_a_job_whose_pods_ended_makes_its_next_ones():
    job = """apiVersion: batch/v1
kind: Job
metadata: {name: work}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: [sh, -c, 'exit 0']}]
"""
    plan, m, readiness = setup({}, job)
    (name,) = [p.name for p in plan.pods.values()]
    done = info(plan, name, "terminated", "Completed", ready=False)
    done = PodInfo(done.namespace, done.name, done.node, done.ip, done.labels, (
        ContainerStatus("c", ("sh",), "terminated", "Completed", exit_code=0),), "",
        done.owner, 1.0, "Never")
    assert unsettled(plan, m, [done], status([done]), readiness) == [
        "Job default/work: its pods ended; it makes its next ones"]
