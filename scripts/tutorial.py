#!/usr/bin/env python3
"""The README's tutorial, kept true: its ```console blocks hold commands (`$ ...`) and their
real output. `sudo .venv/bin/python scripts/tutorial.py` runs every command in order and
writes the outputs back; tests/integration/test_readme.py runs them and checks each exits
as the README says (a command followed by `# exits 1` is meant to fail)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- tutorial:start -->", "<!-- tutorial:end -->"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_LINES = 24


def commands(text: str) -> list[tuple[str, int]]:
    """(command, expected exit status) in tutorial order."""
    body = text.split(START, 1)[1].split(END, 1)[0]
    out = []
    for block in re.findall(r"```console\n(.*?)```", body, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                cmd, _, comment = line[2:].partition("  # ")
                status = 1 if "exits 1" in comment else 0
                out.append((cmd.strip(), status))
    return out


def shell(cmd: str) -> str:
    """The command as run here: `sudo netlab` is this checkout's netlab."""
    netlab = f"{sys.executable} -m netlab"
    return re.sub(r"^sudo netlab\b", netlab, cmd)


def run(cmd: str) -> subprocess.CompletedProcess:
    env = {"COLUMNS": "110", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(shell(cmd), shell=True, capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=env)


def render() -> None:
    text = README.read_text()
    head, rest = text.split(START, 1)
    body, tail = rest.split(END, 1)

    def refresh(match: re.Match) -> str:
        lines = []
        for line in match.group(1).splitlines():
            if not line.startswith("$ "):
                continue
            cmd = line[2:].partition("  # ")[0].strip()
            r = run(cmd)
            output = ANSI.sub("", r.stdout + r.stderr).rstrip().splitlines()
            output = [o.rstrip() for o in output]
            if len(output) > MAX_LINES:
                output = [*output[:MAX_LINES], f"... ({len(output) - MAX_LINES} more lines)"]
            lines += [line, *output]
        return "```console\n" + "\n".join(lines) + "\n```"

    body = re.sub(r"```console\n(.*?)```", refresh, body, flags=re.S)
    README.write_text(head + START + body + END + tail)


if __name__ == "__main__":
    render()
