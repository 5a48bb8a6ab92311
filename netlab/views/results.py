"""Plain results: a command's, a ping's, a lab's status line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

@dataclass(frozen=True)
class PingResult:
    src: str
    dst: str
    dst_ip: str
    transmitted: int
    received: int
    output: str
    returncode: int

    @property
    def ok(self) -> bool:
        return self.received > 0 and self.received == self.transmitted

@dataclass(frozen=True)
class LabStatus:
    name: str
    phase: str  # ready | creating | broken (namespaces without state)
    backend: str | None = None
    nodes: int = 0
    pods: int = 0
    namespaces: int = 0  # network namespaces on this machine
    warnings: tuple[str, ...] = field(default=())
    agent_pid: int | None = None  # the lab's agent, when it runs

    @property
    def agent(self) -> str:
        return f"running (pid {self.agent_pid})" if self.agent_pid else "not running"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "phase": self.phase, "backend": self.backend,
                "nodes": self.nodes, "pods": self.pods, "netns": self.namespaces,
                "agent": {"running": bool(self.agent_pid), "pid": self.agent_pid}}
