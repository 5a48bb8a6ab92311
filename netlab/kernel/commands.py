"""Programs netlab runs and waits for (Graphviz, openssl, commands in pods): the one place
outside process supervision that starts a subprocess."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


def run(argv: Sequence[str], *, input: bytes | None = None, timeout: float | None = 60,
        env: dict[str, str] | None = None) -> Ran:
    """Run a program to its end, its output captured; a timeout kills it (exit 124)."""
    try:
        r = subprocess.run(list(argv), input=input, capture_output=True, timeout=timeout,
                           env=env, check=False)
    except subprocess.TimeoutExpired as e:
        return Ran(124, e.stdout or b"", e.stderr or b"", timed_out=True)
    except FileNotFoundError as e:
        return Ran(127, b"", f"{argv[0]}: not found ({e})".encode())
    return Ran(r.returncode, r.stdout, r.stderr)
