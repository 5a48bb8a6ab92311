"""Jobs run to completion, as the Kubernetes Job controller runs them
(https://kubernetes.io/docs/concepts/workloads/controllers/job/).

Pure. The flow, like readiness's: the lab's agent reports each pod's outcome (PodOutcome:
Running, Succeeded or Failed, its containers' restarts, when it was given the pod and when
it ended) into the lab's state under the lab's lock and converges the lab; planning then
calls `plan_jobs` with each Job, what the previous plan held of it (JobPlan) and those
outcomes, and that decides which pods the Job has now (`job_pods` makes them):

- at most `parallelism` pods active, and no more than the completions still missing
  (Kubernetes: wantActive = min(parallelism, completions - succeeded)); a finished pod
  frees its slot, and the next pod is made, with a new name: `<job>-<5 chars>` hashed from
  the Job and the pod's sequence number (Indexed: `<job>-<index>-<5 chars>`), so names are
  deterministic and never reused within the Job;
- without `completions` (but with `parallelism`) a work queue: once a pod succeeded no new
  pod is made, and the Job is complete when it has no active pod left;
- backoffLimit: the Job fails when more than backoffLimit pods failed, or, with restartPolicy
  OnFailure, when its active pods' containers restarted backoffLimit times (more than 0
  times for a limit of 0), as the Job controller's pastBackoffLimitOnFailure counts;
- a finished Job (Complete or Failed) keeps its finished pods (Completed/Error, never
  restarted) and loses its active ones (the controller deletes them; on failure they are
  counted failed); it makes no pod any more.

Not modelled: the back-off before a failed pod is replaced (10 s doubling to 6 minutes: the
next pod comes at once), activeDeadlineSeconds, ttlSecondsAfterFinished, suspend,
podFailurePolicy, successPolicy, backoffLimitPerIndex (the loader warns about the fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from netlab.model import Container, Manifests, Pod, Workload

INDEX_KEY = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class PodOutcome:
    """What the lab's agent saw of a pod whose restartPolicy is not Always."""

    phase: str  # Running | Succeeded | Failed (Pending counts as Running)
    restarts: int = 0  # its containers' restarts (OnFailure: each counts against the limit)
    started: float = 0.0  # when the agent was given the pod (wall clock)
    finished: float = 0.0  # Succeeded/Failed: when its last container ended

    @property
    def done(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def to_json(self) -> list[Any]:
        return [self.phase, self.restarts, self.started, self.finished]

    @classmethod
    def from_json(cls, v: list[Any]) -> PodOutcome:
        return cls(str(v[0]), int(v[1]), float(v[2]), float(v[3]))


@dataclass(frozen=True)
class JobPod:
    """A pod the Job made: its name, its sequence number in the Job (names are never reused),
    and, in an Indexed Job, its completion index."""

    name: str
    sequence: int
    index: int | None = None


@dataclass(frozen=True)
class JobCondition:
    type: str  # Complete | Failed
    reason: str  # CompletionsReached | BackoffLimitExceeded
    message: str
    time: float = 0.0


@dataclass(frozen=True)
class JobPlan:
    """A Job as planned: its spec, the pods it has now, and its status."""

    namespace: str
    name: str
    completions: int | None
    parallelism: int
    backoff_limit: int
    indexed: bool = False
    restart_policy: str = "Never"
    created: int = 0  # pods made so far: the next pod's sequence number
    pods: tuple[JobPod, ...] = ()  # the pods the Job has now, in sequence order
    succeeded: int = 0
    failed: int = 0
    active: int = 0
    completed_indexes: tuple[int, ...] = ()  # Indexed
    start_time: float = 0.0  # when its first pod was given to the agent
    completion_time: float = 0.0  # Complete: when its last needed pod succeeded
    condition: JobCondition | None = None  # set once the Job finished
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    selector: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobPlan:
        cond = d.get("condition")
        return cls(**{**d, "pods": tuple(JobPod(**p) for p in d.get("pods", ())),
                      "completed_indexes": tuple(d.get("completed_indexes", ())),
                      "condition": JobCondition(**cond) if cond else None})


def pod_name(w: Workload, sequence: int, index: int | None = None) -> str:
    """`<job>-<5 chars>` (Indexed: `<job>-<index>-<5 chars>`), the 5 chars hashed from the
    Job and the pod's sequence number. Pod 0..n of a NonIndexed Job keep the names the
    first wave always had."""
    from netlab.plan import _k8s_suffix

    suffix = _k8s_suffix(f"Job/{w.name}/{w.namespace}/{sequence}", 5)
    stem = w.name if index is None else f"{w.name}-{index}"
    return f"{stem[: 63 - 6].rstrip('.')}-{suffix}"


def plan_job(w: Workload, prev: JobPlan | None,
             outcomes: Mapping[str, PodOutcome]) -> JobPlan:
    """The Job's pods and status now, from what the previous plan had of it (None: a new
    Job) and its pods' outcomes (pod key -> PodOutcome; not reported: active)."""
    spec = w.job
    assert spec is not None, "a Job Workload carries its JobSpec"
    base = JobPlan(w.namespace, w.name, spec.completions, spec.parallelism,
                   spec.backoff_limit, spec.indexed, w.template_spec.restart_policy,
                   labels=dict(w.labels), selector=dict(w.selector.match_labels))
    if prev is not None and prev.indexed != spec.indexed:
        prev = None  # completionMode is immutable in Kubernetes: a new Job, in effect
    if prev is not None and prev.condition is not None:  # finished: it stays as it ended
        return replace(base, created=prev.created, pods=prev.pods, succeeded=prev.succeeded,
                       failed=prev.failed, completed_indexes=prev.completed_indexes,
                       start_time=prev.start_time, completion_time=prev.completion_time,
                       condition=prev.condition)
    created = prev.created if prev else 0
    pods = list(prev.pods) if prev else []
    seen = {p.name: o for p in pods if (o := outcomes.get(f"{w.namespace}/{p.name}"))}

    def phase(p: JobPod) -> str:
        o = seen.get(p.name)
        return o.phase if o else "Running"

    active = [p for p in pods if phase(p) not in ("Succeeded", "Failed")]
    won = [p for p in pods if phase(p) == "Succeeded"]
    lost = [p for p in pods if phase(p) == "Failed"]
    done_indexes = tuple(sorted({p.index for p in won if p.index is not None}))
    succeeded = len(done_indexes) if spec.indexed else len(won)
    failed = len(lost)
    starts = [o.started for o in seen.values() if o.started]
    start_time = (prev.start_time if prev and prev.start_time else 0.0) or min(starts,
                                                                              default=0.0)
    restarts = sum(seen[p.name].restarts for p in active if p.name in seen) \
        if base.restart_policy == "OnFailure" else 0
    limit = spec.backoff_limit
    condition = None
    completion_time = 0.0
    if (succeeded >= spec.completions) if spec.completions is not None \
            else (succeeded >= 1 and not active):
        completion_time = max((seen[p.name].finished for p in won), default=0.0)
        condition = JobCondition("Complete", "CompletionsReached",
                                 "Reached expected number of succeeded pods", completion_time)
    elif failed > limit or (restarts > 0 and restarts >= limit):  # limit 0: any restart
        when = max((max(o.finished, o.started) for o in seen.values()), default=0.0)
        condition = JobCondition("Failed", "BackoffLimitExceeded",
                                 "Job has reached the specified backoff limit", when)
    if condition is not None:  # the controller deletes the active pods
        gone = {p.name for p in active}
        return replace(base, created=created, pods=tuple(p for p in pods if p.name not in gone),
                       succeeded=succeeded,
                       failed=failed + (len(gone) if condition.type == "Failed" else 0),
                       completed_indexes=done_indexes, start_time=start_time,
                       completion_time=completion_time, condition=condition)
    if spec.completions is None:  # a work queue: no new pod once one succeeded
        want = spec.parallelism if not won else len(active)
    else:
        want = min(spec.parallelism, spec.completions - succeeded)
    if len(active) > want:  # parallelism lowered: the newest active pods go
        gone = {p.name for p in active[want:]}
        pods = [p for p in pods if p.name not in gone]
        active = active[:want]
    todo: list[int | None] = [None] * max(0, want - len(active))
    if spec.indexed:  # the lowest indexes that neither succeeded nor run
        busy = {p.index for p in active}
        todo = [i for i in range(spec.completions or 0)
                if i not in done_indexes and i not in busy][: len(todo)]
    for index in todo:
        pods.append(JobPod(pod_name(w, created, index), created, index))
        created += 1
    return replace(base, created=created, pods=tuple(pods), succeeded=succeeded,
                   failed=failed, active=len(active) + len(todo),
                   completed_indexes=done_indexes, start_time=start_time)


def plan_jobs(m: Manifests, previous: Mapping[str, JobPlan] | None,
              outcomes: Mapping[str, PodOutcome] | None) -> dict[str, JobPlan]:
    """Every Job of the manifests planned (plan_job), by namespace/name."""
    prev = previous or {}
    out = {}
    for w in m.workloads.values():
        if w.kind == "Job" and w.job is not None:
            key = f"{w.namespace}/{w.name}"
            out[key] = plan_job(w, prev.get(key), outcomes or {})
    return dict(sorted(out.items()))


def job_pods(w: Workload, jp: JobPlan) -> list[Pod]:
    """The Job's pods as `jp` lists them. Indexed: the completion index as annotation,
    label and JOB_COMPLETION_INDEX in every container, hostname `<job>-<index>`."""
    owner = f"Job/{w.name}"
    out = []
    for p in jp.pods:
        spec, labels, annotations = w.template_spec, dict(w.template_labels), \
            dict(w.template_annotations)
        if p.index is not None:
            env = (("JOB_COMPLETION_INDEX", str(p.index)),)

            def indexed(c: Container, env: tuple[tuple[str, str], ...] = env) -> Container:
                return replace(c, env=(*c.env, *env))
            spec = replace(spec, hostname=spec.hostname or f"{w.name}-{p.index}",
                           containers=tuple(map(indexed, spec.containers)),
                           init_containers=tuple(map(indexed, spec.init_containers)))
            labels[INDEX_KEY] = annotations[INDEX_KEY] = str(p.index)
        out.append(Pod(w.namespace, p.name, spec, labels, annotations, owner, w.source))
    return out


def index_ranges(indexes: tuple[int, ...]) -> str:
    """status.completedIndexes: "1,3-5,7"."""
    out: list[str] = []
    start = prev = None
    for i in sorted(indexes):
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = i
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(out)
