"""Every listing and report goes out through here, so `-o` means the same thing for every
command: table (the default), wide, json, yaml, name and jsonpath=TEMPLATE, as in kubectl."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from netlab.cli import jsonpath
from netlab.errors import InputError

# kubectl never truncates columns; neither do we when piped (rich would assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 250)
err = Console(stderr=True)

ALL = ("table", "wide", "json", "yaml", "name", "jsonpath")
DOCUMENT = ("table", "json", "yaml", "jsonpath")  # reports: no rows to name or widen


@dataclass(frozen=True)
class OutputFormat:
    kind: str  # one of ALL
    template: str = ""  # for jsonpath

    @property
    def machine(self) -> bool:
        """Output meant for programs: no progress bars, no notes on the side."""
        return self.kind not in ("table", "wide")


def _choices(allowed: Sequence[str]) -> str:
    names = [f"{a}=TEMPLATE" if a == "jsonpath" else a for a in allowed]
    return ", ".join(names[:-1]) + " or " + names[-1]


def output_help(allowed: Sequence[str]) -> str:
    return f"Output format: {_choices(allowed)}."


def parse_output(value: str | None, allowed: Sequence[str] = ALL) -> OutputFormat:
    """`-o VALUE` checked against what the command can print (exit 2 otherwise)."""
    value = (value or "table").strip().removeprefix("=")  # kubectl's -o=json, too
    kind, eq, template = value.partition("=")
    kind = kind.lower()
    if kind == "jsonpath" and "jsonpath" in allowed:
        if not eq or not template.strip():
            raise InputError("-o jsonpath needs a template: -o jsonpath='{.items[*].metadata"
                             ".name}'")
        jsonpath.parse(template)  # bad templates fail before the lab is touched
        return OutputFormat("jsonpath", template)
    if kind in allowed and not eq:
        return OutputFormat(kind)
    raise InputError(f"-o {value}: this command prints {_choices(allowed)}")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def print_document(fmt: OutputFormat, data: Any) -> bool:
    """Print `data` as json, yaml or through a jsonpath template; False for table/wide (the
    caller prints its own human form)."""
    if fmt.kind == "json":
        print_json(data)
    elif fmt.kind == "yaml":
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    elif fmt.kind == "jsonpath":
        sys.stdout.write(jsonpath.render(fmt.template, data))  # no newline, as kubectl
    else:
        return False
    sys.stdout.flush()
    return True


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Any], str]
    wide: bool = False  # shown only with -o wide


@dataclass
class Listing:
    """Objects of one type, and how each output format shows them."""

    resource: str  # what -o name prints before the slash: pod, service, node...
    items: list[Any]
    columns: list[Column]
    name: Callable[[Any], str]
    document: Callable[[Any], dict[str, Any]]  # the object for json/yaml/jsonpath
    notes: Callable[[list[Any]], Iterable[tuple[str, str]]] | None = None  # (tag, text)
    empty: str = "No resources found"
    api_version: str = "v1"  # of the List wrapping several objects
    extra: dict[str, Any] = field(default_factory=dict)  # added to the List (e.g. lab name)


def table(listing: Listing, wide: bool, *, prefix: str = "", headers: bool = True) -> Table:
    cols = [c for c in listing.columns if wide or not c.wide]
    t = Table(box=None, header_style="bold", show_header=headers)
    for c in cols:
        t.add_column(c.header)
    for item in listing.items:
        cells = [c.cell(item) for c in cols]
        if prefix:  # several types at once: NAME reads pod/web-1, as kubectl shows it
            i = next((k for k, c in enumerate(cols) if c.header == "NAME"), None)
            if i is not None:
                cells[i] = f"{prefix}/{cells[i]}"
        t.add_row(*map(escape, cells))  # values are data, never markup
    return t


def as_list(listings: Sequence[Listing]) -> dict[str, Any]:
    api = listings[0].api_version if listings else "v1"
    extra = {k: v for li in listings for k, v in li.extra.items()}
    return {"apiVersion": api, "kind": "List", **extra,
            "items": [li.document(i) for li in listings for i in li.items]}


def show(fmt: OutputFormat, listings: Sequence[Listing], *, single: bool = False,
         headers: bool = True) -> None:
    """Print listings. `single`: one object was asked for by name, so json/yaml/jsonpath show
    that object rather than a List (as kubectl does)."""
    if fmt.kind == "name":
        for li in listings:
            for i in li.items:
                sys.stdout.write(f"{li.resource}/{li.name(i)}\n")
        return
    if fmt.machine:
        items = [(li, i) for li in listings for i in li.items]
        if single and len(items) == 1:
            print_document(fmt, items[0][0].document(items[0][1]))
        else:
            print_document(fmt, as_list(listings))
        return
    shown = [li for li in listings if li.items]
    if not shown:
        if listings:
            err.print(escape(listings[0].empty), highlight=False)
        return
    for k, li in enumerate(shown):
        if k:
            out.print()
        out.print(table(li, fmt.kind == "wide", prefix=li.resource if len(listings) > 1
                        else "", headers=headers))
    for li in shown:
        for tag, text in (li.notes(li.items) if li.notes else ()):
            err.print(f"[yellow]{tag}:[/yellow] {escape(text)}", highlight=False,
                      soft_wrap=True)
