"""Services without a selector, with real traffic: an EndpointSlice pointing outside the
cluster (the internet host), an Endpoints object pointing at a pod, readiness and port names
as kube-proxy reads them, and the EndpointSlices `netlab get` publishes."""

from __future__ import annotations

import json
import subprocess
import sys

from manifests import cluster, wait_until

CLIENT = ("---\napiVersion: v1\nkind: Pod\nmetadata: {name: client}\nspec:\n"
          "  nodeName: node-1\n  containers: [{name: c, image: busybox, "
          "command: [sleep, '3600']}]\n")
WEB = ("---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\nspec:\n"
       "  nodeName: node-2\n  containers:\n  - name: web\n    image: agnhost\n"
       "    ports: [{name: http, containerPort: 8080}]\n")
DB = """\
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  ports: [{name: http, port: 5432, targetPort: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
- addresses: [203.0.113.1]
- addresses: [198.51.100.99]
  conditions: {ready: false}
"""
EMPTY = ("---\napiVersion: v1\nkind: Service\nmetadata: {name: nothing}\nspec:\n"
         "  ports: [{port: 80}]\n")


def by_hand(ip: str) -> str:
    return f"""\
---
apiVersion: v1
kind: Service
metadata: {{name: by-hand}}
spec:
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: by-hand}}
subsets:
- addresses: [{{ip: {ip}}}]
  ports: [{{port: 8080}}]
"""


def test_selectorless_services(netlab_lab):
    lab = netlab_lab(yaml=cluster() + CLIENT + WEB + DB + EMPTY)
    # the slice's ready address only: the internet host answers (its responder, tcp 80)
    first = wait_until(lambda: (r := lab.probe("client", "svc/db")).connected and r, timeout=5)
    results = [first, *lab.probe_many([("client", "svc/db")] * 10)]
    assert all(r and r.connected for r in results), [r and r.detail for r in results]
    assert {r.answered_by for r in results} == {"internet"}
    # it left the cluster from node-1, source-NATed to the node's address (flannel's ip-masq)
    assert {r.client_ip for r in results} == {lab.plan.node("node-1").underlay_ip}
    svc = lab.service("db")
    assert svc.endpoints == ["203.0.113.1:80"] and svc.not_ready == ["198.51.100.99:80"]
    # no selector, no objects: rejected as before, and said why
    assert lab.probe("client", "svc/nothing").result == "refused"
    assert lab.service("nothing").why_no_endpoints() == \
        "Service default/nothing has no selector and no Endpoints/EndpointSlice objects"

    # an Endpoints object pointing at a pod's address: routed in the pod network
    web_ip = lab.pod("web").ip
    lab.apply(manifests=[by_hand(web_ip)])
    r = wait_until(lambda: (r := lab.probe("client", "svc/by-hand")).connected and r,
                   timeout=5)
    assert r and r.connected and r.answered_by == "default/web", r
    assert r.client_ip == lab.pod("client").ip  # pod to pod: no source NAT
    assert lab.service("by-hand").endpoints == [f"{web_ip}:8080"]

    def get(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "netlab", "get", *args, "--lab", lab.name],
                              capture_output=True, text=True)

    r = get("endpointslices", "-o", "json")
    assert r.returncode == 0, r.stderr
    slices = {s["metadata"]["labels"]["kubernetes.io/service-name"]: s
              for s in json.loads(r.stdout)["items"]}
    assert "nothing" not in slices
    db = slices["db"]
    assert db["apiVersion"] == "discovery.k8s.io/v1" and db["kind"] == "EndpointSlice"
    assert db["metadata"]["name"].startswith("db-") and db["addressType"] == "IPv4"
    assert db["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    assert {e["addresses"][0]: e["conditions"]["ready"] for e in db["endpoints"]} == \
        {"203.0.113.1": True, "198.51.100.99": False}
    hand = slices["by-hand"]
    assert hand["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslicemirroring-controller.k8s.io"
    assert hand["endpoints"] == [{"addresses": [web_ip], "conditions": {
        "ready": True, "serving": True, "terminating": False}, "nodeName": "node-2",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "web"}}]
    table = get("endpointslice").stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS"]
    assert any(line.split()[1:] == ["IPv4", "80", "198.51.100.99,203.0.113.1"]
               for line in table[1:]), table
