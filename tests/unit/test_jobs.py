"""Jobs run to completion (netlab.jobs): the pure planning from the pods' recorded outcomes
(completions/parallelism waves, backoffLimit with Never and OnFailure, work queues, Indexed
Jobs), the Job's status, its `get jobs` view, and the loader's defaults and warnings."""

from __future__ import annotations

import re

import pytest

from netlab.cli.resources import kind, listing
from netlab.errors import InputError
from netlab.jobs import INDEX_KEY, JobPlan, PodOutcome, index_ranges
from netlab.loader import build, read_text
from netlab.model import Cluster
from netlab.plan import K8S_ALPHANUMS, Plan, make_plan
from netlab.views import JobInfo, job_infos

SUFFIX = f"[{K8S_ALPHANUMS}]{{5}}"


def job(extra: str = "", policy: str = "Never", name: str = "work") -> str:
    return (f"apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}, labels: {{team: a}}}}\n"
            f"spec:\n{extra}  template:\n    spec:\n      restartPolicy: {policy}\n"
            "      containers: [{name: c, image: busybox, command: [sh, -c, 'exit 0']}]\n")


class Run:
    """A Job planned again and again as the agent's outcomes come in (the converge loop
    without a kernel): `step` records outcomes, then plans against the previous plan."""

    def __init__(self, text: str) -> None:
        self.m = build(read_text(text, "job.yaml"))
        self.outcomes: dict[str, PodOutcome] = {}
        self.plan = make_plan("lab", self.m, Cluster())
        self.clock = 1000.0

    @property
    def job(self) -> JobPlan:
        return next(iter(self.plan.jobs.values()))

    def pods(self) -> list[str]:
        return [p.name for p in self.job.pods]

    def active(self) -> list[str]:
        return [n for n in self.pods()
                if self.outcomes.get(f"default/{n}", PodOutcome("Running")).phase == "Running"]

    def step(self, **phases: str | tuple[str, int]) -> Plan:
        """Pods (by position in the Job's pod list, as p0, p1...) ended or restarted."""
        names = self.pods()
        for pos, what in phases.items():
            phase, restarts = what if isinstance(what, tuple) else (what, 0)
            self.clock += 1
            done = phase in ("Succeeded", "Failed")
            self.outcomes[f"default/{names[int(pos[1:])]}"] = PodOutcome(
                phase, restarts, 999.0, self.clock if done else 0.0)
        self.plan = make_plan("lab", self.m, Cluster(), self.plan, None, self.outcomes)
        return self.plan


def test_completions_run_in_waves_of_parallelism():
    run = Run(job("  completions: 4\n  parallelism: 2\n"))
    assert len(run.pods()) == 2 and len(run.plan.pods) == 2
    first = run.pods()
    for name in first:
        assert re.fullmatch(f"work-{SUFFIX}", name)
    assert run.job.active == 2 and run.job.succeeded == 0 and run.job.condition is None
    run.step(p0="Succeeded")  # a slot frees: the third pod, under a new name
    assert run.pods()[:2] == first and len(run.pods()) == 3
    assert run.job.succeeded == 1 and run.job.active == 2
    assert run.plan.pods[f"default/{first[0]}"].owner == "Job/work"  # finished pods stay
    run.step(p1="Succeeded", p2="Succeeded")  # 3 of 4 done: one more pod, not two
    assert len(run.pods()) == 4 and run.job.active == 1 and run.job.succeeded == 3
    run.step(p3="Succeeded")
    j = run.job
    assert j.condition is not None and j.condition.type == "Complete"
    assert j.condition.reason == "CompletionsReached"
    assert (j.succeeded, j.failed, j.active, j.created) == (4, 0, 0, 4)
    assert j.start_time == 999.0 and j.completion_time == run.clock
    assert len(set(run.pods())) == 4 and len(run.plan.pods) == 4  # every pod kept, listed
    again = run.step()  # nothing changes once Complete
    assert again.jobs == run.plan.jobs and len(again.pods) == 4


def test_names_are_deterministic_and_the_plan_round_trips():
    a, b = Run(job("  completions: 3\n")), Run(job("  completions: 3\n"))
    for r in (a, b):
        r.step(p0="Succeeded")
        r.step(p1="Succeeded")
    assert a.pods() == b.pods() and len(set(a.pods())) == 3
    assert Plan.from_json(a.plan.to_json()).jobs == a.plan.jobs
    # the first pod keeps the name Job pods always had (labs made before keep theirs)
    assert a.pods()[0] == next(iter(make_plan("lab", a.m, Cluster()).pods.values())).name


def test_backoff_limit_never_replaces_failed_pods_then_fails():
    run = Run(job("  backoffLimit: 1\n"))
    first = run.pods()
    run.step(p0="Failed")  # 1 failure, not more than the limit: a new pod, new name
    assert len(run.pods()) == 2 and run.pods()[0] == first[0]
    assert run.job.failed == 1 and run.job.active == 1 and run.job.condition is None
    run.step(p1="Failed")  # 2 > 1: the Job fails, no pod replaces the second
    j = run.job
    assert j.condition is not None and j.condition.type == "Failed"
    assert j.condition.reason == "BackoffLimitExceeded"
    assert (j.failed, j.active, j.succeeded, len(j.pods)) == (2, 0, 0, 2)
    assert len(run.plan.pods) == 2  # both failed pods listed (Error)
    run.outcomes.clear()  # finished is final, whatever is reported later
    assert run.step().jobs == run.plan.jobs


def test_backoff_limit_zero_fails_at_the_first_failure():
    run = Run(job("  backoffLimit: 0\n  completions: 3\n  parallelism: 3\n"))
    run.step(p0="Succeeded", p1="Failed")
    j = run.job
    assert j.condition is not None and j.condition.type == "Failed"
    # the still active pod is deleted by the controller (and counted failed)
    assert (j.succeeded, j.failed, j.active) == (1, 2, 0) and len(run.plan.pods) == 2


def test_backoff_limit_on_failure_counts_container_restarts():
    run = Run(job("  backoffLimit: 2\n", policy="OnFailure"))
    name = run.pods()[0]
    run.step(p0=("Running", 1))
    assert run.job.condition is None and run.pods() == [name]  # restarted in place
    run.step(p0=("Running", 2))  # restarts reach the limit (pastBackoffLimitOnFailure)
    j = run.job
    assert j.condition is not None and j.condition.reason == "BackoffLimitExceeded"
    assert j.pods == () and j.failed == 1 and not run.plan.pods  # the active pod deleted
    zero = Run(job("  backoffLimit: 0\n", policy="OnFailure"))
    zero.step(p0=("Running", 1))
    assert zero.job.condition is not None and zero.job.condition.type == "Failed"


def test_on_failure_pod_that_succeeds_after_restarts():
    run = Run(job("  backoffLimit: 3\n", policy="OnFailure"))
    run.step(p0=("Running", 2))
    run.step(p0=("Succeeded", 2))  # restarts of finished pods no longer count
    assert run.job.condition is not None and run.job.condition.type == "Complete"


def test_work_queue_without_completions():
    run = Run(job("  parallelism: 3\n"))
    assert run.job.completions is None and len(run.pods()) == 3
    run.step(p0="Succeeded")  # one success: no new pod; the others finish their work
    assert len(run.pods()) == 3 and run.job.condition is None and run.job.active == 2
    run.step(p1="Failed")  # a failure while one succeeded: not replaced either
    assert len(run.pods()) == 3
    run.step(p2="Succeeded")
    assert run.job.condition is not None and run.job.condition.type == "Complete"
    assert JobInfo(run.job).completions == "2/1 of 3"


def test_parallelism_zero_and_completions_zero():
    idle = Run(job("  parallelism: 0\n  completions: 2\n"))
    assert idle.pods() == [] and idle.job.condition is None and not idle.plan.pods
    none = Run(job("  completions: 0\n"))
    assert none.pods() == [] and none.job.condition is not None
    assert none.job.condition.type == "Complete"


def test_indexed_job_pods_carry_their_index():
    run = Run(job("  completions: 3\n  parallelism: 2\n  completionMode: Indexed\n"))
    names = run.pods()
    assert re.fullmatch(f"work-0-{SUFFIX}", names[0]) and re.fullmatch(f"work-1-{SUFFIX}",
                                                                        names[1])
    p0 = run.plan.pods[f"default/{names[0]}"]
    assert p0.labels[INDEX_KEY] == "0" and p0.annotations[INDEX_KEY] == "0"
    assert p0.hostname == "work-0"
    assert ("JOB_COMPLETION_INDEX", "0") in p0.containers[0].env
    run.step(p0="Failed", p1="Succeeded")  # index 0 again (a new pod), and index 2
    assert [p.index for p in run.job.pods] == [0, 1, 0, 2]
    assert run.pods()[2] != names[0] and re.fullmatch(f"work-0-{SUFFIX}", run.pods()[2])
    assert run.job.completed_indexes == (1,) and run.job.succeeded == 1
    run.step(p2="Succeeded", p3="Succeeded")
    j = run.job
    assert j.condition is not None and j.condition.type == "Complete"
    assert j.completed_indexes == (0, 1, 2) and (j.succeeded, j.failed) == (3, 1)
    assert JobInfo(j).to_k8s()["status"]["completedIndexes"] == "0-2"


def test_index_ranges():
    assert index_ranges((0, 1, 2, 4, 6, 7)) == "0-2,4,6-7"
    assert index_ranges(()) == ""


def test_job_view_as_kubectl_shows_it():
    run = Run(job("  completions: 3\n"))
    run.step(p0="Succeeded")
    info = job_infos(run.plan, "default")[0]
    assert (info.name, info.status, info.completions) == ("work", "Running", "1/3")
    assert info.duration(1010.0) == "11s"  # started at 999, still running
    doc = info.to_k8s()
    assert doc["kind"] == "Job" and doc["apiVersion"] == "batch/v1"
    assert doc["metadata"]["labels"] == {"team": "a"}
    assert doc["spec"]["completions"] == 3 and doc["spec"]["backoffLimit"] == 6
    assert doc["spec"]["selector"] == {"matchLabels": {"job-name": "work"}}
    assert doc["status"]["succeeded"] == 1 and doc["status"]["active"] == 1
    assert "failed" not in doc["status"] and "conditions" not in doc["status"]
    run.step(p1="Succeeded")
    run.step(p2="Succeeded")
    info = job_infos(run.plan)[0]
    assert (info.status, info.completions) == ("Complete", "3/3")
    assert info.duration(99999.0) == age_of(run.clock - 999.0)
    doc = info.to_k8s()
    assert [c["type"] for c in doc["status"]["conditions"]] == ["SuccessCriteriaMet",
                                                                 "Complete"]
    assert doc["status"]["completionTime"] and "active" not in doc["status"]
    table = listing(kind("jobs"), [info], False)
    assert [c.header for c in table.columns if not c.wide] == [
        "NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert kind("job") is kind("jobs") and kind("job").singular == "job.batch"
    assert job_infos(run.plan, "other") == []


def age_of(seconds: float) -> str:
    from netlab.views import age

    return age(seconds)


def test_failed_job_view():
    run = Run(job("  backoffLimit: 0\n"))
    run.step(p0="Failed")
    doc = job_infos(run.plan)[0].to_k8s()
    assert job_infos(run.plan)[0].status == "Failed"
    assert [(c["type"], c["reason"]) for c in doc["status"]["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")]
    assert doc["status"]["failed"] == 1 and "completionTime" not in doc["status"]


def test_loader_defaults_and_warnings():
    m = build(read_text(job(), "job.yaml"))
    spec = m.workloads["Job/default/work"].job
    assert spec is not None
    assert (spec.completions, spec.parallelism, spec.backoff_limit, spec.indexed) == (
        1, 1, 6, False)
    assert not m.warnings
    queue = build(read_text(job("  parallelism: 2\n"), "job.yaml")).workloads
    assert queue["Job/default/work"].job.completions is None  # type: ignore[union-attr]
    m = build(read_text(job("  activeDeadlineSeconds: 30\n  ttlSecondsAfterFinished: 5\n"
                            "  suspend: true\n  podReplacementPolicy: Failed\n"), "job.yaml"))
    text = "\n".join(m.warnings)
    assert "spec.activeDeadlineSeconds is not modelled" in text
    assert "spec.ttlSecondsAfterFinished is not modelled" in text
    assert "spec.suspend is not modelled" in text and "podReplacementPolicy" not in text
    assert not any("completions are not run" in w for w in m.warnings)


def test_indexed_needs_completions_and_bad_values_are_refused():
    with pytest.raises(InputError) as e:
        build(read_text(job("  parallelism: 2\n  completionMode: Indexed\n"), "job.yaml"))
    assert "completions" in str(e.value) and "Indexed" in str(e.value)
    assert "job.yaml" in str(e.value)
    with pytest.raises(InputError) as e:
        build(read_text(job("  backoffLimit: -1\n"), "job.yaml"))
    assert "backoffLimit" in str(e.value)
    with pytest.raises(InputError) as e:
        build(read_text(job("  completionMode: Sometimes\n"), "job.yaml"))
    assert "completionMode" in str(e.value)
