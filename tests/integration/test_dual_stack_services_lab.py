"""Dual-stack Services with real packets: an IPv6-only Service's ClusterIP and its NodePort
on a node's IPv6 address are answered by its pod (the `ip6 kube-proxy` table), a
PreferDualStack Service answers on both ClusterIPs, a Service without endpoints is
rejected in IPv6 too, and a SingleStack IPv4 Service's NodePort does not answer on the
nodes' IPv6 addresses (kube-proxy's IPv6 proxier has no such Service)."""

from __future__ import annotations

import pytest
from manifests import DUAL_TWO_WEB_PODS

pytestmark = pytest.mark.netlab

LAB = DUAL_TWO_WEB_PODS + """apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-2, containers: [{name: c, image: x, command: [sleep, infinity]}]}
---
apiVersion: v1
kind: Service
metadata: {name: six}
spec:
  type: NodePort
  ipFamilies: [IPv6]
  selector: {app: a}
  ports: [{port: 80, targetPort: 8080, nodePort: 30061}]
---
apiVersion: v1
kind: Service
metadata: {name: dual}
spec:
  ipFamilyPolicy: PreferDualStack
  selector: {app: b}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: four}
spec:
  type: NodePort
  selector: {app: a}
  ports: [{port: 80, targetPort: 8080, nodePort: 30041}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  ipFamilyPolicy: RequireDualStack
  selector: {app: none}
  ports: [{port: 80}]
"""


@pytest.fixture(scope="module")
def lab(request):
    from netlab.pytest_plugin import shared_lab

    return shared_lab(request, yaml=LAB, label="nldss")


def test_families_and_addresses_as_planned(lab):
    six, dual, four = (lab.plan.services[f"default/{n}"] for n in ("six", "dual", "four"))
    assert (six.ip_families, six.cluster_ip, six.cluster_ip6) == (
        ("IPv6",), None, "fd00:10:96::3")
    assert dual.ip_families == ("IPv4", "IPv6") and dual.cluster_ip6 == "fd00:10:96::1"
    assert four.ip_families == ("IPv4",) and four.cluster_ip6 is None
    web_a = lab.plan.pods["default/web-a"]
    assert [ep.ip for ep in six.ports[0].endpoints6] == [web_a.ip6]
    assert six.ports[0].endpoints == ()  # no IPv4 family, no IPv4 slice


def test_ipv6_cluster_ip_and_node_port_answered_by_the_pod(lab):
    # (the IPv6 ClusterIP as a literal: targets.destination looks up a Service's IPv4
    # ClusterIP first, which an IPv6-only Service does not have)
    r = lab.probe("client", "fd00:10:96::3", 80, "tcp")
    assert r.connected, r
    assert r.answered_by == "default/web-a", r
    # from outside the cluster, to node-2's IPv6 address: forwarded to web-a on node-1
    r = lab.probe("external", "node/node-2", 30061, "tcp", family="IPv6")
    assert r.connected and r.answered_by == "default/web-a", r


def test_prefer_dual_stack_service_answers_on_both_cluster_ips(lab):
    v4 = lab.probe("client", "svc/dual")
    v6 = lab.probe("client", "svc/dual", family="IPv6")
    assert v4.address == lab.plan.services["default/dual"].cluster_ip
    assert v6.address == "fd00:10:96::1"
    for r in (v4, v6):
        assert r.connected and r.answered_by == "default/web-b", r
    assert v6.client_ip == lab.plan.pods["default/client"].ip6  # the pod's own address


def test_single_stack_ipv4_node_port_is_not_on_ipv6(lab):
    r4 = lab.probe("external", "node/node-1", 30041, "tcp")
    assert r4.connected and r4.answered_by == "default/web-a", r4
    r6 = lab.probe("external", "node/node-1", 30041, "tcp", family="IPv6", timeout=1.0)
    assert not r6.connected, r6


CONNECT = """import socket, sys
s = socket.socket(socket.AF_INET6)
s.settimeout(2)
try:
    s.connect((sys.argv[1], 80))
    print("connected")
except OSError as e:
    print(type(e).__name__)
"""


def test_ipv6_service_without_endpoints_is_rejected(lab):
    # reject in the ip6 table: ICMPv6 port unreachable, which connect() sees as refused (a
    # plain socket: the probe tool does not yet read ICMPv6 errors as "refused")
    address = lab.plan.services["default/nobody"].cluster_ip6
    r = lab.exec("client", ["python3", "-c", CONNECT, address])
    assert r.stdout.strip() == "ConnectionRefusedError", (r.stdout, r.stderr)
