"""hostNetwork pods and hostPorts with real packets: a hostNetwork pod answers on its node's
address and sees the node's interfaces and hostname; a hostPort answers on the node's
addresses from outside the cluster, from another pod and from the node itself, in both
families of a dual-stack lab, and goes away with its pod; deleting a hostNetwork pod leaves
its node alone."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.netlab

AGENT = """apiVersion: v1
kind: Pod
metadata: {name: agent, labels: {app: agent}}
spec:
  nodeName: node-2
  hostNetwork: true
  containers: [{name: c, image: x, ports: [{containerPort: 9100}]}]
"""
WEB = """apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  nodeName: node-2
  containers: [{name: c, image: x, ports: [{containerPort: 80, hostPort: 8080}]}]
"""
LAB = f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {{nodes: 2, podCIDR: "10.244.0.0/16,fd00:10:244::/56"}}
---
{AGENT}---
{WEB}---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec: {{nodeName: node-1, containers: [{{name: c, image: x, command: [sleep, infinity]}}]}}
"""


def test_host_network_pods_and_host_ports(netlab_lab):
    lab = netlab_lab(yaml=LAB)
    n2 = lab.plan.nodes[1]
    agent, web = lab.plan.pods["default/agent"], lab.plan.pods["default/web"]
    assert agent.ip == n2.underlay_ip
    # the hostNetwork pod: the node's interfaces and hostname, answering on the node's address
    assert "flannel.1" in lab.exec("agent", ["ip", "-o", "link", "show"]).stdout
    assert lab.exec("agent", ["hostname"]).stdout.strip() == "node-2"
    r = lab.probe("client", "agent", 9100)
    assert (r.address, r.answered_by) == (n2.underlay_ip, "default/agent"), r
    assert lab.probe("external", "node/node-2", 9100).answered_by == "default/agent"
    # the hostPort: node-2's addresses, port 8080 -> web:80, from outside, a pod, the node
    for src, family in (("external", None), ("client", None), ("node/node-2", None),
                        ("external", "IPv6")):
        r = lab.probe(src, "node/node-2", 8080, family=family)
        assert (r.connected, r.answered_by) == (True, "default/web"), (src, family, r)
    seen = lab.probe("external", "node/node-2", 8080)
    assert seen.client_ip == lab.plan.external_ip  # DNAT only: the client's address kept
    assert not lab.probe("external", "node/node-1", 8080, timeout=1.0).connected
    # the pod reaching its own hostPort through its node (hairpin): masqueraded, answered
    hairpin = lab.probe("web", "node/node-2", 8080)
    assert hairpin.answered_by == "default/web", hairpin
    # deleting the hostNetwork pod leaves node-2 alone; deleting web takes its hostPort
    lab.delete(manifests=[AGENT, WEB])
    assert "default/web" not in lab.plan.pods and "default/agent" not in lab.plan.pods
    assert lab.ping("client", "node/node-2", count=1).ok  # the node still has its network
    assert "flannel.1" in lab.exec("node/node-2", ["ip", "-o", "link", "show"]).stdout
    assert not lab.probe("external", "node/node-2", 8080, timeout=1.0).connected
    tables = lab.exec("node/node-2", ["nft", "list", "tables"]).stdout
    assert "netlab-hostport" not in tables, tables
    assert web.netns not in lab.exec("node/node-2", ["ip", "netns"]).stdout
