"""Jobs and the workload kinds (Deployment, ReplicaSet, ReplicationController,
StatefulSet, DaemonSet) as kubectl lists them, counted from the pods the lab runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlab.jobs import JobPlan, index_ranges
from netlab.model import Manifests
from netlab.plan import Plan, _k8s_suffix
from netlab.views.common import age, timestamp
from netlab.views.pods import PodInfo, pod_ready


@dataclass(frozen=True)
class JobInfo:
    """A Job as the lab runs it (netlab.jobs), shown as `kubectl get jobs` shows it."""

    job: JobPlan
    ready: int = 0  # its active pods that are ready

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def namespace(self) -> str:
        return self.job.namespace

    @property
    def completions(self) -> str:
        """kubectl's COMPLETIONS: succeeded/completions, or `n/1 of P` for a work queue."""
        j = self.job
        if j.completions is not None:
            return f"{j.succeeded}/{j.completions}"
        return f"{j.succeeded}/1 of {j.parallelism}" if j.parallelism > 1 \
            else f"{j.succeeded}/1"

    @property
    def status(self) -> str:
        """kubectl's STATUS: Complete, Failed, else Running."""
        return self.job.condition.type if self.job.condition else "Running"

    def duration(self, now: float) -> str:
        """kubectl's DURATION: start to completion, or to now while not complete (a Failed
        Job has no completionTime: its duration keeps growing, as in kubectl)."""
        j = self.job
        if not j.start_time:
            return ""
        return age((j.completion_time or now) - j.start_time)

    def to_k8s(self) -> dict[str, Any]:
        """The Job shaped like `kubectl get job -o json` (batch/v1, Kubernetes 1.31+
        conditions: SuccessCriteriaMet or FailureTarget before Complete or Failed)."""
        j = self.job
        spec: dict[str, Any] = {"parallelism": j.parallelism, "backoffLimit": j.backoff_limit,
                                "completionMode": "Indexed" if j.indexed else "NonIndexed",
                                "selector": {"matchLabels": dict(j.selector)},
                                "suspend": False,
                                "template": {"spec": {"restartPolicy": j.restart_policy}}}
        if j.completions is not None:
            spec["completions"] = j.completions
        status: dict[str, Any] = {"ready": self.ready, "uncountedTerminatedPods": {}}
        if j.start_time:
            status["startTime"] = timestamp(j.start_time)
        if j.completion_time and j.condition and j.condition.type == "Complete":
            status["completionTime"] = timestamp(j.completion_time)
        for key, n in (("active", j.active), ("succeeded", j.succeeded), ("failed", j.failed)):
            if n:  # omitempty, as the API server writes them
                status[key] = n
        if j.indexed and j.completed_indexes:
            status["completedIndexes"] = index_ranges(j.completed_indexes)
        if j.condition is not None:
            c = j.condition
            first = "SuccessCriteriaMet" if c.type == "Complete" else "FailureTarget"
            status["conditions"] = [
                {"type": t, "status": "True", "reason": c.reason, "message": c.message,
                 "lastProbeTime": timestamp(c.time), "lastTransitionTime": timestamp(c.time)}
                for t in (first, c.type)]
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": j.name, "namespace": j.namespace, "labels": dict(j.labels),
                             "creationTimestamp": timestamp(j.start_time)},
                "spec": spec, "status": status}

def job_infos(plan: Plan, namespace: str | None = None) -> list[JobInfo]:
    """The lab's Jobs (of one namespace, or all), with how many of their pods are ready."""
    out = []
    for j in plan.jobs.values():
        if namespace is not None and j.namespace != namespace:
            continue
        pods = [plan.pods.get(f"{j.namespace}/{p.name}") for p in j.pods]
        ready = sum(1 for p in pods if p is not None and p.ready)
        out.append(JobInfo(j, min(ready, j.active)))
    return out


# --- workloads: Deployments, ReplicaSets, ReplicationControllers, StatefulSets, DaemonSets ---

WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "ReplicationController", "StatefulSet",
                  "DaemonSet")
_API_VERSION = {"ReplicationController": "v1"}  # the others: apps/v1

def selector_text(match_labels: dict[str, str], expressions: tuple[Any, ...] = ()) -> str:
    """A label selector as kubectl prints it (metav1.FormatLabelSelector): `app=web,tier in
    (a,b),!debug`, `<none>` for an empty one."""
    parts = [f"{k}={v}" for k, v in sorted(match_labels.items())]
    for r in expressions:
        values = ",".join(sorted(r.values))
        parts.append({"In": f"{r.key} in ({values})", "NotIn": f"{r.key} notin ({values})",
                      "Exists": r.key, "DoesNotExist": f"!{r.key}"}.get(r.operator, r.key))
    return ",".join(parts) or "<none>"

@dataclass(frozen=True)
class WorkloadInfo:
    """A Deployment, ReplicaSet, ReplicationController, StatefulSet or DaemonSet as the lab
    runs it: the object as written and the pods it has now (Pending ones among them), shown
    as `kubectl get deployments|rs|rc|sts|ds` shows it. Counts come from the pods: created
    (status.replicas), ready (their Ready condition, as the lab's agent reports it), updated
    (at the template's revision; a StatefulSet's controller-revision-hash)."""

    kind: str
    namespace: str
    name: str
    replicas: int  # spec.replicas; a DaemonSet: the nodes it should run on (its pods)
    match_labels: dict[str, str]
    match_expressions: tuple[Any, ...]  # model.LabelSelectorRequirement
    template_labels: dict[str, str]
    containers: tuple[Any, ...]  # model.Container, spec.template.spec.containers
    pods: tuple[PodInfo, ...]
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str | None = None  # "Deployment/NAME": the ReplicaSet a Deployment made
    node_selector: dict[str, str] = field(default_factory=dict, hash=False)
    service_name: str | None = None  # StatefulSet
    ordered_ready: bool = True  # StatefulSet podManagementPolicy OrderedReady
    update_strategy: str = "RollingUpdate"
    partition: int = 0
    update_revision: str = ""  # StatefulSet: status.updateRevision
    current_revision: str = ""  # StatefulSet: status.currentRevision

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def current(self) -> int:
        """Pods created (status.replicas / currentNumberScheduled), Pending ones too."""
        return len(self.pods)

    @property
    def ready(self) -> int:
        return sum(1 for p in self.pods if pod_ready(p))

    @property
    def available(self) -> int:
        """Ready pods (minReadySeconds is 0: ready is available)."""
        return self.ready

    @property
    def updated(self) -> int:
        """Pods at the template's revision. netlab recreates the pods of a changed template
        (their names carry its hash), so all of them but a StatefulSet's older revisions."""
        if self.kind != "StatefulSet" or not self.update_revision:
            return len(self.pods)
        return sum(1 for p in self.pods
                   if p.labels.get("controller-revision-hash") == self.update_revision)

    @property
    def at_current_revision(self) -> int:
        """A StatefulSet's status.currentReplicas: pods at status.currentRevision."""
        if not self.current_revision:
            return len(self.pods)
        return sum(1 for p in self.pods
                   if p.labels.get("controller-revision-hash") == self.current_revision)

    @property
    def desired(self) -> int:
        return self.replicas

    @property
    def created(self) -> float:
        """When the lab first ran one of its pods (netlab keeps no creation time of the
        object itself); 0.0 when none runs."""
        return min((p.created for p in self.pods if p.created), default=0.0)

    @property
    def selector(self) -> str:
        return selector_text(self.match_labels, self.match_expressions)

    @property
    def container_names(self) -> str:
        return ",".join(c.name for c in self.containers)

    @property
    def images(self) -> str:
        return ",".join(c.image or "<none>" for c in self.containers)

    def to_k8s(self) -> dict[str, Any]:
        """The object shaped like `kubectl get -o json` prints it (status fields the API
        server omits when zero are omitted; observedGeneration is not kept)."""
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": dict(self.labels)}
        if self.created:
            meta["creationTimestamp"] = timestamp(self.created)
        if self.owner:
            kind, _, name = self.owner.partition("/")
            meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": kind, "name": name,
                                        "controller": True, "blockOwnerDeletion": True}]
        if self.kind == "ReplicationController":
            selector: dict[str, Any] = dict(self.match_labels)
        else:
            selector = {"matchLabels": dict(self.match_labels)}
            if self.match_expressions:
                selector["matchExpressions"] = [
                    {"key": r.key, "operator": r.operator,
                     **({"values": list(r.values)} if r.values else {})}
                    for r in self.match_expressions]
        containers = []
        for c in self.containers:
            entry: dict[str, Any] = {"name": c.name}
            if c.image:
                entry["image"] = c.image
            if c.command:
                entry["command"] = list(c.command)
            if c.args:
                entry["args"] = list(c.args)
            if c.ports:
                entry["ports"] = [{k: v for k, v in (
                    ("name", p.name), ("containerPort", p.container_port),
                    ("protocol", p.protocol)) if v is not None} for p in c.ports]
            containers.append(entry)
        pod_spec: dict[str, Any] = {"containers": containers}
        if self.node_selector:
            pod_spec["nodeSelector"] = dict(self.node_selector)
        spec: dict[str, Any] = {"selector": selector, "template": {
            "metadata": {"labels": dict(self.template_labels)}, "spec": pod_spec}}
        status: dict[str, Any]
        counts = {"replicas": self.current, "readyReplicas": self.ready,
                  "availableReplicas": self.available, "updatedReplicas": self.updated}
        if self.kind == "DaemonSet":
            spec["updateStrategy"] = {"type": "RollingUpdate"}
            status = {"currentNumberScheduled": self.current, "numberMisscheduled": 0,
                      "desiredNumberScheduled": self.desired, "numberReady": self.ready}
            status |= _nonzero({"updatedNumberScheduled": self.updated,
                                "numberAvailable": self.available,
                                "numberUnavailable": self.desired - self.available})
        elif self.kind == "StatefulSet":
            spec = {"replicas": self.replicas, "serviceName": self.service_name or "",
                    "podManagementPolicy": "OrderedReady" if self.ordered_ready
                    else "Parallel", **spec,
                    "updateStrategy": {"type": self.update_strategy, **(
                        {"rollingUpdate": {"partition": self.partition}}
                        if self.update_strategy == "RollingUpdate" else {})}}
            status = {"replicas": self.current, "availableReplicas": self.available,
                      **_nonzero({"readyReplicas": self.ready,
                                  "currentReplicas": self.at_current_revision,
                                  "updatedReplicas": self.updated})}
            if self.current_revision:
                status["currentRevision"] = self.current_revision
            if self.update_revision:
                status["updateRevision"] = self.update_revision
            status["collisionCount"] = 0
        elif self.kind == "Deployment":
            spec = {"replicas": self.replicas, **spec}
            status = _nonzero({**counts, "unavailableReplicas": max(
                self.replicas - self.available, 0)})
        else:  # ReplicaSet, ReplicationController: replicas is always there
            spec = {"replicas": self.replicas, **spec}
            status = {"replicas": self.current, **_nonzero({
                "fullyLabeledReplicas": self.current, "readyReplicas": self.ready,
                "availableReplicas": self.available})}
        return {"apiVersion": _API_VERSION.get(self.kind, "apps/v1"), "kind": self.kind,
                "metadata": meta, "spec": spec, "status": status}

def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    """omitempty, as the API server writes these counts."""
    return {k: v for k, v in counts.items() if v}

def workload_infos(plan: Plan, m: Manifests, pods: list[PodInfo], kind: str,
                   namespace: str | None = None) -> list[WorkloadInfo]:
    """The lab's objects of one workload kind (of one namespace, or all), each with the pods
    it has now (`pods`: the lab's, Pending ones among them, as Lab.pods gives them). Under
    replicasets, a Deployment's ReplicaSet (`<deployment>-<pod-template-hash>`, as the
    Deployment controller names it) beside those written as ReplicaSets."""
    from netlab.plan import REVISION_LABEL

    if kind not in WORKLOAD_KINDS:
        raise ValueError(f"not a workload kind: {kind}")
    owned: dict[tuple[str, str], list[PodInfo]] = {}
    for p in pods:
        if p.owner:
            owned.setdefault((p.namespace, p.owner), []).append(p)

    def mine(ns: str, owner: str) -> tuple[PodInfo, ...]:
        return tuple(sorted(owned.get((ns, owner), ()), key=lambda p: p.name))

    out: list[WorkloadInfo] = []
    if kind in ("Deployment", "ReplicaSet"):
        for d in m.deployments.values():
            ps = mine(d.namespace, f"Deployment/{d.name}")
            common = dict(match_labels=dict(d.selector.match_labels),
                          match_expressions=tuple(d.selector.match_expressions),
                          template_labels=dict(d.template_labels),
                          containers=tuple(d.template_spec.containers), pods=ps,
                          node_selector=dict(d.template_spec.node_selector))
            if kind == "Deployment":
                out.append(WorkloadInfo("Deployment", d.namespace, d.name, d.replicas,
                                        labels=dict(d.labels), **common))
                continue
            h = _pod_template_hash(d, ps)
            common["match_labels"] = {**common["match_labels"], "pod-template-hash": h}
            common["template_labels"] = {**common["template_labels"], "pod-template-hash": h}
            out.append(WorkloadInfo("ReplicaSet", d.namespace, f"{d.name[:46]}-{h}",
                                    d.replicas, labels=dict(common["template_labels"]),
                                    owner=f"Deployment/{d.name}", **common))
    for w in m.workloads.values():
        if w.kind != kind:
            continue
        ps = mine(w.namespace, f"{w.kind}/{w.name}")
        revisions = plan.statefulsets.get(f"{w.namespace}/{w.name}") \
            if w.kind == "StatefulSet" else None
        current_rev = revisions.current if revisions else ""
        update_rev = revisions.update if revisions else ""
        if w.kind == "StatefulSet" and not update_rev:  # a state from before revisions
            update_rev = current_rev = next(
                (p.labels[REVISION_LABEL] for p in ps if REVISION_LABEL in p.labels), "")
        out.append(WorkloadInfo(
            w.kind, w.namespace, w.name,
            len(ps) if w.kind == "DaemonSet" else w.replicas,
            dict(w.selector.match_labels), tuple(w.selector.match_expressions),
            dict(w.template_labels), tuple(w.template_spec.containers), ps,
            labels=dict(w.labels), node_selector=dict(w.template_spec.node_selector),
            service_name=w.service_name, ordered_ready=w.ordered_ready,
            update_strategy=w.update_strategy, partition=w.partition,
            update_revision=update_rev, current_revision=current_rev))
    return sorted((i for i in out if namespace is None or i.namespace == namespace),
                  key=lambda i: (i.namespace, i.name))

def _pod_template_hash(d: Any, pods: tuple[PodInfo, ...]) -> str:
    """The Deployment's pod-template-hash: as its pods are labelled, else as the plan
    computes it (netlab.plan.desired_pods)."""
    for p in pods:
        if "pod-template-hash" in p.labels:
            return p.labels["pod-template-hash"]
    from netlab.plan import _hash, _set_fields

    return _k8s_suffix(_hash([_set_fields(d.template_spec), d.template_labels], 32), 10)
