"""NetworkPolicy in nftables: table `ip netlab-policy` on every node, on the forward path
after Service DNAT (so it sees pod addresses and target ports), like Calico's or
kube-router's per-pod chains.

  forward (filter hook forward, and input for traffic a pod sends to its node):
    ct state established,related accept          replies of allowed connections
    ip saddr vmap @egress-pods                    local pods isolated for egress
    ip daddr vmap @ingress-pods                   local pods isolated for ingress
  ingress-<ns>/<pod>: one rule per (policy rule, peer set, port) that allows -> return;
                      the last rule drops
  egress-<ns>/<pod>:  the same for the pod's egress

Label selectors are resolved here, against the pods of the plan, into address sets; named
ports into numbers per destination pod. Rendering is pure and deterministic; every change
(policy, labels, pods) re-renders and the table diff updates only what changed, atomically.
"""

from __future__ import annotations

from collections.abc import Iterable

from netlab.model import NetworkPolicy, PolicyPort, PolicyRule
from netlab.nft import Table
from netlab.plan import NodePlan, Plan, PodPlan
from netlab.policy.engine import PodRef, PolicyEngine, engine_for

TABLE = "netlab-policy"


def _ports(ports: tuple[PolicyPort, ...], dst: PodRef | None) -> list[str] | None:
    """nft matches for a rule's ports, resolved for destination pod `dst` (None: any
    destination, named ports cannot be resolved). [] means: matches nothing."""
    if not ports:
        return None  # every port, every protocol
    out = []
    for p in ports:
        proto = p.protocol.lower()
        if p.port is None:
            out.append(f"meta l4proto {proto}")
        elif isinstance(p.port, str):
            number = dst.port_named(p.port, p.protocol) if dst else None
            if number is not None:
                out.append(f"meta l4proto {proto} th dport {number}")
        elif p.end_port is not None:
            out.append(f"meta l4proto {proto} th dport {p.port}-{p.end_port}")
        else:
            out.append(f"meta l4proto {proto} th dport {p.port}")
    return out


def _peer_matches(engine: PolicyEngine, rule: PolicyRule, policy: NetworkPolicy, field: str,
                  pods: Iterable[PodRef]) -> list[tuple[str, list[PodRef]]]:
    """The address matches of a rule's peers: (nft match, pods it covers)."""
    if not rule.peers:
        return [("", list(pods))]
    out = []
    for peer in rule.peers:
        if peer.ip_block is not None:
            b = peer.ip_block
            match = f"ip {field} {b.cidr}"
            if b.except_:
                match += f" ip {field} != {{ {', '.join(b.except_)} }}"
            covered = [p for p in pods if engine.peer_matches(peer, policy.namespace, p)]
            out.append((match, covered))
        else:
            covered = [p for p in pods if engine.peer_matches(peer, policy.namespace, p)]
            if covered:
                ips = ", ".join(sorted({p.ip for p in covered}, key=_ip_key))
                out.append((f"ip {field} {{ {ips} }}", covered))
    return out


def _ip_key(ip: str) -> tuple[int, ...]:
    return tuple(int(x) for x in ip.split("."))


def _rules_for(engine: PolicyEngine, pod: PodRef, direction: str) -> list[str]:
    rules: list[str] = []
    policies = engine.selecting(pod, direction)
    pods = list(engine.pods.values())
    for policy in policies:
        for i, rule in enumerate(policy.ingress if direction == "Ingress" else policy.egress):
            tag = f'comment "{policy.namespace}/{policy.name} {direction.lower()}[{i}]"'
            if direction == "Ingress":
                ports = _ports(rule.ports, pod)
                for match, _ in _peer_matches(engine, rule, policy, "saddr", pods):
                    for port in ports if ports is not None else [""]:
                        rules.append(" ".join(x for x in (match, port, "return", tag) if x))
                continue
            # egress: named ports resolve per destination pod
            named = any(isinstance(p.port, str) for p in rule.ports)
            for match, covered in _peer_matches(engine, rule, policy, "daddr", pods):
                if not named:
                    ports = _ports(rule.ports, None)
                    for port in ports if ports is not None else [""]:
                        rules.append(" ".join(x for x in (match, port, "return", tag) if x))
                    continue
                numbered = PolicyRule((), tuple(p for p in rule.ports
                                                if not isinstance(p.port, str)))
                for port in (_ports(numbered.ports, None) or []) if numbered.ports else []:
                    rules.append(" ".join(x for x in (match, port, "return", tag) if x))
                named_only = tuple(p for p in rule.ports if isinstance(p.port, str))
                for dst in covered:
                    for port in _ports(named_only, dst) or []:
                        rules.append(" ".join(x for x in (match, f"ip daddr {dst.ip}", port,
                                                          "return", tag) if x))
    rules.append(f'drop comment "{pod.key}: isolated for {direction.lower()}, no rule allows"')
    return rules


def render_node(plan: Plan, node: NodePlan, policies: Iterable[NetworkPolicy]) -> Table:
    engine = engine_for(plan, policies)
    t = Table("ip", TABLE)
    t.maps["ingress-pods"] = ("type ipv4_addr : verdict ;", {})
    t.maps["egress-pods"] = ("type ipv4_addr : verdict ;", {})
    head = ["ct state established,related accept"]
    t.chain("forward", [*head, "ip saddr vmap @egress-pods", "ip daddr vmap @ingress-pods"],
            "type filter hook forward priority filter ; policy accept ;")
    t.chain("input", [*head, "ip saddr vmap @egress-pods"],
            "type filter hook input priority filter ; policy accept ;")
    local: list[PodPlan] = [p for p in plan.pods.values() if p.node == node.name]
    for p in local:
        ref = engine.pods[p.key]
        for direction, map_name in (("Ingress", "ingress-pods"), ("Egress", "egress-pods")):
            if engine.selecting(ref, direction):
                chain = f"{direction.lower()}-{p.key}"
                t.chain(chain, _rules_for(engine, ref, direction))
                t.maps[map_name][1][p.ip] = f"jump {chain}"
    return t
