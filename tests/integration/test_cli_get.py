"""`netlab get` on a real lab, as a person types it: kubectl's type names, a selector, one
object by name, jsonpath, namespaces, and kubectl's NotFound."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from manifests import cluster, pod

NAMESPACE = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team, labels: {env: dev}}\n"


def test_get_like_kubectl(netlab_lab):
    lab = netlab_lab(yaml=cluster() + NAMESPACE + pod("a", "node-1", labels="{app: web}")
                     + pod("b", "node-2", labels="{app: web, tier: front}")
                     + pod("c", "node-1", namespace="team", labels="{app: db}"))

    def get(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "netlab", "get", *args, "--lab", lab.name],
                              capture_output=True, text=True)

    r = get("po", "-l", "app=web,!tier", "-o", "name")
    assert r.returncode == 0 and r.stdout == "pod/a\n", r.stderr
    r = get("pods", "-A", "-l", "app in (web,db)", "-o", "name")
    assert r.stdout.split() == ["pod/a", "pod/b", "pod/c"]
    one = json.loads(get("pod/b", "-o", "json").stdout)
    assert one["kind"] == "Pod" and one["status"]["podIP"] == lab.pod("b").ip
    assert get("pod", "c", "-n", "team", "-o", "jsonpath={.spec.nodeName}").stdout == "node-1"
    internal = 'jsonpath={.items[*].status.addresses[?(@.type=="InternalIP")].address}'
    assert get("nodes", "-o", internal).stdout.split() == [n.internal_ip for n in lab.nodes()]
    namespaces = yaml.safe_load(get("ns", "-o", "yaml").stdout)["items"]
    assert {"default", "kube-system", "team"} <= {n["metadata"]["name"] for n in namespaces}
    assert get("ns", "-l", "env=dev", "-o", "name").stdout == "namespace/team\n"
    r = get("pods", "nope")
    assert r.returncode == 1 and 'Error from server (NotFound): pods "nope" not found' in r.stderr
    r = get("pizzas")
    assert r.returncode == 2 and "pods (pod, po)" in r.stderr
