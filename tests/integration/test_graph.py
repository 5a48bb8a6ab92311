"""`netlab graph` draws a 3-node lab: every pod and Service name is in the SVG."""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_graph_of_a_running_lab(netlab_lab, tmp_path: Path):
    lab = netlab_lab(ROOT / "scenarios" / "services.yaml")  # 3 nodes
    assert len(lab.nodes()) == 3
    out = tmp_path / "lab.svg"
    r = subprocess.run([sys.executable, "-m", "netlab", "graph", "--lab", lab.name, "-o", "svg",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    svg = html.unescape(out.read_text())  # Graphviz writes "-" as &#45;
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for p in lab.pods():
        assert p.name in svg and p.ip in svg
    for s in lab.services():
        assert s.name in svg
    for n in lab.nodes():
        assert n.name in svg and n.pod_cidr in svg


def test_graph_from_files_needs_no_lab(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "netlab", "graph", "-f",
                        str(ROOT / "scenarios" / "two-tier"), "-o", "dot"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "digraph netlab" in r.stdout and "allowed 3306/TCP" in r.stdout
