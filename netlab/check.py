"""`check`: what Kubernetes semantics say (the policy engine) against what the kernel did
(real probes), for every ordered pair of pods and every port the destination declares.

This is the only module that looks at both; the engine never sees a probe and the probes
never see a policy.

In a dual-stack lab every pair is probed and decided in both families (IPv4, then IPv6:
between the pods' IPv6 addresses, and from the external host's IPv6 address); each probe
says its family. A single-stack lab is checked in IPv4 only, as before."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from netlab import targets
from netlab.kernel import NftTrace
from netlab.model import NetworkPolicy
from netlab.plan import Plan
from netlab.policy.engine import engine_for, family_of
from netlab.probe import ProbeResult

# A connected TCP probe waits this long for its answer: the completed handshake is the
# verdict; the answer only names who answered (a DNS server never answers a probe's line)
ANSWER_WAIT = 0.25


class Prober(Protocol):
    """What check and explain need of a lab (netlab.lab.Lab)."""

    @property
    def plan(self) -> Plan: ...

    def policies(self) -> list[NetworkPolicy]: ...

    def cluster_policies(self) -> list[Any]: ...

    def probe(self, src: str, dst: str, port: int | None = None,
              protocol: str | None = None, timeout: float = 2.0,
              family: str | None = None) -> ProbeResult: ...

    def probe_many(self, probes: Sequence[tuple], timeout: float = 2.0,
                   answer_wait: float | None = None) -> list[ProbeResult]: ...

    def destination(self, src: str, dst: str, port: int | None, protocol: str | None,
                    family: str | None = None) -> tuple[str, int, str]: ...


@dataclass(frozen=True)
class CheckProbe:
    src: str
    dst: str
    port: int
    protocol: str
    expected: str  # allowed | denied
    observed: str  # allowed | denied
    result: str  # the probe's: connected | refused | timeout
    answered_by: str | None = None
    detail: str = ""
    family: str | None = None  # dual-stack labs: IPv4 or IPv6 (None: single-stack, IPv4)

    @property
    def match(self) -> bool:
        return self.expected == self.observed

    def to_json(self) -> dict[str, Any]:
        out = {**asdict(self), "match": self.match}
        if self.family is None:
            del out["family"]
        return out


@dataclass
class CheckReport:
    probes: list[CheckProbe] = field(default_factory=list)
    seconds: float = 0.0
    families: tuple[str, ...] = ()  # dual-stack labs: the families probed

    @property
    def mismatches(self) -> list[CheckProbe]:
        return [p for p in self.probes if not p.match]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def tables(self) -> dict[tuple[int, str, str], dict[tuple[str, str], CheckProbe]]:
        """Per (port, protocol, family): (from, to) -> probe; family "" in a single-stack
        lab."""
        out: dict[tuple[int, str, str], dict[tuple[str, str], CheckProbe]] = {}
        for p in self.probes:
            out.setdefault((p.port, p.protocol, p.family or ""), {})[(p.src, p.dst)] = p
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "probes": len(self.probes), "mismatches": len(self.mismatches),
            "allowed": sum(p.observed == "allowed" for p in self.probes),
            "denied": sum(p.observed == "denied" for p in self.probes),
            "seconds": round(self.seconds, 3)}
        if self.families:
            summary["families"] = {
                f: {"probes": sum(p.family == f for p in self.probes),
                    "mismatches": sum(p.family == f for p in self.mismatches)}
                for f in self.families}
        return {"ok": self.ok, "probes": [p.to_json() for p in self.probes],
                "summary": summary}


def _engine(lab: Prober, plan: Plan, policies: list[NetworkPolicy]) -> Any:
    """NetworkPolicy's engine, or (with ClusterNetworkPolicies in the lab) the tiered one
    around it: Admin -> NetworkPolicy -> Baseline -> allow (netlab.policy.cluster)."""
    cluster = lab.cluster_policies()
    if not cluster:
        return engine_for(plan, policies)
    from netlab.policy.cluster import cluster_engine_for

    return cluster_engine_for(plan, policies, cluster)


def observed(result: str) -> str:
    """A connection that got through is allowed; refused or silent is denied. (A reset from
    a pod that does not listen would count as denied: the responder listens on every port
    `check` probes, so a refusal here comes from the network.)"""
    return "allowed" if result == "connected" else "denied"


@dataclass(frozen=True)
class Explanation:
    src: str
    dst: str
    port: int | None
    protocol: str
    decisions: list[Any]  # policy.engine.Decision, one per destination (endpoint)
    reasoning: list[str]
    probe: ProbeResult
    kernel_verdicts: list[str] = field(default_factory=list)  # from nft monitor trace
    family: str | None = None  # dual-stack labs: the family reasoned about and probed

    @property
    def expected(self) -> str:
        """allowed, denied, or depends (a Service whose endpoints differ)."""
        verdicts = {d.allowed for d in self.decisions}
        if verdicts == {True}:
            return "allowed"
        return "denied" if verdicts in ({False}, set()) else "depends"

    @property
    def agrees(self) -> bool:
        return self.expected == "depends" or (
            (self.expected == "allowed") == (self.probe.result == "connected"))


def run(lab: Prober, timeout: float = 1.0, external: bool | None = None) -> CheckReport:
    """Probe every ordered pair of pods on every port and protocol the destination
    declares (and from `external` when a policy has an ipBlock, or when asked) and
    compare each result with the engine's decision; in each family of the lab (results name
    their family unless the lab is IPv4 only)."""
    t0 = time.monotonic()
    plan, policies = lab.plan, lab.policies()
    engine = _engine(lab, plan, policies)
    if external is None:
        external = any(peer.ip_block for p in policies for r in p.ingress for peer in r.peers)
    # hostNetwork pods are their node (no policy applies to them): not probed
    pods = sorted((p for p in plan.pods.values() if not p.host_network), key=lambda p: p.key)
    families = plan.cluster.families
    named = families != ("IPv4",)  # results name their family unless the lab is plain IPv4
    sctp = sctp_available()
    jobs = []
    for family in families:
        sources: list[tuple[str, str]] = [(p.key, p.address(family)) for p in pods]
        if external:
            sources.append(("external", plan.external(family)))
        for src_name, src_ip in sources:
            for dst in pods:
                if dst.key == src_name:
                    continue  # a pod's traffic to itself never meets the network
                for proto, port in dst.container_ports:
                    if proto == "SCTP" and not sctp:
                        continue
                    jobs.append((src_name, src_ip, dst, port, proto, family))
    asks = [(s, d.key, port, proto.lower(), *([f] if named else []))
            for s, _, d, port, proto, f in jobs]
    decisions = [engine.decide(engine.pods.get(s, ip), engine.pods[d.key], port, proto, f)
                 for s, ip, d, port, proto, f in jobs]
    results = lab.probe_many(asks, timeout, answer_wait=ANSWER_WAIT)
    # A result that contradicts the engine is asked again, with more patience, before it
    # counts: a loaded machine can delay an answer past the timeout.
    again = [n for n, (r, d) in enumerate(zip(results, decisions, strict=True))
             if (observed(r.result) == "allowed") != d.allowed]
    if again:
        retried = lab.probe_many([asks[n] for n in again], timeout * 3)
        for n, r in zip(again, retried, strict=True):
            results[n] = r
    probes = [CheckProbe(src_name, dst.key, port, proto,
                         "allowed" if d.allowed else "denied", observed(r.result), r.result,
                         r.answered_by, r.detail, family if named else None)
              for (src_name, _, dst, port, proto, family), d, r in zip(jobs, decisions, results,
                                                                       strict=True)]
    return CheckReport(probes, time.monotonic() - t0, families if named else ())


def explain(lab: Prober, src: str, dst: str, port: int | None = None, protocol: str = "tcp",
            family: str | None = None) -> Explanation:
    """The engine's reasoning for one connection, next to a real probe of it. For a
    Service, policy applies after DNAT: each endpoint (pod, target port) is reasoned
    about, since the kernel picks one of them. `family` "IPv6" (dual-stack labs): the
    connection between the IPv6 addresses; a dual-stack lab's reasoning names its family."""
    plan = lab.plan
    engine = _engine(lab, plan, lab.policies())
    s, d = targets.parse(src, plan), targets.parse(dst, plan)
    address, port_, proto = lab.destination(src, dst, port, protocol, family)
    fam = family_of(address)  # what the packets will be (an IPv6 literal is IPv6)
    v6 = fam == "IPv6"
    src_pod = targets.pod(plan, s.name) if s.kind == "pod" else None
    src_end = engine.pods[src_pod.key] if src_pod is not None and src_pod.key in engine.pods \
        else targets.address(plan, s, fam)  # a host, or a hostNetwork pod: its node
    ends: list[tuple[str, Any, int | None]] = []
    if d.kind == "service":
        sp = next(p for p in targets.service(plan, d.name).ports if p.port == port_)
        ends = [(f"{ep.label} port {ep.port}",  # an address outside the cluster: no pod
                 engine.pods.get(ep.pod or "") or engine.resolve(ep.ip), ep.port)
                for ep in sp.family_endpoints(fam)]
    else:
        ends = [(dst, engine.resolve(address), port_)]
    reasoning: list[str] = []
    if plan.cluster.families != ("IPv4",):
        reasoning.append(f"family {fam}: policy is decided for {fam} packets (to {address})")
    decisions = []
    for label, end, p in ends:
        decision = engine.decide(src_end, end, p, proto.upper(), fam)
        decisions.append(decision)
        if len(ends) > 1 or d.kind == "service":
            reasoning.append(f"to endpoint {label}:")
        reasoning += decision.explain(src, label.split(" ")[0], p, proto)
    if not ends:
        reasoning.append(f"{dst} has no endpoints: the kernel rejects the connection")
    # the probe again, with the kernel tracing it on every node (nft monitor trace)
    src_ip = src_end if isinstance(src_end, str) else src_end.address(fam)
    ip = "ip6" if v6 else "ip"
    with NftTrace({n.netns: f"{ip} saddr {src_ip}" for n in plan.nodes}, ip) as trace:
        r = lab.probe(src, dst, port, protocol, family=family) if family else \
            lab.probe(src, dst, port, protocol)
    return Explanation(src, dst, port_, proto, decisions, reasoning, r,
                       policy_verdicts(trace.lines, plan),
                       fam if plan.cluster.families != ("IPv4",) else None)


def policy_verdicts(lines: list[tuple[str, str]], plan: Plan) -> list[str]:
    """The verdicts netlab-policy and kube-proxy rules gave the traced packets, per node:
    `node-1: ip netlab-policy ingress-x/a rule drop ... (verdict drop)`."""
    node_of = {n.netns: n.name for n in plan.nodes}
    out = []
    for netns, line in lines:
        if " rule " not in line or "(verdict" not in line:
            continue
        if "netlab-policy" not in line and "dnat" not in line and "KUBE-" not in line:
            continue
        text = line.split(" ", 3)[3]  # drop "trace id XXXX": one line per distinct verdict
        entry = f"{node_of.get(netns, netns)}: {text}"
        if entry not in out:
            out.append(entry)
    return out


def sctp_available() -> bool:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
        return True
    except OSError:
        return False
