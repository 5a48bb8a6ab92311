"""Pods as the lab runs them: kubectl's READY, STATUS and RESTARTS, and the Pod API's status."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlab.views.common import timestamp


@dataclass(frozen=True)
class ContainerStatus:
    """A container as the lab's agent reports it (kubelet's containerStatuses)."""

    name: str
    command: tuple[str, ...]
    state: str  # running | waiting | terminated; "running" also for a container with no
    #             command, whose image the built-in responder stands for
    reason: str = ""  # waiting: ContainerCreating, CrashLoopBackOff...; terminated: Completed...
    exit_code: int | None = None
    pid: int | None = None
    restarts: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    message: str = ""
    last_state: dict[str, Any] = field(default_factory=dict, hash=False)
    ready: bool = False
    sidecar: bool = False  # an init container with restartPolicy Always

    @property
    def completed(self) -> bool:
        return self.state == "terminated" and self.exit_code == 0

    def to_k8s(self) -> dict[str, Any]:
        when = timestamp
        if self.state == "running":
            state: dict[str, Any] = {"running": {"startedAt": when(self.started_at)}}
        elif self.state == "waiting":
            state = {"waiting": {"reason": self.reason, "message": self.message}}
        else:
            state = {"terminated": {"exitCode": self.exit_code, "reason": self.reason,
                                    "startedAt": when(self.started_at),
                                    "finishedAt": when(self.finished_at)}}
        last = {}
        if "terminated" in self.last_state:
            t = self.last_state["terminated"]
            last = {"terminated": {"exitCode": t.get("exitCode"), "reason": t.get("reason"),
                                   "startedAt": when(t.get("startedAt", 0.0)),
                                   "finishedAt": when(t.get("finishedAt", 0.0))}}
        return {"name": self.name, "ready": self.ready, "restartCount": self.restarts,
                "started": self.state == "running", "state": state, "lastState": last}

@dataclass(frozen=True)
class PodInfo:
    """A pod as the lab runs it."""

    namespace: str
    name: str
    node: str
    ip: str
    labels: dict[str, str]
    containers: tuple[ContainerStatus, ...]
    host_ip: str
    owner: str | None = None
    created: float = 0.0  # when the lab's agent was first given the pod
    restart_policy: str = "Always"
    pending_reason: str = ""  # unschedulable (no node, no IP): kube-scheduler's message
    init_containers: tuple[ContainerStatus, ...] = ()  # spec order, sidecars among them
    # status.podIPs and status.hostIPs, one address per family, the primary first (as
    # `ip` and `host_ip` are); () = just `ip` / `host_ip`
    pod_ips: tuple[str, ...] = ()
    host_ips: tuple[str, ...] = ()

    @property
    def ips(self) -> tuple[str, ...]:
        """status.podIPs: the primary family first, as kubelet orders them."""
        return self.pod_ips or ((self.ip,) if self.ip else ())

    @property
    def ip6(self) -> str:
        """The pod's IPv6 address ("" without one)."""
        return next((a for a in self.ips if ":" in a), "")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def running_set(self) -> tuple[ContainerStatus, ...]:
        """What READY counts: the sidecars and the containers (kubectl since 1.29)."""
        return (*(c for c in self.init_containers if c.sidecar), *self.containers)

    @property
    def ready(self) -> str:
        return f"{sum(c.ready for c in self.running_set)}/{len(self.running_set)}"

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in (*self.init_containers, *self.containers))

    @property
    def initialized(self) -> bool:
        """The pod's Initialized condition: every init container completed and every sidecar
        started once, which is when its containers first started; it stays so (a sidecar
        stopped or restarting later does not undo it)."""
        return not self.init_containers or any(
            c.state != "waiting" or c.restarts for c in self.containers)

    @property
    def initializing(self) -> str | None:
        """kubectl's STATUS while init containers hold the pod back (Init:1/2,
        Init:CrashLoopBackOff, Init:Error), else None (printPod's init container loop,
        skipped once the pod is Initialized)."""
        if self.initialized:
            return None
        for i, c in enumerate(self.init_containers):
            if c.completed or (c.sidecar and c.state == "running"):
                continue
            if c.state == "terminated":
                return f"Init:{c.reason}" if c.reason else f"Init:ExitCode:{c.exit_code}"
            if c.state == "waiting" and c.reason and c.reason != "PodInitializing":
                return f"Init:{c.reason}"
            return f"Init:{i}/{len(self.init_containers)}"
        return None

    @property
    def status(self) -> str:
        """kubectl's STATUS column: the init containers' state while they run
        (Init:0/1, Init:CrashLoopBackOff), else a waiting container's reason
        (ContainerCreating, PodInitializing, CrashLoopBackOff), else Completed or Error once
        every container has ended for good, else Running; Pending for a pod no node
        accepts."""
        if self.pending_reason:
            return "Pending"
        if (init := self.initializing) is not None:
            return init
        for c in self.containers:
            if c.state == "waiting":
                return c.reason or "Waiting"
        if self.containers and all(c.state == "terminated" for c in self.containers):
            if all(c.exit_code == 0 for c in self.containers):
                return "Completed"
            return next(c.reason for c in self.containers if c.exit_code != 0) or "Error"
        return "Running"

    @property
    def phase(self) -> str:
        """Pending, Running, Succeeded or Failed (the Pod API's phase)."""
        if self.pending_reason:
            return "Pending"
        if self.restart_policy == "Never" and any(
                c.state == "terminated" and not c.completed and not c.sidecar
                for c in self.init_containers):
            return "Failed"  # an init container failed and is not restarted
        if self.initializing is not None:
            return "Pending"
        if any(c.state == "waiting" and c.reason in ("ContainerCreating", "PodInitializing")
               and not c.restarts for c in self.containers):
            return "Pending"
        if self.containers and all(c.state == "terminated" for c in self.containers):
            return "Succeeded" if all(c.exit_code == 0 for c in self.containers) else "Failed"
        return "Running"

    def to_k8s(self) -> dict[str, Any]:
        """The pod shaped like `kubectl get pod -o json`."""
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": dict(self.labels),
                                "creationTimestamp": timestamp(self.created)}
        if self.owner:
            kind, _, owner = self.owner.partition("/")
            meta["ownerReferences"] = [{"kind": kind, "name": owner}]
        ready = bool(self.containers) and all(c.ready for c in self.running_set) \
            and self.initializing is None
        if self.pending_reason:  # as the scheduler leaves an unschedulable pod
            return {
                "apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"restartPolicy": self.restart_policy,
                         "containers": [{"name": c.name, "command": list(c.command)}
                                        for c in self.containers]},
                "status": {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": self.pending_reason}]}}
        return {
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": self.node, "restartPolicy": self.restart_policy,
                     "containers": [{"name": c.name, "command": list(c.command)}
                                    for c in self.containers],
                     **({"initContainers": [
                         {"name": c.name, "command": list(c.command),
                          **({"restartPolicy": "Always"} if c.sidecar else {})}
                         for c in self.init_containers]} if self.init_containers else {})},
            "status": {
                "phase": self.phase, "podIP": self.ip,
                "podIPs": [{"ip": ip} for ip in self.ips], "hostIP": self.host_ip,
                "hostIPs": [{"ip": ip} for ip in self.host_ips or (self.host_ip,) if ip],
                "conditions": [
                    {"type": "Initialized", "status": str(self.initialized)},
                    {"type": "Ready", "status": str(ready)},
                    {"type": "ContainersReady", "status": str(ready)}],
                "containerStatuses": [c.to_k8s() for c in self.containers],
                **({"initContainerStatuses": [c.to_k8s() for c in self.init_containers]}
                   if self.init_containers else {})},
        }

def pod_ready(p: PodInfo) -> bool:
    """The pod's Ready condition (what a controller's readyReplicas counts): initialized and
    every container (sidecars too) ready; never for a Pending pod."""
    return (not p.pending_reason and bool(p.containers) and p.initializing is None
            and all(c.ready for c in p.running_set))
