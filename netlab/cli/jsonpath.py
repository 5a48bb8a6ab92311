"""The part of kubectl's JSONPath templates (`-o jsonpath=...`) people actually use:

    {.items[*].metadata.name}                 fields, [n], [-1], [*], [a:b], ..name, ['a.b']
    {.status.addresses[?(@.type=="InternalIP")].address}    filters: == != < <= > >=, @.x
    {range .items[*]}{.metadata.name}{"\\t"}{.status.podIP}{"\\n"}{end}
    {$.kind} {@}                                root and current object

Missing fields print nothing (kubectl's default --allow-missing-template-keys). Anything
else is an InputError naming what is not supported.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from netlab.errors import InputError

SUPPORTED = ('.field, [n], [*], [a:b], ..field, [\'key\'], [?(@.field=="value")], '
             '{range PATH}...{end}, {"literal"}')


class JsonPathError(InputError):
    pass


def _error(template: str, why: str) -> JsonPathError:
    return JsonPathError(f"-o jsonpath={template}: {why} (supported: {SUPPORTED})")


# --- parsing ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    kind: str  # field | recurse | index | slice | all | filter
    arg: Any = None


@dataclass(frozen=True)
class Path:
    root: bool  # starts at $ rather than at the current object
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Filter:
    path: Path
    op: str | None  # None: the field exists (and is not empty/false)
    value: Any = None


@dataclass
class Range:
    path: Path
    body: list[Any]


def _pieces(template: str) -> list[tuple[bool, str]]:
    """(is_action, text) in order: the text between braces and the literal text around."""
    out: list[tuple[bool, str]] = []
    i, text = 0, ""
    while i < len(template):
        ch = template[i]
        if ch != "{":
            if ch == "}":
                raise _error(template, f"'}}' without '{{' at position {i}")
            text += ch
            i += 1
            continue
        if text:
            out.append((False, text))
            text = ""
        j, quote = i + 1, ""
        while j < len(template):  # the matching }, skipping quoted strings
            c = template[j]
            if quote:
                if c == "\\":
                    j += 1
                elif c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c == "}":
                break
            j += 1
        else:
            raise _error(template, f"'{{' at position {i} is never closed")
        out.append((True, template[i + 1:j].strip()))
        i = j + 1
    if text:
        out.append((False, text))
    return out


_FIELD = re.compile(r"(?:\\.|[^.\[\]\\])+")
_INT = re.compile(r"-?\d+$")
_SLICE = re.compile(r"(-?\d*):(-?\d*)$")
_COMPARE = re.compile(r"^(@[^=!<>]*?)\s*(==|!=|<=|>=|<|>)\s*(.+?)$")


def _literal(template: str, text: str) -> Any:
    text = text.strip()
    if text[:1] in "'\"":
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            raise _error(template, f"bad string {text}") from None
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise _error(template, f"cannot compare with {text!r} (quote strings: "
                               '@.type=="InternalIP")') from None


def _close(template: str, expr: str, i: int) -> int:
    """Index of the ] closing the [ at i, skipping quotes and parentheses."""
    depth, quote = 0, ""
    for j in range(i, len(expr)):
        c = expr[j]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
            if depth == 0:
                return j
    raise _error(template, f"'[' in {expr!r} is never closed")


def parse_path(template: str, expr: str) -> Path:
    expr = expr.strip()
    root = expr.startswith("$")
    if expr[:1] in "$@":
        expr = expr[1:]
    if expr == ".":  # {.} is the current object
        expr = ""
    steps: list[Step] = []
    i = 0
    while i < len(expr):
        if expr.startswith("..", i):
            m = _FIELD.match(expr, i + 2)
            if not m:
                raise _error(template, f"'..' needs a field name in {expr!r}")
            steps.append(Step("recurse", m[0].replace("\\.", ".")))
            i = m.end()
        elif expr[i] == ".":
            m = _FIELD.match(expr, i + 1)
            if not m:
                raise _error(template, f"'.' needs a field name in {expr!r}")
            name = m[0].replace("\\.", ".")
            steps.append(Step("all") if name == "*" else Step("field", name))
            i = m.end()
        elif expr[i] == "[":
            j = _close(template, expr, i)
            inner = expr[i + 1:j].strip()
            if inner == "*":
                steps.append(Step("all"))
            elif _INT.match(inner):
                steps.append(Step("index", int(inner)))
            elif m := _SLICE.match(inner):
                steps.append(Step("slice", (int(m[1]) if m[1] else None,
                                            int(m[2]) if m[2] else None)))
            elif inner[:1] in "'\"" and inner[-1:] == inner[:1] and len(inner) > 1:
                steps.append(Step("field", inner[1:-1]))
            elif inner.startswith("?(") and inner.endswith(")"):
                steps.append(Step("filter", _parse_filter(template, inner[2:-1].strip())))
            else:
                raise _error(template, f"unsupported subscript [{inner}]")
            i = j + 1
        else:
            raise _error(template, f"unexpected {expr[i:]!r} (paths start with '.', e.g. "
                                   "{.metadata.name})")
    return Path(root, tuple(steps))


def _parse_filter(template: str, text: str) -> Filter:
    if m := _COMPARE.match(text):
        return Filter(parse_path(template, m[1]), m[2], _literal(template, m[3]))
    if text.startswith("@") and not re.search(r"[=!<>&|]", text):
        return Filter(parse_path(template, text), None)
    raise _error(template, f"unsupported filter ?({text})")


def parse(template: str) -> list[Any]:
    """The template as a list of str (literal text), Path and Range."""
    stack: list[list[Any]] = [[]]
    ranges: list[Range] = []
    for action, text in _pieces(template):
        if not action:
            stack[-1].append(text)
        elif text == "end":
            if not ranges:
                raise _error(template, "{end} without {range}")
            ranges.pop()
            stack.pop()
        elif text.startswith("range ") or text == "range":
            r = Range(parse_path(template, text[5:]), [])
            stack[-1].append(r)
            ranges.append(r)
            stack.append(r.body)
        elif text[:1] in "'\"":
            value = _literal(template, text)
            stack[-1].append(str(value))
        elif text[:1] in ".$@" or text == "":
            stack[-1].append(parse_path(template, text))
        else:
            word = text.split()[0]
            raise _error(template, f"unsupported action {{{word}...}}")
    if ranges:
        raise _error(template, "{range} without {end}")
    return stack[0]


# --- evaluating ---------------------------------------------------------------------------

def _children(v: Any) -> list[Any]:
    if isinstance(v, dict):
        return list(v.values())
    return list(v) if isinstance(v, list) else []


def _descendants(v: Any) -> list[Any]:
    out = [v]
    for c in _children(v):
        out += _descendants(c)
    return out


def _compare(a: Any, op: str, b: Any) -> bool:
    if isinstance(b, int | float) and not isinstance(b, bool):
        try:
            a = float(a)
        except (TypeError, ValueError):
            return False
    elif type(a) is not type(b):
        return op == "!="
    try:
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
                ">=": a >= b}[op]
    except TypeError:
        return False


def _matches(f: Filter, root: Any, item: Any) -> bool:
    found = evaluate(f.path, root, item)
    if f.op is None:
        return any(v not in (None, False, "", [], {}) for v in found)
    return any(_compare(v, f.op, f.value) for v in found)


def evaluate(path: Path, root: Any, current: Any) -> list[Any]:
    values = [root if path.root else current]
    for s in path.steps:
        nxt: list[Any] = []
        for v in values:
            if s.kind == "field":
                if isinstance(v, dict) and s.arg in v:
                    nxt.append(v[s.arg])
            elif s.kind == "recurse":
                nxt += [d[s.arg] for d in _descendants(v)
                        if isinstance(d, dict) and s.arg in d]
            elif s.kind == "all":
                nxt += _children(v)
            elif s.kind == "index":
                if isinstance(v, list) and -len(v) <= s.arg < len(v):
                    nxt.append(v[s.arg])
            elif s.kind == "slice":
                if isinstance(v, list):
                    nxt += v[s.arg[0]:s.arg[1]]
            elif s.kind == "filter":
                nxt += [c for c in _children(v) if _matches(s.arg, root, c)]
        values = nxt
    return values


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"))
    return "" if v is None else str(v)


def _render(nodes: list[Any], root: Any, current: Any) -> str:
    out = []
    for n in nodes:
        if isinstance(n, str):
            out.append(n)
        elif isinstance(n, Path):
            out.append(" ".join(_text(v) for v in evaluate(n, root, current)))
        else:
            items = evaluate(n.path, root, current)
            if len(items) == 1 and isinstance(items[0], list) and (
                    not n.path.steps or n.path.steps[-1].kind in ("field", "index")):
                items = items[0]  # {range .items} walks the list, like {range .items[*]}
            for item in items:
                out.append(_render(n.body, root, item))
    return "".join(out)


def render(template: str, data: Any) -> str:
    """Apply a kubectl JSONPath template to `data` (what -o json would print)."""
    return _render(parse(template), data, data)
