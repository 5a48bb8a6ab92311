"""Planning: the model -> a Plan (which node each pod runs on, its address, its devices).

Pure and deterministic. Given the previous plan of a running lab, pods that did not
change keep their node and address (host-local IPAM: an address is never reused while
its pod exists), so `up` is simply planning against an empty lab.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from typing import Any

from netlab import names, scheduling
from netlab.errors import InputError
from netlab.model import Cluster, Manifests, Pod, PodSpec, Workload

K8S_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes' generated names


@dataclass(frozen=True)
class NodePlan:
    name: str
    number: int  # 1-based position in the Cluster document
    netns: str
    underlay_ip: str
    pod_cidr: str
    gateway: str  # .1 of pod_cidr, on cni0
    vtep_ip: str  # .0 of pod_cidr, on flannel.1 (vxlan backend)
    vtep_mac: str
    fabric_port: str


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PodPlan:
    namespace: str
    name: str
    node: str
    ip: str
    netns: str
    veth: str
    veth_index: int
    hostname: str
    labels: dict[str, str] = field(hash=False)
    containers: tuple[ContainerPlan, ...] = ()
    spec_hash: str = ""
    owner: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    container_ports: tuple[tuple[str, int], ...] = ()  # (protocol, number)
    named_ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, number)
    serves: tuple[tuple[str, int], ...] = ()  # what the responder answers on (services.py)
    subdomain: str | None = None
    dns_policy: str = "ClusterFirst"
    dns_config: dict | None = field(default=None, hash=False)
    restart_policy: str = "Always"
    readiness_probed: bool = False  # a container has a readiness probe: not ready until it passes
    ready: bool = True  # counted as an endpoint (the agent's readiness, see compile)
    not_ready_reason: str = ""
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # spec.hostAliases: /etc/hosts

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Endpoint:
    """Where a Service port sends traffic. A pod's address (pod and node set), or, for a
    Service without a selector, any address its Endpoints/EndpointSlices list: outside
    the cluster (the internet or external host) there is no pod, and no node unless the
    object named one (nodeName)."""

    pod: str | None  # namespace/name; None for an address that is no pod of the lab
    ip: str
    node: str | None  # None: on no node of the lab (never local to a node)
    port: int

    @property
    def label(self) -> str:
        """For a person: the pod, or the address."""
        return self.pod or self.ip


@dataclass(frozen=True)
class ServicePortPlan:
    name: str | None
    protocol: str
    port: int
    target: int | str
    node_port: int | None
    endpoints: tuple[Endpoint, ...] = ()
    not_ready: tuple[Endpoint, ...] = ()  # selected pods that are not ready (notReadyAddresses)

    @property
    def label(self) -> str:
        return self.name or str(self.port)


@dataclass(frozen=True)
class ServicePlan:
    namespace: str
    name: str
    type: str
    cluster_ip: str | None  # None for headless and ExternalName
    ports: tuple[ServicePortPlan, ...]
    selector: dict[str, str] | None = field(default=None, hash=False)
    lb_ip: str | None = None
    announcer: str | None = None  # node answering ARP for lb_ip
    affinity_timeout: int | None = None  # seconds, with sessionAffinity ClientIP
    external_traffic_policy: str = "Cluster"
    internal_traffic_policy: str = "Cluster"
    external_name: str | None = None
    publish_not_ready: bool = False
    # a Service without a selector: the Endpoints/EndpointSlice objects its endpoints come
    # from ("Endpoints NAME", "EndpointSlice NAME")
    endpoint_objects: tuple[str, ...] = field(default=(), hash=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        return self.cluster_ip is None and self.type != "ExternalName"


@dataclass(frozen=True)
class PendingPod:
    """A pod no node accepts (nodeSelector, required node affinity, or the nodes it may
    use are full): Pending with kube-scheduler's reason, with no node, no address, no
    namespace. Not in Plan.pods."""

    namespace: str
    name: str
    reason: str  # "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/..."
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str | None = None
    containers: tuple[str, ...] = ()  # container names
    restart_policy: str = "Always"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Plan:
    lab: str
    cluster: Cluster
    nodes: list[NodePlan]
    pods: dict[str, PodPlan]
    underlay_gateway: str
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> labels
    services: dict[str, ServicePlan] = field(default_factory=dict)
    external_ip: str = ""  # the `external` client host on the underlay
    internet_ip: str = ""  # the `internet` host (its underlay side is underlay_gateway)
    pending: dict[str, PendingPod] = field(default_factory=dict)  # unschedulable pods

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)

    def to_json(self) -> dict:
        data = _plain(self)
        data["cluster"].pop("source", None)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        from netlab.model import NodeSpec

        c = dict(data["cluster"])
        c["nodes"] = tuple(NodeSpec(**n) for n in c["nodes"])
        pods = {}
        for k, p in data["pods"].items():
            p = dict(p)
            p["containers"] = tuple(ContainerPlan(c_["name"], tuple(c_["argv"]),
                                                  tuple(map(tuple, c_["env"])))
                                    for c_ in p["containers"])
            for f in ("container_ports", "named_ports", "serves"):
                p[f] = tuple(map(tuple, p.get(f, ())))
            p["host_aliases"] = tuple((ip, tuple(h)) for ip, h in p.get("host_aliases", ()))
            pods[k] = PodPlan(**p)
        services = {}
        for k, s in data.get("services", {}).items():
            ports = tuple(ServicePortPlan(**{
                **p, "endpoints": tuple(Endpoint(**e) for e in p["endpoints"]),
                "not_ready": tuple(Endpoint(**e) for e in p.get("not_ready", ()))})
                for p in s["ports"])
            services[k] = ServicePlan(**{**s, "ports": ports, "endpoint_objects": tuple(
                s.get("endpoint_objects", ()))})
        return cls(data["lab"], Cluster(**c), [NodePlan(**n) for n in data["nodes"]], pods,
                   data["underlay_gateway"], data.get("namespaces", {}), services,
                   data.get("external_ip", ""), data.get("internet_ip", ""),
                   pending={k: PendingPod(**{**v, "containers": tuple(v.get("containers", ()))})
                            for k, v in data.get("pending", {}).items()})


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(v: Any) -> Any:
    """A dataclass as JSON-ready data, like dataclasses.asdict but without its deep copies
    (a state file of 1,000 Services is written on every change)."""
    cls = type(v)
    if cls in (str, int, float, bool, type(None)):
        return v
    if is_dataclass(v):
        names = _FIELDS.get(cls)
        if names is None:
            names = _FIELDS[cls] = tuple(f.name for f in fields(v))
        return {n: _plain(getattr(v, n)) for n in names}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _hash(obj: object, n: int) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def _k8s_suffix(seed: str, n: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(K8S_ALPHANUMS[b % len(K8S_ALPHANUMS)] for b in digest[:n])


def _set_fields(obj: Any) -> Any:
    """A dataclass as data without the fields left at their defaults, so that a field netlab
    learns to model later does not rename every pod (Kubernetes hashes what was set)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in fields(obj):
            value = getattr(obj, f.name)
            if f.default is not MISSING and value == f.default:
                continue
            if f.default_factory is not MISSING and value == f.default_factory():
                continue
            out[f.name] = _set_fields(value)
        return out
    if isinstance(obj, list | tuple):
        return [_set_fields(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _set_fields(v) for k, v in obj.items()}
    return obj


def spec_hash(spec: PodSpec) -> str:
    return _hash(_set_fields(spec), 16)


def workload_pods(w: Workload, cluster: Cluster) -> list[Pod]:
    """The pods of a ReplicaSet, ReplicationController, Job (`<name>-<5 chars>`), DaemonSet
    (one per node, pinned with nodeName) or StatefulSet (`<name>-<ordinal>`, hostname and
    subdomain = serviceName), with stable, deterministic names."""
    base = w.name[: 63 - 6].rstrip(".")
    owner = f"{w.kind}/{w.name}"
    if w.kind == "StatefulSet":
        out = []
        for i in range(w.replicas):
            name = f"{w.name}-{i}"
            spec = replace(w.template_spec, hostname=name,
                           subdomain=w.service_name or w.template_spec.subdomain)
            labels = {**w.template_labels, "statefulset.kubernetes.io/pod-name": name,
                      "apps.kubernetes.io/pod-index": str(i)}
            out.append(Pod(w.namespace, name, spec, labels, dict(w.template_annotations),
                           owner, w.source))
        return out
    if w.kind == "DaemonSet":  # the nodes its nodeSelector and node affinity accept
        from netlab.scheduling import accepts

        out = []
        for n in cluster.nodes:
            if not accepts(w.template_spec, n):
                continue
            name = f"{base}-{_k8s_suffix(f'{owner}/{w.namespace}/{n.name}', 5)}"
            spec = replace(w.template_spec, node_name=n.name)
            out.append(Pod(w.namespace, name, spec, dict(w.template_labels),
                           dict(w.template_annotations), owner, w.source))
        return out
    return [Pod(w.namespace, f"{base}-{_k8s_suffix(f'{owner}/{w.namespace}/{i}', 5)}",
                w.template_spec, dict(w.template_labels), dict(w.template_annotations), owner,
                w.source) for i in range(w.replicas)]


def ordered_ready(pods: list[Pod], m: Manifests, readiness: dict[str, tuple[bool, str]] | None,
                  previous: Plan | None) -> list[Pod]:
    """StatefulSet podManagementPolicy OrderedReady: pod N+1 is planned only once pods
    0..N are ready (as the lab's agent reports; not reported = not ready). Pods the lab
    already has stay. The agent converges the lab when readiness changes, so the next
    pod comes then."""
    ready = readiness or {}

    def ordered(p: Pod) -> bool:
        kind, _, name = (p.owner or "").partition("/")
        w = m.workloads.get(f"{kind}/{p.namespace}/{name}")
        return kind == "StatefulSet" and w is not None and w.ordered_ready

    blocked: set[str] = set()  # "namespace/StatefulSet name" whose next ordinal waits
    out = []
    for p in sorted(pods, key=lambda p: (p.namespace, p.owner or "", _ordinal(p))):
        gate = f"{p.namespace}/{p.owner}"
        if not ordered(p) or (previous is not None and p.key in previous.pods):
            out.append(p)
            if ordered(p) and not ready.get(p.key, (False, ""))[0]:
                blocked.add(gate)
            continue
        if gate in blocked:
            continue
        out.append(p)
        if not ready.get(p.key, (False, ""))[0]:
            blocked.add(gate)
    return out


def _ordinal(p: Pod) -> int:
    tail = p.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def desired_pods(m: Manifests, cluster: Cluster | None = None) -> list[Pod]:
    """Pods as declared, plus the replicas of every Deployment, with stable names
    `<deployment>-<template hash>-<5 chars>` (like a ReplicaSet's, but deterministic), and
    the pods of the other workload kinds (workload_pods)."""
    pods = list(m.pods.values())
    for w in m.workloads.values():
        pods.extend(workload_pods(w, cluster or m.cluster or Cluster()))
    for d in m.deployments.values():
        template_hash = _k8s_suffix(_hash([_set_fields(d.template_spec), d.template_labels],
                                          32), 10)
        base = d.name[: 63 - 17].rstrip(".")  # a dotted name cut before its dot: no ".-"
        for i in range(d.replicas):
            name = f"{base}-{template_hash}-{_k8s_suffix(f'{d.namespace}/{d.name}/{i}', 5)}"
            labels = {**d.template_labels, "pod-template-hash": template_hash}
            pods.append(Pod(d.namespace, name, d.template_spec, labels,
                            dict(d.template_annotations), f"Deployment/{d.name}", d.source))
    if m.label_overrides:  # `netlab label` on a running lab, over what the manifests say
        relabelled = []
        for p in pods:
            changes = m.label_overrides.get(p.key)
            if changes:
                labels = {k: v for k, v in {**p.labels, **changes}.items() if v is not None}
                p = Pod(p.namespace, p.name, p.spec, labels, p.annotations, p.owner, p.source)
            relabelled.append(p)
        pods = relabelled
    seen: dict[str, Pod] = {}
    for p in pods:
        if p.key in seen:
            raise InputError(f"pod name {p.name!r} is also generated by "
                             f"{seen[p.key].owner or 'a Pod document'}",
                             file=p.source.file if p.source else None,
                             obj=f"{p.owner or 'Pod'} {p.namespace}/{p.name}")
        seen[p.key] = p
    return sorted(pods, key=lambda p: (p.namespace, p.name))


def node_cidrs(cluster: Cluster) -> dict[str, ipaddress.IPv4Network]:
    """A pod CIDR per node: a node's own podCIDR, else the next free /mask block of the
    cluster podCIDR in node order (as kube-controller-manager's range allocator does)."""
    fixed = {n.name: ipaddress.IPv4Network(n.pod_cidr) for n in cluster.nodes if n.pod_cidr}
    blocks = cluster.pod_network.subnets(new_prefix=cluster.node_cidr_mask)
    out: dict[str, ipaddress.IPv4Network] = {}
    for n in cluster.nodes:
        if n.name in fixed:
            out[n.name] = fixed[n.name]
            continue
        for block in blocks:
            if not any(block.overlaps(f) for f in fixed.values()):
                out[n.name] = block
                break
        else:
            raise InputError(f"podCIDR {cluster.pod_cidr} has no /{cluster.node_cidr_mask} left "
                             f"for node {n.name}: widen podCIDR or lower podCIDRMaskSize",
                             file=str(cluster.source) if cluster.source else None,
                             obj="Cluster", field="spec.podCIDR")
    return out


def plan_nodes(lab: str, cluster: Cluster) -> tuple[list[NodePlan], str]:
    underlay = ipaddress.IPv4Network(cluster.underlay_cidr)
    cidrs = node_cidrs(cluster)
    nodes = []
    for i, n in enumerate(cluster.nodes, start=1):
        cidr = cidrs[n.name]
        nodes.append(NodePlan(
            name=n.name, number=i, netns=names.node_netns(lab, n.name),
            underlay_ip=str(underlay.network_address + 1 + i), pod_cidr=str(cidr),
            gateway=str(cidr.network_address + 1), vtep_ip=str(cidr.network_address),
            vtep_mac=names.vtep_mac(lab, n.name), fabric_port=names.fabric_port(n.name)))
    return nodes, str(underlay.network_address + 1)


def capacity(cidr: ipaddress.IPv4Network) -> int:
    """Pod addresses in a node CIDR: all but network (.0, the VTEP), gateway (.1), broadcast."""
    return cidr.num_addresses - 3


def make_plan(lab: str, m: Manifests, cluster: Cluster, previous: Plan | None = None,
              readiness: dict[str, tuple[bool, str]] | None = None) -> Plan:
    nodes, underlay_gw = plan_nodes(lab, cluster)
    by_name = {n.name: n for n in nodes}
    cidrs = {n.name: ipaddress.IPv4Network(n.pod_cidr) for n in nodes}
    pods = ordered_ready(desired_pods(m, cluster), m, readiness, previous)

    kept: dict[str, PodPlan] = {}
    if previous is not None:
        for p in pods:
            old = previous.pods.get(p.key)
            if old and old.spec_hash == spec_hash(p.spec) and old.node in by_name:
                kept[p.key] = old

    used: dict[str, set[int]] = {n: set() for n in by_name}
    veths: dict[str, set[str]] = {n: set() for n in by_name}
    for old in kept.values():
        used[old.node].add(int(ipaddress.IPv4Address(old.ip)) - int(cidrs[old.node][0]))
        veths[old.node].add(old.veth)

    specs = {n.name: n for n in cluster.nodes}
    pending: dict[str, PendingPod] = {}

    def place(p: Pod) -> str | None:
        """The pod's node, or None: Pending (recorded in `pending`), no node accepting it."""
        if p.spec.node_name:
            if p.spec.node_name not in by_name:
                raise InputError(
                    f"node {p.spec.node_name!r} does not exist (nodes: {', '.join(by_name)})",
                    file=str(p.source) if p.source else None, obj=f"Pod {p.key}",
                    field="spec.nodeName")
            node = p.spec.node_name
            if not scheduling.accepts(p.spec, specs[node]):  # kubelet's admission refuses it
                raise InputError(
                    f"node {node} does not match the pod's nodeSelector/node affinity: kubelet "
                    "would reject the pod (NodeAffinity)",
                    file=str(p.source) if p.source else None, obj=f"Pod {p.key}",
                    field="spec.nodeName")
            if len(used[node]) >= capacity(cidrs[node]):
                raise InputError(
                    f"node {node} is full: its podCIDR {cidrs[node]} holds "
                    f"{capacity(cidrs[node])} pods", file=str(p.source) if p.source else None,
                    obj=f"Pod {p.key}", field="spec.nodeName")
            return node
        matching = [n for n in by_name if scheduling.accepts(p.spec, specs[n])]
        free = [n for n in matching if len(used[n]) < capacity(cidrs[n])]
        if not free and scheduling.constrained(p.spec):
            reason = scheduling.unschedulable_reason(len(by_name), {
                scheduling.MISMATCH: len(by_name) - len(matching),
                scheduling.TOO_MANY: len(matching)})
            pending[p.key] = PendingPod(p.namespace, p.name, reason, dict(p.labels), p.owner,
                                        tuple(c.name for c in p.spec.containers),
                                        p.spec.restart_policy)
            return None
        if not free:
            raise InputError(f"no node has room for pod {p.key}: every node's podCIDR is full; "
                             "add nodes or widen podCIDRMaskSize",
                             file=str(p.source) if p.source else None, obj=f"Pod {p.key}")
        return min(free, key=lambda n: (len(used[n]), by_name[n].number))

    planned: dict[str, PodPlan] = {}
    # Pinned pods first, so spreading accounts for them.
    for p in sorted(pods, key=lambda p: (p.spec.node_name is None, p.namespace, p.name)):
        if p.key in kept:
            old = kept[p.key]
            planned[p.key] = replace(old, labels=dict(p.labels),
                                     annotations=dict(p.annotations))
            continue
        node = place(p)
        if node is None:
            continue
        offset = next(i for i in range(2, cidrs[node].num_addresses - 1) if i not in used[node])
        used[node].add(offset)
        veth, salt = names.pod_veth(p.namespace, p.name), 0
        while veth in veths[node]:  # 32-bit hash collision on one node: take the next salt
            salt += 1
            veth = names.pod_veth(p.namespace, p.name, salt)
        veths[node].add(veth)
        planned[p.key] = PodPlan(
            namespace=p.namespace, name=p.name, node=node, ip=str(cidrs[node][offset]),
            netns=names.pod_netns(lab, p.namespace, p.name), veth=veth,
            veth_index=names.INDEX_PORT_BASE + offset,
            hostname=names.pod_hostname(p.spec.hostname or p.name),
            host_aliases=p.spec.host_aliases,
            labels=dict(p.labels),
            containers=tuple(ContainerPlan(c.name, c.argv, c.env) for c in p.spec.containers),
            spec_hash=spec_hash(p.spec), owner=p.owner, annotations=dict(p.annotations),
            subdomain=p.spec.subdomain, dns_policy=p.spec.dns_policy or "ClusterFirst",
            dns_config=p.spec.dns_config, restart_policy=p.spec.restart_policy,
            readiness_probed=any(getattr(c, "readiness_probe", None) is not None
                                 for c in p.spec.containers),
            container_ports=tuple(sorted({(cp.protocol, cp.container_port)
                                          for c in p.spec.containers for cp in c.ports})),
            named_ports=tuple(sorted((cp.name, cp.protocol, cp.container_port)
                                     for c in p.spec.containers for cp in c.ports if cp.name)))
    ordered = dict(sorted(planned.items()))
    namespaces = {n: dict(ns.labels) for n, ns in sorted(m.namespaces.items())}
    underlay = ipaddress.IPv4Network(cluster.underlay_cidr)
    internet = ipaddress.IPv4Network(cluster.internet_cidr)
    return Plan(lab, cluster, nodes, ordered, underlay_gw, namespaces, {},
                str(underlay.broadcast_address - 1), str(internet.network_address + 1),
                pending=dict(sorted(pending.items())))
