"""The pod network with real packets: same node, across nodes, both backends, and what
crosses the underlay (VXLAN in UDP 8472, or plain IP for host-gw)."""

from __future__ import annotations

import pytest
from manifests import cluster, pod, wait_until
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.vxlan import VXLAN
from scapy.packet import bind_layers

from netlab import names

bind_layers(UDP, VXLAN, dport=8472)  # flannel's port; scapy only knows IANA's 4789


def three_pods(backend: str) -> str:
    return (cluster(backend) + pod("a1", "node-1", "echo Hello from a1; sleep 3600")
            + pod("a2", "node-1") + pod("b1", "node-2"))


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_pods_reach_each_other(netlab_lab, backend):
    lab = netlab_lab(yaml=three_pods(backend))
    a1, a2, b1 = lab.pod("a1"), lab.pod("a2"), lab.pod("b1")
    assert (a1.node, a2.node, b1.node) == ("node-1", "node-1", "node-2")
    same = lab.ping("a1", "a2", count=2)
    assert same.ok, same.output
    across = lab.ping("a1", "b1", count=2)
    assert across.ok, across.output
    back = lab.ping("b1", a1.ip, count=2)
    assert back.ok, back.output
    # the TTL tells the path: same node is bridged (64), across nodes is routed twice (62)
    assert "ttl=64" in same.output and "ttl=62" in across.output


def test_pod_identity_and_workload(netlab_lab):
    lab = netlab_lab(yaml=three_pods("vxlan"))
    r = lab.exec("a1", ["sh", "-c", "hostname; ip -o -4 addr show dev eth0; ip route"])
    assert r.ok, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "a1"
    a1 = lab.pod("a1")
    assert f"inet {a1.ip}/24" in lines[1]
    assert "default via 10.244.0.1 dev eth0" in r.stdout
    assert "mtu 1450" in lab.exec("a1", ["ip", "link", "show", "eth0"]).stdout
    # a pod without a command (no sandbox) is named too: a UTS namespace per command;
    # only nodes and outside hosts have a bound UTS namespace file
    assert lab.exec("a2", ["hostname"]).stdout == "a2\n"
    assert lab.exec("node/node-1", ["hostname"]).stdout == "node-1\n"
    uts = sorted(p.name.rsplit(".", 1)[-1] for p in (names.lab_dir(lab.name) / "uts").iterdir())
    assert uts == ["external", "internet", "node-1", "node-2"], uts
    assert wait_until(lambda: lab.logs("a1")) == "Hello from a1\n"
    assert a1.status == "Running" and a1.ready == "1/1"
    hosts = lab.exec("a1", ["cat", "/etc/hosts"]).stdout
    assert f"{a1.ip}\ta1" in hosts
    assert "nameserver 10.96.0.10" in lab.exec("a1", ["cat", "/etc/resolv.conf"]).stdout


def test_node_network(netlab_lab):
    lab = netlab_lab(yaml=three_pods("vxlan"))
    r = lab.exec("node/node-1", ["sh", "-c", "hostname; cat /proc/sys/net/ipv4/ip_forward; "
                                             "ip -d link show flannel.1; ip route; "
                                             "bridge fdb show dev flannel.1; ip neigh show "
                                             "dev flannel.1"])
    assert r.ok, r.stderr
    out = r.stdout
    assert out.startswith("node-1\n1\n")
    assert "vxlan id 1 local 172.18.0.2" in out and "dstport 8472 nolearning" in out
    node2 = next(n for n in lab.nodes() if n.name == "node-2")
    assert "10.244.1.0/24 via 10.244.1.0 dev flannel.1" in out and "onlink" in out
    assert f"{node2.vtep_mac} dst 172.18.0.3 self permanent" in out
    assert f"10.244.1.0 lladdr {node2.vtep_mac} PERMANENT" in out
    # the node answers its pods; a pod answers its node
    assert lab.ping("node/node-1", "a1", count=1).ok
    assert lab.ping("a1", "node/node-2", count=1).ok


def _icmp_between(packets, src: str, dst: str):
    return [(label, p) for label, p in packets
            if p.haslayer(ICMP) and p[IP].src == src and p[IP].dst == dst]


def test_vxlan_on_the_underlay(netlab_lab):
    lab = netlab_lab(yaml=three_pods("vxlan"))
    a1, b1 = lab.pod("a1"), lab.pod("b1")
    with lab.capture("underlay", bpf="udp port 8472") as cap:
        assert lab.ping("a1", "b1", count=2).ok
    seen = [p for _, p in cap.packets if p.haslayer(VXLAN)]
    assert seen, "no VXLAN packet crossed the underlay"
    requests = [p for p in seen if p[VXLAN].payload[IP].src == a1.ip
                and p[VXLAN].payload[IP].dst == b1.ip]
    assert requests
    outer = requests[0]
    assert outer[IP].src == "172.18.0.2" and outer[IP].dst == "172.18.0.3"
    assert outer[UDP].dport == 8472 and outer[VXLAN].vni == 1
    assert outer[VXLAN].payload[IP].haslayer(ICMP)


def test_host_gw_on_the_underlay(netlab_lab):
    lab = netlab_lab(yaml=three_pods("host-gw"))
    a1, b1 = lab.pod("a1"), lab.pod("b1")
    with lab.capture("underlay") as cap:
        assert lab.ping("a1", "b1", count=2).ok
    plain = _icmp_between(cap.packets, a1.ip, b1.ip)
    assert plain, "no plain pod-to-pod IP packet on the underlay"
    assert not any(p.haslayer(UDP) and p[UDP].dport == 8472 for _, p in cap.packets)
    # routed by node-1 to node-2's underlay address: TTL already decremented once
    assert plain[0][1][IP].ttl == 63


def test_deployment_pods_spread_and_answer(netlab_lab):
    lab = netlab_lab(yaml=cluster("vxlan", nodes=3) + """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]}
""")
    pods = lab.pods("default")
    assert len(pods) == 6
    assert sorted(sum(p.node == n.name for p in pods) for n in lab.nodes()) == [2, 2, 2]
    assert all(p.labels["app"] == "web" and "pod-template-hash" in p.labels for p in pods)
    first = pods[0]
    for other in pods[1:]:
        assert lab.ping(first.key, other.ip, count=1).ok
