"""Scheduling on node labels in a real lab: nodeSelector picks the node with the label, a
pod no node accepts is Pending (no namespace, no address), and applying a selector that
fits schedules it."""

from __future__ import annotations

import json
import subprocess
import sys

from netlab import names

CLUSTER = """\
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  nodes:
  - {name: node-1, labels: {zone: a}}
  - {name: node-2, labels: {zone: b}}
"""


def pod(name: str, zone: str) -> str:
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
            f"  nodeSelector: {{zone: {zone}}}\n  containers:\n  - name: main\n"
            "    image: busybox\n    command: ['sh', '-c', 'sleep 3600']\n")


def netlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netlab", *args], capture_output=True,
                          text=True, check=False)


def test_node_selector_places_and_pends(netlab_lab):
    lab = netlab_lab(yaml=CLUSTER + pod("in-b", "b") + pod("in-c", "c"))
    assert lab.pod("in-b").node == "node-2"
    pods = {p.name: p for p in lab.pods()}
    pending = pods["in-c"]
    assert pending.status == "Pending" and pending.ip == "" and pending.node == ""
    assert "didn't match Pod's node affinity/selector" in pending.pending_reason
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert names.pod_netns(lab.name, "default", "in-b") in netns
    assert names.pod_netns(lab.name, "default", "in-c") not in netns  # no pod namespace

    out = netlab("get", "pods", "--lab", lab.name)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.strip()}
    assert "in-c" in rows, out.stdout
    assert rows["in-c"][1:3] == ["0/1", "Pending"] and rows["in-c"][-2:] == ["<none>", "<none>"]
    doc = json.loads(netlab("get", "pod", "in-c", "-o", "json", "--lab", lab.name).stdout)
    assert doc["status"]["phase"] == "Pending"
    assert doc["status"]["conditions"][0]["status"] == "False"
    nodes = netlab("get", "nodes", "--show-labels", "--lab", lab.name).stdout
    assert "zone=b" in nodes and "kubernetes.io/hostname=node-1" in nodes

    lab.apply(manifests=[pod("in-c", "a")])
    assert lab.pod("in-c").node == "node-1" and lab.pod("in-c").ip
    assert not lab.plan.pending
    assert lab.exec("in-c", ["hostname"]).ok
