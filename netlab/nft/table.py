"""An nftables table as data, rendered as one `nft -f` transaction: in full, or as the
difference from a previous version (only changed chains are flushed and refilled, only
changed map elements are replaced), as kube-proxy's nftables mode syncs its table."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

from netlab.errors import RulesetError

FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
NAME_MAX = 255  # NFT_NAME_MAXLEN (256) counts the NUL: 256 characters is ERANGE
COMMENT_MAX = 128  # NFTNL_UDATA_COMMENT_MAXLEN: nft refuses a longer comment
# an unquoted name as nft 1.0.6's scanner reads it (`string` in src/scanner.l)
IDENTIFIER = re.compile(r"[A-Za-z_.][A-Za-z0-9/_.-]*")
# the words nft 1.0.6 reads as keywords where a table, chain, set or map name goes (each
# tried with `nft -c` in a network namespace); `@ll` and `@nh` are raw payload bases
_KEYWORDS = """
    accept add ah all and arp auto-merge bridge cgroup chain comment comp constant continue
    counter cpu create ct day dccp define delete describe device devices dnat drop dst dup
    dynamic ecn element elements eq esp ether exists expires export exthdr fib flags flow
    flowtable flush frag fwd gc-interval ge get goto gt handle hbh hook hour ibriport ibrname
    icmp icmpv6 igmp iif iifgroup iifname iiftype import include index inet insert interval
    ip ip6 ipsec jhash jump le limit list log lshift lt map mark masquerade meta meter mh
    missing monitor ne netdev nftrace not notrack numgen obriport obrname offload oif
    oifgroup oifname oiftype or osf pkttype policy position priority queue quota random
    redefine redirect reject rename replace reset return rshift rt rt0 rt2 rtclassid rule
    ruleset sctp secmark set size skgid skuid snat socket srh symhash synproxy table tcp th
    time timeout tproxy type typeof udp udplite undefine update vlan vmap xor xt"""
KEYWORDS = frozenset(_KEYWORDS.split())
SET_KEYWORDS = KEYWORDS | {"ll", "nh"}
_QUOTED = re.compile(r'"[^"]*"')
_TOKEN = re.compile(r"[^\s{},]+")
_COMMENT = re.compile(r'\bcomment "(.*)"$')


@lru_cache(maxsize=1 << 17)  # a sync re-validates mostly the same rules: parse each once
def references(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The chains a rule or a verdict jumps or goes to, and the sets and maps it names (`@x`),
    in order; quoted strings (comments) are skipped."""
    tokens = _TOKEN.findall(_QUOTED.sub('""', text))
    chains = tuple(b for a, b in pairwise(tokens) if a in ("jump", "goto"))
    return chains, tuple(t[1:] for t in tokens if t.startswith("@"))


@lru_cache(maxsize=1 << 16)
def name_error(name: str, keywords: frozenset[str] = KEYWORDS) -> str | None:
    """Why nft would refuse `name` as a table, chain, set or map name, or None."""
    if len(name) > NAME_MAX:
        return f"the name is {len(name)} characters long; nft allows at most {NAME_MAX}"
    if not IDENTIFIER.fullmatch(name):
        return ("not an nft name: it must start with a letter, '_' or '.', then letters, "
                "digits, '/', '-', '_' or '.'")
    if name in keywords:
        return f"{name!r} is an nft keyword"
    return None


@lru_cache(maxsize=1 << 17)
def rule_error(rule: str) -> str | None:
    """Why nft would refuse a rule's text for reasons a Table can see, or None."""
    if "\n" in rule or ";" in _QUOTED.sub("", rule):
        return "a rule is one line and one statement list (no newline, no ';')"
    if rule.count('"') % 2:
        return "unbalanced double quotes"
    if "comment" in _QUOTED.sub("", rule).split():
        m = _COMMENT.search(rule)
        if not m:
            return 'a comment goes last, as comment "..."'
        if '"' in m.group(1):
            return 'a comment cannot contain a double quote'
        if len(m.group(1)) > COMMENT_MAX:
            return (f"the comment is {len(m.group(1))} characters long; nft allows at most "
                    f"{COMMENT_MAX}")
    return None


@dataclass
class Table:
    family: str
    name: str
    base_chains: dict[str, str] = field(default_factory=dict)  # chain -> "type ...; ..."
    chains: dict[str, list[str]] = field(default_factory=dict)  # every chain -> its rules
    maps: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)  # type, elements
    sets: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # spec, elements

    def chain(self, name: str, rules: list[str] | None = None, base: str | None = None) -> None:
        self.chains[name] = list(rules or [])
        if base:
            self.base_chains[name] = base

    @property
    def ref(self) -> str:
        return f"{self.family} {self.name}"

    def validate(self, against: Table | None = None) -> None:
        """Raise RulesetError, naming the object, if nft or the kernel would refuse to load
        this table: bad names, bad comments, references to chains, sets or maps it lacks.
        With `against` (a valid earlier version), rules and elements it already had are not
        checked again, unless something they could refer to is gone."""
        where = f"table {self.ref}"
        if self.family not in FAMILIES:
            raise RulesetError(f"unknown family {self.family!r}", obj=where)
        if err := name_error(self.name):
            raise RulesetError(err, obj=where)
        for kind, names, keywords in (("chain", self.chains, KEYWORDS),
                                      ("set", self.sets, SET_KEYWORDS),
                                      ("map", self.maps, SET_KEYWORDS)):
            for name in names:
                if err := name_error(name, keywords):
                    raise RulesetError(err, obj=f"{where}, {kind} {name}")
        if both := sorted(set(self.sets) & set(self.maps)):
            # a map is a set with data: one namespace in the kernel
            raise RulesetError("a set and a map cannot share a name",
                               obj=f"{where}, set and map {both[0]}")
        if extra := sorted(set(self.base_chains) - set(self.chains)):
            raise RulesetError("a base chain without rules entry", obj=f"{where}, chain {extra[0]}")
        specs = [(f"chain {c}", spec) for c, spec in self.base_chains.items()]
        specs += [(f"set {n}", spec) for n, (spec, _) in self.sets.items()]
        specs += [(f"map {n}", spec) for n, (spec, _) in self.maps.items()]
        for obj, spec in specs:
            if not spec.rstrip().endswith(";"):  # nft: `{ type ipv4_addr }` is a syntax error
                raise RulesetError(f"the definition {spec!r} must end with ';'",
                                   obj=f"{where}, {obj}")
        gone = against is None or bool(
            set(against.chains) - set(self.chains)
            or (set(against.sets) | set(against.maps)) - (set(self.sets) | set(self.maps)))
        for chain, rules in self.chains.items():
            known = against is not None and against.chains.get(chain) == rules
            if known and not gone:
                continue
            for i, rule in enumerate(rules):  # (the object's name is only built on error)
                if err := (None if known else rule_error(rule)) or self._reference_error(rule):
                    raise RulesetError(err, obj=f"{where}, chain {chain}, rule {i + 1} "
                                                f"({rule!r})")
        for name, (_, elements) in self.maps.items():
            before = against.maps.get(name, ("", {}))[1] if against is not None else {}
            for key, verdict in elements.items():
                if before.get(key) == verdict and not gone:
                    continue
                if err := self._reference_error(verdict):
                    raise RulesetError(err, obj=f"{where}, map {name}, element {key}")

    def _reference_error(self, text: str) -> str | None:
        chains, sets = references(text)
        for target in chains:
            if target not in self.chains:
                return f"jumps or goes to chain {target!r}, which the table does not have"
            if target in self.base_chains:  # the kernel refuses it (EOPNOTSUPP)
                return f"jumps or goes to base chain {target!r}"
        for name in sets:
            if name not in self.sets and name not in self.maps:
                return f"names set or map {name!r}, which the table does not have"
        return None

    def full(self) -> str:
        """Replace the whole table atomically (`add` first so `delete` cannot fail)."""
        self.validate()
        lines = [f"add table {self.ref}", f"delete table {self.ref}", f"add table {self.ref}"]
        lines += self._create(set(self.chains), set(self.maps), set(self.sets))
        return "\n".join(lines) + "\n"

    def _create(self, chains: set[str], maps: set[str], sets: set[str]) -> list[str]:
        lines = []
        for name in sorted(chains):
            base = self.base_chains.get(name)
            lines.append(f"add chain {self.ref} {name}" + (f" {{ {base} }}" if base else ""))
        for name in sorted(sets):
            spec, elements = self.sets[name]
            lines.append(f"add set {self.ref} {name} {{ {spec} }}")
            if elements:
                lines.append(f"add element {self.ref} {name} {{ {', '.join(elements)} }}")
        for name in sorted(maps):
            lines.append(f"add map {self.ref} {name} {{ {self.maps[name][0]} }}")
        for name in sorted(chains):
            lines += [f"add rule {self.ref} {name} {rule}" for rule in self.chains[name]]
        for name in sorted(maps):
            elements = self.maps[name][1]
            lines += [f"add element {self.ref} {name} {{ {k} : {v} }}"
                      for k, v in sorted(elements.items())]
        return lines

    def diff(self, old: Table) -> str:
        """The transaction that turns `old` (what the kernel holds) into this table. Empty if
        nothing changed."""
        self.validate(against=old)
        old_types = {k: v[0] for k, v in old.maps.items()}
        if (old.ref, old.base_chains, old_types) != (
                self.ref, self.base_chains, {k: v[0] for k, v in self.maps.items()}):
            return self.full()  # the table's skeleton changed (only across netlab versions)
        lines: list[str] = []
        new_chains = set(self.chains) - set(old.chains)
        gone_chains = set(old.chains) - set(self.chains)
        changed = {c for c in set(self.chains) & set(old.chains)
                   if self.chains[c] != old.chains[c]}
        # a set whose definition changes is recreated; one whose elements change is updated
        new_sets = {s for s in self.sets if s not in old.sets or self.sets[s][0] != old.sets[s][0]}
        gone_sets = {s for s in old.sets
                     if s not in self.sets or self.sets[s][0] != old.sets[s][0]}
        recreated = new_sets & gone_sets
        changed |= {c for c in set(self.chains) & set(old.chains)
                    if any(f"@{s}" in rule for s in recreated for rule in self.chains[c])}
        # 1. new chains exist before anything refers to them
        lines += [f"add chain {self.ref} {c}" for c in sorted(new_chains)]
        # 2. map elements that go or change go first (they may point at chains to delete)
        for name, (_, elements) in sorted(self.maps.items()):
            before = old.maps[name][1]
            gone = [k for k in before if k not in elements or elements[k] != before[k]]
            if gone:
                lines.append(f"delete element {self.ref} {name} {{ {', '.join(sorted(gone))} }}")
        # 3. chains whose rules change, or that go, are emptied
        lines += [f"flush chain {self.ref} {c}" for c in sorted(changed | gone_chains)]
        # 4. sets that go (nothing refers to them any more), then new sets
        lines += [f"delete set {self.ref} {s}" for s in sorted(gone_sets)]
        for s in sorted(new_sets):
            spec, elements = self.sets[s]
            lines.append(f"add set {self.ref} {s} {{ {spec} }}")
            if elements:
                lines.append(f"add element {self.ref} {s} {{ {', '.join(elements)} }}")
        for s in sorted(set(self.sets) & set(old.sets) - recreated):
            before, after = set(old.sets[s][1]), set(self.sets[s][1])
            for verb, elements in (("delete", before - after), ("add", after - before)):
                if elements:
                    listed = ", ".join(sorted(elements))
                    lines.append(f"{verb} element {self.ref} {s} {{ {listed} }}")
        # 5. rules of new and changed chains
        for c in sorted(new_chains | changed):
            lines += [f"add rule {self.ref} {c} {rule}" for rule in self.chains[c]]
        # 6. new and changed elements
        for name, (_, elements) in sorted(self.maps.items()):
            before = old.maps[name][1]
            lines += [f"add element {self.ref} {name} {{ {k} : {v} }}"
                      for k, v in sorted(elements.items())
                      if k not in before or before[k] != v]
        # 7. chains that go
        lines += [f"delete chain {self.ref} {c}" for c in sorted(gone_chains)]
        return "\n".join(lines) + "\n" if lines else ""


def comment(text: str, keep_tail: str = "") -> str:
    """An nft comment of at most COMMENT_MAX characters. A longer `text` is cut and marked
    with a hash of the whole, so two long names stay apart; `keep_tail` (e.g. " ingress[2]")
    is never cut."""
    full = text + keep_tail
    if len(full.encode()) <= COMMENT_MAX:
        return f'comment "{full}"'
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    room = COMMENT_MAX - len(keep_tail.encode()) - len(digest) - 1
    head = text.encode()[:max(room, 0)].decode(errors="ignore")
    return f'comment "{head}~{digest}{keep_tail}"'
