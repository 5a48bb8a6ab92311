"""The `netlab` command (also installed as `kube-netlab`): a thin face over netlab.Lab.
Parse, call the API, print through `printers` so that `-o` means the same everywhere.

One module per group of verbs; importing them registers their commands on `app`."""

from __future__ import annotations

import sys

from netlab.cli.common import app, err

# Imported for their commands; the order is the order of the help's panels.
# isort: off
from netlab.cli import lifecycle, get, pods, traffic, policy, graph  # noqa: F401
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        # `up` has already removed what it made (rollback runs on any exception)
        err.print("interrupted")
        sys.exit(130)
