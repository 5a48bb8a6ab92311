"""Scheduling on node labels, as kube-scheduler's NodeAffinity filter does: a node's
labels, and whether a pod's nodeSelector and required node affinity accept a node.

Pure. `netlab.plan.make_plan` uses it to place pods; a pod no node accepts stays Pending
with the scheduler's reason (`unschedulable_reason`)."""

from __future__ import annotations

import platform

from netlab.model import NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, PodSpec

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}

MISMATCH = "node(s) didn't match Pod's node affinity/selector"
TOO_MANY = "Too many pods"
PORTS = "node(s) didn't have free ports for the requested pod ports"


HostPort = tuple[str, str, int, int]  # (protocol, hostIP or "", hostPort, containerPort)


def ports_conflict(wanted: tuple[HostPort, ...], used: set[HostPort]) -> bool:
    """kube-scheduler's NodePorts filter: a hostPort is taken when a pod on the node uses
    the same protocol and port on the same hostIP, or either side on every address
    (hostIP unset or 0.0.0.0)."""
    for proto, ip, port, _ in wanted:
        for uproto, uip, uport, _ in used:
            if proto == uproto and port == uport and (
                    ip in ("", "0.0.0.0") or uip in ("", "0.0.0.0") or ip == uip):
                return True
    return False


def machine_arch() -> str:
    """GOARCH of this machine, as kubelet labels its node (kubernetes.io/arch)."""
    m = platform.machine().lower()
    return _ARCH.get(m, m or "amd64")


def node_labels(node: NodeSpec) -> dict[str, str]:
    """The labels kubelet puts on a node, then those the Cluster document sets (which may
    override them, as `kubectl label --overwrite` would)."""
    return {"kubernetes.io/arch": machine_arch(), "kubernetes.io/hostname": node.name,
            "kubernetes.io/os": "linux", **node.labels}


def _requirement(r: NodeSelectorRequirement, value: str | None) -> bool:
    if r.operator == "In":
        return value is not None and value in r.values
    if r.operator == "NotIn":
        return value is None or value not in r.values
    if r.operator == "Exists":
        return value is not None
    if r.operator == "DoesNotExist":
        return value is None
    try:  # Gt, Lt: both sides integers, else no match
        have, want = int(value or ""), int(r.values[0])
    except ValueError:
        return False
    return have > want if r.operator == "Gt" else have < want


def term_matches(term: NodeSelectorTerm, name: str, labels: dict[str, str]) -> bool:
    """Requirements ANDed; a term with none matches no node."""
    if not term.match_expressions and not term.match_fields:
        return False
    return (all(_requirement(r, labels.get(r.key)) for r in term.match_expressions)
            and all(_requirement(r, name if r.key == "metadata.name" else None)
                    for r in term.match_fields))


def accepts(spec: PodSpec, node: NodeSpec) -> bool:
    """Whether the pod's nodeSelector and required node affinity accept the node."""
    labels = node_labels(node)
    if any(labels.get(k) != v for k, v in spec.node_selector):
        return False
    return not spec.node_affinity or any(term_matches(t, node.name, labels)
                                         for t in spec.node_affinity)


def constrained(spec: PodSpec) -> bool:
    return bool(spec.node_selector or spec.node_affinity)


def unschedulable_reason(total: int, counts: dict[str, int]) -> str:
    """kube-scheduler's FitError message: `0/N nodes are available: ` and the count of
    nodes per reason, the reasons sorted."""
    parts = sorted(f"{n} {why}" for why, n in counts.items() if n)
    return f"0/{total} nodes are available: {', '.join(parts)}."
