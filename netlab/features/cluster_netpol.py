"""ClusterNetworkPolicy (Admin and Baseline tiers) in nftables, beside NetworkPolicy in the
node's netlab-policy table. Pure, and independent of netlab.policy.cluster's engine: it
resolves subjects and peers itself, so `check` compares two implementations.

Per local pod and direction with a cluster policy in either tier (network-policy-api
v1alpha2: Admin -> NetworkPolicy -> Baseline -> allow, each direction at its own pod):

    <dir>-<ns>/<pod>       Admin rules, policies by (priority, name), rules as written:
                             <peer> <port> return  (Accept: this direction is allowed)
                             <peer> <port> drop    (Deny)
                             <peer> <port> goto np-...   (Pass: the next tier decides)
                           goto np-...
    np-<dir>-<ns>/<pod>    a NetworkPolicy isolates the pod: its rules (return), then drop;
                           else: goto base-...
    base-<dir>-<ns>/<pod>  Baseline rules: Accept and Pass return, Deny drops; then return

`return` goes back to the forward/input chain, whose next vmap is the other direction's:
an egress Accept still meets the destination's ingress, as the API says. A pod with no
cluster policy keeps NetworkPolicy's single chain (netpol.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from netlab.model import LabelSelector
from netlab.names import fit
from netlab.nft import comment
from netlab.nft.table import NAME_MAX
from netlab.plan import Plan, PodPlan

# The policies are netlab.policy.cluster's ClusterNetworkPolicy objects, taken as data (Any):
# the renderer never imports the policy engine's package (check compares the two)
ClusterNetworkPolicy = Peer = PortMatch = Rule = Any


def _matches(selector: LabelSelector, labels: dict[str, str]) -> bool:
    from netlab.features.netpol import selector_matches

    return selector_matches(selector, labels)


def _pods_of(plan: Plan, pods: Iterable[PodPlan], ns_sel: LabelSelector | None,
             pod_sel: LabelSelector | None) -> list[PodPlan]:
    out = []
    for p in pods:
        if ns_sel is not None and not _matches(ns_sel, plan.namespaces.get(p.namespace, {})):
            continue
        if pod_sel is not None and not _matches(pod_sel, p.labels):
            continue
        out.append(p)
    return out


def subjects(plan: Plan, pods: list[PodPlan], policy: ClusterNetworkPolicy) -> list[PodPlan]:
    s = policy.subject
    if s.namespaces is not None:
        return _pods_of(plan, pods, s.namespaces, None)
    assert s.pods is not None
    return _pods_of(plan, pods, s.pods.namespace_selector, s.pods.pod_selector)


def _peer_addresses(plan: Plan, pods: list[PodPlan], peer: Peer, v6: bool
                    ) -> tuple[list[str], list[PodPlan]]:
    """The addresses (or CIDRs) a peer stands for in one family, and its pods."""
    if peer.namespaces is not None:
        chosen = _pods_of(plan, pods, peer.namespaces, None)
    elif peer.pods is not None:
        chosen = _pods_of(plan, pods, peer.pods.namespace_selector, peer.pods.pod_selector)
    elif peer.networks:
        return [c for c in peer.networks if (ipaddress.ip_network(c).version == 6) == v6], []
    elif peer.nodes is not None:
        from netlab.scheduling import node_labels

        specs = {n.name: n for n in plan.cluster.nodes}
        return [a for n in plan.nodes if n.name in specs
                and _matches(peer.nodes, node_labels(specs[n.name]))
                for a in (n.address("IPv6" if v6 else "IPv4"),) if a], []
    else:  # domainNames: not modelled, matches nothing (fails closed)
        return [], []
    chosen = [p for p in chosen if p.address("IPv6" if v6 else "IPv4")]
    return sorted({p.address("IPv6" if v6 else "IPv4") for p in chosen}), chosen


def _ports(protocols: tuple[PortMatch, ...], dst: PodPlan | None) -> list[str] | None:
    """nft matches for a rule's protocols (None: every protocol and port); named ports are
    resolved on `dst` (None: they match nothing)."""
    if not protocols:
        return None
    out = []
    for m in protocols:
        if m.name is not None:
            if dst is None:
                continue
            for name, proto, number in dst.named_ports:
                if name == m.name:
                    out.append(f"meta l4proto {proto.lower()} th dport {number}")
            continue
        proto = (m.protocol or "TCP").lower()
        if m.port is None:
            out.append(f"meta l4proto {proto}")
        elif m.end is not None and m.end != m.port:
            out.append(f"meta l4proto {proto} th dport {m.port}-{m.end}")
        else:
            out.append(f"meta l4proto {proto} th dport {m.port}")
    return out


def _verdict(rule: Rule, tier: str, pass_to: str) -> str:
    if rule.action == "Deny":
        return "drop"
    if rule.action == "Pass":
        return f"goto {pass_to}" if tier == "Admin" else "return"
    return "return"  # Accept


def _rules(plan: Plan, pods: list[PodPlan], pod: PodPlan, policies: list[ClusterNetworkPolicy],
           direction: str, tier: str, v6: bool, pass_to: str) -> list[str]:
    ip = "ip6" if v6 else "ip"
    field = "saddr" if direction == "ingress" else "daddr"
    out: list[str] = []
    rules = _rule_lines(plan, pods, pod, policies, direction, tier, v6, pass_to, ip, field)
    for line in rules:
        if " drop comment " in line:  # a Deny: remembered for probes, as netpol.py does
            head, _, tail = line.partition(" drop comment ")
            out.append(f"{head} meta l4proto {{ tcp, udp, sctp }} add @dropped {{ {ip} saddr "
                       f". meta l4proto . th sport }} drop comment {tail}")
        out.append(line)
    return out


def _rule_lines(plan: Plan, pods: list[PodPlan], pod: PodPlan,
                policies: list[ClusterNetworkPolicy], direction: str, tier: str, v6: bool,
                pass_to: str, ip: str, field: str) -> list[str]:
    out = []
    for pol in policies:
        for rule in pol.ingress if direction == "ingress" else pol.egress:
            verdict = _verdict(rule, tier, pass_to)
            tag = comment(f"{pol.kind} {pol.name} {direction}[{rule.index}] "
                          f"({rule.action})")
            for peer in rule.peers:
                addrs, chosen = _peer_addresses(plan, pods, peer, v6)
                if not addrs:
                    continue
                match = f"{ip} {field} {{ {', '.join(addrs)} }}"
                named = any(m.name for m in rule.protocols)
                if direction == "egress" and named:  # named ports per destination pod
                    numbered = tuple(m for m in rule.protocols if not m.name)
                    for port in _ports(numbered, None) or []:
                        out.append(f"{match} {port} {verdict} {tag}")
                    for dst in chosen:
                        for port in _ports(rule.protocols, dst) or []:
                            if "th dport" in port:
                                out.append(f"{ip} daddr {dst.address('IPv6' if v6 else 'IPv4')}"
                                           f" {port} {verdict} {tag}")
                    continue
                ports = _ports(rule.protocols, pod if direction == "ingress" else None)
                if ports is None:
                    out.append(f"{match} {verdict} {tag}")
                else:
                    out += [f"{match} {port} {verdict} {tag}" for port in ports]
    return out


def chains(plan: Plan, pods: list[PodPlan], pod: PodPlan, direction: str,
           cluster: list[ClusterNetworkPolicy], np_rules: list[str] | None, v6: bool
           ) -> dict[str, list[str]]:
    """The pod's chains for one direction ("ingress"/"egress"), the first the entry; {} if
    no cluster policy selects it (netpol.py then does NetworkPolicy alone). `np_rules`: the
    NetworkPolicy chain's rules when one isolates the pod, else None."""
    mine = [p for p in cluster if pod in subjects(plan, pods, p)
            and (p.ingress if direction == "ingress" else p.egress)]
    if not mine:
        return {}
    admin = sorted((p for p in mine if p.tier == "Admin"), key=lambda p: (p.priority, p.name))
    base = sorted((p for p in mine if p.tier == "Baseline"), key=lambda p: (p.priority, p.name))
    entry = fit(f"{direction}-{pod.namespace}/", pod.name, NAME_MAX)
    np = fit(f"np-{direction}-{pod.namespace}/", pod.name, NAME_MAX)
    baseline = fit(f"base-{direction}-{pod.namespace}/", pod.name, NAME_MAX)
    return {
        entry: [*_rules(plan, pods, pod, admin, direction, "Admin", v6, np), f"goto {np}"],
        np: list(np_rules) if np_rules is not None else [f"goto {baseline}"],
        baseline: [*_rules(plan, pods, pod, base, direction, "Baseline", v6, ""), "return"],
    }
