"""What the API returns: plain results and views of a lab's objects, each able to show itself
as Kubernetes would (`to_k8s`: the object as `kubectl get -o json` prints it). Pure: no
kernel, no state file."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from netlab.jobs import JobPlan, index_ranges
from netlab.model import Manifests
from netlab.plan import Plan, _k8s_suffix


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
        when = _timestamp
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


def _timestamp(t: float | None) -> str | None:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None


def age(seconds: float) -> str:
    """kubectl's AGE: 45s, 3m12s, 2h5m, 4d3h."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m" if s < 36000 else f"{s // 3600}h"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


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
    ip6: str = ""  # dual-stack: the pod's IPv6 address
    host_ip6: str = ""  # dual-stack: its node's IPv6 address

    @property
    def ips(self) -> tuple[str, ...]:
        """status.podIPs: the primary family (IPv4) first, as kubelet orders them."""
        return (self.ip, *([self.ip6] if self.ip6 else []))

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
                                "creationTimestamp": _timestamp(self.created)}
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
                "hostIPs": [{"ip": ip} for ip in (self.host_ip, self.host_ip6) if ip],
                "conditions": [
                    {"type": "Initialized", "status": str(self.initialized)},
                    {"type": "Ready", "status": str(ready)},
                    {"type": "ContainersReady", "status": str(ready)}],
                "containerStatuses": [c.to_k8s() for c in self.containers],
                **({"initContainerStatuses": [c.to_k8s() for c in self.init_containers]}
                   if self.init_containers else {})},
        }


@dataclass(frozen=True)
class NodeInfo:
    name: str
    internal_ip: str
    pod_cidr: str
    gateway: str
    backend: str
    vtep_mac: str | None
    pods: int
    labels: dict[str, str] = field(default_factory=dict, hash=False)  # scheduling.node_labels
    # dual-stack: the IPv6 side ("" in a single-stack lab)
    internal_ip6: str = ""
    pod_cidr6: str = ""
    vtep_mac6: str | None = None

    def to_k8s(self) -> dict[str, Any]:
        annotations = {"flannel.alpha.coreos.com/backend-type": self.backend,
                       "flannel.alpha.coreos.com/public-ip": self.internal_ip}
        if self.vtep_mac:
            annotations["flannel.alpha.coreos.com/backend-data"] = (
                f'{{"VNI":1,"VtepMAC":"{self.vtep_mac}"}}')
        if self.internal_ip6:  # flannel publishes the IPv6 side apart
            annotations["flannel.alpha.coreos.com/public-ipv6"] = self.internal_ip6
            if self.vtep_mac6:
                annotations["flannel.alpha.coreos.com/backend-v6-data"] = (
                    f'{{"VNI":1,"VtepMAC":"{self.vtep_mac6}"}}')
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name,
                         "labels": dict(self.labels) or {"kubernetes.io/hostname": self.name},
                         "annotations": annotations},
            "spec": {"podCIDR": self.pod_cidr,
                     "podCIDRs": [self.pod_cidr, *([self.pod_cidr6] if self.pod_cidr6 else [])]},
            "status": {"addresses": [{"type": "InternalIP", "address": self.internal_ip},
                                     *([{"type": "InternalIP", "address": self.internal_ip6}]
                                       if self.internal_ip6 else []),
                                     {"type": "Hostname", "address": self.name}],
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class PingResult:
    src: str
    dst: str
    dst_ip: str
    transmitted: int
    received: int
    output: str
    returncode: int

    @property
    def ok(self) -> bool:
        return self.received > 0 and self.received == self.transmitted


@dataclass(frozen=True)
class LabStatus:
    name: str
    phase: str  # ready | creating | broken (namespaces without state)
    backend: str | None = None
    nodes: int = 0
    pods: int = 0
    namespaces: int = 0  # network namespaces on this machine
    warnings: tuple[str, ...] = field(default=())
    agent_pid: int | None = None  # the lab's agent, when it runs

    @property
    def agent(self) -> str:
        return f"running (pid {self.agent_pid})" if self.agent_pid else "not running"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "phase": self.phase, "backend": self.backend,
                "nodes": self.nodes, "pods": self.pods, "netns": self.namespaces,
                "agent": {"running": bool(self.agent_pid), "pid": self.agent_pid}}


def _host_port(ep: Any) -> str:
    """ip:port, an IPv6 address in brackets (net.JoinHostPort, as kubectl prints it)."""
    return f"[{ep.ip}]:{ep.port}" if ":" in ep.ip else f"{ep.ip}:{ep.port}"


@dataclass(frozen=True)
class ServiceInfo:
    """A Service as the lab runs it: its addresses and, per port, its endpoints."""

    namespace: str
    name: str
    type: str
    cluster_ip: str | None
    external_ip: str | None  # the LoadBalancer address
    announced_by: str | None  # the node answering ARP for it
    selector: dict[str, str] | None
    ports: tuple[Any, ...]  # features.services.ServicePortPlan
    external_name: str | None = None
    external_traffic_policy: str = "Cluster"
    internal_traffic_policy: str = "Cluster"
    affinity_timeout: int | None = None
    not_ready_reasons: dict[str, str] = field(default_factory=dict, hash=False)  # pod -> why
    endpoint_objects: tuple[str, ...] = ()  # no selector: the objects its endpoints come from
    pending: dict[str, str] = field(default_factory=dict, hash=False)  # selected pod -> why
    # dual-stack: spec.ipFamilies (the first is the primary: `cluster_ip` is its address,
    # spec.clusterIP), spec.ipFamilyPolicy, spec.clusterIPs (in ipFamilies order)
    ip_families: tuple[str, ...] = ("IPv4",)
    ip_family_policy: str | None = "SingleStack"
    cluster_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()  # every LoadBalancer address, in ipFamilies order

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def primary_family(self) -> str:
        return self.ip_families[0] if self.ip_families else "IPv4"

    def _family(self, p: Any, ready: bool, family: str | None = None) -> tuple[Any, ...]:
        """A port's endpoints (ready or not) of one family, by default the primary one (the
        Endpoints object and the ENDPOINTS column show those, as the endpoints controller
        fills them)."""
        if (family or self.primary_family) == "IPv6":
            return getattr(p, "endpoints6" if ready else "not_ready6", ())
        return p.endpoints if ready else p.not_ready

    @property
    def not_ready(self) -> list[str]:
        """Distinct ip:port of the selected pods that are not ready (notReadyAddresses)."""
        return sorted({_host_port(ep) for p in self.ports for ep in self._family(p, False)})

    @property
    def endpoints(self) -> list[str]:
        """Distinct ip:port of every endpoint, over all ports."""
        return sorted({_host_port(ep) for p in self.ports for ep in self._family(p, True)})

    def to_k8s(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type, "ports": []}
        if self.type == "ExternalName":
            spec["externalName"] = self.external_name
        else:
            spec["clusterIP"] = self.cluster_ip or "None"
            spec["clusterIPs"] = list(self.cluster_ips) or [self.cluster_ip or "None"]
            spec["ipFamilies"] = list(self.ip_families)
            spec["ipFamilyPolicy"] = self.ip_family_policy
        if self.selector is not None:
            spec["selector"] = dict(self.selector)
        for p in self.ports:
            port = {"name": p.name, "port": p.port, "protocol": p.protocol,
                    "targetPort": p.target}
            if p.node_port:
                port["nodePort"] = p.node_port
            spec["ports"].append({k: v for k, v in port.items() if v is not None})
        spec["sessionAffinity"] = "ClientIP" if self.affinity_timeout else "None"
        if self.type in ("NodePort", "LoadBalancer"):
            spec["externalTrafficPolicy"] = self.external_traffic_policy
        spec["internalTrafficPolicy"] = self.internal_traffic_policy
        status: dict[str, Any] = {"loadBalancer": {}}
        if self.external_ip:
            status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}
                                                  for ip in self.lb_ips or (self.external_ip,)]}
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec, "status": status}

    def endpoints_k8s(self) -> dict[str, Any]:
        """The Service's Endpoints object, as `kubectl get endpoints -o json` shows it:
        ready pods under addresses, the others under notReadyAddresses (an address outside
        the cluster, from a Service without a selector, has no targetRef)."""
        by_pod: dict[str, list] = {}
        pods: dict[str, tuple[Any, bool]] = {}
        for p in self.ports:
            for ready, eps in ((True, self._family(p, True)), (False, self._family(p, False))):
                for ep in eps:
                    by_pod.setdefault(ep.pod or ep.ip, []).append(
                        {k: v for k, v in (("name", p.name), ("port", ep.port),
                                           ("protocol", p.protocol)) if v is not None})
                    pods[ep.pod or ep.ip] = (ep, ready)
        subsets: dict[str, dict] = {}
        for pod, ports in sorted(by_pod.items()):
            ep, ready = pods[pod]
            subset = subsets.setdefault(repr(ports), {"ports": ports})
            address: dict[str, Any] = {"ip": ep.ip}
            if ep.node:
                address["nodeName"] = ep.node
            if ep.pod:
                ns, name = ep.pod.split("/")
                address["targetRef"] = {"kind": "Pod", "namespace": ns, "name": name}
            subset.setdefault("addresses" if ready else "notReadyAddresses", []).append(address)
        return {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "subsets": list(subsets.values())}

    def why_no_endpoints(self) -> str | None:
        """For a person: why this Service has no endpoints, or None if it has some."""
        if self.type == "ExternalName" or self.endpoints:
            return None
        if self.selector is None:
            return self._why_no_manual_endpoints()
        waiting = sorted({ep.pod or ep.ip for p in self.ports for ep in self._family(p, False)})
        if waiting:
            why = "; ".join(f"pod {pod} not ready: {self.not_ready_reasons.get(pod) or '?'}"
                            for pod in waiting)
            return f"Service {self.key} has no ready endpoints: {why}"
        if self.pending:  # selected pods that no node accepts
            why = "; ".join(f"pod {pod} is Pending: {reason}"
                            for pod, reason in sorted(self.pending.items()))
            return (f"Service {self.key} has no endpoints: the pods it selects are not "
                    f"scheduled: {why}")
        wanted = ",".join(f"{k}={v}" for k, v in self.selector.items())
        return (f"Service {self.key} has no endpoints: no pod in namespace {self.namespace} "
                f"has labels {wanted}" + ("" if self.ports and all(
                    isinstance(p.target, int) for p in self.ports) else
                    " (or none declares the named targetPort)"))


    def _why_no_manual_endpoints(self) -> str:
        if not self.endpoint_objects:
            return (f"Service {self.key} has no selector and no Endpoints/EndpointSlice "
                    "objects")
        objects = ", ".join(self.endpoint_objects)
        waiting = sorted({ep.pod or ep.ip for p in self.ports for ep in self._family(p, False)})
        if waiting:
            return (f"Service {self.key} has no selector and no ready endpoints: {objects} "
                    f"mark {', '.join(waiting)} not ready")
        names = ", ".join(f"{p.name or '(unnamed)'}/{p.protocol}" for p in self.ports)
        return (f"Service {self.key} has no selector and {objects} list no address on a port "
                f"named as the Service's ({names}): a port is matched by its name")

    def endpoint_slices(self) -> list[EndpointSliceInfo]:
        """The EndpointSlices kube-proxy reads for this Service, as the lab computed them:
        one per distinct set of ports (named targetPorts can differ per pod), as the
        EndpointSlice controller makes them. A Service without a selector gets one slice
        merging its Endpoints/EndpointSlice objects. Dual-stack: slices per family of the
        Service (addressType IPv4, IPv6), as getAddressTypesForService makes them."""
        if self.type == "ExternalName" or (self.selector is None and not self.endpoint_objects):
            return []
        return [sl for family in self.ip_families for sl in self._slices(family)]

    def _slices(self, family: str) -> list[EndpointSliceInfo]:
        addresses: dict[str, tuple[Any, dict[tuple[str, int, str], bool]]] = {}
        for p in self.ports:
            for ready in (True, False):
                for ep in self._family(p, ready, family):
                    entry = addresses.setdefault(ep.ip, (ep, {}))
                    entry[1][(p.name or "", ep.port, p.protocol)] = ready
        groups: dict[tuple, list[tuple[Any, bool]]] = {}
        for ip in sorted(addresses, key=ipaddress.ip_address):
            ep, ports = addresses[ip]
            groups.setdefault(tuple(sorted(ports)), []).append((ep, all(ports.values())))
        if not groups and self.selector is not None:  # the controller keeps an empty slice
            groups[()] = []
        managed = ("endpointslice-controller.k8s.io" if self.selector is not None else
                   "endpointslicemirroring-controller.k8s.io"
                   if all(o.startswith("Endpoints ") for o in self.endpoint_objects)
                   else "netlab")
        tag = "" if family == "IPv4" else f"/{family}"  # (IPv4 names as before dual-stack)
        return [EndpointSliceInfo(
            self.namespace, f"{self.name}-{_k8s_suffix(f'{self.key}/{ports}{tag}', 5)}",
            self.name, managed, ports, tuple(eps), self.endpoint_objects, family)
            for ports, eps in groups.items()]


@dataclass(frozen=True)
class EndpointSliceInfo:
    """One EndpointSlice of a Service (discovery.k8s.io/v1)."""

    namespace: str
    name: str  # <service>-<hash>
    service: str
    managed_by: str
    ports: tuple[tuple[str, int, str], ...]  # (name, port, protocol)
    endpoints: tuple[tuple[Any, bool], ...]  # (plan.Endpoint, ready)
    merged_from: tuple[str, ...] = ()
    address_type: str = "IPv4"

    def to_k8s(self) -> dict[str, Any]:
        endpoints = []
        for ep, ready in self.endpoints:
            e: dict[str, Any] = {"addresses": [ep.ip], "conditions": {
                "ready": ready, "serving": ready, "terminating": False}}
            if ep.node:
                e["nodeName"] = ep.node
            if ep.pod:
                ns, name = ep.pod.split("/")
                e["targetRef"] = {"kind": "Pod", "namespace": ns, "name": name}
            endpoints.append(e)
        meta: dict[str, Any] = {
            "name": self.name, "namespace": self.namespace,
            "labels": {"kubernetes.io/service-name": self.service,
                       "endpointslice.kubernetes.io/managed-by": self.managed_by},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": self.service,
                                 "controller": True, "blockOwnerDeletion": True}]}
        if self.merged_from:
            meta["annotations"] = {"netlab.dev/merged-from": ", ".join(self.merged_from)}
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": meta, "addressType": self.address_type,
                "endpoints": endpoints or None,
                "ports": [{"name": n, "port": port, "protocol": proto}
                          for n, port, proto in self.ports] or None}


@dataclass(frozen=True)
class IngressInfo:
    namespace: str
    name: str
    class_name: str | None
    hosts: list[str]
    address: str | None  # the controller's LoadBalancer address, when this lab serves it
    ports: list[int]
    rules: list[tuple[str, str | None, str, str]]  # host, path, pathType, backend
    tls_hosts: list[str]
    problems: list[str]

    def to_k8s(self) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"ingressClassName": self.class_name,
                         "rules": [{"host": h, "path": p, "pathType": t, "backend": b}
                                   for h, p, t, b in self.rules]},
                "status": {"loadBalancer": {"ingress": [{"ip": self.address}]}
                           if self.address else {}},
                "netlab": {"problems": self.problems, "tlsHosts": self.tls_hosts}}


def service_info(s: Any, plan: Plan | None = None) -> ServiceInfo:
    reasons: dict[str, str] = {}
    if plan is not None:
        reasons = {ep.pod: plan.pods[ep.pod].not_ready_reason for p in s.ports
                   for ep in (*p.not_ready, *getattr(p, "not_ready6", ())) if ep.pod in plan.pods}
    pending = {k: pp.reason for k, pp in (plan.pending if plan is not None else {}).items()
               if s.selector and pp.namespace == s.namespace
               and all(pp.labels.get(a) == b for a, b in s.selector.items())}
    cluster_ips = tuple(getattr(s, "cluster_ips", None) or ([s.cluster_ip] if s.cluster_ip else []))
    lb_ips = tuple(getattr(s, "lb_ips", ())) or ((s.lb_ip,) if s.lb_ip else ())
    return ServiceInfo(s.namespace, s.name, s.type, cluster_ips[0] if cluster_ips else None,
                       lb_ips[0] if lb_ips else None, s.announcer,
                       s.selector, s.ports, s.external_name, s.external_traffic_policy,
                       s.internal_traffic_policy, s.affinity_timeout, reasons,
                       tuple(getattr(s, "endpoint_objects", ())), pending,
                       tuple(getattr(s, "ip_families", ("IPv4",))),
                       getattr(s, "ip_family_policy", "SingleStack"), cluster_ips, lb_ips)


@dataclass(frozen=True)
class NamespaceInfo:
    """A namespace of the lab (declared, built in, or created because something used it)."""

    name: str
    labels: dict[str, str]

    def to_k8s(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.name, "labels": dict(self.labels)},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def ingress_infos(plan: Plan, m: Manifests, namespace: str | None = None) -> list[IngressInfo]:
    """Ingress objects with their rules, backends, the controller's address, and problems
    that keep some of them from being served (from the same rendering nginx gets)."""
    from pathlib import Path

    from netlab.features import ingress

    cfg = ingress.render(plan, m, Path("/"))
    controller = plan.services.get(f"{ingress.NAMESPACE}/{ingress.SERVICE}")
    out = []
    for ing in sorted(m.ingresses.values(), key=lambda i: (i.namespace, i.name)):
        if namespace is not None and ing.namespace != namespace:
            continue
        key = f"{ing.namespace}/{ing.name}"
        served = ingress.why_not_served(ing, m, plan.cluster) is None
        rules = [(r.host or "*", r.path, r.path_type, _backend_text(ing, r))
                 for r in cfg.routes if r.ingress == key]
        if ing.default_backend is not None:
            b = ing.default_backend
            rules.append(("*", "(default)", "-", f"{b.service}:{b.port_number or b.port_name}"
                          if b.service else b.resource or ""))
        hosts = sorted({r.host for r in ing.rules if r.host}) or ["*"]
        tls_hosts = sorted({h for t in ing.tls for h in t.hosts})
        out.append(IngressInfo(
            ing.namespace, ing.name, ingress.assigned_class(ing, m), hosts,
            controller.lb_ip if (served and controller) else None,
            [80, 443] if tls_hosts else [80], rules, tls_hosts,
            [w for w in cfg.warnings if w.startswith(f"Ingress {key}:")]))
    return out


@dataclass(frozen=True)
class IngressClassInfo:
    """An IngressClass: the controller that implements Ingresses of the class, and whether
    the lab's controller (ingress-nginx) serves it."""

    name: str
    controller: str
    parameters: dict[str, str] | None  # apiGroup, kind, name, scope, namespace as written
    is_default: bool
    served: bool
    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def parameters_text(self) -> str:
        """kubectl's PARAMETERS column: Kind[.apiGroup]/name, or <none>."""
        p = self.parameters
        if not p:
            return "<none>"
        group = f".{p['apiGroup']}" if p.get("apiGroup") else ""
        return f"{p['kind']}{group}/{p['name']}"

    def to_k8s(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name}
        if self.labels:
            meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        spec: dict[str, Any] = {"controller": self.controller}
        if self.parameters:
            spec["parameters"] = dict(self.parameters)
        return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": meta, "spec": spec, "netlab": {"served": self.served}}


def ingress_class_infos(plan: Plan, m: Manifests) -> list[IngressClassInfo]:
    """The lab's IngressClass objects, by name."""
    from netlab.features import ingress

    ours = set(ingress.served_classes(m, plan.cluster))
    out = []
    for c in sorted(m.ingress_classes.values(), key=lambda c: c.name):
        p = c.parameters
        params = None if p is None else {k: v for k, v in (
            ("apiGroup", p.api_group), ("kind", p.kind), ("name", p.name),
            ("scope", p.scope), ("namespace", p.namespace)) if v is not None}
        out.append(IngressClassInfo(c.name, c.controller, params, c.is_default,
                                    c.name in ours, dict(c.labels), dict(c.annotations)))
    return out


def _backend_text(ing: Any, route: Any) -> str:
    if route.upstream is None:
        return "(503: see problems)"
    for r in ing.rules:
        for p in r.paths:
            if (r.host, (p.path or "/").rstrip("/") or "/") == (route.host, route.path):
                b = p.backend
                return f"{b.service}:{b.port_number or b.port_name}"
    return route.upstream


def node_infos(plan: Plan) -> list[NodeInfo]:
    from netlab.scheduling import node_labels

    specs = {n.name: n for n in plan.cluster.nodes}
    counts: dict[str, int] = {}
    for p in plan.pods.values():
        counts[p.node] = counts.get(p.node, 0) + 1
    vxlan = plan.cluster.backend == "vxlan"
    return [NodeInfo(n.name, n.underlay_ip, n.pod_cidr, n.gateway, plan.cluster.backend,
                     n.vtep_mac if vxlan else None, counts.get(n.name, 0),
                     node_labels(specs[n.name]) if n.name in specs else {},
                     n.underlay_ip6, n.pod_cidr6, n.vtep_mac6 if vxlan and n.vtep_mac6 else None)
            for n in plan.nodes]


def namespace_infos(plan: Plan) -> list[NamespaceInfo]:
    """The lab's namespaces with their labels (`default` and `kube-system` always exist)."""
    known = dict(plan.namespaces)
    for key in [*plan.pods, *plan.services]:  # a state written before namespaces were kept
        ns = key.split("/")[0]
        known.setdefault(ns, {"kubernetes.io/metadata.name": ns})
    return [NamespaceInfo(n, dict(labels)) for n, labels in sorted(known.items())]


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
            status["startTime"] = _timestamp(j.start_time)
        if j.completion_time and j.condition and j.condition.type == "Complete":
            status["completionTime"] = _timestamp(j.completion_time)
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
                 "lastProbeTime": _timestamp(c.time), "lastTransitionTime": _timestamp(c.time)}
                for t in (first, c.type)]
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": j.name, "namespace": j.namespace, "labels": dict(j.labels),
                             "creationTimestamp": _timestamp(j.start_time)},
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


def pod_ready(p: PodInfo) -> bool:
    """The pod's Ready condition (what a controller's readyReplicas counts): initialized and
    every container (sidecars too) ready; never for a Pending pod."""
    return (not p.pending_reason and bool(p.containers) and p.initializing is None
            and all(c.ready for c in p.running_set))


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
            meta["creationTimestamp"] = _timestamp(self.created)
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


def no_controller_message(m: Manifests, cluster: Any, host: str | None = None) -> str:
    """Why the lab has no ingress controller to send a request to, for a person: each
    Ingress (those with a rule for `host` when some have one) with its class and how it got
    it (ingressClassName, the legacy annotation, the default IngressClass) and why that class
    is not served, as `get ingresses` reports it; or that there is no Ingress at all."""
    from netlab.features import ingress

    served = ", ".join(repr(c) for c in ingress.served_classes(m, cluster))
    ings = sorted(m.ingresses.values(), key=lambda i: (i.namespace, i.name))
    if not ings:
        return ("the lab has no ingress controller: it starts with the first Ingress of a class "
                f"it serves ({served}), and the lab has no Ingress")
    for_host = [i for i in ings if host and any(r.host == host for r in i.rules)]
    lines = []
    for i in for_host or ings:
        why = ingress.why_not_served(i, m, cluster) or "served"
        lines.append(f"Ingress {i.namespace}/{i.name} ({_class_origin(i, m)}): {why}")
    return ("the lab has no ingress controller: no Ingress is of a class it serves "
            f"({served}). " + "; ".join(lines))


def _class_origin(ing: Any, m: Manifests) -> str:
    """The Ingress's class and where it comes from."""
    from netlab.features import ingress

    if ing.class_name is not None:
        return f"class {ing.class_name!r} from spec.ingressClassName"
    legacy = ing.annotations.get(ingress.LEGACY_INGRESS_CLASS)
    if legacy is not None:
        return f"class {legacy!r} from the annotation {ingress.LEGACY_INGRESS_CLASS}"
    defaults = ingress.default_classes(m)
    if len(defaults) == 1:
        return f"class {defaults[0].name!r}, the default IngressClass"
    if defaults:
        return "no class: several IngressClasses are marked default"
    return "no class: no ingressClassName, no annotation, no default IngressClass"
