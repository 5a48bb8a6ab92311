"""The cluster DNS of a dual-stack lab, asked from inside a pod with real resolvers (dig,
netlab's client): AAAA of a dual-stack Service is its IPv6 ClusterIP, a headless
StatefulSet pod's name has A and AAAA, an IPv6 ClusterIP's PTR (ip6.arpa nibbles) names
its Service, the kube-dns Service's IPv6 ClusterIP (fd00:10:96::a) answers over UDP and
TCP, and a probe by name with family IPv6 resolves AAAA and connects to the IPv6
ClusterIP."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

pytestmark = pytest.mark.netlab

LAB = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  podCIDR: 10.244.0.0/16,fd00:10:244::/56
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: v4only}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  ipFamilyPolicy: PreferDualStack
  selector: {app: db}
  ports: [{name: sql, port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, ports: [{containerPort: 5432}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-2, containers: [{name: c, image: x, command: [sleep, infinity]}]}
"""
FQDN = "web.default.svc.cluster.local"


def dig(lab, args: str) -> str:
    r = lab.exec("client", ["sh", "-c", f"dig +time=2 +tries=1 {args}"])
    return r.stdout.strip()


def test_dual_stack_dns(netlab_lab):
    lab = netlab_lab(yaml=LAB, name="nlddns")
    web = lab.plan.services["default/web"]
    assert web.cluster_ip6 and web.cluster_ip
    assert lab.service("kube-system/kube-dns").cluster_ips == ("10.96.0.10", "fd00:10:96::a")

    # AAAA of a dual-stack Service: its IPv6 ClusterIP; A still the IPv4 one
    answer = lab.dns("web", "client", "AAAA")
    assert answer.rcode == "NOERROR" and answer.addresses == [web.cluster_ip6]
    assert answer.query == FQDN  # the search list, as for A
    assert lab.dns("web", "client").addresses == [web.cluster_ip]
    assert dig(lab, f"+short AAAA {FQDN}") == web.cluster_ip6
    # a single-stack IPv4 Service: NODATA for AAAA, not NXDOMAIN
    v4 = lab.dns("v4only.default.svc.cluster.local.", "client", "AAAA")
    assert v4.rcode == "NOERROR" and v4.answers == ()

    # a headless StatefulSet pod: A and AAAA under its hostname
    db = lab.pod("db-0")
    assert db.ip6
    name = "db-0.db.default.svc.cluster.local"
    assert dig(lab, f"+short A {name}") == db.ip
    assert dig(lab, f"+short AAAA {name}") == db.ip6
    assert lab.dns(name + ".", "client", "AAAA").addresses == [db.ip6]
    srv = lab.dns("_sql._tcp.db.default.svc.cluster.local.", "client", "SRV")
    assert {(r.type, r.data) for r in srv.additional} == {("A", db.ip), ("AAAA", db.ip6)}

    # PTR of the IPv6 ClusterIP, in nibble format under ip6.arpa
    assert dig(lab, f"+short -x {web.cluster_ip6}") == f"{FQDN}."
    ptr = ipaddress.IPv6Address(web.cluster_ip6).reverse_pointer
    assert [r.data for r in lab.dns(ptr + ".", "client", "PTR").answers] == [FQDN]
    assert dig(lab, f"+short -x {db.ip6}") == f"{name}."

    # the kube-dns IPv6 ClusterIP answers, over UDP and TCP
    over6 = lab.dns("web", "client", "AAAA", server="fd00:10:96::a")
    assert over6.server == "fd00:10:96::a" and over6.addresses == [web.cluster_ip6]
    assert dig(lab, f"@fd00:10:96::a +short A {FQDN}") == web.cluster_ip
    assert dig(lab, f"@fd00:10:96::a +tcp +short AAAA {FQDN}") == web.cluster_ip6
    # outside names are forwarded from the IPv6 side too
    assert dig(lab, "@fd00:10:96::a +short A www.example.com") == "203.0.113.1"

    # resolv.conf keeps the IPv4 kube-dns address
    conf = lab.exec("client", ["cat", "/etc/resolv.conf"]).stdout
    assert "nameserver 10.96.0.10" in conf and "fd00" not in conf

    # a probe by name in IPv6: AAAA, the IPv6 ClusterIP, answered by a web pod
    r = lab.probe("client", FQDN, family="IPv6")
    assert r.connected, r
    assert r.address == web.cluster_ip6 and r.port == 80
    assert lab.probe("client", "web").address == web.cluster_ip

    # the CLI
    out = subprocess.run([sys.executable, "-m", "netlab", "dns", "web", "--type", "AAAA",
                          "--from", "client", "--lab", lab.name],
                         capture_output=True, text=True)
    assert out.returncode == 0 and web.cluster_ip6 in out.stdout, out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-m", "netlab", "dns", web.cluster_ip6,
                          "--from", "client", "--server", "fd00:10:96::a", "--lab", lab.name],
                         capture_output=True, text=True)
    assert out.returncode == 0 and FQDN in out.stdout, out.stdout + out.stderr
