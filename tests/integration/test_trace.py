"""The packet walk, asserted hop by hop: namespaces and interfaces in order, and the
headers at the key hops, for the paths Kubernetes networking courses draw."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from manifests import cluster

from netlab import Lab
from netlab.pytest_plugin import shared_lab

PODS = """---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: a}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: b}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c, labels: {app: c}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: svc-c}
spec:
  type: NodePort
  selector: {app: c}
  ports: [{port: 80, nodePort: 30080}]
"""


def _lab(request, backend: str):
    return shared_lab(request, yaml=cluster(backend) + PODS, label=backend)


@pytest.fixture(scope="module")
def vx(request):
    return _lab(request, "vxlan")


def walk(result, kind: str = "request") -> list[tuple[str, str, str]]:
    return [(h.netns, h.iface, h.direction) for h in result.hops if h.kind == kind]


def veth(lab: Lab, pod: str) -> str:
    return lab.plan.pods[f"default/{pod}"].veth


def hop(result, netns: str, iface: str, kind: str = "request"):
    return next(h for h in result.hops if (h.netns, h.iface, h.kind) == (netns, iface, kind))


def test_same_node_is_bridged(vx):
    r = vx.trace("a", "b")
    assert walk(r) == [("pod/default/a", "eth0", "out"), ("node/node-1", veth(vx, "a"), "in"),
                       ("node/node-1", veth(vx, "b"), "out"), ("pod/default/b", "eth0", "in")]
    assert walk(r, "reply") == [("pod/default/b", "eth0", "out"),
                                ("node/node-1", veth(vx, "b"), "in"),
                                ("node/node-1", veth(vx, "a"), "out"),
                                ("pod/default/a", "eth0", "in")]
    assert r.delivered and r.reply and all(h.summary.endswith("ttl 64")
                                           for h in r.hops if h.kind == "request")


CROSS_VXLAN = [
    ("pod/default/a", "eth0", "out"), ("node/node-1", "VETH_A", "in"),
    ("node/node-1", "cni0", "in"), ("node/node-1", "flannel.1", "out"),
    ("node/node-1", "eth0", "out"), ("underlay", "node-1", "in"), ("underlay", "node-2", "out"),
    ("node/node-2", "eth0", "in"), ("node/node-2", "flannel.1", "in"),
    ("node/node-2", "cni0", "out"), ("node/node-2", "VETH_C", "out"),
    ("pod/default/c", "eth0", "in")]


def _expected(lab, hops):
    return [(n, veth(lab, "a") if i == "VETH_A" else veth(lab, "c") if i == "VETH_C" else i, d)
            for n, i, d in hops]


def test_cross_node_vxlan(vx):
    a, c = vx.pod("a").ip, vx.pod("c").ip
    r = vx.trace("a", "c")
    assert walk(r) == _expected(vx, CROSS_VXLAN)
    out = hop(r, "node/node-1", "eth0")
    assert out.encapsulated and out.summary.startswith(
        "VXLAN 172.18.0.2 > 172.18.0.3 UDP 8472 vni 1 [ TCP " + a)
    assert f"> {c}:80 [S] ttl 63" in out.summary
    assert "encapsulated: VXLAN VNI 1 in UDP 8472, outer 172.18.0.2 > 172.18.0.3" in out.changes
    assert "decapsulated (VXLAN removed)" in hop(r, "node/node-2", "flannel.1").changes
    assert hop(r, "pod/default/c", "eth0").summary.endswith("ttl 62")
    assert r.delivered and r.reply


def test_cross_node_host_gw(request):
    lab = _lab(request, "host-gw")
    a, c = lab.pod("a").ip, lab.pod("c").ip
    r = lab.trace("a", "c")
    assert walk(r) == _expected(lab, [
        ("pod/default/a", "eth0", "out"), ("node/node-1", "VETH_A", "in"),
        ("node/node-1", "cni0", "in"), ("node/node-1", "eth0", "out"),
        ("underlay", "node-1", "in"), ("underlay", "node-2", "out"),
        ("node/node-2", "eth0", "in"), ("node/node-2", "cni0", "out"),
        ("node/node-2", "VETH_C", "out"), ("pod/default/c", "eth0", "in")])
    wire = hop(r, "underlay", "node-1")
    assert not wire.encapsulated and wire.summary.startswith(f"TCP {a}:")
    assert f"> {c}:80 [S] ttl 63" in wire.summary


def test_pod_to_cluster_ip_is_dnated_at_the_first_node(vx):
    svc = vx.service("svc-c")
    c = vx.pod("c").ip
    r = vx.trace("a", "svc/svc-c")
    assert walk(r) == _expected(vx, CROSS_VXLAN)
    assert f"> {svc.cluster_ip}:80" in hop(r, "node/node-1", "VETH_A".replace(
        "VETH_A", veth(vx, "a"))).summary
    assert hop(r, "node/node-1", "cni0").changes[0] == f"DNAT {svc.cluster_ip}:80 -> {c}:80"
    assert r.delivered_to == "pod/default/c" and r.reply
    # the reply is un-DNATed on the way back, at the same node
    assert f"{svc.cluster_ip}:80 >" in hop(r, "pod/default/a", "eth0", "reply").summary


def test_external_to_node_port_without_the_endpoint(vx):
    # up to 3 s for the reply to be home (the walk ends as soon as it is): a loaded CI run
    # once ended this one before the external host's capture had the last hop
    r = vx.trace("external", "node/node-1", 30080, timeout=3.0)
    assert walk(r)[:4] == [("host/external", "eth0", "out"), ("underlay", "external", "in"),
                           ("underlay", "node-1", "out"), ("node/node-1", "eth0", "in")]
    assert walk(r)[-1] == ("pod/default/c", "eth0", "in")
    changes = hop(r, "node/node-1", "flannel.1").changes
    assert changes[0] == f"DNAT 172.18.0.2:30080 -> {vx.pod('c').ip}:80"
    assert changes[1].startswith("SNAT 172.18.0.254:") and "-> 10.244.0.0:" in changes[1]
    assert r.reply and walk(r, "reply")[-1] == ("host/external", "eth0", "in")


def test_pod_to_internet_is_masqueraded(vx):
    r = vx.trace("a", "internet")
    out = hop(r, "node/node-1", "eth0")
    assert any(ch.startswith(f"SNAT {vx.pod('a').ip}:") and "-> 172.18.0.2:" in ch
               for ch in out.changes)
    assert r.delivered_to == "host/internet" and r.reply
    assert any("masquerade" in v for v in r.kernel_verdicts)


def test_arp_precedes_the_first_packet(netlab_lab):
    lab = netlab_lab(yaml=cluster() + PODS)
    r = lab.trace("a", "c")  # a has never spoken: it must ask for its gateway first
    first = r.hops[0]
    assert first.kind == "arp" and first.summary == f"ARP who-has 10.244.0.1 tell " \
                                                    f"{lab.pod('a').ip}"
    assert any(h.kind == "arp" and "10.244.0.1 is-at" in h.summary for h in r.hops)


def test_policy_drop_is_named(netlab_lab):
    lab = netlab_lab(yaml=cluster() + PODS + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-c}
spec:
  podSelector: {matchLabels: {app: c}}
  policyTypes: [Ingress]
""")
    r = lab.trace("a", "c", timeout=0.5)
    assert not r.delivered and not r.reply
    assert r.died_at == "node/node-2 flannel.1 (in)"
    assert "dropped by NetworkPolicy" in r.reason and "ingress-default/c" in r.reason
    assert any("(verdict drop)" in v for v in r.kernel_verdicts)


def test_service_without_endpoints_is_named(netlab_lab):
    lab = netlab_lab(yaml=cluster() + PODS + """---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
""")
    r = lab.trace("a", "svc/empty", timeout=0.5)
    assert not r.delivered and "without endpoints" in r.reason
    assert any(h.kind == "icmp-error" for h in r.hops)


def test_json_and_pcaps(vx, tmp_path):
    out = subprocess.run([sys.executable, "-m", "netlab", "trace", "a", "c", "--lab", vx.name,
                          "-o", "json", "--pcap", str(tmp_path)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"src", "dst", "address", "port", "protocol", "ip_id", "hops",
                         "delivered", "reply", "verdict", "died_at", "reason",
                         "kernel_verdicts", "pcaps"}
    assert set(data["hops"][0]) == {"index", "netns", "iface", "direction", "kind", "summary",
                                    "changes", "ms", "encapsulated"}
    from scapy.utils import rdpcap

    assert data["pcaps"] and all(len(rdpcap(p)) >= 1 for p in data["pcaps"])


def test_capture_command(vx):
    proc = subprocess.Popen([sys.executable, "-m", "netlab", "capture", "node/node-2:eth0",
                             "--filter", "udp port 8472", "--count", "2", "--seconds", "10",
                             "--lab", vx.name], stdout=subprocess.PIPE, text=True)
    import time

    time.sleep(1.5)  # the capture is open before traffic flows
    vx.probe("a", "c")
    out, _ = proc.communicate(timeout=15)
    lines = out.splitlines()
    assert len(lines) == 2 and all("node/node-2:eth0" in line and "VXLAN" in line
                                   for line in lines), out


def test_no_arp_answer_and_no_route(vx):
    r = vx.trace("a", "10.244.1.99", 80, timeout=0.6)  # in node-2's pod CIDR, but no pod
    assert not r.delivered and r.reason.startswith("no ARP answer: ARP who-has 10.244.1.99")
    assert r.died_at == "node/node-2 flannel.1 (in)"
    r = vx.trace("a", "198.51.100.7", 80, timeout=0.6)  # nobody routes it past the gateway
    assert not r.delivered
    assert r.died_at == "host/internet eth0 (in)" and "no route to 198.51.100.7" in r.reason
