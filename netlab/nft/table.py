"""An nftables table as data, rendered as one `nft -f` transaction: in full, or as the
difference from a previous version (only changed chains are flushed and refilled, only
changed map elements are replaced), as kube-proxy's nftables mode syncs its table."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    def full(self) -> str:
        """Replace the whole table atomically (`add` first so `delete` cannot fail)."""
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
