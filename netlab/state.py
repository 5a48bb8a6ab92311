"""Lab state on disk: /run/netlab/<lab>/state.json, root-only, replaced atomically.

It records what the user applied (the documents as written), the plan, and the pids of
the processes the lab started, so any later `netlab` process can operate on the lab.
Teardown never depends on it alone: namespaces carry the lab's name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from netlab import names
from netlab.errors import LabNotFoundError
from netlab.jobs import PodOutcome
from netlab.kernel.port import Started
from netlab.loader import RawDoc
from netlab.plan import Plan

VERSION = 1


@dataclass
class ProcessRecord:
    container: str
    pid: int
    starttime: int

    @property
    def started(self) -> Started:
        return Started(self.pid, self.starttime)


@dataclass
class LabState:
    lab: str
    phase: str = "creating"  # creating | ready
    created: float = field(default_factory=time.time)
    docs: list[RawDoc] = field(default_factory=list)
    plan: Plan | None = None
    processes: dict[str, list[ProcessRecord]] = field(default_factory=dict)
    label_overrides: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # what the lab's agent last saw: pod key -> (ready, why not); drives Service endpoints
    readiness: dict[str, tuple[bool, str]] = field(default_factory=dict)
    # what the agent saw of pods that run to completion (restartPolicy not Always); drives Jobs
    pod_outcomes: dict[str, PodOutcome] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "version": VERSION, "lab": self.lab, "phase": self.phase, "created": self.created,
            "docs": [d.to_json() for d in self.docs],
            "plan": self.plan.to_json() if self.plan else None,
            "processes": {k: [vars(r) for r in v] for k, v in self.processes.items()},
            "label_overrides": self.label_overrides,
            "readiness": {k: list(v) for k, v in self.readiness.items()},
            "pod_outcomes": {k: v.to_json() for k, v in self.pod_outcomes.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> LabState:
        return cls(
            lab=data["lab"], phase=data["phase"], created=data["created"],
            docs=[RawDoc.from_json(d) for d in data["docs"]],
            plan=Plan.from_json(data["plan"]) if data.get("plan") else None,
            processes={k: [ProcessRecord(**r) for r in v]
                       for k, v in data.get("processes", {}).items()},
            label_overrides=data.get("label_overrides", {}),
            readiness={k: (bool(v[0]), str(v[1])) for k, v in data.get("readiness", {}).items()},
            pod_outcomes={k: PodOutcome.from_json(v)
                          for k, v in data.get("pod_outcomes", {}).items()})

    def recorded(self) -> list[Started]:
        return [r.started for rs in self.processes.values() for r in rs]


def state_file(lab: str) -> Path:
    return names.lab_dir(lab) / "state.json"


def processes_file(lab: str) -> Path:
    """The recorded processes alone, beside the state: `down` reads them without parsing
    the whole state (7 ms for a 400-pod lab, half of what `down` may take)."""
    return names.lab_dir(lab) / "processes.json"


def save(state: LabState) -> None:
    path = state_file(state.lab)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(names.STATE_ROOT, 0o700)
    data = state.to_json()
    _replace(processes_file(state.lab), {"processes": data["processes"]})
    _replace(path, data)


def _replace(path: Path, data: dict) -> None:
    """Write `data` as JSON to `path` atomically (a temporary file renamed over it)."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    text = json.dumps(data, separators=(",", ":"))  # C encoder; json.dump is not
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(lab: str) -> LabState:
    try:
        data = json.loads(state_file(lab).read_text())
    except FileNotFoundError as e:
        raise LabNotFoundError(f"lab {lab!r} has no state (is it up? `netlab status` lists "
                               "labs)") from e
    except json.JSONDecodeError as e:
        raise LabNotFoundError(f"lab {lab!r} has a damaged state file {state_file(lab)}: "
                               f"{e}; `netlab down {lab}` removes the lab") from e
    return LabState.from_json(data)


def recorded(lab: str) -> list[Started]:
    """The lab's recorded processes, read without building its plan (`down` of a large lab
    needs only these); [] if the state is missing or damaged."""
    for path in (processes_file(lab), state_file(lab)):  # a state saved before the first
        try:
            data = json.loads(path.read_text())
            return [ProcessRecord(**r).started for rs in data.get("processes", {}).values()
                    for r in rs]
        except FileNotFoundError:
            continue
        except (OSError, ValueError, TypeError, AttributeError):
            return []
    return []


def exists(lab: str) -> bool:
    return state_file(lab).exists()


@contextlib.contextmanager
def locked(lab: str) -> Iterator[None]:
    """One writer per lab at a time (a second `netlab apply` waits for the first)."""
    d = names.lab_dir(lab)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(d / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
