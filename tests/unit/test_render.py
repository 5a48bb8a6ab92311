"""Rendering the quickstart into kernel intents, pinned by golden files.

Regenerate after an intended change with: NETLAB_UPDATE_GOLDEN=1 pytest tests/unit
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from netlab.compile import compile_lab
from netlab.features.workloads import RESPONDER_SCRIPT
from netlab.loader import read_files

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"


def rendered(backend: str) -> str:
    """The whole dry run of the quickstart (what `up` builds: add-ons, files, processes,
    rules), with this machine's interpreter and checkout replaced by placeholders."""
    docs = read_files([ROOT / "scenarios" / "quickstart.yaml"])
    for d in docs:
        if d.kind == "Cluster":
            d.doc["spec"]["backend"] = backend
    text = compile_lab("quickstart", docs).text()
    return text.replace(sys.executable, "PYTHON").replace(str(RESPONDER_SCRIPT),
                                                          "RESPONDER")


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_golden(backend: str):
    text = rendered(backend)
    path = GOLDEN / f"quickstart-{backend}.txt"
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_vxlan_is_flannel_shaped():
    text = rendered("vxlan")
    # exactly one route, one neighbour and one fdb entry per remote node, on each node
    for node in ("node-1", "node-2"):
        lines = [line for line in text.splitlines() if line.startswith(f"[node.{node}]")]
        assert sum(" route add 10.244." in line and "flannel.1 onlink" in line
                   for line in lines) == 1
        assert sum(" neigh add " in line for line in lines) == 1
        assert sum(" fdb append " in line for line in lines) == 1
    assert "type vxlan id 1 local 172.18.0.2 dstport 8472 dev-index 100 nolearning" in text
    assert "mtu 1450" in text


def test_host_gw_routes_via_underlay():
    text = rendered("host-gw")
    assert "[node.node-1] route add 10.244.1.0/24 via 172.18.0.3 dev eth0" in text
    assert "flannel.1" not in text


def test_render_is_pure_and_deterministic():
    assert rendered("vxlan") == rendered("vxlan")
