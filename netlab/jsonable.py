"""Dataclasses as JSON-ready data: what the state file and the agent's requests hold."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

_FIELDS: dict[type, tuple[str, ...]] = {}


def plain(v: Any) -> Any:
    """A dataclass as JSON-ready data, like dataclasses.asdict but without its deep copies
    (a state file of 1,000 Services is written on every change; `up` of 400 pods sends the
    agent 400 workloads)."""
    cls = type(v)
    if cls in (str, int, float, bool, type(None)):
        return v
    if is_dataclass(v):
        names = _FIELDS.get(cls)
        if names is None:
            names = _FIELDS[cls] = tuple(f.name for f in fields(v))
        return {n: plain(getattr(v, n)) for n in names}
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v
