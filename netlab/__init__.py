"""netlab: Kubernetes networking on a real Linux kernel.

The public API: `Lab` (up/open/apply/delete/exec/ping/probe/trace/check/logs/down), `down`,
`down_all`, the result types and the typed errors. See docs/api.md.

Names are loaded when first used, so importing a pure module (netlab.compile,
netlab.policy.engine, ...) does not load the kernel side.
"""

from __future__ import annotations

from typing import Any

from netlab.errors import (
    InputError,
    KernelError,
    LabExistsError,
    LabNotFoundError,
    NetlabError,
    NotRootError,
    PodNotFoundError,
)

_FROM_LAB = ("ContainerStatus", "ExecResult", "Lab", "LabStatus", "NodeInfo", "PingResult",
             "PodInfo", "down", "down_all")


def __getattr__(name: str) -> Any:
    if name in _FROM_LAB:
        from netlab import lab

        return getattr(lab, name)
    if name == "ChangeSummary":
        from netlab.converge import ChangeSummary

        return ChangeSummary
    raise AttributeError(f"module 'netlab' has no attribute {name!r}")


__all__ = [
    "ChangeSummary", "ContainerStatus", "ExecResult", "InputError", "KernelError", "Lab",
    "LabExistsError", "LabNotFoundError", "LabStatus", "NetlabError", "NodeInfo",
    "NotRootError", "PingResult", "PodInfo", "PodNotFoundError", "down", "down_all",
]
__version__ = "0.1.0"
