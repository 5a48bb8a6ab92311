"""Dual-stack labs with real IPv6 packets, on both backends: every pod and node has both
families, pods reach each other over IPv6 on the same node and across nodes (VXLAN over the
IPv6 underlay through flannel-v6.1, or host-gw routes), pod traffic to the internet host is
masqueraded in IPv6 too, addresses are usable at once (no DAD), and a pod's IPv6 packet too
big for VXLAN over IPv6 meets ICMPv6 Packet Too Big at its node."""

from __future__ import annotations

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6

from netlab import names

pytestmark = pytest.mark.netlab


def dual(backend: str) -> str:
    return f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  backend: {backend}
  podCIDR: 10.244.0.0/16,fd00:10:244::/56
---
apiVersion: v1
kind: Pod
metadata: {{name: a1}}
spec: {{nodeName: node-1, containers: [{{name: c, image: x, command: [sleep, infinity]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: a2}}
spec: {{nodeName: node-1, containers: [{{name: c, image: x, command: [sleep, infinity]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: b1}}
spec: {{nodeName: node-2, containers: [{{name: c, image: x, command: [sleep, infinity]}}]}}
"""


def ping6(lab, src: str, dst: str, extra: str = "") -> str:
    r = lab.exec(src, ["sh", "-c", f"ping -6 -n -c 2 -i 0.2 -W 1 {extra} {dst}"])
    return r.stdout + r.stderr


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_pods_reach_each_other_over_ipv6(netlab_lab, backend):
    lab = netlab_lab(yaml=dual(backend))
    a1, a2, b1 = (lab.plan.pods[f"default/{n}"] for n in ("a1", "a2", "b1"))
    assert (a1.ip6, a2.ip6, b1.ip6) == ("fd00:10:244::2", "fd00:10:244::3",
                                        "fd00:10:244:1::2")
    addrs = lab.exec("a1", ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope",
                            "global"]).stdout
    assert "fd00:10:244::2/64" in addrs and "tentative" not in addrs  # usable at once
    same = ping6(lab, "a1", a2.ip6)
    across = ping6(lab, "a1", b1.ip6)
    back = ping6(lab, "b1", a1.ip6)
    for out in (same, across, back):
        assert "2 received" in out, out
    # the hop limit tells the path: bridged on one node (64), routed twice across (62)
    assert "ttl=64" in same and "ttl=62" in across
    # both families keep working side by side
    assert "2 received" in lab.exec("a1", ["ping", "-4", "-n", "-c", "2", "-i", "0.2", "-W",
                                           "1", b1.ip]).stdout
    node_routes = lab.exec("node/node-1", ["ip", "-6", "route"]).stdout
    if backend == "vxlan":
        assert "fd00:10:244:1::/64 via fd00:10:244:1:: dev flannel-v6.1" in node_routes
    else:
        assert "fd00:10:244:1::/64 via 2001:db8:18::3 dev eth0" in node_routes


def test_vxlan_over_the_ipv6_underlay(netlab_lab):
    """The IPv6 overlay rides on IPv6: UDP 8472 between the nodes' IPv6 underlay addresses."""
    lab = netlab_lab(yaml=dual("vxlan"))
    b1 = lab.plan.pods["default/b1"]
    with lab.capture("underlay", bpf="ip6 and udp port 8472") as cap:
        assert "2 received" in ping6(lab, "a1", b1.ip6)
    outer = [p for _, p in cap.packets if IPv6 in p and UDP in p]
    assert outer, cap.packets
    assert {(p[IPv6].src, p[IPv6].dst) for p in outer} >= {("2001:db8:18::2", "2001:db8:18::3")}
    inner = bytes(outer[0][UDP].payload)[8:]  # past the VXLAN header: the pod's frame
    assert bytes.fromhex("fd00001002440000" + "0000000000000002") in inner


def test_ipv6_egress_is_masqueraded_and_too_big_packets_are_told(netlab_lab):
    lab = netlab_lab(yaml=dual("vxlan"))
    # the internet host has no route to pod addresses: the answer proves the masquerade
    assert "2 received" in ping6(lab, "a1", lab.plan.internet_ip6)
    b1 = lab.plan.pods["default/b1"]
    # 1390 bytes + 48 of headers fit the pod's MTU (1450) but not VXLAN over IPv6 (1430)
    out = ping6(lab, "a1", b1.ip6, "-M do -s 1390")
    assert "Packet too big: mtu=1430" in out, out
    assert "mtu 1430" in lab.exec("a1", ["ip", "-6", "route", "get", b1.ip6]).stdout


SERVING = """---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: node-2
  containers: [{name: c, image: x, ports: [{containerPort: 8080}, {containerPort: 53,
                protocol: UDP}]}]
"""


def test_the_responder_answers_in_both_families(netlab_lab):
    """A dual-stack pod's built-in responder listens in each family: a TCP or UDP probe to
    its IPv6 address is answered by it, naming the client's IPv6 address (not ::ffff:...);
    IPv4 answers are unchanged; IPv6 literals work as destinations too."""
    lab = netlab_lab(yaml=dual("vxlan") + SERVING)
    web, a1 = lab.plan.pods["default/web"], lab.plan.pods["default/a1"]
    v6 = lab.probe("a1", "web", 8080, family="IPv6")
    assert (v6.connected, v6.address, v6.answered_by, v6.client_ip) == (
        True, web.ip6, "default/web", a1.ip6), v6
    udp = lab.probe("a1", "web", 53, "udp", family="IPv6")
    assert (udp.answered_by, udp.client_ip) == ("default/web", a1.ip6), udp
    v4 = lab.probe("a1", "web", 8080)
    assert (v4.address, v4.client_ip) == (web.ip, a1.ip), v4
    literal = lab.probe("b1", web.ip6, 8080)
    assert literal.answered_by == "default/web", literal
    # from outside the cluster: the external host routes to the pods' IPv6 ranges too
    assert lab.probe("external", "web", 8080, family="IPv6").client_ip == lab.plan.external_ip6
    # the internet host answers over IPv6; the pod's address is masqueraded to its node's
    out = lab.probe("a1", "internet", 80, family="IPv6")
    assert (out.answered_by, out.client_ip) == ("internet", lab.plan.nodes[0].underlay_ip6), out
    assert lab.ping("a1", "b1", count=1, family="IPv6").ok
    assert lab.trace("a1", web.ip6, 8080).delivered_to == "pod/default/web"  # over IPv6


INGRESS = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: shop}
spec: {selector: {app: shop}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  rules:
  - host: shop.example
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}]
"""


def test_the_ingress_controller_answers_over_ipv6(netlab_lab):
    """In a dual-stack lab the controller's Service has an IPv6 ClusterIP and nginx listens
    on [::]:80 too: an HTTP request to that IPv6 address reaches the backend by Host."""
    lab = netlab_lab(yaml=dual("vxlan") + INGRESS)
    svc = lab.plan.services["ingress-nginx/ingress-nginx-controller"]
    assert svc.cluster_ip6, svc
    conf = (names.lab_dir(lab.name) / "ingress" / "nginx.conf").read_text()
    assert "listen [::]:80 default_server;" in conf
    r = lab.http(f"http://[{svc.cluster_ip6}]/", src="a1", headers={"Host": "shop.example"})
    assert r.status == 200 and r.answered_by and r.answered_by.startswith("default/shop-"), r
    v4 = lab.http("http://shop.example/", src="a1")
    assert v4.status == 200, v4
