"""Planning: the model -> a Plan (which node each pod runs on, its address, its devices).

Pure and deterministic. Given the previous plan of a running lab, pods that did not
change keep their node and address (host-local IPAM: an address is never reused while
its pod exists), so `up` is simply planning against an empty lab.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from typing import Any

from netlab import names, scheduling
from netlab.errors import InputError
from netlab.jobs import JobPlan, PodOutcome, job_pods, plan_job, plan_jobs
from netlab.jsonable import plain
from netlab.model import Cluster, Manifests, Pod, PodSpec, Workload

K8S_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes' generated names
REVISION_LABEL = "controller-revision-hash"  # a StatefulSet pod's template revision


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
    # dual-stack: the IPv6 side ("" in a single-stack cluster), as flannel plans it: a /64
    # per node, cni0 on ::1, the flannel-v6.1 VTEP on the block's network address
    pod_cidr6: str = ""
    gateway6: str = ""
    vtep_ip6: str = ""
    vtep_mac6: str = ""
    underlay_ip6: str = ""

    def of(self, name: str, family: str) -> str:
        """A field in one family: of("underlay_ip", "IPv6") is underlay_ip6 ("" if the
        cluster lacks the family)."""
        return getattr(self, name + ("6" if family == "IPv6" else ""))

    def address(self, family: str) -> str:
        """The node's underlay address (its InternalIP) in one family."""
        return self.of("underlay_ip", family)


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    sidecar: bool = False  # an init container with restartPolicy Always


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
    ip6: str = ""  # dual-stack: the pod's IPv6 address (same host part as its IPv4 one)
    # spec.initContainers in order (sidecars among them); `containers` are the others
    init_containers: tuple[ContainerPlan, ...] = ()
    # hostNetwork: in its node's network namespace (netns is the node's, no veth, the
    # node's addresses as ip/ip6; the node's UTS namespace too, as with a real kubelet)
    host_network: bool = False
    # (protocol, hostIP or "", hostPort, containerPort): DNAT on the node (features/hostport)
    host_ports: tuple[tuple[str, str, int, int], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def address(self, family: str) -> str:
        """The pod's address in one family ("" if the cluster lacks it)."""
        return self.ip6 if family == "IPv6" else self.ip

    def ips(self, families: tuple[str, ...]) -> tuple[str, ...]:
        """status.podIPs: one address per family, in the cluster's order (primary first)."""
        return tuple(a for f in families for a in (self.address(f),) if a)


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
    # the EndpointSlice endpoint's zone (its node's topology.kubernetes.io/zone label), set
    # for a Service with a selector when the node has one
    zone: str | None = None

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
    # dual-stack: `endpoints`/`not_ready` are the IPv4 EndpointSlice's (empty when the
    # Service has no IPv4 family), these the IPv6 one's (Endpoint.ip an IPv6 address)
    endpoints6: tuple[Endpoint, ...] = ()
    not_ready6: tuple[Endpoint, ...] = ()

    @property
    def label(self) -> str:
        return self.name or str(self.port)

    def family_endpoints(self, family: str) -> tuple[Endpoint, ...]:
        """The ready endpoints of one family ("IPv4" or "IPv6")."""
        return self.endpoints6 if family == "IPv6" else self.endpoints

    def family_not_ready(self, family: str) -> tuple[Endpoint, ...]:
        return self.not_ready6 if family == "IPv6" else self.not_ready


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
    # dual-stack (services.py defaults them as kube-apiserver does): spec.ipFamilies in
    # order (the first is the primary family: clusterIP is its address; () for
    # ExternalName), spec.ipFamilyPolicy, and the IPv6 ClusterIP. `cluster_ip` is always
    # the IPv4 one (None when the Service has no IPv4 family).
    ip_families: tuple[str, ...] = ("IPv4",)
    ip_family_policy: str | None = "SingleStack"
    cluster_ip6: str | None = None
    lb_ip6: str = ""  # the IPv6 LoadBalancer address (announced by `announcer` too)
    # spec.externalIPs kube-proxy renders (those of the Service's families), and for each
    # the node that holds it on the underlay and answers ARP / NDP for it (services.py)
    external_ips: tuple[str, ...] = ()
    external_announcers: tuple[tuple[str, str | None], ...] = ()  # (address, node)
    # spec.loadBalancerSourceRanges as kube-proxy reads them (each CIDR in network form)
    source_ranges: tuple[str, ...] = ()
    allocate_lb_node_ports: bool | None = None  # LoadBalancer only (the API's default: true)
    health_check_node_port: int | None = None  # LoadBalancer with externalTrafficPolicy Local
    traffic_distribution: str | None = None  # spec.trafficDistribution

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def family_external_ips(self, family: str) -> tuple[str, ...]:
        """spec.externalIPs of one family (what that family's kube-proxy renders)."""
        v6 = family == "IPv6"
        return tuple(ip for ip in self.external_ips if (":" in ip) == v6)

    def family_source_ranges(self, family: str) -> tuple[str, ...]:
        """loadBalancerSourceRanges of one family (each proxier takes its own)."""
        v6 = family == "IPv6"
        return tuple(r for r in self.source_ranges if (":" in r) == v6)

    @property
    def lb_ips(self) -> tuple[str, ...]:
        """status.loadBalancer.ingress addresses, in ipFamilies order."""
        by = {"IPv4": self.lb_ip, "IPv6": self.lb_ip6}
        return tuple(ip for f in self.ip_families for ip in (by.get(f),) if ip)

    @property
    def headless(self) -> bool:
        return self.cluster_ip is None and self.cluster_ip6 is None and self.type != "ExternalName"

    def family_cluster_ip(self, family: str) -> str | None:
        return self.cluster_ip6 if family == "IPv6" else self.cluster_ip

    @property
    def cluster_ips(self) -> tuple[str, ...]:
        """spec.clusterIPs: one address per family, in ipFamilies order (the first is
        spec.clusterIP); () for headless and ExternalName Services."""
        return tuple(ip for f in self.ip_families for ip in (self.family_cluster_ip(f),) if ip)


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


@dataclass(frozen=True)
class StatefulSetRevisions:
    """A StatefulSet's ControllerRevisions, as much of them as the lab needs (see
    statefulset_revisions): the revision of its template now (`update`, status.updateRevision),
    the one pods below a partition are created at (`current`, status.currentRevision), and the
    pod template (spec.template as written) of each revision a pod still runs."""

    update: str
    current: str
    templates: dict[str, dict] = field(default_factory=dict, hash=False)


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
    jobs: dict[str, JobPlan] = field(default_factory=dict)  # Jobs: pods, status (netlab.jobs)
    # "namespace/name" of each StatefulSet -> its revisions (statefulset_revisions)
    statefulsets: dict[str, StatefulSetRevisions] = field(default_factory=dict)
    # dual-stack: the IPv6 addresses of the underlay's gateway (`internet`), of `external`
    # and of the internet host's outside address ("" in a single-stack cluster)
    underlay_gateway6: str = ""
    external_ip6: str = ""
    internet_ip6: str = ""

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)

    def external(self, family: str) -> str:
        """The `external` client host's underlay address in one family."""
        return self.external_ip6 if family == "IPv6" else self.external_ip

    def internet(self, family: str) -> str:
        """The `internet` host's outside address in one family."""
        return self.internet_ip6 if family == "IPv6" else self.internet_ip

    def gateway(self, family: str) -> str:
        """The underlay's gateway (the `internet` router's underlay side) in one family."""
        return self.underlay_gateway6 if family == "IPv6" else self.underlay_gateway

    def to_json(self) -> dict:
        data = plain(self)
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
            for f in ("containers", "init_containers"):
                p[f] = tuple(ContainerPlan(c_["name"], tuple(c_["argv"]),
                                           tuple(map(tuple, c_["env"])), c_.get("sidecar", False))
                             for c_ in p.get(f, ()))
            for f in ("container_ports", "named_ports", "serves", "host_ports"):
                p[f] = tuple(map(tuple, p.get(f, ())))
            p["host_aliases"] = tuple((ip, tuple(h)) for ip, h in p.get("host_aliases", ()))
            pods[k] = PodPlan(**p)
        services = {}
        for k, s in data.get("services", {}).items():
            ports = tuple(ServicePortPlan(**{
                **p, **{f: tuple(Endpoint(**e) for e in p.get(f, ()))
                        for f in ("endpoints", "not_ready", "endpoints6", "not_ready6")}})
                for p in s["ports"])
            ext = s["type"] == "ExternalName"  # a plan from before dual-stack Services:
            families = s.get("ip_families", () if ext else ("IPv4",))  # what it had
            services[k] = ServicePlan(**{**s, "ports": ports, "endpoint_objects": tuple(
                s.get("endpoint_objects", ())), "ip_families": tuple(families),
                "ip_family_policy": s.get("ip_family_policy", None if ext else "SingleStack"),
                "external_ips": tuple(s.get("external_ips", ())),
                "external_announcers": tuple(map(tuple, s.get("external_announcers", ()))),
                "source_ranges": tuple(s.get("source_ranges", ()))})
        return cls(data["lab"], Cluster(**c), [NodePlan(**n) for n in data["nodes"]], pods,
                   data["underlay_gateway"], data.get("namespaces", {}), services,
                   data.get("external_ip", ""), data.get("internet_ip", ""),
                   pending={k: PendingPod(**{**v, "containers": tuple(v.get("containers", ()))})
                            for k, v in data.get("pending", {}).items()},
                   jobs={k: JobPlan.from_json(v) for k, v in data.get("jobs", {}).items()},
                   statefulsets={k: StatefulSetRevisions(**v)
                                 for k, v in data.get("statefulsets", {}).items()},
                   underlay_gateway6=data.get("underlay_gateway6", ""),
                   external_ip6=data.get("external_ip6", ""),
                   internet_ip6=data.get("internet_ip6", ""))


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


def workload_pods(w: Workload, cluster: Cluster, job: JobPlan | None = None) -> list[Pod]:
    """The pods of a ReplicaSet, ReplicationController, Job (`<name>-<5 chars>`: those `job`
    lists, else its first wave; netlab.jobs), DaemonSet (one per node, pinned with nodeName)
    or StatefulSet (`<name>-<ordinal>`, hostname and subdomain = serviceName), with stable,
    deterministic names."""
    if w.kind == "Job" and w.job is not None:
        return job_pods(w, job or plan_job(w, None, {}))
    base = w.name[: 63 - 6].rstrip(".")
    owner = f"{w.kind}/{w.name}"
    if w.kind == "StatefulSet":  # at the template's revision (statefulset_revisions)
        revision = revision_name(w)
        return [statefulset_pod(w, i, revision, w.template_spec, w.template_labels,
                                w.template_annotations) for i in range(w.replicas)]
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


def revision_name(w: Workload) -> str:
    """A StatefulSet's revision of its pod template, as the `controller-revision-hash` label
    shows it: `<name>-<10 chars>` (a label value is at most 63 characters). The hash is over
    what the template sets, so a field netlab learns to model later starts no update."""
    digest = _hash([_set_fields(w.template_spec), w.template_labels, w.template_annotations], 32)
    return f"{w.name[:52]}-{_k8s_suffix(digest, 10)}"


def statefulset_pod(w: Workload, ordinal: int, revision: str, spec: PodSpec,
                    labels: dict[str, str], annotations: dict[str, str]) -> Pod:
    """Pod `<name>-<ordinal>` of a StatefulSet at a revision of its template: hostname the
    pod's name, subdomain spec.serviceName, labeled with its name, index and revision."""
    name = f"{w.name}-{ordinal}"
    spec = replace(spec, hostname=name, subdomain=w.service_name or spec.subdomain)
    labels = {**labels, REVISION_LABEL: revision, "apps.kubernetes.io/pod-index": str(ordinal),
              "statefulset.kubernetes.io/pod-name": name}
    return Pod(w.namespace, name, spec, labels, dict(annotations), f"StatefulSet/{w.name}",
               w.source)


@functools.lru_cache(maxsize=128)
def _parse_template(text: str, file: str) -> tuple[dict[str, str], dict[str, str], PodSpec]:
    """A recorded pod template (JSON) -> its labels, annotations and spec, read by the loader
    as it read them when the template was applied."""
    from netlab.loader import RawDoc, build

    raw = json.loads(text)
    labels = (raw.get("metadata") or {}).get("labels") or {}
    doc = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "revision"},
           "spec": {"selector": {"matchLabels": labels}, "template": raw}}
    w = next(iter(build([RawDoc(doc, file)]).workloads.values()))
    return w.template_labels, w.template_annotations, w.template_spec


def _revision_pod(w: Workload, ordinal: int, revision: str, template: dict,
                  m: Manifests) -> Pod:
    """Pod `ordinal` of `w` at an older revision: its recorded template (with the lab's
    `netlab label` changes, as desired_pods gives every pod)."""
    labels, annotations, spec = _parse_template(json.dumps(template, sort_keys=True,
                                                           default=str),
                                                w.source.file if w.source else "<revision>")
    p = statefulset_pod(w, ordinal, revision, spec, labels, annotations)
    changes = m.label_overrides.get(p.key)
    if changes:
        p = replace(p, labels={k: v for k, v in {**p.labels, **changes}.items() if v is not None})
    return p


def _max_unavailable(w: Workload) -> int:
    """rollingUpdate.maxUnavailable as a number of pods: a percentage of replicas rounded up,
    at least 1 (getStatefulSetMaxUnavailable)."""
    value = w.max_unavailable
    if isinstance(value, str):
        value = -(-int(value.rstrip("%")) * w.replicas // 100)
    return max(1, value or 1)


def statefulset_revisions(pods: list[Pod], m: Manifests, previous: Plan | None,
                          readiness: dict[str, tuple[bool, str]] | None
                          ) -> tuple[list[Pod], dict[str, StatefulSetRevisions]]:
    """StatefulSet spec.updateStrategy: which revision of its template each pod runs.

    `pods` come from workload_pods at the template's revision (`update`). A pod the lab
    already runs keeps the revision its `controller-revision-hash` label says, unless the
    strategy updates it now:

    - RollingUpdate (the default): one pod at a time from the highest ordinal down to
      rollingUpdate.partition; the pod updated last must be Running and Ready (the agent's
      readiness; not reported = not ready) before the next lower one is. With OrderedReady,
      nothing is updated while any pod is missing or not ready (the controller's monotonic
      rule; maxUnavailable counts as 1, the loader warns). With Parallel and
      rollingUpdate.maxUnavailable set, as many pods are updated at once as its budget allows:
      maxUnavailable minus the pods not Running and Ready now, any ordinal (the
      MaxUnavailableStatefulSet feature). Pods below the partition stay, and are created at
      `current` (the revision every pod ran before the update).
    - OnDelete: pods keep their revision; only new pods (scale-up) get the new one.

    The agent converges the lab whenever readiness changes, so the next step comes then.

    How an old pod keeps running exactly as it was: the plan records the pod template of each
    revision still in use, as written (StatefulSetRevisions.templates: Kubernetes'
    ControllerRevisions), and a pod staying on an old revision is rebuilt from it here (and
    by revision_pods, for render): same spec, so make_plan keeps its PodPlan (node, address,
    processes) untouched. A pod whose revision is not recorded (a plan made before
    revisions were) is updated at once, as before."""
    ready = readiness or {}
    by_set: dict[str, list[Pod]] = {}
    for p in pods:
        if (p.owner or "").startswith("StatefulSet/"):
            by_set.setdefault(f"{p.namespace}/{p.owner.split('/', 1)[1]}", []).append(p)
    replaced: dict[str, Pod] = {}
    records: dict[str, StatefulSetRevisions] = {}
    for key, members in sorted(by_set.items()):
        w = m.workloads.get(f"StatefulSet/{key}")
        if w is None:
            continue
        update = revision_name(w)
        before = previous.statefulsets.get(key) if previous is not None else None
        templates = dict(before.templates) if before is not None else {}
        raw = m.raw.get(("StatefulSet", w.namespace, w.name), {})
        template = (raw.get("spec") or {}).get("template")
        if isinstance(template, dict):
            templates[update] = template
        current = before.current if before is not None and before.current in templates \
            else update
        rolling = w.update_strategy == "RollingUpdate"
        revision: dict[int, str] = {}
        exists: set[int] = set()
        for p in members:
            i = _ordinal(p)
            old = previous.pods.get(p.key) if previous is not None else None
            if old is not None and old.owner == p.owner:
                exists.add(i)
                rev = old.labels.get(REVISION_LABEL, update)
                revision[i] = rev if rev == update or rev in templates else update
            else:  # newVersionedStatefulSetPod: below the partition at the current revision
                revision[i] = current if rolling and i < w.partition else update
        up = {i for i in exists if ready.get(f"{key}-{i}", (False, ""))[0]}  # Running and Ready
        top_down = [i for i in sorted(revision, reverse=True) if i >= w.partition]
        if rolling and w.max_unavailable is not None and not w.ordered_ready:
            budget = _max_unavailable(w) - sum(i not in up for i in range(w.replicas))
            for i in top_down:
                if budget <= 0:
                    break
                if revision[i] != update:
                    revision[i], budget = update, budget - 1
        elif rolling and (not w.ordered_ready or all(i in up for i in range(w.replicas))):
            for i in top_down:
                if revision[i] != update:
                    revision[i] = update  # this one now; the next once it is ready
                    break
                if i not in up:
                    break
        for p in members:
            rev = revision[_ordinal(p)]
            if rev != update:
                replaced[p.key] = _revision_pod(w, _ordinal(p), rev, templates[rev], m)
        if all(revision.get(i) == update for i in range(w.replicas)):
            current = update  # the update is complete
        used = {update, current, *revision.values()}
        records[key] = StatefulSetRevisions(update, current, {r: t for r, t in templates.items()
                                                              if r in used})
    return [replaced.get(p.key, p) for p in pods], records


def revision_pods(pods: list[Pod], m: Manifests, plan: Plan) -> list[Pod]:
    """The model pods as `plan` runs them: a StatefulSet pod the plan keeps on an older
    revision (statefulset_revisions) is its recorded template's, so it renders as it was."""
    out = []
    for p in pods:
        planned = plan.pods.get(p.key)
        rev = planned.labels.get(REVISION_LABEL) if planned is not None else None
        owner, _, name = (p.owner or "").partition("/")
        record = plan.statefulsets.get(f"{p.namespace}/{name}")
        w = m.workloads.get(f"StatefulSet/{p.namespace}/{name}")
        if owner == "StatefulSet" and rev and rev != p.labels.get(REVISION_LABEL) and \
                record is not None and rev in record.templates and w is not None:
            p = _revision_pod(w, _ordinal(p), rev, record.templates[rev], m)
        out.append(p)
    return out


def desired_pods(m: Manifests, cluster: Cluster | None = None,
                 jobs: dict[str, JobPlan] | None = None) -> list[Pod]:
    """Pods as declared, plus the replicas of every Deployment, with stable names
    `<deployment>-<template hash>-<5 chars>` (like a ReplicaSet's, but deterministic), and
    the pods of the other workload kinds (workload_pods; Jobs: the pods `jobs` lists)."""
    pods = list(m.pods.values())
    for w in m.workloads.values():
        pods.extend(workload_pods(w, cluster or m.cluster or Cluster(),
                                  (jobs or {}).get(f"{w.namespace}/{w.name}")))
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
    """Each node's addresses in the cluster's families ("" for a family it lacks): its
    pod block(s) (the IPv6 one: the next /mask6 block in node order), cni0 on .1/::1, the
    VTEP on the block's network address, the underlay address .N+1 / ::N+1."""
    cidrs = node_cidrs(cluster) if cluster.ipv4 else {}
    underlay = ipaddress.IPv4Network(cluster.underlay_cidr) if cluster.ipv4 else None
    blocks6 = ipaddress.IPv6Network(cluster.pod_cidr6).subnets(
        new_prefix=cluster.node_cidr_mask6) if cluster.ipv6 else iter(())
    underlay6 = ipaddress.IPv6Network(cluster.underlay_cidr6)
    nodes = []
    for i, n in enumerate(cluster.nodes, start=1):
        v4: dict[str, str] = {"underlay_ip": "", "pod_cidr": "", "gateway": "", "vtep_ip": "",
                              "vtep_mac": ""}
        if underlay is not None:
            cidr = cidrs[n.name]
            v4 = {"underlay_ip": str(underlay.network_address + 1 + i), "pod_cidr": str(cidr),
                  "gateway": str(cidr.network_address + 1), "vtep_ip": str(cidr.network_address),
                  "vtep_mac": names.vtep_mac(lab, n.name)}
        v6: dict[str, str] = {}
        if cluster.ipv6:
            block = next(blocks6, None)
            if block is None:
                raise InputError(f"podCIDR {cluster.pod_cidr6} has no /{cluster.node_cidr_mask6}"
                                 f" left for node {n.name}: widen it or lengthen "
                                 "podCIDRMaskSizeIPv6", obj="Cluster", field="spec.podCIDR",
                                 file=str(cluster.source) if cluster.source else None)
            v6 = {"pod_cidr6": str(block), "gateway6": str(block.network_address + 1),
                  "vtep_ip6": str(block.network_address),
                  "vtep_mac6": names.vtep6_mac(lab, n.name),
                  "underlay_ip6": str(underlay6.network_address + 1 + i)}
        nodes.append(NodePlan(name=n.name, number=i, netns=names.node_netns(lab, n.name),
                              fabric_port=names.fabric_port(n.name), **v4, **v6))
    return nodes, str(underlay.network_address + 1) if underlay is not None else ""


# Pods per node: a node's IPv4 block (all but network, gateway and broadcast); an IPv6-only
# node's /64 could number billions, so it takes as many as a /24 would (netlab numbers a
# pod's IPv6 address by the same slot as its IPv4 one)
MAX_PODS_IPV6_ONLY = 253


def capacity(cidr: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    """Pod addresses in a node CIDR: all but network (.0, the VTEP), gateway (.1), broadcast."""
    if cidr.version == 6:
        return min(cidr.num_addresses - 2, MAX_PODS_IPV6_ONLY)
    return cidr.num_addresses - 3


def _host_ports_text(ports: tuple[tuple[str, str, int, int], ...]) -> str:
    return ", ".join(f"{ip + ':' if ip else ''}{port}/{proto}" for proto, ip, port, _ in ports)


def make_plan(lab: str, m: Manifests, cluster: Cluster, previous: Plan | None = None,
              readiness: dict[str, tuple[bool, str]] | None = None,
              outcomes: dict[str, PodOutcome] | None = None,
              cni_addresses: dict[str, tuple[str, ...]] | None = None) -> Plan:
    """The plan of a lab. In CNI mode (cluster.cni) the plugins' results are the truth: a
    pod's addresses are those its ADD returned (`cni_addresses`, pod key -> IPs; a kept pod
    keeps its own), and none before its ADD ran; the plugins' IPAM, not netlab's, decides
    them and how many pods a node holds."""
    nodes, underlay_gw = plan_nodes(lab, cluster)
    by_name = {n.name: n for n in nodes}
    # the block a node numbers its pods' slots in: its IPv4 one, an IPv6-only node's IPv6 one
    cidrs: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {
        n.name: ipaddress.ip_network(n.pod_cidr or n.pod_cidr6) for n in nodes}
    # Jobs: which pods each has now, from its pods' outcomes as the lab's agent reports them
    jobs = plan_jobs(m, previous.jobs if previous else None, outcomes)
    pods = ordered_ready(desired_pods(m, cluster, jobs), m, readiness, previous)
    pods, revisions = statefulset_revisions(pods, m, previous, readiness)

    kept: dict[str, PodPlan] = {}
    if previous is not None:
        for p in pods:
            old = previous.pods.get(p.key)
            if old and old.spec_hash == spec_hash(p.spec) and old.node in by_name:
                kept[p.key] = old

    used: dict[str, set[int]] = {n: set() for n in by_name}
    veths: dict[str, set[str]] = {n: set() for n in by_name}
    host_ports: dict[str, set[scheduling.HostPort]] = {n: set() for n in by_name}
    # pods per node, what spreading looks at: every pod (hostNetwork ones and CNI-mode ones
    # too, which take no slot of netlab's)
    placed: dict[str, int] = {n: 0 for n in by_name}
    for old in kept.values():
        host_ports[old.node] |= set(old.host_ports)
        placed[old.node] += 1
        if old.host_network or cluster.cni:  # no slot: the node's addresses; the plugins'
            continue
        used[old.node].add(int(ipaddress.ip_address(old.ip or old.ip6))
                           - int(cidrs[old.node][0]))
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
            if len(used[node]) >= capacity(cidrs[node]) and not (p.spec.host_network
                                                                 or cluster.cni):
                raise InputError(
                    f"node {node} is full: its podCIDR {cidrs[node]} holds "
                    f"{capacity(cidrs[node])} pods", file=str(p.source) if p.source else None,
                    obj=f"Pod {p.key}", field="spec.nodeName")
            if scheduling.ports_conflict(p.spec.host_ports, host_ports[node]):
                raise InputError(
                    f"node {node} has no free ports for the pod's hostPorts "
                    f"({_host_ports_text(p.spec.host_ports)}): another pod there uses them; "
                    "kubelet would reject the pod (NodePorts)",
                    file=str(p.source) if p.source else None, obj=f"Pod {p.key}",
                    field="spec.nodeName")
            return node
        matching = [n for n in by_name if scheduling.accepts(p.spec, specs[n])]
        room = [n for n in matching if p.spec.host_network or cluster.cni
                or len(used[n]) < capacity(cidrs[n])]
        free = [n for n in room
                if not scheduling.ports_conflict(p.spec.host_ports, host_ports[n])]
        if not free:  # a node is full when its podCIDR is (kubelet's maxPods, as it were)
            reason = scheduling.unschedulable_reason(len(by_name), {
                scheduling.MISMATCH: len(by_name) - len(matching),
                scheduling.TOO_MANY: len(matching) - len(room),
                scheduling.PORTS: len(room)})
            pending[p.key] = PendingPod(p.namespace, p.name, reason, dict(p.labels), p.owner,
                                        tuple(c.name for c in p.spec.containers),
                                        p.spec.restart_policy)
            return None
        return min(free, key=lambda n: (placed[n], by_name[n].number))

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
        node_plan = by_name[node]
        host_ports[node] |= set(p.spec.host_ports)
        placed[node] += 1
        if p.spec.host_network:
            ip, ip6, netns, veth, veth_index = (node_plan.underlay_ip, node_plan.underlay_ip6,
                                                node_plan.netns, "", 0)
        elif cluster.cni:  # the plugins made the interface; their result gave the addresses
            got = (cni_addresses or {}).get(p.key, ())
            ip = next((a for a in got if ":" not in a), "")
            ip6 = next((a for a in got if ":" in a), "")
            netns, veth, veth_index = names.pod_netns(lab, p.namespace, p.name), "", 0
        else:
            offset = next(i for i in range(2, cidrs[node].num_addresses - 1)
                          if i not in used[node])
            used[node].add(offset)
            veth, salt = names.pod_veth(p.namespace, p.name), 0
            while veth in veths[node]:  # 32-bit hash collision on one node: the next salt
                salt += 1
                veth = names.pod_veth(p.namespace, p.name, salt)
            veths[node].add(veth)
            ip = str(ipaddress.IPv4Network(node_plan.pod_cidr)[offset]) if cluster.ipv4 else ""
            ip6 = (str(ipaddress.IPv6Network(node_plan.pod_cidr6)[offset]) if cluster.ipv6
                   else "")
            netns, veth_index = (names.pod_netns(lab, p.namespace, p.name),
                                 names.INDEX_PORT_BASE + offset)
        planned[p.key] = PodPlan(
            namespace=p.namespace, name=p.name, node=node, ip=ip, ip6=ip6, netns=netns,
            veth=veth, veth_index=veth_index, host_network=p.spec.host_network,
            host_ports=p.spec.host_ports,
            # a hostNetwork pod shares its node's UTS namespace: the node's hostname
            hostname=node if p.spec.host_network else names.pod_hostname(p.spec.hostname
                                                                         or p.name),
            host_aliases=p.spec.host_aliases,
            labels=dict(p.labels),
            containers=tuple(ContainerPlan(c.name, c.argv, c.env) for c in p.spec.containers),
            init_containers=tuple(ContainerPlan(c.name, c.argv, c.env, c.restart_policy == "Always")
                                  for c in p.spec.init_containers),
            spec_hash=spec_hash(p.spec), owner=p.owner, annotations=dict(p.annotations),
            subdomain=p.spec.subdomain, dns_policy=p.spec.dns_policy or "ClusterFirst",
            dns_config=p.spec.dns_config, restart_policy=p.spec.restart_policy,
            readiness_probed=any(getattr(c, "readiness_probe", None) is not None
                                 for c in p.spec.long_running),
            container_ports=tuple(sorted({(cp.protocol, cp.container_port)
                                          for c in p.spec.long_running for cp in c.ports})),
            named_ports=tuple(sorted((cp.name, cp.protocol, cp.container_port)
                                     for c in p.spec.long_running for cp in c.ports if cp.name)))
    ordered = dict(sorted(planned.items()))
    namespaces = {n: dict(ns.labels) for n, ns in sorted(m.namespaces.items())}
    hosts: dict[str, str] = {}
    if cluster.ipv4:  # external .254, the internet host .1 of its range
        hosts = {"external_ip": str(ipaddress.IPv4Network(cluster.underlay_cidr)
                                    .broadcast_address - 1),
                 "internet_ip": str(ipaddress.IPv4Network(cluster.internet_cidr)
                                    .network_address + 1)}
    if cluster.ipv6:  # the same host parts as in IPv4: ::1 the gateway, ::fe external
        underlay6 = ipaddress.IPv6Network(cluster.underlay_cidr6)
        hosts |= {"underlay_gateway6": str(underlay6.network_address + 1),
                  "external_ip6": str(underlay6.network_address + 0xfe),
                  "internet_ip6": str(ipaddress.IPv6Network(cluster.internet_cidr6)
                                      .network_address + 1)}
    return Plan(lab, cluster, nodes, ordered, underlay_gw, namespaces, {},
                pending=dict(sorted(pending.items())), jobs=jobs, statefulsets=revisions,
                **hosts)
