"""NetworkPolicy conformance against public expectations, for both of netlab's readings of
the spec: the policy engine (netlab.policy.engine, what `netlab check` expects) and the
nftables renderer (netlab.features.netpol, what the kernel enforces).

The cases are data under netpol_conformance/: Kubernetes' e2e NetworkPolicy specs
(k8s_e2e.yaml) and policy-assistant's NetworkPolicy truth tables (policy_assistant.yaml),
each named by its upstream spec so a failure says which public case broke. For every cell
the engine's decision must equal upstream's; the rendered per-node tables are run through a
small evaluator of the rule shapes the renderer emits (`Ruleset` below) and must agree too.
Beyond upstream's cells, engine and rules must agree on every pod pair, port and protocol.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.features.netpol import render_node
from netlab.loader import as_docs, build, load
from netlab.model import NetworkPolicy
from netlab.nft import Table
from netlab.plan import Plan, PodPlan, make_plan
from netlab.policy.engine import PodRef, PolicyEngine

HERE = Path(__file__).parent
DATA = HERE / "netpol_conformance"
LAB = HERE.parent / "integration" / "netpol_lab.yaml"


# --- the cases ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Probe:
    port: int
    protocol: str
    expected: dict[tuple[str, str], bool]  # (from pod, to pod) -> allowed


@dataclasses.dataclass(frozen=True)
class Step:
    policies: list[dict]
    pod_labels: dict[str, dict[str, str]]
    namespace_labels: dict[str, dict[str, str]]
    probes: list[Probe]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    pods: list[str]
    steps: list[Step]


def _peer(spec: str) -> tuple[str | None, str | None]:
    if spec == "*":
        return None, None
    ns, _, pod = spec.partition("/")
    return ns, None if pod == "*" else pod


def _covers(spec: str, pod: str) -> bool:
    ns, name = _peer(spec)
    pod_ns, pod_name = pod.split("/")
    return (ns is None or ns == pod_ns) and (name is None or name == pod_name)


def reachability(pods: list[str], calls: list[str]) -> dict[tuple[str, str], bool]:
    """Upstream's Reachability: all allowed, then each Expect* call in order."""
    matrix = {(a, b): True for a in pods for b in pods}
    for call in calls:
        m = re.fullmatch(r"(allow|deny) (\S+) -> (\S+)", call)
        assert m, f"bad reachability call {call!r}"
        verdict, src, dst = m.group(1) == "allow", m.group(2), m.group(3)
        for a, b in matrix:
            if _covers(src, a) and _covers(dst, b):
                matrix[a, b] = verdict
    return matrix


def e2e_cases() -> list[Case]:
    data = yaml.safe_load((DATA / "k8s_e2e.yaml").read_text())
    cases = []
    for c in data["cases"]:
        steps = [Step(s["policies"], s.get("pod_labels", {}), s.get("namespace_labels", {}),
                      [Probe(p["port"], p.get("protocol", "TCP"),
                             reachability(c["pods"], p["expect"])) for p in s["probes"]])
                 for s in c["steps"]]
        cases.append(Case(f"{data['contexts'][c['context']]} {c['spec']}", c["pods"], steps))
    return cases


def policy_assistant_cases() -> list[Case]:
    data = yaml.safe_load((DATA / "policy_assistant.yaml").read_text())
    cases = []
    for c in data["cases"]:
        pods = [f"{ns}/{p}" for ns in c["namespaces"] for p in c["pods"]]
        flipped = {d: {tuple(re.fullmatch(r"(\S+) -> (\S+) (\d+)/(\w+)", f).groups())
                       for f in c[f"non_default_{d}"]} for d in ("ingress", "egress")}
        probes = []
        for port in c["ports"]:
            for proto in c["protocols"]:
                expected = {}
                for a in pods:
                    for b in pods:
                        ok = []
                        for d in ("ingress", "egress"):
                            default = c[f"default_{d}"] == "allowed"
                            ok.append(default != ((a, b, str(port), proto) in flipped[d]))
                        expected[a, b] = all(ok)
                probes.append(Probe(port, proto, expected))
        cases.append(Case(f"policy-assistant {c['name']}", pods,
                          [Step(c["policies"], {}, {}, probes)]))
    return cases


ALL = e2e_cases() + policy_assistant_cases()


# --- the model: netlab's plan of the x/y/z x a/b/c lab, with a step's label changes -----------


@cache
def base_plan() -> Plan:
    m = load([LAB])
    return make_plan("conformance", m, m.cluster)  # pods and namespaces: all policy needs


def plan_for(step: Step) -> Plan:
    plan = base_plan()
    pods = {k: dataclasses.replace(p, labels={**p.labels, **step.pod_labels.get(k, {})})
            for k, p in plan.pods.items()}
    namespaces = {n: {**labels, **step.namespace_labels.get(n, {})}
                  for n, labels in plan.namespaces.items()}
    return dataclasses.replace(plan, pods=pods, namespaces=namespaces)


def _with_ips(obj: Any, plan: Plan) -> Any:
    if isinstance(obj, str):
        return re.sub(r"\$\((\w+/\w+)\)", lambda m: plan.pods[m.group(1)].ip, obj)
    if isinstance(obj, list):
        return [_with_ips(x, plan) for x in obj]
    if isinstance(obj, dict):
        return {k: _with_ips(v, plan) for k, v in obj.items()}
    return obj


def policies_for(step: Step, plan: Plan) -> list[NetworkPolicy]:
    docs = [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             **_with_ips(p, plan)} for p in step.policies]
    return list(build(as_docs(docs)).network_policies.values())


def engine(plan: Plan, policies: list[NetworkPolicy]) -> PolicyEngine:
    refs = [PodRef(p.namespace, p.name, p.ip, dict(p.labels), tuple(p.named_ports), p.node)
            for p in plan.pods.values()]
    return PolicyEngine(refs, plan.namespaces, policies)


# --- a pure evaluator of the rendered netlab-policy tables --------------------------------


TOKEN = re.compile(r"\{[^}]*\}|\S+")


@dataclasses.dataclass(frozen=True)
class Packet:
    saddr: str
    daddr: str
    proto: str  # tcp | udp | sctp
    dport: int


@cache
def _networks(value: str) -> tuple[ipaddress.IPv4Network, ...]:
    items = value.strip("{} ").split(",") if value.startswith("{") else [value]
    return tuple(ipaddress.IPv4Network(i.strip()) for i in items if i.strip())


def _addr_matches(ip: str, value: str) -> bool:
    addr = ipaddress.IPv4Address(ip)
    return any(addr in net for net in _networks(value))


class Ruleset:
    """The per-node netlab-policy tables, evaluated for a new connection (no conntrack
    entry) from one pod to another: the forward chain of the source's node, then of the
    destination's. It understands exactly the rule shapes the renderer emits and fails on
    anything else, so a new shape cannot be silently ignored."""

    def __init__(self, tables: dict[str, Table]) -> None:
        self.tables = tables
        self._tokens: dict[str, list[str]] = {}

    def admits(self, src: PodPlan, dst: PodPlan, protocol: str, port: int) -> bool:
        pkt = Packet(src.ip, dst.ip, protocol.lower(), port)
        for node in dict.fromkeys((src.node, dst.node)):
            if self._chain(self.tables[node], "forward", pkt) == "drop":
                return False
        return True

    def _chain(self, table: Table, chain: str, pkt: Packet) -> str | None:
        """'drop', 'accept', or None (returned / fell off the end)."""
        for rule in table.chains[chain]:
            verdict = self._rule(table, rule, pkt)
            if verdict == "return":
                return None
            if verdict in ("drop", "accept"):
                return verdict
        return None

    def _rule(self, table: Table, rule: str, pkt: Packet) -> str | None:
        tokens = self._tokens.get(rule)
        if tokens is None:
            tokens = self._tokens[rule] = TOKEN.findall(rule.split(' comment "', 1)[0])
        i = 0
        while i < len(tokens):
            t = tokens[i]
            if tokens[i:i + 2] == ["ct", "state"]:
                return None  # established/related: a new connection never matches
            if t == "ip" and tokens[i + 1] in ("saddr", "daddr"):
                ip = pkt.saddr if tokens[i + 1] == "saddr" else pkt.daddr
                if tokens[i + 2] == "vmap":
                    target = table.maps[tokens[i + 3].lstrip("@")][1].get(ip)
                    if target is None:
                        return None
                    kind, _, chain = target.partition(" ")
                    assert kind == "jump", target
                    return self._chain(table, chain, pkt)
                if tokens[i + 2] == "!=":
                    if _addr_matches(ip, tokens[i + 3]):
                        return None
                    i += 4
                    continue
                if not _addr_matches(ip, tokens[i + 2]):
                    return None
                i += 3
            elif tokens[i:i + 2] == ["meta", "l4proto"]:
                if tokens[i + 2] != pkt.proto:
                    return None
                i += 3
            elif tokens[i:i + 2] == ["th", "dport"]:
                lo, _, hi = tokens[i + 2].partition("-")
                if not int(lo) <= pkt.dport <= int(hi or lo):
                    return None
                i += 3
            elif t in ("return", "drop", "accept") and i == len(tokens) - 1:
                return t
            else:
                raise AssertionError(f"the evaluator does not know {t!r} in rule {rule!r}")
        raise AssertionError(f"rule without a verdict: {rule!r}")


def ruleset(plan: Plan, policies: list[NetworkPolicy]) -> Ruleset:
    return Ruleset({n.name: render_node(plan, n, policies) for n in plan.nodes})


# --- the tests ---------------------------------------------------------------------------


def _mismatches(case: Case, decide) -> list[str]:
    out = []
    for n, step in enumerate(case.steps, 1):
        plan = plan_for(step)
        policies = policies_for(step, plan)
        verdict = decide(plan, policies)
        for probe in step.probes:
            for (a, b), want in probe.expected.items():
                if a == b:
                    continue  # loopback: upstream ignores it
                got = verdict(plan.pods[a], plan.pods[b], probe.protocol, probe.port)
                if got != want:
                    out.append(f"step {n}, {probe.protocol}/{probe.port} {a} -> {b}: "
                               f"expected {'allowed' if want else 'denied'}, "
                               f"got {'allowed' if got else 'denied'}")
    return out


def _engine_verdict(plan: Plan, policies: list[NetworkPolicy]):
    e = engine(plan, policies)
    refs = {r.key: r for r in e.pods.values()}
    return lambda a, b, proto, port: e.decide(refs[a.key], refs[b.key], port, proto).allowed


def _rules_verdict(plan: Plan, policies: list[NetworkPolicy]):
    return ruleset(plan, policies).admits


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_engine_matches_upstream(case: Case):
    assert _mismatches(case, _engine_verdict) == []


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_rendered_rules_match_upstream(case: Case):
    assert _mismatches(case, _rules_verdict) == []


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_engine_and_rules_agree_everywhere(case: Case):
    """Every pod pair of the 9-pod model, ports 80 and 81, TCP, UDP and SCTP: the two
    independent readings agree (upstream checks only some cells)."""
    for n, step in enumerate(case.steps, 1):
        plan = plan_for(step)
        policies = policies_for(step, plan)
        by_engine, by_rules = _engine_verdict(plan, policies), _rules_verdict(plan, policies)
        diffs = [f"step {n}, {proto}/{port} {a.key} -> {b.key}: engine "
                 f"{by_engine(a, b, proto, port)}, rules {by_rules(a, b, proto, port)}"
                 for a in plan.pods.values() for b in plan.pods.values() if a.key != b.key
                 for port in (80, 81) for proto in ("TCP", "UDP", "SCTP")
                 if by_engine(a, b, proto, port) != by_rules(a, b, proto, port)]
        assert diffs == []


def test_the_suite_covers_upstream():
    names = [c.name for c in ALL]
    assert len(names) == len(set(names))
    assert len(e2e_cases()) == 48  # every spec of network_policy.go at the pinned commit
    assert len(policy_assistant_cases()) == 2


def test_the_evaluator_is_not_vacuous():
    """A deny-all namespace must make the evaluator deny, and a pod's own chain must be
    reached: guards against an evaluator that admits everything."""
    plan = base_plan()
    step = Step([{"metadata": {"name": "deny", "namespace": "x"},
                  "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}], {}, {}, [])
    rules = ruleset(plan, policies_for(step, plan))
    xa, ya, yb = plan.pods["x/a"], plan.pods["y/a"], plan.pods["y/b"]
    assert not rules.admits(ya, xa, "TCP", 80)
    assert not rules.admits(xa, ya, "UDP", 81)
    assert rules.admits(ya, yb, "SCTP", 80)


# Label selector semantics from the Kubernetes documentation ("Labels and Selectors"): the
# e2e model labels every pod and namespace with the keys its selectors use, so it never
# shows how a missing key behaves; these rows do. `environment notin (frontend)` also
# selects resources without an environment label; matchLabels and matchExpressions are
# ANDed; an empty selector selects everything.
SELECTOR_TABLE = [
    # (matchLabels, matchExpressions, labels, selected)
    ({}, [], {}, True),
    ({}, [], {"a": "1"}, True),
    ({"a": "1"}, [], {"a": "1", "b": "2"}, True),
    ({"a": "1"}, [], {"a": "2"}, False),
    ({"a": "1"}, [], {}, False),
    ({}, [("a", "In", ["1", "2"])], {"a": "2"}, True),
    ({}, [("a", "In", ["1", "2"])], {}, False),
    ({}, [("a", "NotIn", ["1"])], {"a": "2"}, True),
    ({}, [("a", "NotIn", ["1"])], {"a": "1"}, False),
    ({}, [("a", "NotIn", ["1"])], {}, True),
    ({}, [("a", "Exists", [])], {"a": ""}, True),
    ({}, [("a", "Exists", [])], {"b": "1"}, False),
    ({}, [("a", "DoesNotExist", [])], {"b": "1"}, True),
    ({}, [("a", "DoesNotExist", [])], {"a": "1"}, False),
    ({"b": "2"}, [("a", "In", ["1"])], {"a": "1"}, False),
    ({"b": "2"}, [("a", "In", ["1"]), ("c", "DoesNotExist", [])], {"a": "1", "b": "2"}, True),
]


@pytest.mark.parametrize("match_labels,exprs,labels,selected", SELECTOR_TABLE)
def test_label_selector_semantics(match_labels, exprs, labels, selected):
    from netlab.features.netpol import selector_matches

    sel = {"matchLabels": match_labels,
           "matchExpressions": [{"key": k, "operator": op, **({"values": v} if v else {})}
                                for k, op, v in exprs]}
    step = Step([{"metadata": {"name": "p", "namespace": "x"},
                  "spec": {"podSelector": sel, "policyTypes": ["Ingress"]}}], {}, {}, [])
    (policy,) = policies_for(step, base_plan())
    assert selector_matches(policy.pod_selector, labels) is selected  # the renderer's reading
    assert policy.pod_selector.matches(labels) is selected  # the engine's reading


# --- random policies: the two readings agree beyond the public cases ------------------------

POD_KEYS = [f"{ns}/{p}" for ns in "xyz" for p in "abc"]
NAMED = ["serve-80-tcp", "serve-81-udp", "serve-80-sctp", "serve-81-tcp", "no-such-port"]


def _selectors(keys: dict[str, list[str]]) -> st.SearchStrategy[dict]:
    key = st.sampled_from(sorted(keys))
    label = key.flatmap(lambda k: st.tuples(st.just(k), st.sampled_from(keys[k])))
    expr = key.flatmap(lambda k: st.one_of(
        st.builds(lambda op, vs: {"key": k, "operator": op, "values": vs},
                  st.sampled_from(["In", "NotIn"]),
                  st.lists(st.sampled_from(keys[k]), min_size=1, max_size=2, unique=True)),
        st.builds(lambda op: {"key": k, "operator": op},
                  st.sampled_from(["Exists", "DoesNotExist"]))))
    return st.builds(lambda ls, es: {"matchLabels": dict(ls), "matchExpressions": es},
                     st.lists(label, max_size=2), st.lists(expr, max_size=2))


POD_SEL = _selectors({"pod": ["a", "b", "c"], "tier": ["web", "db"]})
NS_SEL = _selectors({"kubernetes.io/metadata.name": ["x", "y", "z"], "team": ["red", "blue"]})


@st.composite
def _ip_block(draw) -> dict:
    pod = draw(st.sampled_from(POD_KEYS))
    prefix = draw(st.sampled_from([8, 16, 23, 24, 32]))
    block: dict = {"cidr": f"$({pod})/{prefix}"}
    if prefix < 32 and draw(st.booleans()):  # except must lie inside cidr
        block["except"] = [f"$({pod})/{draw(st.sampled_from([p for p in (24, 32) if p > prefix]))}"]
    return block


PEER = st.one_of(
    st.builds(lambda s: {"podSelector": s}, POD_SEL),
    st.builds(lambda s: {"namespaceSelector": s}, NS_SEL),
    st.builds(lambda p, n: {"podSelector": p, "namespaceSelector": n}, POD_SEL, NS_SEL),
    st.builds(lambda b: {"ipBlock": b}, _ip_block()))
PORT = st.one_of(
    st.builds(lambda proto: {"protocol": proto}, st.sampled_from(["TCP", "UDP", "SCTP"])),
    st.builds(lambda proto, n: {"protocol": proto, "port": n},
              st.sampled_from(["TCP", "UDP", "SCTP"]), st.sampled_from([80, 81, 82])),
    st.builds(lambda proto, name: {"protocol": proto, "port": name},
              st.sampled_from(["TCP", "UDP", "SCTP"]), st.sampled_from(NAMED)),
    st.builds(lambda proto: {"protocol": proto, "port": 79, "endPort": 80},
              st.sampled_from(["TCP", "UDP"])))


def _rules(peers_key: str) -> st.SearchStrategy[list]:
    return st.lists(st.builds(lambda peers, ports: {peers_key: peers, "ports": ports},
                              st.lists(PEER, max_size=2), st.lists(PORT, max_size=2)),
                    max_size=2)


POLICY = st.builds(
    lambda ns, sel, types, ingress, egress: {
        "metadata": {"name": "p", "namespace": ns},
        "spec": {"podSelector": sel, "policyTypes": types, "ingress": ingress, "egress": egress}},
    st.sampled_from("xyz"), POD_SEL,
    st.lists(st.sampled_from(["Ingress", "Egress"]), min_size=1, max_size=2, unique=True),
    _rules("from"), _rules("to"))


@st.composite
def _random_step(draw) -> Step:
    policies = draw(st.lists(POLICY, min_size=1, max_size=3))
    for i, p in enumerate(policies):
        p["metadata"]["name"] = f"p{i}"
    tiers = draw(st.dictionaries(st.sampled_from(POD_KEYS), st.sampled_from(["web", "db"])))
    teams = draw(st.dictionaries(st.sampled_from("xyz"), st.sampled_from(["red", "blue"])))
    return Step(policies, {k: {"tier": v} for k, v in tiers.items()},
                {k: {"team": v} for k, v in teams.items()}, [])


EXAMPLES = int(os.environ.get("NETLAB_NETPOL_EXAMPLES", "40"))  # more for a deeper search


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_random_step())
def test_engine_and_rules_agree_on_random_policies(step: Step):
    plan = plan_for(step)
    policies = policies_for(step, plan)
    by_engine, by_rules = _engine_verdict(plan, policies), _rules_verdict(plan, policies)
    for a in plan.pods.values():
        for b in plan.pods.values():
            if a.key == b.key:
                continue
            for port in (80, 81):
                for proto in ("TCP", "UDP", "SCTP"):
                    assert by_engine(a, b, proto, port) == by_rules(a, b, proto, port), (
                        f"{proto}/{port} {a.key} -> {b.key}")
