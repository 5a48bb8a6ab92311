"""The in-memory nft (netlab.nft.fake) and, through it, Table.diff: for any two versions of a
table, loading the old one then the diff gives exactly what loading the new one in full gives.
Random tables (hypothesis) and real rendered ones (kube-proxy, NetworkPolicy); the fake is
checked against the kernel in a throw-away network namespace when root."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.compile import plan_lab as full_plan
from netlab.features import kubeproxy, netpol
from netlab.loader import build, read_text
from netlab.model import Cluster
from netlab.nft import FakeNft, NftError, Table, canonical
from netlab.nft.table import references

HERE = Path(__file__).parent

# -- random tables -----------------------------------------------------------------------------
# Chains c0..c4 jump only to higher-numbered chains and maps are used by the base chain only, so
# no table loops (the kernel refuses loops). Rules are written as `nft list` prints them, so
# the same tables can be compared with the kernel's.
CHAINS = [f"c{i}" for i in range(5)]
SET_SPECS = ["type ipv4_addr;", "type ipv4_addr; flags interval;"]
MAP_SPECS = ["type ipv4_addr : verdict;", "type inet_service : verdict;"]
BASE_SPECS = ["type filter hook input priority filter; policy accept;",
              "type filter hook input priority filter; policy drop;"]
addresses = st.integers(1, 6).map(lambda n: f"10.0.0.{n}")


@st.composite
def tables(draw: st.DrawFn, like: Table | None = None) -> Table:
    """A table; given `like`, one that often keeps its rules and elements (small changes)."""
    t = Table("ip", "fake")
    chains = [c for c in CHAINS if draw(st.booleans())]
    sets = {s: draw(st.sampled_from(SET_SPECS)) for s in ("s0", "s1", "s2") if draw(st.booleans())}
    # a base chain or map that changes makes diff() load in full: keep them mostly stable
    maps = {m: draw(st.sampled_from(MAP_SPECS[:1] * 9 + MAP_SPECS[1:]))
            for m in ("m0", "m1") if draw(st.integers(0, 9)) < (9 if m == "m0" else 1)}
    base = draw(st.sampled_from(BASE_SPECS[:1] * 9 + BASE_SPECS[1:]))
    if like is not None and draw(st.integers(0, 4)):  # mostly the same skeleton
        maps, base = {m: spec for m, (spec, _) in like.maps.items()}, like.base_chains["input"]

    def kept(kind: str, name: str) -> bool:
        return like is not None and name in getattr(like, kind) and draw(st.booleans())

    def same_refs(rules: list[str]) -> bool:
        assert like is not None
        refs = [references(r) for r in rules]
        return (all(c in chains for cs, _ in refs for c in cs) and
                all(n in sets or maps.get(n) == like.maps.get(n, ("",))[0]
                    for _, ns in refs for n in ns))

    for name, spec in sets.items():
        t.sets[name] = (spec, like.sets[name][1] if kept("sets", name) else
                        draw(st.lists(addresses, max_size=4)))

    def verdicts(after: list[str]) -> st.SearchStrategy[str]:
        jumps = [f"{v} {c}" for c in after for v in ("jump", "goto")]
        return st.sampled_from(["accept", "drop", *jumps])

    def rules(after: list[str], base: bool) -> st.SearchStrategy[str]:
        choices = [st.just("accept"), addresses.map(lambda a: f"ip saddr {a} drop"),
                   st.just('accept comment "a comment"')]
        if after:
            choices.append(verdicts(after).filter(lambda v: " " in v))
            pair = st.tuples(st.sampled_from(after), st.sampled_from(after))
            choices.append(pair.map(lambda p: f"numgen random mod 2 vmap {{ 0 : goto {p[0]}, "
                                              f"1 : jump {p[1]} }}"))
        choices += [st.just(f"ip saddr @{s} accept") for s in sets]
        if base:
            choices += [st.just(f"ip daddr vmap @{m}") for m, spec in maps.items()
                        if spec.startswith("type ipv4_addr")]
            choices += [st.just(f"tcp dport vmap @{m}") for m, spec in maps.items()
                        if spec.startswith("type inet_service")]
        return st.one_of(choices)

    for i, c in enumerate(["input", *chains]):
        if kept("chains", c) and same_refs(like.chains[c]):  # type: ignore[union-attr]
            t.chain(c, like.chains[c])  # type: ignore[union-attr]
        else:
            t.chain(c, draw(st.lists(rules(chains[i:], c == "input"), max_size=3)))
    t.base_chains["input"] = base
    for name, spec in maps.items():
        keys = addresses if spec.startswith("type ipv4_addr") else st.integers(1, 6).map(str)
        old = like.maps.get(name) if like else None
        if old and old[0] == spec and same_refs(list(old[1].values())) and draw(st.booleans()):
            elements = dict(old[1])
            elements.update(draw(st.dictionaries(keys, verdicts(chains), max_size=1)))
        else:
            elements = draw(st.dictionaries(keys, verdicts(chains), max_size=4))
        t.maps[name] = (spec, elements)
    return t


pairs = tables().flatmap(lambda old: st.tuples(st.just(old), st.one_of(tables(), tables(old))))


def loaded(*transactions: str) -> FakeNft:
    fake = FakeNft()
    for text in transactions:
        fake.apply(text)
    return fake


def check_diff(old: Table, new: Table) -> None:
    patched = loaded(old.full(), new.diff(old))
    fresh = loaded(new.full())
    assert patched.dump() == fresh.dump()
    assert patched.table(new.family, new.name) == canonical(new)
    assert new.diff(new) == ""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs)
def test_diff_reaches_the_full_state(pair: tuple[Table, Table]):
    check_diff(*pair)


@settings(max_examples=50, deadline=None)
@given(tables())
def test_full_loads_over_anything_and_twice(t: Table):
    fake = loaded(t.full(), t.full())
    assert fake.table("ip", "fake") == canonical(t)
    assert fake.dump() == loaded(t.full()).dump()


# -- rendered tables ---------------------------------------------------------------------------
SERVICE_CHANGES = [
    ("metadata: {name: nobody}\nspec:\n  selector: {app: nobody}",
     "metadata: {name: nobody}\nspec:\n  selector: {app: dns}"),  # endpoints appear
    ("metadata: {name: web-1, labels: {app: web}}", "metadata: {name: web-1, labels: {}}"),
    ("  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n",
     ""),  # affinity sets go
    ("  externalTrafficPolicy: Local\n", ""),  # local chains go
    ("  internalTrafficPolicy: Local\n", ""),
    ("metadata: {name: dns-1, labels: {app: dns}}", "metadata: {name: dns-1, labels: {}}"),
]
POLICY_CHANGES = [
    ("  podSelector: {}\n  policyTypes: [Ingress]", "  podSelector: {matchLabels: {pod: b}}\n"
     "  policyTypes: [Ingress]"),
    ("values: [b, c]", "values: [c]"),
    ("  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: z}}}]",
     "  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: y}}}]"),
    ("ports: [{port: serve-80-tcp}, {protocol: UDP, port: 81}]", "ports: [{port: 8080}]"),
]


def _versions(text: str, changes: list[tuple[str, str]]) -> list[str]:
    """The text, each change alone, and all changes together."""
    for before, _ in changes:
        assert before in text, before
    out = [text, *(text.replace(a, b) for a, b in changes)]
    for a, b in changes:
        text = text.replace(a, b)
    return [*out, text]


def rendered_versions() -> Iterator[tuple[list[Table], list[Table]]]:
    """(old, new) table lists of every node for pairs of versions of the test scenarios."""
    text = (HERE / "services_scenario.yaml").read_text()
    services = [build(read_text(v, "s.yaml")) for v in _versions(text, SERVICE_CHANGES)]
    first = full_plan("golden", services[0], services[0].cluster or Cluster())
    plans = [first] + [full_plan("golden", m, m.cluster or Cluster(), first)
                       for m in services[1:]]
    for old in plans:
        for new in plans:
            for node in ("node-1", "node-2"):
                yield (kubeproxy.render_tables(old, old.node(node)),
                       kubeproxy.render_tables(new, new.node(node)))
    lab = (HERE.parent / "integration" / "netpol_lab.yaml").read_text()
    policies = (HERE / "policies_scenario.yaml").read_text()
    rendered = []
    for v in _versions(policies, POLICY_CHANGES):
        m = build(read_text(lab + "\n---\n" + v, "p.yaml"))
        plan = full_plan("golden", m, m.cluster)
        rendered.append([netpol.render_node(plan, plan.node(n), m.network_policies.values())
                         for n in ("node-1", "node-2", "node-3") if n in plan.nodes])
    for old in rendered:
        for new in rendered:
            yield old, new


def test_rendered_rulesets_diff_to_their_full_state():
    pairs = 0
    for old, new in rendered_versions():
        for o, n in zip(old, new, strict=True):
            check_diff(o, n)
            pairs += 1
    assert pairs > 100


# -- the fake refuses what the kernel refuses --------------------------------------------------
def small() -> Table:
    t = Table("ip", "fake")
    t.chain("input", ["ip daddr vmap @m0", "jump c0"], BASE_SPECS[0])
    t.chain("c0", ["ip saddr @s0 accept", "goto c1"])
    t.chain("c1", ["drop"])
    t.chain("c2", [])
    t.sets["s0"] = (SET_SPECS[0], ["10.0.0.1"])
    t.maps["m0"] = (MAP_SPECS[0], {"10.0.0.2": "goto c2"})
    return t


REFUSED = [
    "delete table ip nothere",
    "delete chain ip fake c1",  # c0 goes to it
    "delete chain ip fake c2",  # a map element goes to it
    "delete chain ip fake nothere",
    "flush chain ip fake nothere",
    "add rule ip fake nothere accept",
    "add rule ip fake c2 jump nothere",
    "add rule ip fake c2 jump input",  # a base chain
    "add rule ip fake c2 ip saddr @nothere accept",
    "delete set ip fake s0",  # c0 uses it
    "delete set ip fake nothere",
    "delete element ip fake s0 { 10.0.0.5 }",
    "delete element ip fake m0 { 10.0.0.5 }",
    "add element ip fake nothere { 10.0.0.5 }",
    "add element ip fake m0 { 10.0.0.2 : drop }",  # the key is there with another verdict
    "add element ip fake m0 { 10.0.0.3 : goto nothere }",
]
ACCEPTED = [
    "flush chain ip fake c0\ndelete chain ip fake c1",
    "delete element ip fake m0 { 10.0.0.2 }\ndelete chain ip fake c2",
    "flush chain ip fake c0\ndelete set ip fake s0",
    "add element ip fake m0 { 10.0.0.2 : goto c2 }",  # the same element again
    "add element ip fake s0 { 10.0.0.1, 10.0.0.7 }",
    "add chain ip fake c0",  # exists: nothing to do
    "delete table ip fake",
    "add table ip fake\ndelete table ip fake\nadd table ip fake",
]


@pytest.mark.parametrize("command", REFUSED)
def test_refused_and_nothing_changes(command: str):
    fake = loaded(small().full())
    before = fake.dump()
    with pytest.raises(NftError, match="line 2"):
        fake.apply("add chain ip fake new\n" + command)
    assert fake.dump() == before


@pytest.mark.parametrize("command", ACCEPTED)
def test_accepted(command: str):
    loaded(small().full(), command)


# -- the fake against the kernel ---------------------------------------------------------------
def _normal(spec: str) -> str:
    return "; ".join(p.strip() for p in spec.replace("\n", ";").split(";") if p.strip())


def kernel_table(listing: str) -> Table:
    """`nft list table` output read back into a canonical Table (rules as printed)."""
    head = re.match(r"table (\S+) (\S+) \{", listing)
    assert head, listing
    t = Table(head[1], head[2])
    blocks = re.findall(r"^\t(chain|set|map) (\S+) \{\n(.*?)^\t\}", listing, re.M | re.S)
    for kind, name, body in blocks:
        lines = [x.strip() for x in body.splitlines() if x.strip()]
        if kind == "chain":
            base = lines[0] if lines and lines[0].startswith("type ") else None
            t.chain(name, lines[1:] if base else lines, _normal(base) if base else None)
            continue
        at = next((i for i, x in enumerate(lines) if x.startswith("elements = {")), len(lines))
        spec, elements = ";".join(lines[:at]), " ".join(lines[at:])
        items = [e.strip() for e in elements[len("elements = {"):].rstrip(" }").split(",")
                 if e.strip()]
        if kind == "set":
            t.sets[name] = (_normal(spec), items)
        else:
            t.maps[name] = (_normal(spec), dict(i.split(" : ", 1) for i in items))
    return canonical(t)


def fake_table(fake: FakeNft) -> Table | None:
    t = fake.table("ip", "fake")
    if t is None:
        return None
    t.base_chains = {c: _normal(s) for c, s in t.base_chains.items()}
    t.sets = {s: (_normal(spec), e) for s, (spec, e) in t.sets.items()}
    t.maps = {m: (_normal(spec), e) for m, (spec, e) in t.maps.items()}
    return t


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root (creates a network namespace)")
    if not shutil.which("nft") or not shutil.which("ip"):
        pytest.skip("needs nft and ip")
    name = f"nlfake-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


class Kernel:
    def __init__(self, ns: str) -> None:
        self.ns = ns

    def nft(self, *args: str, text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns, "nft", *args], input=text,
                              capture_output=True, text=True)

    def apply(self, text: str) -> bool:
        return self.nft("-f", "-", text=text).returncode == 0

    def table(self) -> Table | None:
        out = self.nft("list", "table", "ip", "fake")
        return kernel_table(out.stdout) if out.returncode == 0 else None


def both(kernel: Kernel, fake: FakeNft, text: str) -> bool:
    """Apply to both; they must agree on success and on the state after."""
    applied = kernel.apply(text)
    try:
        fake.apply(text)
        assert applied, f"the kernel refused what the fake applied:\n{text}"
    except NftError as e:
        assert not applied, f"the kernel applied what the fake refused ({e}):\n{text}"
    assert fake_table(fake) == kernel.table()
    return applied


def test_fake_refuses_as_the_kernel_does(netns: str):
    kernel, fake = Kernel(netns), FakeNft()
    assert both(kernel, fake, small().full())
    for command in REFUSED:
        assert not both(kernel, fake, "add chain ip fake new\n" + command), command
    for command in ACCEPTED:
        assert both(kernel, fake, command), command
        both(kernel, fake, small().full())


def test_fake_follows_the_kernel_on_random_diffs(netns: str):
    kernel = Kernel(netns)

    @settings(max_examples=40, deadline=None, database=None)
    @given(pairs)
    def run(pair: tuple[Table, Table]) -> None:
        old, new = pair
        fake = FakeNft()
        assert both(kernel, fake, old.full())
        assert both(kernel, fake, new.diff(old))
        assert fake_table(fake) == fake_table(loaded(new.full()))
        kernel.apply("delete table ip fake")

    run()
