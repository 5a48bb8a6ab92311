"""backend bgp with real packets: BIRD in every node, sessions Established, the routes
between nodes learned from BGP (proto bird) and not written by netlab, traffic across nodes
on the plain routed path, a withdrawn session taking its node's block away from the others
and its return bringing it back, the route reflector variant (dual-stack), the external
router peering over eBGP and reaching pods directly, and no BIRD on the host at any time."""

from __future__ import annotations

import os
import subprocess

import pytest
from manifests import wait_until

pytestmark = pytest.mark.netlab

PODS = """
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {nodeName: node-3, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 80}]}]}
"""


def cluster(extra: str = "") -> str:
    return ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 3\n"
            f"  backend: bgp\n{extra}" + PODS)


def host_birds() -> list[int]:
    """BIRD processes in the host's own network namespace (there must be none)."""
    mine = os.readlink("/proc/self/ns/net")
    out = []
    r = subprocess.run(["pgrep", "-x", "bird"], capture_output=True, text=True, check=False)
    for pid in map(int, r.stdout.split()):
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == mine:
                out.append(pid)
        except OSError:
            pass
    return out


def learned(lab, node: str, family: str = "-4") -> set[str]:
    r = lab.exec(f"node/{node}", ["ip", family, "route", "show", "proto", "bird"])
    return {line.split()[0] for line in r.stdout.splitlines() if "via" in line}


def established(lab) -> dict[str, list[str]]:
    return {n: sorted(s.peer for s in sessions if s.established)
            for n, sessions in lab.bgp_sessions().items()}


def test_full_mesh_learns_routes_carries_traffic_and_withdraws(netlab_lab):
    assert not host_birds()
    lab = netlab_lab(yaml=cluster())
    assert not host_birds()  # BIRD runs in the nodes only
    blocks = {n.name: n.pod_cidr for n in lab.nodes()}
    # `up` returned with every session up and every route present, learned from BGP
    assert established(lab) == {"node-1": ["node_2_v4", "node_3_v4"],
                                "node-2": ["node_1_v4", "node_3_v4"],
                                "node-3": ["node_1_v4", "node_2_v4"]}
    for node in blocks:
        assert learned(lab, node) == {b for n, b in blocks.items() if n != node}, node
    # birdc inside a node talks to that node's BIRD, as on a Calico node
    r = lab.exec("node/node-1", ["birdc", "show", "protocols"])
    assert r.returncode == 0 and "node_3_v4" in r.stdout and "Established" in r.stdout
    r = lab.exec("node/node-1", ["birdc", "show", "route", "protocol", "node_3_v4"])
    assert blocks["node-3"] in r.stdout
    # the blackhole for the node's own block, as Calico installs it (cni0's route wins)
    r = lab.exec("node/node-1", ["ip", "route", "show", "type", "blackhole"])
    assert blocks["node-1"] in r.stdout
    assert lab.probe("a", "b", 80).connected
    t = lab.trace("a", "b", 80)
    assert t.delivered and not any(h.encapsulated for h in t.hops), t.hops
    wide = {n.name: n.bgp_state for n in lab.nodes()}
    assert wide == {"node-1": "Established 2/2", "node-2": "Established 2/2",
                    "node-3": "Established 2/2"}
    # node-3 stops its sessions: the others withdraw its block, and traffic to b fails
    r = lab.exec("node/node-3", ["birdc", "disable \"node_*\""])  # a pattern: quoted
    assert r.returncode == 0, r.stdout + r.stderr
    assert wait_until(lambda: blocks["node-3"] not in learned(lab, "node-1"), timeout=10)
    assert not lab.probe("a", "b", 80, timeout=1.0).connected
    assert lab.probe("a", "c", 80).connected  # node-2's block is still known
    # and back
    lab.exec("node/node-3", ["birdc", "enable \"node_*\""])
    assert wait_until(lambda: blocks["node-3"] in learned(lab, "node-1"), timeout=15)
    assert lab.probe("a", "b", 80).connected
    # the agent keeps BIRD running: killed, it is restarted and the routes come back
    lab.exec("node/node-2", ["birdc", "down"])
    assert wait_until(lambda: established(lab).get("node-2") == ["node_1_v4", "node_3_v4"],
                      timeout=30)
    assert wait_until(lambda: blocks["node-2"] in learned(lab, "node-1"), timeout=10)
    assert not host_birds()


def test_route_reflector_dual_stack(netlab_lab):
    lab = netlab_lab(yaml=cluster(
        "  podCIDR: 10.244.0.0/16,fd00:10:244::/56\n"
        "  serviceCIDR: 10.96.0.0/16,fd00:10:96::/112\n"
        "  bgp: {routeReflector: node-1}\n"))
    # clients peer with the reflector only; it reflects their blocks to each other
    assert established(lab) == {"node-1": ["node_2_v4", "node_2_v6", "node_3_v4",
                                           "node_3_v6"],
                                "node-2": ["node_1_v4", "node_1_v6"],
                                "node-3": ["node_1_v4", "node_1_v6"]}
    nodes = {n.name: n for n in lab.nodes()}
    assert nodes["node-3"].pod_cidr in learned(lab, "node-2")
    assert nodes["node-3"].pod_cidr6 in learned(lab, "node-2", "-6")
    # reflected routes keep the originating node as next hop: node-2 -> node-3 directly
    r = lab.exec("node/node-2", ["ip", "route", "get", lab.address_of("b")])
    assert nodes["node-3"].internal_ip in r.stdout
    assert lab.probe("c", "b", 80).connected
    assert lab.probe("c", "b", 80, family="IPv6").connected


def test_external_router_peers_over_ebgp_and_reaches_pods(netlab_lab):
    lab = netlab_lab(yaml=cluster("  bgp: {external: true}\n") + """---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 80}]}]}
""")
    sessions = established(lab)
    assert sessions["external"] == ["node_1_v4", "node_2_v4", "node_3_v4"]
    assert all("external_v4" in sessions[n] for n in ("node-1", "node-2", "node-3"))
    r = lab.exec("external", ["ip", "route", "show", "proto", "bird"])
    for n in lab.nodes():
        assert n.pod_cidr in r.stdout
    svc = next(s for s in lab.services("default") if s.name == "web")
    assert f"{svc.lb_ips[0]} via" in r.stdout  # announced by the node that holds it
    # an outside client reaches a pod by its own address: routed, no NAT
    p = lab.probe("external", lab.address_of("b"), 80)
    assert p.connected and p.client_ip == lab.plan.external_ip


def test_ipv6_only(netlab_lab):
    """An IPv6-only cluster: the sessions run over the IPv6 underlay (router ids made up,
    BIRD's being 32 bits) and carry the IPv6 blocks."""
    lab = netlab_lab(yaml=cluster("  podCIDR: fd00:10:244::/56\n"
                                  "  serviceCIDR: fd00:10:96::/112\n"))
    assert established(lab) == {"node-1": ["node_2_v6", "node_3_v6"],
                                "node-2": ["node_1_v6", "node_3_v6"],
                                "node-3": ["node_1_v6", "node_2_v6"]}
    nodes = {n.name: n for n in lab.nodes()}
    assert learned(lab, "node-1", "-6") == {nodes["node-2"].pod_cidr6,
                                            nodes["node-3"].pod_cidr6}
    assert lab.probe("a", "b", 80).connected
