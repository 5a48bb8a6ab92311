"""Nodes and namespaces as kubectl shows them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlab.plan import Plan


@dataclass(frozen=True)
class BgpSession:
    """One BGP session of a speaker (a node of backend bgp, or the external router), as
    `birdc show protocols` reports it: the peer's protocol name (NODE_v4), BIRD's protocol
    state (up, start, down) and its info (Established, Active, Connect, ...)."""

    speaker: str
    peer: str
    state: str
    info: str

    @property
    def established(self) -> bool:
        return self.info.startswith("Established")

    def to_json(self) -> dict[str, Any]:
        return {"speaker": self.speaker, "peer": self.peer, "state": self.state,
                "info": self.info}


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
    primary: str = "IPv4"  # the cluster's primary family: which is spec.podCIDR
    # backend bgp: the node's BGP sessions as its BIRD reports them, (peer, state, info)
    bgp: tuple[tuple[str, str, str], ...] = ()

    @property
    def bgp_state(self) -> str:
        """`get nodes -o wide`'s BGP column: how many sessions are Established."""
        if not self.bgp:
            return "-"
        up = sum(info.startswith("Established") for _, _, info in self.bgp)
        return f"Established {up}/{len(self.bgp)}"

    @property
    def pod_cidrs(self) -> list[str]:
        """spec.podCIDRs, the primary family's first."""
        both = [c for c in (self.pod_cidr, self.pod_cidr6) if c]
        return both[::-1] if self.primary == "IPv6" else both

    @property
    def internal_ips(self) -> list[str]:
        both = [a for a in (self.internal_ip, self.internal_ip6) if a]
        return both[::-1] if self.primary == "IPv6" else both

    def to_k8s(self) -> dict[str, Any]:
        annotations = {"flannel.alpha.coreos.com/backend-type": self.backend}
        if self.internal_ip:
            annotations["flannel.alpha.coreos.com/public-ip"] = self.internal_ip
        if self.vtep_mac:
            annotations["flannel.alpha.coreos.com/backend-data"] = (
                f'{{"VNI":1,"VtepMAC":"{self.vtep_mac}"}}')
        if self.bgp:  # as calico/node's status reports its peers
            annotations["netlab.dev/bgp-sessions"] = ",".join(
                f"{peer}={info or state}" for peer, state, info in self.bgp)
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
            "spec": {"podCIDR": self.pod_cidrs[0], "podCIDRs": self.pod_cidrs},
            "status": {"addresses": [*({"type": "InternalIP", "address": a}
                                       for a in self.internal_ips),
                                     {"type": "Hostname", "address": self.name}],
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }

@dataclass(frozen=True)
class NamespaceInfo:
    """A namespace of the lab (declared, built in, or created because something used it)."""

    name: str
    labels: dict[str, str]

    def to_k8s(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.name, "labels": dict(self.labels)},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

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
                     n.underlay_ip6, n.pod_cidr6, n.vtep_mac6 if vxlan and n.vtep_mac6 else None,
                     plan.cluster.primary)
            for n in plan.nodes]

def namespace_infos(plan: Plan) -> list[NamespaceInfo]:
    """The lab's namespaces with their labels (`default` and `kube-system` always exist)."""
    known = dict(plan.namespaces)
    for key in [*plan.pods, *plan.services]:  # a state written before namespaces were kept
        ns = key.split("/")[0]
        known.setdefault(ns, {"kubernetes.io/metadata.name": ns})
    return [NamespaceInfo(n, dict(labels)) for n, labels in sorted(known.items())]
