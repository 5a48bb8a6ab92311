"""The CLI without root: help everywhere, bad input is exit 2 with one clear line, and
--dry-run shows the kernel objects a lab would be made of."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from netlab.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.parametrize("command", ["", "up", "apply", "delete", "down", "status", "get",
                                     "exec", "ping", "logs"])
def test_help(command: str):
    r = runner.invoke(app, [*command.split(), "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output


def test_bad_input_is_exit_2_before_anything_happens(write):
    bad = write("bad.yaml", """
        apiVersion: v1
        kind: Pod
        metadata: {name: a}
        spec:
          containers: [{name: c, ports: [{containerPort: 99999}]}]
        """)
    r = runner.invoke(app, ["up", "-f", str(bad)])
    assert r.exit_code == 2
    assert f"{bad}:1: Pod default/a: spec.containers[0].ports[0].containerPort: 99999 is out " \
           "of range 1-65535" in " ".join(r.output.split())


def test_missing_file_is_exit_2(tmp_path: Path):
    r = runner.invoke(app, ["up", "-f", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "no such file" in r.output


def test_dry_run_renders_intents():
    r = runner.invoke(app, ["up", "--dry-run", "-f", str(ROOT / "scenarios" / "quickstart.yaml")])
    assert r.exit_code == 0, r.output
    assert "[node.node-1] link add flannel.1 index 102 type vxlan id 1" in r.output
    assert "[pod.default.pod-a] addr add 10.244.0.2/24 dev eth0" in r.output


def test_plan_errors_are_exit_2_before_root(write):
    bad = write("pinned.yaml", """
        apiVersion: v1
        kind: Pod
        metadata: {name: a}
        spec:
          nodeName: node-9
          containers: [{name: c}]
        """)
    r = runner.invoke(app, ["up", "-f", str(bad)])
    assert r.exit_code == 2
    assert "Pod default/a: spec.nodeName: node 'node-9' does not exist (nodes: node-1, " \
           "node-2)" in " ".join(r.output.split())
