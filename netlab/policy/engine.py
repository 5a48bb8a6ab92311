"""The policy engine: networking.k8s.io/v1 NetworkPolicy semantics, pure (no kernel).

For a source (a pod, or an address outside the pod network), a destination, a port and a
protocol it decides whether Kubernetes allows the connection, and why: which policies
isolate each end, and which rule of which policy allows it.

Semantics (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
- A pod is isolated for ingress (egress) when a policy in its namespace selects it and
  lists Ingress (Egress) in policyTypes; otherwise that direction is open.
- Policies are additive: an isolated direction admits what any selecting policy's rules
  admit. A connection needs the source's egress and the destination's ingress.
- Peers: podSelector (in the policy's namespace), namespaceSelector, both in one peer (AND),
  several peers (OR), ipBlock (cidr minus except). No peers: everyone. No ports: every port.
- Ports: protocol (TCP by default), a number, a named port resolved on the destination pod,
  or a range with endPort. A port with a protocol admits only that protocol.
- Traffic a pod sends to itself never leaves it and is not subject to policy.
- Dual-stack: a decision is for one family. Pod and namespace selectors stand for a pod in
  both families (all its podIPs); an ipBlock matches addresses of its own family only (an
  IPv4 block never matches IPv6 traffic, and vice versa), as Go's net.IPNet.Contains does in
  kube-network-policies. Isolation is per pod, so it holds in both families.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from netlab.model import IPBlock, LabelSelector, NetworkPolicy, PolicyPeer, PolicyPort, PolicyRule


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    ip: str
    labels: dict[str, str] = field(hash=False)
    named_ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, number)
    node: str = ""
    ip6: str = ""  # dual-stack: the pod's IPv6 address

    def address(self, family: str = "IPv4") -> str:
        return self.ip6 if family == "IPv6" else self.ip

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def port_named(self, name: str, protocol: str) -> int | None:
        return next((n for pn, proto, n in self.named_ports
                     if pn == name and proto == protocol), None)


Endpoint = PodRef | str  # a pod, or an IP address outside the pod network


@dataclass(frozen=True)
class RuleRef:
    policy: str  # namespace/name
    direction: str  # ingress | egress
    index: int

    def __str__(self) -> str:
        return f"{self.policy} {self.direction}[{self.index}]"


@dataclass(frozen=True)
class DirectionDecision:
    direction: str
    isolated: bool
    allowed: bool
    isolated_by: tuple[str, ...] = ()  # policies selecting the pod for this direction
    allowed_by: tuple[RuleRef, ...] = ()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    ingress: DirectionDecision
    egress: DirectionDecision
    reason: str = ""
    family: str = "IPv4"

    def explain(self, src: str, dst: str, port: int | None, protocol: str) -> list[str]:
        what = f"{protocol.upper()}/{port}" if port else protocol.upper()
        lines = []
        if self.reason:
            lines.append(self.reason)
        for d, end, other in ((self.egress, src, dst), (self.ingress, dst, src)):
            way = "to" if d.direction == "egress" else "from"
            if d.direction == "egress" and "/" not in end:
                continue
            if not d.isolated:
                lines.append(f"{d.direction} of {end}: not isolated (no NetworkPolicy selects it "
                             f"for {d.direction.capitalize()}): allowed")
            elif d.allowed:
                by = ", ".join(str(r) for r in d.allowed_by)
                lines.append(f"{d.direction} of {end}: isolated by {', '.join(d.isolated_by)}; "
                             f"{what} {way} {other} allowed by {by}")
            else:
                lines.append(f"{d.direction} of {end}: isolated by {', '.join(d.isolated_by)}; "
                             f"no rule of these allows {what} {way} {other}: denied")
        lines.append(f"verdict: {'ALLOWED' if self.allowed else 'DENIED'}")
        return lines


def _in_block(ip: str, block: IPBlock) -> bool:
    """`ip` in cidr and in no except; an address of the other family is never in it."""
    if not ip:
        return False
    addr = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(block.cidr)
    if addr.version != net.version:
        return False
    return addr in net and not any(addr in ipaddress.ip_network(e) for e in block.except_)


def family_of(address: str) -> str:
    return "IPv6" if ":" in address else "IPv4"


class PolicyEngine:
    def __init__(self, pods: Iterable[PodRef], namespaces: dict[str, dict[str, str]],
                 policies: Iterable[NetworkPolicy],
                 node_addresses: dict[str, set[str]] | None = None) -> None:
        self.node_addresses = node_addresses or {}
        self.pods = {p.key: p for p in pods}
        self.by_ip = {p.ip: p for p in self.pods.values() if p.ip}
        self.by_ip.update({p.ip6: p for p in self.pods.values() if p.ip6})
        self.namespaces = namespaces
        self.policies = sorted(policies, key=lambda p: (p.namespace, p.name))

    # --- selection ---------------------------------------------------------------------

    def selecting(self, pod: PodRef, direction: str) -> list[NetworkPolicy]:
        """Policies that isolate `pod` for `direction` ("Ingress" or "Egress")."""
        return [p for p in self.policies
                if p.namespace == pod.namespace and direction in p.policy_types
                and p.pod_selector.matches(pod.labels)]

    def peer_matches(self, peer: PolicyPeer, policy_ns: str, other: Endpoint,
                     family: str = "IPv4") -> bool:
        if peer.ip_block is not None:
            ip = other.address(family) if isinstance(other, PodRef) else other
            return _in_block(ip, peer.ip_block)
        if not isinstance(other, PodRef):
            return False  # pod and namespace selectors select pods only
        if peer.namespace_selector is not None:
            ns_labels = self.namespaces.get(other.namespace, {})
            if not peer.namespace_selector.matches(ns_labels):
                return False
        elif other.namespace != policy_ns:
            return False  # a podSelector alone means the policy's own namespace
        return peer.pod_selector is None or peer.pod_selector.matches(other.labels)

    @staticmethod
    def port_matches(ports: tuple[PolicyPort, ...], dst: Endpoint, port: int | None,
                     protocol: str) -> bool:
        if not ports:
            return True
        if protocol not in ("TCP", "UDP", "SCTP") or port is None:
            return False  # a rule with ports admits only those protocols
        for p in ports:
            if p.protocol != protocol:
                continue
            if p.port is None:
                return True
            if isinstance(p.port, str):
                number = dst.port_named(p.port, protocol) if isinstance(dst, PodRef) else None
                if number == port:
                    return True
            elif p.end_port is not None:
                if p.port <= port <= p.end_port:
                    return True
            elif p.port == port:
                return True
        return False

    def _rule_allows(self, rule: PolicyRule, policy: NetworkPolicy, peer: Endpoint,
                     dst: Endpoint, port: int | None, protocol: str,
                     family: str = "IPv4") -> bool:
        peers_ok = not rule.peers or any(self.peer_matches(p, policy.namespace, peer, family)
                                         for p in rule.peers)
        return peers_ok and self.port_matches(rule.ports, dst, port, protocol)

    def _direction(self, direction: str, pod: Endpoint, peer: Endpoint, dst: Endpoint,
                   port: int | None, protocol: str, family: str = "IPv4") -> DirectionDecision:
        name = direction.lower()
        if not isinstance(pod, PodRef):
            return DirectionDecision(name, False, True)
        policies = self.selecting(pod, direction)
        if not policies:
            return DirectionDecision(name, False, True)
        allowed_by = []
        for policy in policies:
            rules = policy.ingress if direction == "Ingress" else policy.egress
            for i, rule in enumerate(rules):
                if self._rule_allows(rule, policy, peer, dst, port, protocol, family):
                    allowed_by.append(RuleRef(f"{policy.namespace}/{policy.name}", name, i))
        return DirectionDecision(name, True, bool(allowed_by),
                                 tuple(f"{p.namespace}/{p.name}" for p in policies),
                                 tuple(allowed_by))

    def resolve(self, end: Endpoint) -> Endpoint:
        """An address that belongs to a pod is that pod."""
        if isinstance(end, str) and end in self.by_ip:
            return self.by_ip[end]
        return end

    def decide(self, src: Endpoint, dst: Endpoint, port: int | None, protocol: str,
               family: str | None = None) -> Decision:
        """The verdict for one connection in one family: that of an address given as an
        end, else `family` (IPv4 by default; "IPv6": between the pods' IPv6 addresses)."""
        addresses = [e for e in (src, dst) if isinstance(e, str)]
        if addresses:
            family = family_of(addresses[0])
        family = family or "IPv4"
        src, dst = self.resolve(src), self.resolve(dst)
        protocol = protocol.upper()
        if isinstance(src, PodRef) and isinstance(dst, PodRef) and src.key == dst.key:
            open_ = DirectionDecision("ingress", False, True)
            return Decision(True, open_, DirectionDecision("egress", False, True),
                            "a pod's traffic to itself never leaves it: policy does not apply",
                            family)
        if isinstance(src, str) and isinstance(dst, PodRef) \
                and src in self.node_addresses.get(dst.node, ()):
            open_ = DirectionDecision("ingress", False, True)
            return Decision(True, open_, DirectionDecision("egress", False, True),
                            f"{src} is {dst.key}'s own node, which can always reach its pods",
                            family)
        egress = self._direction("Egress", src, dst, dst, port, protocol, family)
        ingress = self._direction("Ingress", dst, src, dst, port, protocol, family)
        return Decision(egress.allowed and ingress.allowed, ingress, egress, family=family)


def engine_for(plan, policies: Iterable[NetworkPolicy]) -> PolicyEngine:
    """An engine over a lab's plan (pods, their labels and ports, namespace labels)."""
    # hostNetwork pods are their node's addresses (see features/netpol): no PodRef
    pods = [PodRef(p.namespace, p.name, p.ip, dict(p.labels), tuple(p.named_ports), p.node,
                   p.ip6) for p in plan.pods.values() if not p.host_network]
    nodes = {n.name: {a for a in (n.underlay_ip, n.gateway, n.vtep_ip, n.underlay_ip6,
                                  n.gateway6, n.vtep_ip6) if a}
             for n in plan.nodes}
    return PolicyEngine(pods, plan.namespaces, policies, nodes)


__all__ = ["Decision", "DirectionDecision", "LabelSelector", "PodRef", "PolicyEngine",
           "RuleRef", "engine_for", "family_of"]
