"""Jobs on a real lab: the agent reports its pods' outcomes, the lab converges, and the Job
makes its next pods (completions in waves of parallelism) until it is Complete, or Failed
once backoffLimit is exceeded (Never: failed pods; OnFailure: container restarts). `netlab
get jobs` shows them as kubectl does. Every lab shortens kubelet's back-off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from manifests import wait_until

pytestmark = pytest.mark.netlab

CLUSTER = ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 2\n"
           "  restartBackOff: {initialSeconds: 0.2, maxSeconds: 0.8}\n")


def job(name: str, command: str, extra: str, policy: str = "Never") -> str:
    return (f"---\napiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n"
            f"{extra}  template:\n    spec:\n      restartPolicy: {policy}\n"
            f"      containers:\n      - name: c\n        image: busybox\n"
            f"        command: [sh, -c, {json.dumps(command)}]\n")


def lab_name(what: str) -> str:
    return f"nljob-{what}-{os.getpid() % 100000}"


def get(lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netlab", "get", *args, "--lab", lab.name],
                          capture_output=True, text=True, timeout=60)


def job_pods(lab, name: str):
    return [p for p in lab.pods() if p.owner == f"Job/{name}"]


def test_completions_run_in_waves(netlab_lab):
    lab = netlab_lab(yaml=CLUSTER + job(
        "waves", 'echo "work of $HOSTNAME"; sleep 1; echo done',
        "  completions: 4\n  parallelism: 2\n"), name=lab_name("waves"))
    most_running = 0
    deadline = time.monotonic() + 40
    while True:  # watch the Job make its pods as the others finish
        running = [p for p in job_pods(lab, "waves") if p.status == "Running"]
        most_running = max(most_running, len(running))
        j = lab.jobs()[0]
        if j.status != "Running":
            break
        assert time.monotonic() < deadline, (j.job, [(p.name, p.status)
                                                    for p in job_pods(lab, "waves")])
        time.sleep(0.05)
    assert j.status == "Complete" and j.completions == "4/4", j.job
    assert (j.job.succeeded, j.job.failed, j.job.active) == (4, 0, 0)
    assert most_running <= 2
    pods = job_pods(lab, "waves")
    assert len({p.name for p in pods}) == 4
    assert all(p.status == "Completed" for p in pods), [(p.name, p.status) for p in pods]
    for p in pods:
        assert "done" in lab.logs(p.name)
    # waves of 2: never more than 2 ran at once, and the later pods started only once
    # earlier ones had finished (the agent's container start and finish times)
    spans = sorted((p.containers[0].started_at, p.containers[0].finished_at) for p in pods)
    for start, _ in spans:
        assert sum(s <= start < f for s, f in spans) <= 2, spans
    first_end = min(f for _, f in spans[:2])
    assert spans[2][0] >= first_end and spans[3][0] >= first_end, spans
    assert spans[3][0] >= sorted(f for _, f in spans)[1], spans  # the 4th: after 2 ended
    # kubectl's view
    r = get(lab, "jobs")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert row.split()[:3] == ["waves", "Complete", "4/4"]
    doc = json.loads(get(lab, "job", "waves", "-o", "json").stdout)
    assert doc["kind"] == "Job" and doc["status"]["succeeded"] == 4
    assert doc["status"]["conditions"][-1]["type"] == "Complete"
    r = get(lab, "pods", "-l", "job-name=waves", "-o", "name")
    assert len(r.stdout.split()) == 4
    # the finished pods are not run again, even when the lab changes
    before = {p.name: p.containers[0].started_at for p in job_pods(lab, "waves")}
    lab.apply(manifests=[job("other", "exit 0", "")])
    assert wait_until(lambda: lab.jobs("default")[0].status == "Complete"
                      and len(lab.jobs("default")) == 2
                      and all(j.status == "Complete" for j in lab.jobs()), timeout=20)
    assert {p.name: p.containers[0].started_at for p in job_pods(lab, "waves")} == before


def test_backoff_limit_fails_the_job(netlab_lab):
    lab = netlab_lab(yaml=CLUSTER + job("broken", "echo trying; exit 3", "  backoffLimit: 1\n")
                     + job("flaky", "exit 1", "  backoffLimit: 2\n", policy="OnFailure"),
                     name=lab_name("fail"))

    def status() -> dict[str, str]:
        return {j.name: j.status for j in lab.jobs()}

    assert wait_until(lambda: status() == {"broken": "Failed", "flaky": "Failed"},
                      timeout=30), ([j.job for j in lab.jobs()],
                                    [(p.name, p.status, p.restarts) for p in lab.pods()])
    broken = {j.name: j for j in lab.jobs()}["broken"]
    assert broken.job.failed == 2 and broken.job.succeeded == 0 and broken.job.active == 0
    assert broken.job.condition is not None
    assert broken.job.condition.reason == "BackoffLimitExceeded"
    pods = job_pods(lab, "broken")
    assert len(pods) == 2 and len({p.name for p in pods}) == 2  # replaced once, new name
    assert all(p.status == "Error" for p in pods), [(p.name, p.status) for p in pods]
    assert all("trying" in lab.logs(p.name) for p in pods)
    # OnFailure: the container restarted in place until the restarts reached the limit;
    # then the Job controller deleted the pod
    flaky = {j.name: j for j in lab.jobs()}["flaky"]
    assert flaky.job.failed == 1 and flaky.job.created == 1
    assert job_pods(lab, "flaky") == []
    # Failed is final: no pod comes any more
    assert not wait_until(lambda: len(job_pods(lab, "broken")) > 2, timeout=1.0)
    r = get(lab, "jobs", "broken", "-o", "jsonpath={.status.conditions[-1].reason}")
    assert r.stdout == "BackoffLimitExceeded", r.stderr
    r = get(lab, "jobs")
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert rows["broken"][1:3] == ["Failed", "0/1"] and rows["flaky"][1:3] == ["Failed", "0/1"]
