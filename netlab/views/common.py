"""Shared by the views: kubectl's AGE and API timestamps."""

from __future__ import annotations


def timestamp(t: float | None) -> str | None:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None

def age(seconds: float) -> str:
    """kubectl's AGE: 45s, 3m12s, 2h5m, 4d3h."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m" if s < 36000 else f"{s // 3600}h"
    return f"{s // 86400}d{(s % 86400) // 3600}h"
