"""Dual-stack LoadBalancer Services with real IPv6 packets, MetalLB-L2 style: the announcing
node holds the Service's IPv6 address on eth0 (a /128, so its kernel answers the external
host's Neighbour Solicitations), the ip6 kube-proxy table DNATs it to a backend pod (ETP
Cluster: from any node's endpoint, the client masqueraded) and, with externalTrafficPolicy
Local, to the announcing node's own endpoint with the client's IPv6 address kept."""

from __future__ import annotations

import time

import pytest
from manifests import DUAL_TWO_WEB_PODS

pytestmark = pytest.mark.netlab

LAB = DUAL_TWO_WEB_PODS + """apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  ipFamilyPolicy: PreferDualStack
  selector: {app: a}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  externalTrafficPolicy: Local
  selector: {app: b}
  ports: [{port: 80, targetPort: 8080}]
"""


def probe_until(lab, name: str, family: str | None = None):
    deadline = time.monotonic() + 5
    while True:
        r = lab.probe("external", f"svc/{name}", family=family, timeout=1.0)
        if r.connected or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_ipv6_load_balancer_addresses_answered_by_backends(netlab_lab):
    lab = netlab_lab(yaml=LAB, name="nlddlb1")
    lb, local = lab.plan.services["default/lb"], lab.plan.services["default/local"]
    assert (lb.lb_ip, lb.lb_ip6) == ("172.18.0.200", "2001:db8:18::c8")
    assert (local.lb_ip, local.lb_ip6) == ("172.18.0.201", "2001:db8:18::c9")
    assert local.announcer == "node-2"  # ETP Local: the node with the endpoint
    # the announcer holds it on eth0 as a /128, usable at once; the other node does not
    held = lab.exec(f"node/{lb.announcer}", ["ip", "-6", "-o", "addr", "show", "dev",
                                             "eth0"]).stdout
    assert "2001:db8:18::c8/128" in held and "tentative" not in held, held
    other = next(n.name for n in lab.plan.nodes if n.name != lb.announcer)
    assert "2001:db8:18::c8" not in lab.exec(f"node/{other}", ["ip", "-6", "addr"]).stdout
    info = lab.service("lb").to_k8s()
    assert [i["ip"] for i in info["status"]["loadBalancer"]["ingress"]] == [
        "172.18.0.200", "2001:db8:18::c8"]

    # ETP Cluster: answered by the backend pod, in IPv6 and (unchanged) in IPv4
    r6 = probe_until(lab, "lb", "IPv6")
    assert r6.connected and r6.answered_by == "default/web-a", r6
    assert r6.client_ip != lab.plan.external_ip6  # masqueraded (ETP Cluster)
    r4 = probe_until(lab, "lb")
    assert r4.connected and r4.answered_by == "default/web-a", r4
    mac = lab.exec(f"node/{lb.announcer}", ["cat", "/sys/class/net/eth0/address"]).stdout.strip()
    assert mac in lab.exec("external", ["ip", "-6", "neigh", "show", "2001:db8:18::c8"]).stdout

    # ETP Local: the announcing node's own endpoint, the client's address preserved
    loc6 = probe_until(lab, "local", "IPv6")
    assert loc6.connected and loc6.answered_by == "default/web-b", loc6
    assert loc6.client_ip == lab.plan.external_ip6, loc6
    loc4 = probe_until(lab, "local")
    assert loc4.connected and loc4.client_ip == lab.plan.external_ip, loc4

    # the endpoint moves: the new announcer takes the IPv6 address and sends an unsolicited
    # Neighbour Advertisement, so `external` follows at once (as with gratuitous ARP in IPv4)
    moved = LAB.replace("metadata: {name: web-b, labels: {app: b}}\nspec: {nodeName: node-2",
                        "metadata: {name: web-b, labels: {app: b}}\nspec: {nodeName: node-1")
    assert moved != LAB
    lab.apply(manifests=[m for m in moved.split("---\n") if "web-b" in m])
    assert lab.service("local").announced_by == "node-1"
    deadline = time.monotonic() + 5
    while not lab.probe("web-b", "web-b", timeout=0.5).connected:  # its responder listens
        assert time.monotonic() < deadline
    mac1 = lab.exec("node/node-1", ["cat", "/sys/class/net/eth0/address"]).stdout.strip()
    assert mac1 in lab.exec("external", ["ip", "-6", "neigh", "show", "2001:db8:18::c9"]).stdout
    after = lab.probe("external", "svc/local", family="IPv6", timeout=1.0)
    assert after.connected and after.answered_by == "default/web-b", after
    assert after.client_ip == lab.plan.external_ip6, after
