"""The README's tutorial runs: every command in it, in order, exits as the README says
(scripts/tutorial.py is the same parser that writes its outputs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from netlab.kernel import all_labs
from netlab.lab import down

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("tutorial", ROOT / "scripts" / "tutorial.py")
tutorial = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tutorial)


def test_tutorial_commands_run_as_documented():
    if "quickstart" in all_labs():
        pytest.skip("a lab named quickstart is up on this machine; the tutorial makes its own")
    steps = tutorial.commands((ROOT / "README.md").read_text())
    assert len(steps) >= 20 and steps[0][0] == "sudo netlab up -f scenarios/quickstart.yaml"
    try:
        for cmd, status in steps:
            r = tutorial.run(cmd)
            assert r.returncode == status, f"{cmd}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    finally:
        down("quickstart")
        for lab in all_labs():
            if lab.startswith("test-"):  # `netlab test` labs are removed by the command;
                down(lab)                # this only guards against a crash in between
