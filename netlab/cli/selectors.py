"""kubectl's label selectors (`-l`): `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
`a` (has the label), `!a` (has not); requirements separated by commas must all hold."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from netlab.errors import InputError

# A label key: an optional DNS-subdomain prefix and a name; a value: a name or empty.
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = rf"(?:[a-z0-9](?:[-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}"
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$")
_EQ = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*(.*)$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_VALUE = re.compile(rf"^(?:{_NAME})?$")

EXAMPLES = "app=web, app!=web, tier in (a,b), tier notin (c), app, !app; commas mean AND"


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # = != in notin exists !
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        match self.op:
            case "exists":
                return has
            case "!":
                return not has
            case "=" | "in":
                return has and labels[self.key] in self.values
            case _:  # != and notin also match objects without the label, as in Kubernetes
                return not has or labels[self.key] not in self.values

    def __str__(self) -> str:
        match self.op:
            case "exists":
                return self.key
            case "!":
                return f"!{self.key}"
            case "in" | "notin":
                return f"{self.key} {self.op} ({','.join(self.values)})"
            case _:
                return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(map(str, self.requirements))


def _split(text: str) -> list[str]:
    """Split on the commas that are not inside a `( )` value list."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if depth != 0:
        raise InputError(f"label selector {text!r}: unbalanced parentheses ({EXAMPLES})")
    return [*parts, cur]


def _value(text: str, value: str) -> str:
    if not _VALUE.match(value):
        raise InputError(f"label selector {text!r}: {value!r} is not a valid label value "
                         "(up to 63 letters, digits, '-', '_' or '.', starting and ending "
                         "with a letter or digit)")
    return value


def parse(text: str) -> Selector:
    """Parse a selector; an empty one selects everything. Bad syntax is an InputError."""
    if not text.strip():
        return Selector()
    reqs = []
    for raw in _split(text):
        part = raw.strip()
        if m := _SET.match(part):
            values = tuple(_value(text, v.strip()) for v in m[3].split(","))
            reqs.append(Requirement(m[1], m[2], values))
        elif m := _EQ.match(part):
            op = "=" if m[2] == "==" else m[2]
            reqs.append(Requirement(m[1], op, (_value(text, m[3].strip()),)))
        elif m := _EXISTS.match(part):
            reqs.append(Requirement(m[2], "!" if m[1] else "exists"))
        else:
            what = "an empty requirement" if not part else repr(part)
            raise InputError(f"label selector {text!r}: cannot parse {what} (write e.g. "
                             f"{EXAMPLES})")
    return Selector(tuple(reqs))
