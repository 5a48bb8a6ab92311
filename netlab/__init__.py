"""netlab: Kubernetes networking on a real Linux kernel.

The public API: `Lab` (up/open/apply/delete/exec/ping/logs/down), `down`, `down_all`,
the result types and the typed errors. See docs/api.md.
"""

from netlab.converge import ChangeSummary
from netlab.errors import (
    InputError,
    KernelError,
    LabExistsError,
    LabNotFoundError,
    NetlabError,
    NotRootError,
    PodNotFoundError,
)
from netlab.lab import (
    ContainerStatus,
    ExecResult,
    Lab,
    LabStatus,
    NodeInfo,
    PingResult,
    PodInfo,
    down,
    down_all,
)

__all__ = [
    "ChangeSummary", "ContainerStatus", "ExecResult", "InputError", "KernelError", "Lab",
    "LabExistsError", "LabNotFoundError", "LabStatus", "NetlabError", "NodeInfo",
    "NotRootError", "PingResult", "PodInfo", "PodNotFoundError", "down", "down_all",
]
__version__ = "0.1.0"
