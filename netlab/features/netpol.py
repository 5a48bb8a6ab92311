"""NetworkPolicy in nftables: table `ip netlab-policy` on every node, on the forward path
after Service DNAT (so it sees pod addresses and target ports), like Calico's or
kube-router's per-pod chains. A dual-stack lab has a second table, `ip6 netlab-policy`, of
the same structure over the pods' IPv6 addresses (see render_node).

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

This module deliberately shares no code with the policy engine (netlab.policy): `netlab check`
compares the engine's verdicts with probes through these rules, so the rules must come from a
second, independent reading of the NetworkPolicy spec, or a selector bug in one would be
enforced and reported as agreement by the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netlab.features import cluster_netpol
from netlab.model import LabelSelector, NetworkPolicy, PolicyPeer, PolicyPort, PolicyRule
from netlab.names import fit
from netlab.nft import Table, comment
from netlab.nft.table import NAME_MAX
from netlab.plan import NodePlan, Plan, PodPlan

TABLE = "netlab-policy"
# connections the policy dropped, by source (address . protocol . port), kept 10 s: what
# `check` and `probe` read to know a probe was dropped without waiting out a timeout
DROPPED = "dropped"


# --- label selectors (metav1.LabelSelector), read from the API's definition ------------------


def _requirement_holds(labels: dict[str, str], key: str, op: str,
                       values: tuple[str, ...]) -> bool:
    value = labels.get(key)
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":  # a missing key is "not in" any set
        return value is None or value not in values
    raise ValueError(f"unknown label selector operator {op!r}")


def selector_matches(selector: LabelSelector, labels: dict[str, str]) -> bool:
    """All requirements hold (matchLabels k=v reads as `k In (v)`); none means everything."""
    reqs = [(k, "In", (v,)) for k, v in selector.match_labels]
    reqs += [(r.key, r.operator, tuple(r.values)) for r in selector.match_expressions]
    return all(_requirement_holds(labels, k, op, vals) for k, op, vals in reqs)


# --- what a policy selects ---------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """The plan as policy resolution sees it."""

    pods: tuple[PodPlan, ...]  # in plan order (rendering is deterministic)
    namespaces: dict[str, dict[str, str]]  # namespace -> labels


def _isolating(policies: list[NetworkPolicy], pod: PodPlan, direction: str) -> list[NetworkPolicy]:
    """Policies of the pod's namespace whose podSelector picks it and whose policyTypes name
    `direction`: together they make the pod isolated for that direction."""
    return [pol for pol in policies
            if pol.namespace == pod.namespace and direction in pol.policy_types
            and selector_matches(pol.pod_selector, pod.labels)]


def _v6(text: str) -> bool:
    """An IPv6 address or CIDR (the loader keeps ipBlocks in their canonical text)."""
    return ":" in text


def _in_cidr(ip: str, cidr: str) -> bool:
    if _v6(ip) or _v6(cidr):  # a block of one family never holds an address of the other
        return _v6(ip) and _v6(cidr) and _in_cidr6(ip, cidr)
    addr = _ip_int(ip)
    base, _, bits = cidr.partition("/")
    n = int(bits) if bits else 32
    mask = ((1 << n) - 1) << (32 - n) if n else 0
    return addr & mask == _ip_int(base) & mask


def _in_cidr6(ip: str, cidr: str) -> bool:
    base, _, bits = cidr.partition("/")
    n = int(bits) if bits else 128
    mask = ((1 << n) - 1) << (128 - n) if n else 0
    return _ip6_int(ip) & mask == _ip6_int(base) & mask


def _ip6_int(ip: str) -> int:
    """An IPv6 address as a number, read by hand (no shared parser with the engine)."""
    head, sep, tail = ip.partition("::")
    left = [g for g in head.split(":") if g]
    right = [g for g in tail.split(":") if g] if sep else []
    groups = [*left, *(["0"] * (8 - len(left) - len(right))), *right] if sep else left
    if len(groups) != 8:
        raise ValueError(f"{ip!r} is not an IPv6 address netlab writes")
    value = 0
    for g in groups:
        value = (value << 16) | int(g, 16)
    return value


def _addr(pod: PodPlan, v6: bool) -> str:
    return pod.ip6 if v6 else pod.ip


def _peer_pods(scope: _Scope, peer: PolicyPeer, policy_ns: str,
               v6: bool = False) -> list[PodPlan]:
    """The pods a peer designates, in plan order (an ipBlock: by their address in the
    table's family)."""
    if peer.ip_block is not None:  # pods whose address falls in the block, for named ports
        b = peer.ip_block
        return [p for p in scope.pods if _addr(p, v6) and _in_cidr(_addr(p, v6), b.cidr)
                and not any(_in_cidr(_addr(p, v6), e) for e in b.except_)]
    if peer.namespace_selector is None:  # no namespaceSelector: the policy's own namespace
        allowed_ns = {policy_ns}
    else:
        allowed_ns = {ns for ns in {*scope.namespaces, *(p.namespace for p in scope.pods)}
                      if selector_matches(peer.namespace_selector,
                                          scope.namespaces.get(ns, {}))}
    sel = peer.pod_selector or LabelSelector()  # no podSelector: every pod of those namespaces
    return [p for p in scope.pods if p.namespace in allowed_ns and selector_matches(sel, p.labels)]


def _named_port(pod: PodPlan, name: str, protocol: str) -> int | None:
    for port_name, proto, number in pod.named_ports:
        if port_name == name and proto == protocol:
            return number
    return None


# --- nft matches -------------------------------------------------------------------------


def _port_matches(ports: Iterable[PolicyPort], dst: PodPlan | None) -> list[str]:
    """nft matches for policy ports; named ones resolved on `dst` (None: unresolvable, they
    match nothing)."""
    out = []
    for p in ports:
        proto = p.protocol.lower()
        if p.port is None:
            out.append(f"meta l4proto {proto}")
            continue
        if isinstance(p.port, str):
            number = _named_port(dst, p.port, p.protocol) if dst is not None else None
            if number is None:
                continue
            dport = str(number)
        else:
            dport = f"{p.port}-{p.end_port}" if p.end_port is not None else str(p.port)
        out.append(f"meta l4proto {proto} th dport {dport}")
    return out


def _peer_sets(scope: _Scope, rule: PolicyRule, policy_ns: str,
               field: str, v6: bool = False) -> list[tuple[str, list[PodPlan]]]:
    """(address match, pods it covers) for each peer of a rule; a rule without peers admits
    every address (empty match). An ipBlock of the other family admits nothing here;
    selectors stand for the pods' addresses in the table's family."""
    if not rule.peers:
        return [("", list(scope.pods))]
    ip = "ip6" if v6 else "ip"
    out = []
    for peer in rule.peers:
        covered = _peer_pods(scope, peer, policy_ns, v6)
        if peer.ip_block is not None:
            if _v6(peer.ip_block.cidr) != v6:
                continue  # an IPv4 block never matches an IPv6 packet, and vice versa
            match = f"{ip} {field} {peer.ip_block.cidr}"
            if peer.ip_block.except_:
                match += f" {ip} {field} != {{ {', '.join(peer.ip_block.except_)} }}"
            out.append((match, covered))
        elif covered:  # a selector that picks no pod admits nothing: no rule
            covered = [p for p in covered if _addr(p, v6)]  # pods with the table's family
            if not covered:
                continue
            addrs = sorted({_addr(p, v6) for p in covered}, key=_ip6_int if v6 else _ip_int)
            out.append((f"{ip} {field} {{ {', '.join(addrs)} }}", covered))
    return out


def _ip_int(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def _rule(*parts: str) -> str:
    return " ".join(x for x in parts if x)


def _chain_rules(scope: _Scope, policies: list[NetworkPolicy], pod: PodPlan,
                 direction: str, v6: bool = False) -> list[str]:
    ingress = direction == "Ingress"
    field = "saddr" if ingress else "daddr"
    rules: list[str] = []
    for pol in policies:
        for i, rule in enumerate(pol.ingress if ingress else pol.egress):
            tag = comment(f"{pol.namespace}/{pol.name}", f" {direction.lower()}[{i}]")
            named = [p for p in rule.ports if isinstance(p.port, str)]
            for match, covered in _peer_sets(scope, rule, pol.namespace, field, v6):
                if not rule.ports:
                    rules.append(_rule(match, "return", tag))
                elif ingress or not named:
                    # ingress: this pod is the destination, named ports resolve on it
                    for port in _port_matches(rule.ports, pod if ingress else None):
                        rules.append(_rule(match, port, "return", tag))
                else:
                    # egress: numbered ports for the whole peer; named ones per destination
                    numbered = [p for p in rule.ports if not isinstance(p.port, str)]
                    for port in _port_matches(numbered, None):
                        rules.append(_rule(match, port, "return", tag))
                    for dst in covered:
                        for port in _port_matches(named, dst):
                            daddr = f"ip6 daddr {dst.ip6}" if v6 else f"ip daddr {dst.ip}"
                            rules.append(_rule(match, daddr, port, "return", tag))
    why = comment(f"{pod.key}: isolated for {direction.lower()}, no rule allows")
    # the dropped connection is remembered by its source (address, protocol, port) for a
    # while, so a prober learns at once that the kernel dropped it (DROPPED below)
    ip = "ip6" if v6 else "ip"
    rules.append(_rule("meta l4proto { tcp, udp, sctp }",
                       f"add @{DROPPED} {{ {ip} saddr . meta l4proto . th sport }}", "drop",
                       why))
    rules.append(_rule("drop", why))
    return rules


# ICMPv6 neighbour discovery (router solicitation/advertisement, neighbour
# solicitation/advertisement: types 133-136) between pods and with their gateway: without it
# no IPv6 packet reaches an isolated pod, even from an allowed peer
_NDP = ("icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, "
        "nd-neighbor-advert } accept")


def render_node(plan: Plan, node: NodePlan, policies: Iterable[NetworkPolicy],
                family: str = "IPv4", cluster: Iterable[Any] = ()) -> Table:
    """One node's `ip netlab-policy` table, or (family "IPv6", dual-stack labs) its
    `ip6 netlab-policy` table: the same chains over the pods' IPv6 addresses, with ipBlocks
    of that family only, and neighbour discovery always let through."""
    v6 = family == "IPv6"
    ordered = sorted(policies, key=lambda p: (p.namespace, p.name))
    cluster_list = list(cluster)
    # hostNetwork pods are their node to the kernel: no policy selects them, and no
    # podSelector matches them (Kubernetes leaves their policy behaviour undefined; their
    # traffic is the node's, which may always reach its pods)
    scope = _Scope(tuple(p for p in plan.pods.values() if not p.host_network),
                   plan.namespaces)
    ip, addr = ("ip6", "ipv6_addr") if v6 else ("ip", "ipv4_addr")
    t = Table(ip, TABLE)
    t.sets[DROPPED] = (f"type {addr} . inet_proto . inet_service ; flags dynamic,timeout ; "
                       "timeout 10s ; size 65535 ;", [])
    t.maps["ingress-pods"] = (f"type {addr} : verdict ;", {})
    t.maps["egress-pods"] = (f"type {addr} : verdict ;", {})
    head = ["ct state established,related accept", *([_NDP] if v6 else [])]
    t.chain("forward", [*head, f"{ip} saddr vmap @egress-pods", f"{ip} daddr vmap @ingress-pods"],
            "type filter hook forward priority filter ; policy accept ;")
    t.chain("input", [*head, f"{ip} saddr vmap @egress-pods"],
            "type filter hook input priority filter ; policy accept ;")
    for pod in scope.pods:
        if pod.node != node.name or not _addr(pod, v6):
            continue
        for direction, map_name in (("Ingress", "ingress-pods"), ("Egress", "egress-pods")):
            selecting = _isolating(ordered, pod, direction)
            # ClusterNetworkPolicy tiers around NetworkPolicy's chain (cluster_netpol.py)
            tiered = cluster_netpol.chains(
                plan, list(scope.pods), pod, direction.lower(), cluster_list,
                _chain_rules(scope, selecting, pod, direction, v6) if selecting else None,
                v6) if cluster_list else {}
            if tiered:
                for name, rules in tiered.items():
                    t.chain(name, rules)
                t.maps[map_name][1][_addr(pod, v6)] = f"jump {next(iter(tiered))}"
            elif selecting:
                chain = fit(f"{direction.lower()}-{pod.namespace}/", pod.name, NAME_MAX)
                t.chain(chain, _chain_rules(scope, selecting, pod, direction, v6))
                t.maps[map_name][1][_addr(pod, v6)] = f"jump {chain}"
    return t


def render_tables(plan: Plan, node: NodePlan, policies: Iterable[NetworkPolicy],
                  cluster: Iterable[Any] = ()) -> list[Table]:
    """The node's policy tables, one per family of the cluster (IPv4's first); `cluster`:
    the ClusterNetworkPolicies (Admin and Baseline tiers, cluster_netpol.py)."""
    policies, cluster = list(policies), list(cluster)
    return [render_node(plan, node, policies, f, cluster) for f in ("IPv4", "IPv6")
            if f in plan.cluster.families]
