"""`get pods` joins the lab's state (the plan) with the agent's status: the agent reports
each pod with its incarnation (the pod's spec hash), so a status that names a pod replaced
since is not read as its successor's (issue 13: a StatefulSet's rolling update once showed
the old pod's process under the new template, or the new pod as running before it was)."""

from __future__ import annotations

import json

import pytest

from netlab import names, state
from netlab.compile import compile_lab
from netlab.lab import Lab
from netlab.loader import read_text

POD = ("---\napiVersion: v1\nkind: Pod\nmetadata: {name: web}\n"
       "spec: {containers: [{name: c, image: x, command: [sleep, '%s']}]}\n")
CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 1}\n"


@pytest.fixture
def lab_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(names, "STATE_ROOT", tmp_path)
    return tmp_path


def planned(lab_dir, seconds: str):
    desired = compile_lab("inc", read_text(CLUSTER + POD % seconds))
    st = state.LabState("inc", plan=desired.plan, phase="ready")
    state.save(st)
    return desired


def report(lab_dir, incarnation: str | None) -> None:
    pod = {"created": 1000.0, "ready": True, "notReadyReason": ""}
    if incarnation is not None:
        pod["incarnation"] = incarnation
    status = {"containers": [{"owner": "default/web", "container": "c", "state": "running",
                              "reason": "", "message": "", "pid": 4242, "starttime": 1,
                              "startedAt": 1000.0, "finishedAt": 0.0, "exitCode": None,
                              "restarts": 0}],
              "pods": {"default/web": pod}}
    d = lab_dir / "inc" / "agent"
    d.mkdir(parents=True, exist_ok=True)
    (d / "status.json").write_text(json.dumps(status))


def web() -> object:
    return next(p for p in Lab("inc").pods() if p.name == "web")


def test_the_agent_names_the_incarnation_it_runs(lab_dir):
    desired = planned(lab_dir, "60")
    workload = desired.workloads["default/web"]
    assert workload.incarnation == desired.plan.pods["default/web"].spec_hash != ""


def test_a_status_of_this_incarnation_is_read(lab_dir):
    desired = planned(lab_dir, "60")
    report(lab_dir, desired.plan.pods["default/web"].spec_hash)
    p = web()
    assert (p.containers[0].pid, p.created) == (4242, 1000.0)


def test_a_status_of_the_pod_it_replaced_is_not_this_pods(lab_dir):
    old = planned(lab_dir, "60").plan.pods["default/web"].spec_hash
    planned(lab_dir, "120")  # replaced: a new template, the agent not told yet
    report(lab_dir, old)
    p = web()
    c = p.containers[0]
    assert (c.pid, c.state, c.reason, p.created) == (None, "waiting", "ContainerCreating", 0.0)


def test_a_status_without_incarnations_is_read_as_before(lab_dir):
    planned(lab_dir, "60")
    report(lab_dir, None)  # an agent of an older netlab
    assert web().containers[0].pid == 4242
