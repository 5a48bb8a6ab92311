"""The typed model: Kubernetes objects as the lab understands them, plus netlab's Cluster.

Pure data. `netlab.loader` builds it from YAML and is the only place that knows the
YAML shape; everything downstream works on these dataclasses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["TCP", "UDP", "SCTP"]
Backend = Literal["vxlan", "host-gw", "bgp"]


@dataclass(frozen=True)
class Source:
    """Where an object came from, for error messages."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class LabelSelectorRequirement:
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    """metav1.LabelSelector. An empty selector matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        for k, v in self.match_labels:
            if labels.get(k) != v:
                return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and not (present and labels[req.key] in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class NodeSelectorRequirement:
    """A matchExpressions (node labels) or matchFields (`metadata.name`) entry of a node
    selector term."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSelectorTerm:
    """One of requiredDuringScheduling...nodeSelectorTerms: its requirements are ANDed
    (an empty term matches no node); the terms are ORed."""

    match_expressions: tuple[NodeSelectorRequirement, ...] = ()
    match_fields: tuple[NodeSelectorRequirement, ...] = ()


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    protocol: Protocol = "TCP"
    name: str | None = None
    host_port: int | None = None  # exposed on the node's addresses (hostIP: only that one)
    host_ip: str | None = None


@dataclass(frozen=True)
class Probe:
    """core/v1 Probe: exactly one handler (`kind`) and its timing, API defaults applied.
    `netlab.runtime.probes` runs it the way kubelet does."""

    kind: Literal["exec", "tcpSocket", "httpGet", "grpc"]
    command: tuple[str, ...] = ()  # exec
    port: int | str | None = None  # tcpSocket/httpGet: a number or a containerPort name; grpc
    host: str | None = None  # tcpSocket/httpGet; None: the pod IP
    path: str = "/"  # httpGet
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    http_headers: tuple[tuple[str, str], ...] = ()
    service: str | None = None  # grpc
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period_seconds: int | None = None  # liveness/startup only


@dataclass(frozen=True)
class KeyToPath:
    """An `items` entry of a configMap/secret volume: key -> file path, optional mode."""

    key: str
    path: str
    mode: int | None = None


@dataclass(frozen=True)
class Volume:
    """core/v1 Volume. `kind` is its source; `other` (a PersistentVolumeClaim, say) is set
    up as an empty directory. A projected volume's sources are Volumes themselves."""

    name: str
    kind: Literal["emptyDir", "configMap", "secret", "hostPath", "downwardAPI", "projected",
                  "other"]
    medium: str = ""  # emptyDir: "" (a directory of the pod) or "Memory" (a tmpfs)
    size_limit: int | None = None  # emptyDir sizeLimit, bytes
    ref: str | None = None  # configMap name, secretName, hostPath path
    items: tuple[KeyToPath, ...] = ()
    default_mode: int = 0o644
    optional: bool = False
    fields: tuple[tuple[str, str, int | None], ...] = ()  # downwardAPI: (path, fieldPath, mode)
    sources: tuple[Volume, ...] = ()  # projected


@dataclass(frozen=True)
class VolumeMount:
    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass(frozen=True)
class EnvRef:
    """env[].valueFrom (`name` is the variable) or, with `name` "", an envFrom entry."""

    name: str
    kind: Literal["configMap", "secret", "field"]
    source: str  # the ConfigMap's or Secret's name, or a fieldPath
    key: str = ""
    optional: bool = False
    prefix: str = ""  # envFrom


@dataclass(frozen=True)
class Container:
    name: str
    image: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    startup_probe: Probe | None = None
    volume_mounts: tuple[VolumeMount, ...] = ()
    env_refs: tuple[EnvRef, ...] = ()  # valueFrom and envFrom, resolved at pod start
    # initContainers only: "Always" makes it a native sidecar (runs beside the containers,
    # restarted whatever the pod's restartPolicy; KEP-753)
    restart_policy: str | None = None

    @property
    def argv(self) -> tuple[str, ...]:
        """What the container runs. Without `command` there is no image entrypoint to
        fall back on, so nothing runs (a later issue adds a built-in responder)."""
        return (*self.command, *self.args) if self.command else ()


@dataclass(frozen=True)
class PodSpec:
    containers: tuple[Container, ...]
    node_name: str | None = None
    hostname: str | None = None
    subdomain: str | None = None
    dns_policy: str | None = None
    dns_config: dict | None = None
    restart_policy: str = "Always"  # Always | OnFailure | Never

    volumes: tuple[Volume, ...] = ()
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (ip, hostnames): /etc/hosts
    node_selector: tuple[tuple[str, str], ...] = ()  # spec.nodeSelector, sorted
    # affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution; () = none
    node_affinity: tuple[NodeSelectorTerm, ...] = ()
    # spec.initContainers in order: each runs to completion before the next; sidecars
    # (restart_policy "Always") start in their turn and keep running
    init_containers: tuple[Container, ...] = ()
    host_network: bool = False  # in the node's network namespace: the node's addresses

    @property
    def host_ports(self) -> tuple[tuple[str, str, int, int], ...]:
        """(protocol, hostIP or "", hostPort, containerPort) of every port that asks for a
        hostPort (with hostNetwork, every containerPort: the API server defaults hostPort to
        it), sorted."""
        return tuple(sorted({(p.protocol, p.host_ip or "", p.host_port, p.container_port)
                             for c in (*self.init_containers, *self.containers)
                             for p in c.ports if p.host_port}))

    @property
    def sidecars(self) -> tuple[Container, ...]:
        return tuple(c for c in self.init_containers if c.restart_policy == "Always")

    @property
    def long_running(self) -> tuple[Container, ...]:
        """The containers that make up a running pod: its sidecars, then its containers
        (what READY counts, whose ports are served and whose readiness makes the pod's)."""
        return (*self.sidecars, *self.containers)


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    spec: PodSpec
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    owner: str | None = None  # "Deployment/<name>" for generated pods
    source: Source | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Deployment:
    namespace: str
    name: str
    replicas: int
    selector: LabelSelector
    template_labels: dict[str, str]
    template_annotations: dict[str, str]
    template_spec: PodSpec
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Workload:
    """A ReplicaSet, ReplicationController, DaemonSet, StatefulSet or Job: its pods are
    planned (plan.desired_pods) like a Deployment's."""

    kind: str
    namespace: str
    name: str
    replicas: int  # DaemonSet: unused (one per node); Job: its first wave of pods
    selector: LabelSelector
    template_labels: dict[str, str]
    template_annotations: dict[str, str]
    template_spec: PodSpec
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    service_name: str | None = None  # StatefulSet spec.serviceName
    ordered_ready: bool = True  # StatefulSet podManagementPolicy OrderedReady
    source: Source | None = field(default=None, compare=False)
    # StatefulSet spec.updateStrategy (plan.statefulset_revisions): "RollingUpdate" or
    # "OnDelete"; rollingUpdate.partition; rollingUpdate.maxUnavailable (int, "N%", or None:
    # not set, the GA one-at-a-time rule)
    update_strategy: str = "RollingUpdate"
    partition: int = 0
    max_unavailable: int | str | None = None
    job: JobSpec | None = None  # Job: how its pods run to completion (netlab.jobs)


@dataclass(frozen=True)
class JobSpec:
    """A Job's run-to-completion fields, defaulted as the API server does."""

    completions: int | None = 1  # None (parallelism set, completions not): a work queue
    parallelism: int = 1
    backoff_limit: int = 6
    indexed: bool = False  # completionMode Indexed


@dataclass(frozen=True)
class ServicePort:
    port: int
    protocol: Protocol = "TCP"
    name: str | None = None
    target_port: int | str | None = None  # None = same as port
    node_port: int | None = None


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
    ports: tuple[ServicePort, ...]
    selector: dict[str, str] | None = None
    cluster_ip: str | None = None  # an address (either family), "None" (headless) or None
    external_name: str | None = None
    session_affinity: Literal["None", "ClientIP"] = "None"
    affinity_timeout: int = 10800
    external_traffic_policy: Literal["Cluster", "Local"] = "Cluster"
    internal_traffic_policy: Literal["Cluster", "Local"] = "Cluster"
    load_balancer_ip: str | None = None
    publish_not_ready: bool = False  # publishNotReadyAddresses
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    source: Source | None = field(default=None, compare=False)
    # dual-stack, as written (defaulted against the cluster when planned, services.py):
    # spec.ipFamilyPolicy (None: unset), spec.ipFamilies in order, spec.clusterIPs (with
    # clusterIP folded in: clusterIP is clusterIPs[0]; ("None",) for a headless Service)
    ip_family_policy: str | None = None
    ip_families: tuple[str, ...] = ()
    cluster_ips: tuple[str, ...] = ()
    # spec.externalIPs (either family, as written); spec.loadBalancerSourceRanges (or the
    # service.beta.kubernetes.io/load-balancer-source-ranges annotation), each stripped;
    # spec.allocateLoadBalancerNodePorts (None: unset, the API server defaults it to true for
    # a LoadBalancer); spec.healthCheckNodePort (None: unset or 0); spec.trafficDistribution
    external_ips: tuple[str, ...] = ()
    source_ranges: tuple[str, ...] = ()
    allocate_lb_node_ports: bool | None = None
    health_check_node_port: int | None = None
    traffic_distribution: str | None = None


@dataclass(frozen=True)
class EndpointAddress:
    """One address of an Endpoints subset or an EndpointSlice endpoint."""

    ip: str
    ready: bool = True  # conditions.ready (unset: ready); notReadyAddresses: False
    serving: bool = True  # conditions.serving (unset: same as ready)
    terminating: bool = False
    node_name: str | None = None
    target_ref: tuple[str, str, str] | None = None  # (kind, namespace, name)


@dataclass(frozen=True)
class EndpointPort:
    name: str  # "" when unnamed (matches a Service port without a name)
    port: int
    protocol: Protocol = "TCP"


@dataclass(frozen=True)
class EndpointGroup:
    """Addresses that share ports: an Endpoints subset, or one EndpointSlice."""

    addresses: tuple[EndpointAddress, ...]
    ports: tuple[EndpointPort, ...]


@dataclass(frozen=True)
class EndpointsObject:
    """core/v1 Endpoints or discovery.k8s.io/v1 EndpointSlice written by hand (the
    endpoints of a Service without a selector). `service`: the Service it belongs to, by
    name in the same namespace (Endpoints: its own name; a slice: its
    kubernetes.io/service-name label, None without it)."""

    kind: Literal["Endpoints", "EndpointSlice"]
    namespace: str
    name: str
    service: str | None
    groups: tuple[EndpointGroup, ...]
    address_type: str = "IPv4"
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class IPBlock:
    cidr: str
    except_: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyPeer:
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True)
class PolicyPort:
    protocol: Protocol = "TCP"
    port: int | str | None = None
    end_port: int | None = None


@dataclass(frozen=True)
class PolicyRule:
    peers: tuple[PolicyPeer, ...] = ()  # empty = all peers
    ports: tuple[PolicyPort, ...] = ()  # empty = all ports


@dataclass(frozen=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    policy_types: tuple[Literal["Ingress", "Egress"], ...]
    ingress: tuple[PolicyRule, ...] = ()
    egress: tuple[PolicyRule, ...] = ()
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class IngressBackend:
    service: str | None = None
    port_number: int | None = None
    port_name: str | None = None
    resource: str | None = None


@dataclass(frozen=True)
class IngressPath:
    path: str | None
    path_type: Literal["Prefix", "Exact", "ImplementationSpecific"]
    backend: IngressBackend


@dataclass(frozen=True)
class IngressRule:
    host: str | None
    paths: tuple[IngressPath, ...]


@dataclass(frozen=True)
class IngressTLS:
    hosts: tuple[str, ...]
    secret_name: str | None


@dataclass(frozen=True)
class Ingress:
    namespace: str
    name: str
    class_name: str | None
    rules: tuple[IngressRule, ...] = ()
    default_backend: IngressBackend | None = None
    tls: tuple[IngressTLS, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class IngressClassParameters:
    """spec.parameters: a reference to the controller's configuration (kept, not used)."""

    kind: str
    name: str
    api_group: str | None = None
    scope: str | None = None  # Cluster | Namespace
    namespace: str | None = None


@dataclass(frozen=True)
class IngressClass:
    """networking.k8s.io/v1 IngressClass: which controller implements Ingresses of the class."""

    name: str
    controller: str
    parameters: IngressClassParameters | None = None
    is_default: bool = False  # annotation ingressclass.kubernetes.io/is-default-class: "true"
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Secret:
    namespace: str
    name: str
    type: str
    data: dict[str, bytes] = field(default_factory=dict, hash=False)
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ConfigMap:
    namespace: str
    name: str
    data: dict[str, str] = field(default_factory=dict, hash=False)
    binary_data: dict[str, bytes] = field(default_factory=dict, hash=False)
    immutable: bool = False
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    pod_cidr: str | None = None  # None: allocated from the cluster podCIDR
    # labels set in the Cluster document (kubernetes.io/hostname, os, arch come on top)
    labels: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Cluster:
    """netlab's own `Cluster` document (apiVersion netlab.dev/v1alpha1)."""

    nodes: tuple[NodeSpec, ...] = (NodeSpec("node-1"), NodeSpec("node-2"))
    pod_cidr: str = "10.244.0.0/16"
    node_cidr_mask: int = 24
    service_cidr: str = "10.96.0.0/12"
    underlay_cidr: str = "172.18.0.0/24"
    backend: Backend = "vxlan"
    mtu: int = 1500
    cluster_dns: str = "10.96.0.10"
    cluster_domain: str = "cluster.local"
    load_balancer_pool: str = "172.18.0.200-172.18.0.250"  # on the underlay (MetalLB L2 style)
    dns: bool = True  # run the cluster DNS add-on (kube-system/coredns, Service kube-dns)
    upstream_dns: bool = True  # forward outside names to the internet host's resolver
    ingress_class: str = "nginx"  # the IngressClass the lab's controller serves (the default)
    internet_cidr: str = "203.0.113.0/24"  # the `internet` host's network, behind the underlay
    # kubelet's container restart back-off: 10 s doubling to 5 min; a lab may shorten it
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    # Dual-stack (kubeadm-style "v4,v6" pairs in podCIDR/serviceCIDR/...): the IPv6 half of
    # each range; pod_cidr6 "" = a single-stack IPv4 cluster, pod_cidr "" (and the other
    # IPv4 ranges "") an IPv6-only one. `primary_family` is the family listed first.
    pod_cidr6: str = ""
    node_cidr_mask6: int = 64  # kube-controller-manager --node-cidr-mask-size-ipv6
    service_cidr6: str = ""  # "" = single-stack Services (dual-stack pods may still be)
    underlay_cidr6: str = "2001:db8:18::/64"  # documentation prefixes (RFC 3849)
    internet_cidr6: str = "2001:db8:113::/64"
    # the IPv6 load balancer range (inside underlay_cidr6), used in a dual-stack cluster
    load_balancer_pool6: str = "2001:db8:18::c8-2001:db8:18::fa"
    primary_family: str = "IPv4"
    # CNI mode (spec.cni): pods are plumbed by CNI plugins instead of netlab's native
    # bridge + host-local equivalent. cni_config: the network configuration list as JSON
    # text ("" = native mode); cni_bin_dirs: CNI_PATH (':'-separated); a plugin call's timeout
    cni_config: str = ""
    cni_bin_dirs: str = "/usr/lib/cni"
    cni_timeout: float = 10.0
    # backend bgp (Calico's model): BIRD in every node announcing its pod block(s) over
    # iBGP in AS bgp_as, full mesh or through one route reflector node; bgp_external: the
    # `external` router peers with every node over eBGP (AS bgp_external_as), as a
    # top-of-rack switch does with Calico
    bgp_as: int = 64512
    bgp_route_reflector: str = ""
    bgp_external: bool = False
    bgp_external_as: int = 64513
    # kube-proxy's mode: nftables (netlab's default, kube-proxy's since 1.33 GA) or iptables
    # (kube-proxy's default): the only Cluster field a running lab may change (`apply`)
    proxy_mode: str = "nftables"
    source: Source | None = field(default=None, compare=False)

    @property
    def cni(self) -> bool:
        """Pods are plumbed by CNI plugins (spec.cni)."""
        return bool(self.cni_config)

    @property
    def dual_stack(self) -> bool:
        return bool(self.pod_cidr) and bool(self.pod_cidr6)

    @property
    def ipv4(self) -> bool:
        """The cluster has IPv4 (single-stack IPv4 or dual-stack)."""
        return bool(self.pod_cidr)

    @property
    def ipv6(self) -> bool:
        """The cluster has IPv6 (dual-stack or IPv6-only)."""
        return bool(self.pod_cidr6)

    @property
    def families(self) -> tuple[str, ...]:
        """The cluster's pod address families, the primary first."""
        have = tuple(f for f, on in (("IPv4", self.ipv4), ("IPv6", self.ipv6)) if on)
        return tuple(sorted(have, key=lambda f: f != self.primary_family))

    @property
    def primary(self) -> str:
        return self.families[0]

    def lb_pool(self) -> list[ipaddress.IPv4Address]:
        if not self.load_balancer_pool:
            return []
        first, _, last = self.load_balancer_pool.partition("-")
        lo, hi = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last or first)
        return [ipaddress.IPv4Address(i) for i in range(int(lo), int(hi) + 1)]

    def lb_range6(self) -> tuple[ipaddress.IPv6Address, ipaddress.IPv6Address] | None:
        """The first and last address of the IPv6 load balancer pool (None: no IPv6)."""
        if not self.ipv6 or not self.load_balancer_pool6:
            return None
        first, _, last = self.load_balancer_pool6.partition("-")
        return ipaddress.IPv6Address(first), ipaddress.IPv6Address(last or first)

    @property
    def pod_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.pod_cidr)

    def dns_ips(self) -> dict[str, str]:
        """The kube-dns Service's ClusterIP per family of the Service ranges: clusterDNS
        (kubelet's, the primary family's) and the 10th address of the other range, as
        kubeadm and kind number it (10.96.0.10, fd00:10:96::a)."""
        out = {"IPv6" if ":" in self.cluster_dns else "IPv4": self.cluster_dns}
        for family in ("IPv4", "IPv6"):
            cidr = self.cidr("service", family)
            if cidr and family not in out:
                out[family] = str(ipaddress.ip_network(cidr).network_address + 10)
        return out

    def cidr(self, name: str, family: str) -> str:
        """A range of one family: cidr("pod", "IPv6") is pod_cidr6 ("" if the cluster has
        none); name is pod, service, underlay or internet."""
        return getattr(self, f"{name}_cidr{'6' if family == 'IPv6' else ''}")

    @property
    def pod_mtu(self) -> int:
        """MTU of cni0 and pod interfaces: VXLAN costs 50 bytes (flannel's rule); 70 over an
        IPv6 underlay, all an IPv6-only cluster has (see features/overlay)."""
        if self.backend != "vxlan":
            return self.mtu
        return self.mtu - (50 if self.ipv4 else 70)


@dataclass(frozen=True)
class HttpExpect:
    """What an http check asserts beyond the status: who answered, and what the backend
    received, as the Gateway API conformance suite's ExpectedRequest does (netlab's
    responder echoes it)."""

    backend: str | None = None  # a pod name prefix, or NS/prefix
    path: str | None = None  # the request target received: path and query
    host: str | None = None  # the Host header received
    headers: tuple[tuple[str, str], ...] = ()  # received, names in any case
    absent_headers: tuple[str, ...] = ()  # not received (a filter removed them)
    response_headers: tuple[tuple[str, str], ...] = ()  # in the answer to the client


@dataclass(frozen=True)
class ExpectCheck:
    """One check of an Expectation document: a connection, a DNS name or an HTTP request,
    and what should happen, tested with real traffic by `netlab test`. An http check sends a
    request of its own (method, headers, a body, through a proxy) and may assert what the
    backend received (`seen`)."""

    kind: Literal["connect", "dns", "http"]
    src: str
    name: str = ""
    dst: str | None = None
    port: int | None = None
    protocol: str | None = None
    expect: str = "connected"  # connected | blocked; dns: resolves | nxdomain
    answered_by: tuple[tuple[str, str], ...] = ()  # labels of the pod that must answer
    client_ip: str | None = None  # pod | node | an address: what the answering side saw
    dns_type: str = ""  # "": A, or AAAA in a lab whose primary family is IPv6
    resolves_to: tuple[str, ...] = ()  # addresses, or svc/NAME (its ClusterIP)
    status: int | None = None  # http
    family: str | None = None  # connect: "IPv6" = to the target's IPv6 address (dual-stack)
    method: str = "GET"  # http: the request's method, headers and body
    headers: tuple[tuple[str, str], ...] = ()
    data: str | None = None
    via: str | None = None  # http: the proxy, ingress or gateway/[NS/]NAME (Lab.http's `to`)
    seen: HttpExpect = field(default_factory=HttpExpect)  # http: what the backend received


@dataclass(frozen=True)
class Expectation:
    name: str
    checks: tuple[ExpectCheck, ...]
    source: Source | None = field(default=None, compare=False)


ObjectKey = tuple[str, str, str]  # (kind, namespace, name); namespace "" for cluster-scoped


@dataclass
class Manifests:
    """Everything one or more files declared, keyed by (kind, namespace, name)."""

    cluster: Cluster | None = None
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    workloads: dict[str, Workload] = field(default_factory=dict)  # "Kind/ns/name"
    services: dict[str, Service] = field(default_factory=dict)
    network_policies: dict[str, NetworkPolicy] = field(default_factory=dict)
    # ClusterNetworkPolicy and v1alpha1 Admin/BaselineAdminNetworkPolicy, by kind/name
    # (netlab.policy.cluster.ClusterNetworkPolicy)
    cluster_network_policies: dict = field(default_factory=dict)
    ingresses: dict[str, Ingress] = field(default_factory=dict)
    ingress_classes: dict[str, IngressClass] = field(default_factory=dict)  # by name
    # Gateway API (netlab.gateway.api objects): classes by name, the rest by ns/name
    gateway_classes: dict = field(default_factory=dict)
    gateways: dict = field(default_factory=dict)
    http_routes: dict = field(default_factory=dict)
    reference_grants: dict = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    config_maps: dict[str, ConfigMap] = field(default_factory=dict)
    expectations: dict[str, Expectation] = field(default_factory=dict)
    endpoints: dict[str, EndpointsObject] = field(default_factory=dict)  # ns/name
    endpoint_slices: dict[str, EndpointsObject] = field(default_factory=dict)  # ns/name
    raw: dict[ObjectKey, dict] = field(default_factory=dict)  # the documents as written
    label_overrides: dict[str, dict[str, str | None]] = field(default_factory=dict)  # netlab label
    warnings: list[str] = field(default_factory=list)

    def keys(self) -> list[ObjectKey]:
        return list(self.raw)
