"""What a CNI developer checks about a flannel-style overlay, with a real lab per test."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.vxlan import VXLAN
from scapy.packet import bind_layers

bind_layers(UDP, VXLAN, dport=8472)  # flannel's VXLAN port

TWO_NODES = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  nodes: [node-1, node-2]
  backend: {backend}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: node-1
  containers: [{{name: c, image: busybox, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: server}}
spec:
  nodeName: node-2
  containers: [{{name: c, image: busybox, command: [sleep, "3600"]}}]
"""


@pytest.mark.netlab
def test_cross_node_traffic_is_vxlan_encapsulated(netlab_lab):
    lab = netlab_lab(yaml=TWO_NODES.format(backend="vxlan"))
    client, server = lab.pod("client"), lab.pod("server")

    with lab.capture("underlay", bpf="udp port 8472") as cap:
        assert lab.ping("client", "server", count=1).ok

    inner = [p[VXLAN].payload for _, p in cap.packets if p.haslayer(VXLAN)]
    assert any(p[IP].src == client.ip and p[IP].dst == server.ip and p.haslayer(ICMP)
               for p in inner), "the echo request was not seen inside VXLAN"
    nodes = {n.name: n.internal_ip for n in lab.nodes()}
    outer = next(p for _, p in cap.packets if p.haslayer(VXLAN))
    assert {outer[IP].src, outer[IP].dst} == {nodes["node-1"], nodes["node-2"]}
    assert outer[VXLAN].vni == 1


@pytest.mark.netlab
def test_host_gw_routes_pod_addresses_unencapsulated(netlab_lab):
    lab = netlab_lab(yaml=TWO_NODES.format(backend="host-gw"))
    client, server = lab.pod("client"), lab.pod("server")

    with lab.capture("underlay", bpf="icmp or udp port 8472") as cap:
        assert lab.ping("client", "server", count=1).ok

    assert not any(p.haslayer(VXLAN) for _, p in cap.packets)
    assert any(p.haslayer(ICMP) and p[IP].src == client.ip and p[IP].dst == server.ip
               for _, p in cap.packets)


@pytest.mark.netlab
def test_pod_mtu_leaves_room_for_vxlan(netlab_lab):
    lab = netlab_lab(yaml=TWO_NODES.format(backend="vxlan"))
    server = lab.pod("server").ip
    # 1450 (pod MTU) - 20 (IP) - 8 (ICMP) = 1422 bytes of payload fit unfragmented...
    fits = lab.exec("client", ["ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1422", server])
    assert fits.ok, fits.stdout + fits.stderr
    # ...one more byte does not, and the pod learns it locally (no black hole)
    too_big = lab.exec("client", ["ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1423",
                                  server])
    assert not too_big.ok
    assert "mtu=1450" in too_big.stdout + too_big.stderr
