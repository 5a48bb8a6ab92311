"""ClusterNetworkPolicy: SIG Network's cluster-wide, tiered policy, pure (no kernel).

The API is policy.networking.k8s.io/v1alpha2 `ClusterNetworkPolicy` of network-policy-api
v0.2.0 (apis/v1alpha2/clusternetworkpolicy_types.go, NPEP-285 "combine CRDs"), and its
v1alpha1 forerunners `AdminNetworkPolicy` and `BaselineAdminNetworkPolicy` (v0.1.x), which
load into the same model: an ANP is an Admin tier policy with its priority and `Allow`
read as `Accept`; the one BANP (named `default`) is a Baseline tier policy of priority 0.

This module holds the model, `parse` (one manifest -> a policy, validated as the CRD's
schema and CEL rules do, errors as netlab.errors.InputError, exit 2) and the engine.

Semantics (the API's field documentation, cited where used):
- A connection needs its source's egress and its destination's ingress; each direction is
  decided at its own pod (the subject) by the tiers in turn: Admin, then NetworkPolicy
  (networking.k8s.io/v1, delegated to netlab.policy.engine), then Baseline, then the
  Kubernetes default, allow.
- In the Admin and Baseline tiers the policies selecting the subject are taken by priority
  (lower first; 0-1000), each policy's rules of the direction in written order; the first
  rule whose peers and protocols match decides: Accept and Deny are final for the direction,
  Pass skips the tier's remaining rules and hands over to the next tier. Policies of equal
  priority that both match are ambiguous by the API ("the implementation can apply any of
  the matching policies"): netlab takes them in name order and says so in the reasons.
- The NetworkPolicy tier "always makes a final decision for selected pods": a pod isolated
  for the direction gets the NetworkPolicy verdict; an unisolated one goes on to Baseline.
- Accept "accepts the selected traffic, including replies to that traffic and related ICMP
  traffic" (v0.2.0+): the engine decides new connections; replies follow conntrack.
- Peers: `namespaces` (every pod of the selected namespaces), `pods` (namespaceSelector AND
  podSelector), egress also `networks` (CIDRs of the destination address, of its own family
  only; pod-to-pod traffic is matched too, as the API warns) and `nodes` (the addresses of
  the nodes whose labels match). Host-networked pods are neither subjects nor pod peers:
  the caller leaves them out of `pods` and they are their node's addresses.
- `protocols`: none matches all traffic; otherwise TCP/UDP/SCTP with a destination port
  number or an inclusive range, or `destinationNamedPort` resolved on the destination pod
  (for the protocol the container port declares).
- A pod's traffic to itself never leaves it; a node reaches its own pods (as the
  NetworkPolicy engine has it): policy does not apply to either.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from netlab.errors import InputError
from netlab.fields import Fields, Where, label_selector, schema_int
from netlab.model import LabelSelector, Source
from netlab.policy.engine import (
    Decision,
    DirectionDecision,
    Endpoint,
    PodRef,
    PolicyEngine,
    family_of,
)

Tier = Literal["Admin", "Baseline"]
Action = Literal["Accept", "Deny", "Pass"]

GROUP = "policy.networking.k8s.io"
# kind -> the apiVersion it is read in (for the loader's API_VERSIONS); all cluster-scoped
KINDS: dict[str, str] = {
    "ClusterNetworkPolicy": f"{GROUP}/v1alpha2",
    "AdminNetworkPolicy": f"{GROUP}/v1alpha1",
    "BaselineAdminNetworkPolicy": f"{GROUP}/v1alpha1",
}
TIERS: tuple[Tier, ...] = ("Admin", "Baseline")
PRIORITY_MAX = 1000
RULE_NAME_MAX = 100
CIDR_MAX_LENGTH = 43
LIST_MAX = 25  # networks, domainNames (all versions); v1alpha2 rules, peers and protocols

# The CRDs' own messages (x-kubernetes-validations), word for word
MSG_PORT_RANGE = "Start port must be less than End port"
MSG_CIDR = "Invalid CIDR format provided"
MSG_NAMED_PORT = ("networks/nodes/domainNames peer cannot be set with namedPorts since there "
                  "are no namedPorts for networks/nodes/domainNames")
MSG_NAMED_PORT_BANP = ("networks/nodes peer cannot be set with namedPorts since there are no "
                       "namedPorts for networks/nodes")
MSG_BANP_NAME = ('Only one baseline admin network policy with metadata.name="default" can be '
                 'created in the cluster')
# DomainName's kubebuilder pattern (A-z as upstream has it)
DOMAIN_NAME = re.compile(r"^(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+"
                         r"[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$")


# --- the model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamespacedPods:
    """NamespacedPod: pods matching podSelector in namespaces matching namespaceSelector
    (an empty selector matches everything)."""

    namespace_selector: LabelSelector
    pod_selector: LabelSelector

    def matches(self, pod: PodRef, namespaces: dict[str, dict[str, str]]) -> bool:
        return (self.namespace_selector.matches(namespaces.get(pod.namespace, {}))
                and self.pod_selector.matches(pod.labels))


@dataclass(frozen=True)
class Subject:
    """spec.subject: exactly one of `namespaces` or `pods`."""

    namespaces: LabelSelector | None = None
    pods: NamespacedPods | None = None

    def selects(self, pod: PodRef, namespaces: dict[str, dict[str, str]]) -> bool:
        if self.namespaces is not None:
            return self.namespaces.matches(namespaces.get(pod.namespace, {}))
        return self.pods is not None and self.pods.matches(pod, namespaces)


@dataclass(frozen=True)
class Peer:
    """One of a rule's from/to peers: exactly one field is set (the CRD's Min/MaxProperties).
    `networks` holds normalised CIDRs; `domain_names` are read but not modelled (such a peer
    matches nothing: "fail closed" for the Accept rules they are meant for)."""

    namespaces: LabelSelector | None = None
    pods: NamespacedPods | None = None
    networks: tuple[str, ...] = ()
    nodes: LabelSelector | None = None
    domain_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortMatch:
    """One of a rule's protocols: `protocol` with a destination port `port`..`end` (a single
    port has end == port), or a destination named port (`name`, any protocol)."""

    protocol: str | None = None  # TCP | UDP | SCTP; None for a named port
    port: int | None = None
    end: int | None = None
    name: str | None = None

    def __str__(self) -> str:
        if self.name is not None:
            return f"named port {self.name!r}"
        if self.end is not None and self.end != self.port:
            return f"{self.protocol}/{self.port}-{self.end}"
        return f"{self.protocol}/{self.port}"


@dataclass(frozen=True)
class Rule:
    direction: Literal["ingress", "egress"]
    index: int  # position in the policy's list: precedence within the policy
    name: str
    action: Action
    peers: tuple[Peer, ...]
    protocols: tuple[PortMatch, ...] = ()  # empty: all traffic, every protocol and port
    written: str = ""  # the action as written ("Allow" in v1alpha1), for reasons

    def __str__(self) -> str:
        named = f' "{self.name}"' if self.name else ""
        return f"rule {self.direction}[{self.index}]{named} ({self.written or self.action})"


@dataclass(frozen=True)
class ClusterNetworkPolicy:
    name: str
    tier: Tier
    priority: int
    subject: Subject
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    kind: str = "ClusterNetworkPolicy"  # or AdminNetworkPolicy / BaselineAdminNetworkPolicy
    source: Source | None = field(default=None, compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def key(self) -> str:
        """Unique among a lab's policies: `kind/name` (a BANP and a CNP may both be named
        `default`)."""
        return f"{self.kind}/{self.name}"

    def rules(self, direction: str) -> tuple[Rule, ...]:
        return self.ingress if direction == "ingress" else self.egress


# --- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    """What one kind's CRD allows."""

    kind: str
    rules_max: int  # spec.ingress / spec.egress MaxItems
    peers_max: int  # a rule's from / to MaxItems
    ports_max: int  # a rule's protocols (v1alpha2) / ports (v1alpha1) MaxItems
    actions: tuple[str, ...]
    egress_peers: tuple[str, ...]
    named_port_message: str
    v1alpha1: bool


_CNP = _Dialect("ClusterNetworkPolicy", LIST_MAX, LIST_MAX, LIST_MAX, ("Accept", "Deny", "Pass"),
                ("namespaces", "pods", "nodes", "networks", "domainNames"), MSG_NAMED_PORT, False)
_ANP = _Dialect("AdminNetworkPolicy", 100, 100, 100, ("Allow", "Deny", "Pass"),
                ("namespaces", "pods", "nodes", "networks", "domainNames"), MSG_NAMED_PORT, True)
_BANP = _Dialect("BaselineAdminNetworkPolicy", 100, 100, 100, ("Allow", "Deny"),
                 ("namespaces", "pods", "nodes", "networks"), MSG_NAMED_PORT_BANP, True)
_DIALECTS = {d.kind: d for d in (_CNP, _ANP, _BANP)}
_PEER_FIELDS = ("namespaces", "pods", "nodes", "networks", "domainNames")
_META_IGNORED = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                 "selfLink", "finalizers", "ownerReferences", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "generateName")


def _quote(values: Iterable[str]) -> str:
    return ", ".join(f'"{v}"' for v in values)


def _enum(f: Fields, key: str, values: tuple[str, ...], hint: str = "") -> str:
    """An enum field, refused with the API server's wording."""
    value = f.str(key)
    if value not in values:
        raise f.error(key, f'Unsupported value: "{value}": supported values: '
                           f"{_quote(values)}{hint}")
    return value


_int = schema_int  # a required integer within the schema's minimum and maximum


def _items(f: Fields, key: str, hi: int, required: bool = False,
           lo: int = 1) -> list[Fields]:
    """A list of objects with the schema's MinItems (`lo`, when given at all) and MaxItems."""
    present = f.has(key)
    items = f.items(key, required)
    if present and len(items) < lo:
        raise f.error(key, f"should have at least {lo} items")
    if len(items) > hi:
        raise f.error(key, f"Too many: {len(items)}: must have at most {hi} items")
    return items


def _strings(f: Fields, key: str, hi: int) -> list[str]:
    """A list of strings, listType=set (no duplicates), MinItems=1, MaxItems=hi."""
    values = list(f.str_list(key))
    if not values:
        raise f.error(key, "should have at least 1 items")
    if len(values) > hi:
        raise f.error(key, f"Too many: {len(values)}: must have at most {hi} items")
    for i, v in enumerate(values):
        if v in values[:i]:
            raise f.where.error(f"{f._p(key)}[{i}]", f'Duplicate value: "{v}"')
    return values


def _one_of(f: Fields, keys: tuple[str, ...], what: str) -> str:
    """The one field set among `keys` (MinProperties=1, MaxProperties=1)."""
    present = [k for k in keys if f.has(k)]
    choices = ", ".join(keys)
    if not present:
        raise f.error("", f"should have at least 1 properties: set one of {choices} ({what})")
    if len(present) > 1:
        raise f.error("", f"Too many: {len(present)}: must have at most 1 properties: set only "
                          f"one of {choices}, not {' and '.join(present)}")
    return present[0]


def _selector(f: Fields | None) -> LabelSelector:
    """metav1.LabelSelector, its operators and label syntax checked as the API server does
    for built-in kinds (a selector it would refuse selects nothing in any implementation)."""
    return label_selector(f)


def _selector_at(f: Fields, key: str) -> LabelSelector:
    """A selector field that is present (possibly `{}`: everything)."""
    return _selector(Fields(f.raw(key), f._p(key), f.where))


def _namespaced_pods(f: Fields, d: _Dialect) -> NamespacedPods:
    # v1alpha2: podSelector required, namespaceSelector optional (empty: all namespaces);
    # v1alpha1: both required
    if d.v1alpha1 or f.has("namespaceSelector"):
        ns = _selector_at(f, "namespaceSelector")
    else:
        f.ignore("namespaceSelector")
        ns = LabelSelector()
    pods = _selector_at(f, "podSelector")
    f.done()
    return NamespacedPods(ns, pods)


def _cidr(f: Fields, path: str, value: str) -> str:
    """A CIDR as the CEL isCIDR() library function takes it (netip.ParsePrefix: a prefix
    length without leading zeros, no zone, no IPv4-mapped IPv6); host bits may be set."""
    if len(value) > CIDR_MAX_LENGTH:
        raise f.where.error(path, f"Too long: may not be more than {CIDR_MAX_LENGTH} "
                                  "characters")
    addr, slash, bits = value.partition("/")
    bad = (not slash or "%" in addr or not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"))
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        bad = True
    if bad or (net.version == 6 and net.network_address.ipv4_mapped is not None):
        raise f.where.error(path, MSG_CIDR)
    return str(net)


def _peer(f: Fields, direction: str, d: _Dialect) -> Peer:
    allowed = ("namespaces", "pods") if direction == "ingress" else d.egress_peers
    for k in _PEER_FIELDS:
        if f.has(k) and k not in allowed:
            where = ("an ingress peer is namespaces or pods" if direction == "ingress"
                     else f"a {d.kind} egress peer is one of {', '.join(allowed)}")
            raise f.error(k, f'unknown field "{k}": {where}')
    which = _one_of(f, allowed, "the peer")
    if which == "namespaces":
        peer = Peer(namespaces=_selector_at(f, "namespaces"))
    elif which == "pods":
        pods = f.sub("pods")
        assert pods is not None
        peer = Peer(pods=_namespaced_pods(pods, d))
    elif which == "nodes":
        peer = Peer(nodes=_selector_at(f, "nodes"))
    elif which == "networks":
        values = _strings(f, "networks", LIST_MAX)
        peer = Peer(networks=tuple(_cidr(f, f"{f._p('networks')}[{i}]", v)
                                   for i, v in enumerate(values)))
    else:
        names = _strings(f, "domainNames", LIST_MAX)
        for i, v in enumerate(names):
            if not DOMAIN_NAME.match(v):
                raise f.where.error(f"{f._p('domainNames')}[{i}]",
                                    f"Invalid value: \"{v}\": should match "
                                    f"'{DOMAIN_NAME.pattern}'")
        f.where.warnings.append(f"{f.where.obj}: {f._p('domainNames')} is not modelled by "
                                "netlab: this peer matches no traffic")
        peer = Peer(domain_names=tuple(names))
    f.done()
    return peer


def _port_number(f: Fields, key: str) -> int:
    return _int(f, key, 1, 65535)


def _protocol(f: Fields) -> PortMatch:
    """v1alpha2 ClusterNetworkPolicyProtocol: one of tcp, udp, sctp, destinationNamedPort."""
    which = _one_of(f, ("tcp", "udp", "sctp", "destinationNamedPort"), "the protocol")
    if which == "destinationNamedPort":
        name = f.str(which)
        f.done()
        return PortMatch(name=name)
    proto = f.sub(which)
    assert proto is not None
    if not proto.has("destinationPort"):  # MinProperties=1 (its one property)
        proto.done()
        raise proto.error("", "should have at least 1 properties: set destinationPort")
    dp = proto.sub("destinationPort")
    assert dp is not None
    kind = _one_of(dp, ("number", "range"), "the destination port")
    if kind == "number":
        port = _port_number(dp, "number")
        match = PortMatch(which.upper(), port, port)
    else:
        rng = dp.sub("range")
        assert rng is not None
        start, end = _port_number(rng, "start"), _port_number(rng, "end")
        if not start < end:  # CEL: self.start < self.end
            raise rng.error("", MSG_PORT_RANGE)
        rng.done()
        match = PortMatch(which.upper(), start, end)
    dp.done()
    proto.done()
    f.done()
    return match


def _v1alpha1_port(f: Fields) -> PortMatch:
    """v1alpha1 AdminNetworkPolicyPort: one of portNumber, namedPort, portRange; a protocol
    (TCP by default, the CRD's default) with each number or range."""
    which = _one_of(f, ("portNumber", "namedPort", "portRange"), "the port")
    if which == "namedPort":
        name = f.str(which)
        f.done()
        return PortMatch(name=name)
    p = f.sub(which)
    assert p is not None
    proto = _enum(p, "protocol", ("TCP", "UDP", "SCTP")) if p.has("protocol") else "TCP"
    p.ignore("protocol")
    if which == "portNumber":
        port = _port_number(p, "port")
        match = PortMatch(proto, port, port)
    else:
        start, end = _port_number(p, "start"), _port_number(p, "end")
        if start > end:  # v1alpha1 has no CEL rule for it: an empty range
            f.where.warnings.append(f"{f.where.obj}: {p.path}: start {start} is above end "
                                    f"{end}: the range matches no port")
        match = PortMatch(proto, start, end)
    p.done()
    f.done()
    return match


def _rule(f: Fields, direction: Literal["ingress", "egress"], index: int,
          d: _Dialect) -> Rule:
    name = f.str("name", "")
    if len(name) > RULE_NAME_MAX:
        raise f.error("name", f"Too long: may not be more than {RULE_NAME_MAX} characters")
    hint = ' (v1alpha2 calls it "Accept")' if not d.v1alpha1 and f.data.get("action") == "Allow" \
        else ""
    written = _enum(f, "action", d.actions, hint)
    action: Action = "Accept" if written == "Allow" else written  # type: ignore[assignment]
    peers_key = "from" if direction == "ingress" else "to"
    peers = tuple(_peer(p, direction, d) for p in _items(f, peers_key, d.peers_max, True))
    if d.v1alpha1:
        ports = tuple(_v1alpha1_port(p) for p in _items(f, "ports", d.ports_max))
    else:
        ports = tuple(_protocol(p) for p in _items(f, "protocols", d.ports_max))
    if direction == "egress" and any(p.name is not None for p in ports) and any(
            p.networks or p.nodes is not None or p.domain_names for p in peers):
        raise f.error("", d.named_port_message)  # the egress rule's CEL rule
    if action != "Accept" and any(p.domain_names for p in peers):
        f.where.warnings.append(f"{f.where.obj}: {f.path}: domainNames is only supported for "
                                "Accept rules")
    f.done()
    return Rule(direction, index, name, action, peers, ports, written)


def _subject(f: Fields, d: _Dialect) -> Subject:
    which = _one_of(f, ("namespaces", "pods"), "the subject")
    if which == "namespaces":
        subject = Subject(namespaces=_selector_at(f, "namespaces"))
    else:
        pods = f.sub("pods")
        assert pods is not None
        subject = Subject(pods=_namespaced_pods(pods, d))
    f.done()
    return subject


def parse(doc: dict[str, Any], file: str, line: int | None = None,
          warnings: list[str] | None = None) -> ClusterNetworkPolicy:
    """One ClusterNetworkPolicy (v1alpha2), AdminNetworkPolicy or BaselineAdminNetworkPolicy
    (v1alpha1) manifest as the model, or an InputError (exit 2) naming the file, the object
    and the field. Fields netlab does not model are warned about: in `warnings` when given,
    and in the policy's own `warnings`."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind not in _DIALECTS:
        raise InputError(f"kind {kind!r} is not one of {', '.join(_DIALECTS)}", file=file,
                         line=line)
    d = _DIALECTS[kind]
    meta_raw = doc.get("metadata")
    raw_name = meta_raw.get("name") if isinstance(meta_raw, dict) else None
    seen: list[str] = []
    where = Where(file, line, f"{kind} {raw_name}" if isinstance(raw_name, str) else kind, seen)
    top = Fields(doc, "", where)
    api = top.str("apiVersion")
    if api != KINDS[kind]:
        raise top.error("apiVersion", f"{api!r} is not supported for {kind}: use {KINDS[kind]}")
    top.ignore("kind", "status")
    meta = top.sub("metadata", required=True)
    assert meta is not None
    name = meta.name("name", f"{kind} name", "subdomain")
    if d is _BANP and name != "default":  # the BANP CRD's CEL rule
        raise meta.error("name", MSG_BANP_NAME)
    if meta.has("namespace"):
        seen.append(f"{where.obj}: metadata.namespace is ignored: {kind} is cluster-scoped")
    meta.ignore("namespace", *_META_IGNORED)
    meta.labels("labels")
    meta.annotations("annotations")
    meta.done()
    spec = top.sub("spec", required=True)
    assert spec is not None
    tier: Tier
    if d is _CNP:
        tier = _enum(spec, "tier", TIERS)  # type: ignore[assignment]
        priority = _int(spec, "priority", 0, PRIORITY_MAX)
    elif d is _ANP:
        tier, priority = "Admin", _int(spec, "priority", 0, PRIORITY_MAX)
    else:
        tier, priority = "Baseline", 0
    subject_f = spec.sub("subject", required=True)
    assert subject_f is not None
    subject = _subject(subject_f, d)
    ingress = tuple(_rule(r, "ingress", i, d)
                    for i, r in enumerate(_items(spec, "ingress", d.rules_max, lo=0)))
    egress = tuple(_rule(r, "egress", i, d)
                   for i, r in enumerate(_items(spec, "egress", d.rules_max, lo=0)))
    spec.done()
    top.done()
    if warnings is not None:
        warnings.extend(seen)
    return ClusterNetworkPolicy(name, tier, priority, subject, ingress, egress, kind,
                                Source(file, line), tuple(seen))


# --- the engine -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleHit:
    """A rule that matched a connection: which tier, policy and rule."""

    policy: ClusterNetworkPolicy
    rule: Rule

    @property
    def action(self) -> Action:
        return self.rule.action

    def __str__(self) -> str:
        return f"{self.policy} {self.rule}"


@dataclass(frozen=True)
class DirectionVerdict:
    """One direction of a connection, decided at its pod (the subject) tier by tier."""

    direction: Literal["ingress", "egress"]
    allowed: bool
    # who decided: Admin | NetworkPolicy | Baseline | default | none (no pod: nothing applies)
    tier: str
    rule: RuleHit | None = None  # the Accept/Deny/Pass rule of the deciding CNP tier
    passed: tuple[RuleHit, ...] = ()  # Pass rules that handed the decision down
    netpol: DirectionDecision | None = None  # the NetworkPolicy tier's view, when asked
    ambiguous: tuple[RuleHit, ...] = ()  # rules of equal priority that matched as well
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class TieredDecision:
    allowed: bool
    ingress: DirectionVerdict
    egress: DirectionVerdict
    netpol: Decision  # the NetworkPolicy engine's own decision (its tier)
    reason: str = ""  # policy does not apply at all (a pod to itself, a node to its pod)
    family: str = "IPv4"

    @property
    def reasons(self) -> list[str]:
        return [*([self.reason] if self.reason else []), *self.egress.reasons,
                *self.ingress.reasons]

    def explain(self, src: str, dst: str, port: int | None, protocol: str) -> list[str]:
        """The reasoning in words, as Decision.explain has it: one line per tier that spoke,
        egress of the source first, then ingress of the destination, then the verdict."""
        lines = list(self.reasons)
        lines.append(f"verdict: {'ALLOWED' if self.allowed else 'DENIED'}")
        return lines


_OPEN = DirectionDecision("ingress", False, True)


class ClusterPolicyEngine:
    """Admin ClusterNetworkPolicy -> NetworkPolicy -> Baseline -> allow, per direction.

    `pods` are the lab's pods that policy can select (not hostNetwork ones); `namespaces`
    their namespaces' labels; `node_labels` and `node_addresses` (the nodes' InternalIPs,
    node.status.addresses) for `nodes` peers; `netpol` the NetworkPolicy engine of the same
    lab, which decides the middle tier."""

    def __init__(self, pods: Iterable[PodRef], namespaces: dict[str, dict[str, str]],
                 node_labels: dict[str, dict[str, str]], node_addresses: dict[str, set[str]],
                 policies: Iterable[ClusterNetworkPolicy], netpol: PolicyEngine) -> None:
        self.pods = {p.key: p for p in pods}
        self.namespaces = namespaces
        self.node_labels = node_labels
        self.node_addresses = node_addresses
        self.netpol = netpol
        ordered = sorted(policies, key=lambda p: (p.priority, p.name, p.kind))
        self.tiers: dict[str, list[ClusterNetworkPolicy]] = {
            t: [p for p in ordered if p.tier == t] for t in TIERS}

    # --- matching ------------------------------------------------------------------------

    def _pod_peer(self, peer: Peer, other: Endpoint) -> bool:
        if not isinstance(other, PodRef):
            return False  # namespaces and pods peers select pods (not hostNetwork ones)
        if peer.pods is not None:
            return peer.pods.matches(other, self.namespaces)
        assert peer.namespaces is not None
        return peer.namespaces.matches(self.namespaces.get(other.namespace, {}))

    def peer_matches(self, peer: Peer, other: Endpoint, family: str) -> bool:
        if peer.domain_names:
            return False  # not modelled: matches no traffic
        if peer.networks:
            ip = other.address(family) if isinstance(other, PodRef) else other
            if not ip:
                return False
            addr = ipaddress.ip_address(ip)
            # a CIDR matches addresses of its own family only
            return any(addr.version == (net := ipaddress.ip_network(c)).version and addr in net
                       for c in peer.networks)
        if peer.nodes is not None:
            if isinstance(other, PodRef):
                return False
            return any(other in addrs and peer.nodes.matches(self.node_labels.get(node, {}))
                       for node, addrs in self.node_addresses.items())
        return self._pod_peer(peer, other)

    @staticmethod
    def port_matches(protocols: tuple[PortMatch, ...], dst: Endpoint, port: int | None,
                     protocol: str) -> bool:
        if not protocols:
            return True  # "protocol-specific attributes will not be used to match traffic"
        if protocol not in ("TCP", "UDP", "SCTP") or port is None:
            return False
        for p in protocols:
            if p.name is not None:
                if isinstance(dst, PodRef) and dst.port_named(p.name, protocol) == port:
                    return True
            elif p.protocol == protocol and p.port is not None and p.end is not None \
                    and p.port <= port <= p.end:
                return True
        return False

    def rule_matches(self, rule: Rule, other: Endpoint, dst: Endpoint, port: int | None,
                     protocol: str, family: str) -> bool:
        return (any(self.peer_matches(p, other, family) for p in rule.peers)
                and self.port_matches(rule.protocols, dst, port, protocol))

    def selecting(self, pod: PodRef, tier: str, direction: str) -> list[ClusterNetworkPolicy]:
        """The tier's policies whose subject is `pod` and that have rules for `direction`,
        in precedence order."""
        return [p for p in self.tiers[tier]
                if p.rules(direction) and p.subject.selects(pod, self.namespaces)]

    def _first(self, tier: str, direction: str, pod: PodRef, other: Endpoint, dst: Endpoint,
               port: int | None, protocol: str,
               family: str) -> tuple[RuleHit | None, tuple[RuleHit, ...]]:
        """The tier's first matching rule, and other policies' rules of the same priority
        that match with another action (the API leaves their order to the implementation)."""
        hit: RuleHit | None = None
        others: list[RuleHit] = []
        for policy in self.selecting(pod, tier, direction):
            if hit is not None and policy.priority != hit.policy.priority:
                break
            rule = next((r for r in policy.rules(direction)
                         if self.rule_matches(r, other, dst, port, protocol, family)), None)
            if rule is None:
                continue
            if hit is None:
                hit = RuleHit(policy, rule)
            elif rule.action != hit.action:
                others.append(RuleHit(policy, rule))
        return hit, tuple(others)

    # --- deciding --------------------------------------------------------------------------

    def _direction(self, direction: Literal["ingress", "egress"], pod: Endpoint,
                   other: Endpoint, dst: Endpoint, port: int | None, protocol: str,
                   family: str, np: DirectionDecision) -> DirectionVerdict:
        if not isinstance(pod, PodRef):
            return DirectionVerdict(direction, True, "none", netpol=np)
        of = f"{direction} of {pod.key}"
        reasons: list[str] = []
        passed: list[RuleHit] = []
        ambiguous: list[RuleHit] = []
        for tier in ("Admin", "NetworkPolicy", "Baseline"):
            if tier == "NetworkPolicy":
                if np.isolated:
                    by = ", ".join(str(r) for r in np.allowed_by)
                    said = (f"allowed by {by}" if np.allowed
                            else "no rule of these allows it: denied")
                    reasons.append(f"{of}: NetworkPolicy tier: isolated by "
                                   f"{', '.join(np.isolated_by)}; {said}")
                    return DirectionVerdict(direction, np.allowed, tier, None, tuple(passed), np,
                                            tuple(ambiguous), tuple(reasons))
                if passed:
                    reasons.append(f"{of}: NetworkPolicy tier: no NetworkPolicy isolates it for "
                                   f"{direction.capitalize()}: on to the Baseline tier")
                continue
            hit, others = self._first(tier, direction, pod, other, dst, port, protocol, family)
            if hit is None:
                continue
            ambiguous += others
            note = ""
            if others:
                note = (f" (also matched at the same priority {hit.policy.priority}: "
                        f"{', '.join(str(o) for o in others)}; the API lets an implementation "
                        "apply either, netlab takes policies in name order)")
            if hit.action == "Pass":
                passed.append(hit)
                nxt = "the NetworkPolicy tier" if tier == "Admin" else "the default"
                reasons.append(f"{of}: {tier} tier: {hit}: passed to {nxt}{note}")
                continue
            allowed = hit.action == "Accept"
            reasons.append(f"{of}: {tier} tier: {hit}: {'allowed' if allowed else 'denied'}"
                           f"{note}")
            return DirectionVerdict(direction, allowed, tier, hit, tuple(passed), np,
                                    tuple(ambiguous), tuple(reasons))
        if not reasons:
            reasons.append(f"{of}: no ClusterNetworkPolicy rule or NetworkPolicy applies: "
                           "allowed")
        else:
            reasons.append(f"{of}: no further tier decides: allowed (the Kubernetes default)")
        return DirectionVerdict(direction, True, "default", None, tuple(passed), np,
                                tuple(ambiguous), tuple(reasons))

    def resolve(self, end: Endpoint) -> Endpoint:
        """An address that belongs to a pod is that pod (as PolicyEngine.resolve)."""
        return self.netpol.resolve(end)

    def decide(self, src: Endpoint, dst: Endpoint, port: int | None, protocol: str,
               family: str | None = None) -> TieredDecision:
        """The verdict for one new connection in one family (that of an address given as an
        end, else `family`, IPv4 by default), as PolicyEngine.decide has it."""
        addresses = [e for e in (src, dst) if isinstance(e, str)]
        family = family_of(addresses[0]) if addresses else (family or "IPv4")
        src, dst = self.netpol.resolve(src), self.netpol.resolve(dst)
        protocol = protocol.upper()
        np = self.netpol.decide(src, dst, port, protocol, family)
        if np.reason:  # a pod to itself, a node to its own pod: policy does not apply
            none_in = DirectionVerdict("ingress", True, "none", netpol=np.ingress)
            none_out = DirectionVerdict("egress", True, "none", netpol=np.egress)
            return TieredDecision(True, none_in, none_out, np, np.reason, family)
        egress = self._direction("egress", src, dst, dst, port, protocol, family, np.egress)
        ingress = self._direction("ingress", dst, src, dst, port, protocol, family,
                                  np.ingress if isinstance(dst, PodRef) else _OPEN)
        return TieredDecision(egress.allowed and ingress.allowed, ingress, egress, np,
                              family=family)


def cluster_engine_for(plan: Any, policies: Iterable[Any],
                       cluster_policies: Iterable[ClusterNetworkPolicy]) -> ClusterPolicyEngine:
    """An engine over a lab's plan: its pods (not hostNetwork ones), namespace labels,
    nodes (labels as kubelet sets them plus the Cluster document's; their InternalIPs) and
    NetworkPolicies, with the given cluster policies."""
    from netlab.policy.engine import engine_for
    from netlab.scheduling import node_labels

    netpol = engine_for(plan, policies)
    labels = {spec.name: node_labels(spec) for spec in plan.cluster.nodes}
    addresses = {n.name: {a for a in (n.underlay_ip, n.underlay_ip6) if a} for n in plan.nodes}
    return ClusterPolicyEngine(netpol.pods.values(), plan.namespaces, labels, addresses,
                               cluster_policies, netpol)


__all__ = ["KINDS", "ClusterNetworkPolicy", "ClusterPolicyEngine", "DirectionVerdict",
           "NamespacedPods", "Peer", "PortMatch", "Rule", "RuleHit", "Subject",
           "TieredDecision", "cluster_engine_for", "parse"]
