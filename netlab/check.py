"""`check`: what Kubernetes semantics say (the policy engine) against what the kernel did
(real probes), for every ordered pair of pods and every port the destination declares.

This is the only module that looks at both; the engine never sees a probe and the probes
never see a policy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from netlab.policy.engine import Decision


@dataclass(frozen=True)
class CheckProbe:
    src: str
    dst: str
    port: int
    protocol: str
    expected: str  # allowed | denied
    observed: str  # allowed | denied
    result: str  # the probe's: connected | refused | timeout
    answered_by: str | None = None
    detail: str = ""

    @property
    def match(self) -> bool:
        return self.expected == self.observed

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "match": self.match}


@dataclass
class CheckReport:
    probes: list[CheckProbe] = field(default_factory=list)
    seconds: float = 0.0
    decisions: dict[tuple[str, str, int, str], Decision] = field(default_factory=dict)

    @property
    def mismatches(self) -> list[CheckProbe]:
        return [p for p in self.probes if not p.match]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def tables(self) -> dict[tuple[int, str], dict[tuple[str, str], CheckProbe]]:
        """Per (port, protocol): (from, to) -> probe."""
        out: dict[tuple[int, str], dict[tuple[str, str], CheckProbe]] = {}
        for p in self.probes:
            out.setdefault((p.port, p.protocol), {})[(p.src, p.dst)] = p
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "probes": [p.to_json() for p in self.probes],
                "summary": {"probes": len(self.probes), "mismatches": len(self.mismatches),
                            "allowed": sum(p.observed == "allowed" for p in self.probes),
                            "denied": sum(p.observed == "denied" for p in self.probes),
                            "seconds": round(self.seconds, 3)}}


def observed(result: str) -> str:
    """A connection that got through is allowed; refused or silent is denied. (A reset from
    a pod that does not listen would count as denied: the responder listens on every port
    `check` probes, so a refusal here comes from the network.)"""
    return "allowed" if result == "connected" else "denied"
