"""An in-memory nft for tests: holds tables and applies `nft -f` transactions of the commands
Table.full() and Table.diff() write, atomically (all or nothing), refusing what the kernel
refuses: a missing table, chain, set or element; a rule or verdict naming a chain, set or map
that is not there; deleting a chain a rule or a map element still jumps to, or a set a rule
still names; a map element's key added again with another verdict.

Rules are kept as text; a rule's references are its `jump X`, `goto X` and `@x` words."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from netlab.errors import KernelError
from netlab.nft.table import Table, references


class NftError(KernelError):
    """What `nft -f` would fail with: the transaction did not apply, nothing changed."""

    def __init__(self, line: int, command: str, reason: str) -> None:
        self.line, self.command, self.reason = line, command, reason
        super().__init__(f"nft: line {line}: {reason}: {command}")


@dataclass
class _Set:
    spec: str
    is_map: bool
    elements: dict[str, str] = field(default_factory=dict)  # key -> verdict ("" in a set)


@dataclass
class _Table:
    chains: dict[str, list[str]] = field(default_factory=dict)
    base: dict[str, str] = field(default_factory=dict)
    sets: dict[str, _Set] = field(default_factory=dict)  # sets and maps: one namespace

    def users(self, chain: str) -> list[str]:
        """What still jumps or goes to `chain`: rules of other chains and map elements."""
        out = [f"chain {c}" for c, rules in self.chains.items() if c != chain
               for r in rules if chain in references(r)[0]]
        return out + [f"map {m} element {k}" for m, s in self.sets.items()
                      for k, v in s.elements.items() if chain in references(v)[0]]


_COMMAND = re.compile(r"(add|delete|flush) (table|chain|rule|set|map|element) (\S+) (\S+)"
                      r"(?: (\S+))?(?: (.*))?$")


def _spec(rest: str | None) -> str:
    rest = (rest or "").strip()
    if not (rest.startswith("{") and rest.endswith("}")):
        raise ValueError(f"expected {{ ... }}, not {rest!r}")
    return rest[1:-1].strip()


def _elements(rest: str | None) -> list[str]:
    return [e.strip() for e in _spec(rest).split(",") if e.strip()]


class FakeNft:
    """The tables of one network namespace."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], _Table] = {}

    def apply(self, text: str) -> None:
        """Apply a transaction; on any error raise NftError and keep the state unchanged."""
        tables = copy.deepcopy(self.tables)
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    self._command(tables, line.strip())
                except (LookupError, ValueError) as e:
                    raise NftError(n, line, str(e).strip("'\"")) from None
        self.tables = tables

    def _command(self, tables: dict[tuple[str, str], _Table], line: str) -> None:
        m = _COMMAND.match(line)
        if not m:
            raise ValueError("not a command the fake knows")
        verb, kind, family, name, obj, rest = m.groups()
        key = (family, name)
        if kind == "table":
            if obj or rest:
                raise ValueError("syntax error")
            if verb == "add":
                tables.setdefault(key, _Table())
            elif verb == "delete":  # everything in it goes, whatever refers to what
                self._get(tables, key)
                del tables[key]
            else:
                raise ValueError("not a command the fake knows")
            return
        t = self._get(tables, key)
        if obj is None:
            raise ValueError("syntax error")
        getattr(self, f"_{verb}_{kind}")(t, obj, rest)

    @staticmethod
    def _get(tables: dict[tuple[str, str], _Table], key: tuple[str, str]) -> _Table:
        if key not in tables:
            raise LookupError(f"No such file or directory: table {key[0]} {key[1]}")
        return tables[key]

    @staticmethod
    def _chain(t: _Table, name: str) -> list[str]:
        if name not in t.chains:
            raise LookupError(f"No such file or directory: chain {name}")
        return t.chains[name]

    @staticmethod
    def _set(t: _Table, name: str) -> _Set:
        if name not in t.sets:
            raise LookupError(f"No such file or directory: set {name}")
        return t.sets[name]

    def _check_refs(self, t: _Table, text: str) -> None:
        chains, sets = references(text)
        for c in chains:
            self._chain(t, c)
            if c in t.base:
                raise ValueError(f"Operation not supported: jump to base chain {c}")
        for s in sets:
            self._set(t, s)

    def _add_chain(self, t: _Table, name: str, rest: str | None) -> None:
        base = _spec(rest) if rest else None
        if name in t.chains:  # an update: a hook cannot be added or changed
            if base is not None and base != t.base.get(name):
                raise ValueError(f"Device or resource busy: chain {name} exists differently")
            return
        t.chains[name] = []
        if base is not None:
            t.base[name] = base

    def _flush_chain(self, t: _Table, name: str, rest: str | None) -> None:
        self._chain(t, name).clear()

    def _delete_chain(self, t: _Table, name: str, rest: str | None) -> None:
        self._chain(t, name)
        if users := t.users(name):
            raise ValueError(f"Device or resource busy: chain {name} is used by {users[0]}")
        del t.chains[name]
        t.base.pop(name, None)

    def _add_rule(self, t: _Table, chain: str, rest: str | None) -> None:
        rules = self._chain(t, chain)
        if not rest:
            raise ValueError("syntax error: empty rule")
        self._check_refs(t, rest)
        rules.append(rest)

    def _add_set(self, t: _Table, name: str, rest: str | None, is_map: bool = False) -> None:
        spec = _spec(rest)
        if name in t.sets:
            old = t.sets[name]
            if (old.spec, old.is_map) != (spec, is_map):
                raise ValueError(f"File exists: set {name} exists with another definition")
            return
        t.sets[name] = _Set(spec, is_map)

    def _add_map(self, t: _Table, name: str, rest: str | None) -> None:
        self._add_set(t, name, rest, is_map=True)

    def _delete_set(self, t: _Table, name: str, rest: str | None) -> None:
        self._set(t, name)
        for chain, rules in t.chains.items():
            if any(name in references(r)[1] for r in rules):
                raise ValueError(f"Device or resource busy: set {name} is used by chain {chain}")
        del t.sets[name]

    def _add_element(self, t: _Table, name: str, rest: str | None) -> None:
        s = self._set(t, name)
        for element in _elements(rest):
            k, sep, verdict = (x.strip() for x in element.partition(" : "))
            if bool(sep) != s.is_map:
                raise ValueError(f"syntax error: element {element!r} of {name}")
            self._check_refs(t, verdict)
            if s.elements.get(k, verdict) != verdict:
                raise ValueError(f"File exists: element {k} of {name}")
            s.elements[k] = verdict

    def _delete_element(self, t: _Table, name: str, rest: str | None) -> None:
        s = self._set(t, name)
        for k in _elements(rest):
            if k not in s.elements:
                raise LookupError(f"No such file or directory: element {k} of {name}")
            del s.elements[k]

    def table(self, family: str, name: str) -> Table | None:
        """A table as a Table, in canonical form (see `canonical`), or None."""
        t = self.tables.get((family, name))
        if t is None:
            return None
        out = Table(family, name, dict(t.base), {c: list(r) for c, r in t.chains.items()})
        for n, s in t.sets.items():
            if s.is_map:
                out.maps[n] = (s.spec, dict(s.elements))
            else:
                out.sets[n] = (s.spec, list(s.elements))
        return canonical(out)

    def dump(self) -> str:
        """Every table, sorted, in a canonical text: equal states dump equal."""
        lines = []
        for family, name in sorted(self.tables):
            t = self.table(family, name)
            assert t is not None
            lines.append(f"table {family} {name}")
            for c in sorted(t.chains):
                base = t.base_chains.get(c)
                lines.append(f"  chain {c}" + (f" {{ {base} }}" if base else ""))
                lines += [f"    {r}" for r in t.chains[c]]
            for n, (spec, members) in sorted(t.sets.items()):
                lines += [f"  set {n} {{ {spec} }}", *(f"    {e}" for e in members)]
            for n, (spec, elements) in sorted(t.maps.items()):
                lines.append(f"  map {n} {{ {spec} }}")
                lines += [f"    {k} : {v}" for k, v in elements.items()]
        return "\n".join(lines) + "\n" if lines else ""


def canonical(t: Table) -> Table:
    """A copy of `t` as nft holds it: set elements sorted and without repeats, map elements
    and everything else sorted by name (rules keep their order)."""
    return Table(t.family, t.name, dict(sorted(t.base_chains.items())),
                 {c: list(t.chains[c]) for c in sorted(t.chains)},
                 {m: (spec, dict(sorted(e.items()))) for m, (spec, e) in sorted(t.maps.items())},
                 {s: (spec, sorted(set(e))) for s, (spec, e) in sorted(t.sets.items())})
