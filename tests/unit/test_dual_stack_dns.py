"""Cluster DNS in a dual-stack lab, without root (Kubernetes DNS spec v1.1.0, CoreDNS's
`kubernetes` plugin): A and AAAA per ClusterIP, NODATA for the family a Service lacks,
headless Services per family (StatefulSet hostnames in both families, address-derived
hostnames per family), SRV additionals in both families, ip6.arpa PTRs in nibble format,
pod names of either family, the PreferDualStack kube-dns Service at fd00:10:96::a, the
server's command line and its answers from a zone (no sockets), the upstream's AAAA."""

from __future__ import annotations

import argparse
import ipaddress

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from netlab.compile import compile_lab
from netlab.dns_server import Server, Zone
from netlab.features import dns
from netlab.intents import Process
from netlab.loader import read_text

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  podCIDR: 10.244.0.0/16,fd00:10:244::/56
"""
APPS = """---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: v4only}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: v6only}
spec:
  ipFamilies: [IPv6]
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: raw}
spec:
  clusterIP: None
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  ports: [{name: http, port: 8080}]
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
  replicas: 2
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: x, ports: [{containerPort: 5432}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: search}
spec: {type: ExternalName, externalName: www.example.com}
"""
D = "cluster.local"


@pytest.fixture(scope="module")
def plan():
    return compile_lab("nlddnsu", read_text(CLUSTER + APPS, "t.yaml")).plan


@pytest.fixture(scope="module")
def zone(plan):
    return dns.render_zone(plan)


def ask(zone_data: dict, name: str, qtype: str) -> DNSRecord:
    return Zone(zone_data).answer(DNSRecord.question(name, qtype))


def rdata(reply: DNSRecord, section: str = "rr") -> list[tuple[str, str, str]]:
    return [(str(r.rname).rstrip("."), QTYPE[r.rtype], str(r.rdata).rstrip("."))
            for r in getattr(reply, section)]


def nibbles(ip: str) -> str:
    return ".".join(reversed(ipaddress.IPv6Address(ip).exploded.replace(":", ""))) + \
        ".ip6.arpa"


def test_kube_dns_service_is_prefer_dual_stack_at_the_tenth_ipv6_address(plan):
    kube_dns = plan.services["kube-system/kube-dns"]
    assert kube_dns.ip_family_policy == "PreferDualStack"
    assert kube_dns.cluster_ips == ("10.96.0.10", "fd00:10:96::a")
    assert dns.cluster_dns6(plan.cluster) == "fd00:10:96::a"
    # both families have the coredns pod as endpoint
    coredns = plan.pods["kube-system/coredns"]
    port = kube_dns.ports[0]
    assert [e.ip for e in port.endpoints] == [coredns.ip]
    assert [e.ip for e in port.endpoints6] == [coredns.ip6]


def test_single_stack_services_cluster_keeps_kube_dns_single_stack():
    text = CLUSTER + "  serviceCIDR: 10.96.0.0/16\n"  # dual-stack pods, IPv4 Services
    plan = compile_lab("nlddnsu", read_text(text, "t.yaml")).plan
    kube_dns = plan.services["kube-system/kube-dns"]
    assert kube_dns.cluster_ips == ("10.96.0.10",) and dns.cluster_dns6(plan.cluster) == ""


def test_cluster_ip_service_a_and_aaaa(plan, zone):
    web = plan.services["default/web"]
    fqdn = f"web.default.svc.{D}"
    assert zone["a"][fqdn] == [web.cluster_ip] and zone["aaaa"][fqdn] == [web.cluster_ip6]
    assert web.cluster_ip6.startswith("fd00:10:96::")
    assert rdata(ask(zone, fqdn, "AAAA")) == [(fqdn, "AAAA", web.cluster_ip6)]
    assert rdata(ask(zone, fqdn, "A")) == [(fqdn, "A", web.cluster_ip)]
    both = ask(zone, fqdn, "ANY")
    assert {t for _, t, _ in rdata(both)} >= {"A", "AAAA"}
    # SRV target unchanged (the Service's name)
    assert zone["srv"][f"_http._tcp.{fqdn}"] == [[0, 100, 80, fqdn]]


def test_single_family_services_answer_nodata_for_the_other(plan, zone):
    v4 = f"v4only.default.svc.{D}"
    r = ask(zone, v4, "AAAA")
    assert r.header.rcode == RCODE.NOERROR and not r.rr and r.auth  # NODATA, SOA
    assert rdata(ask(zone, v4, "A")) == [(v4, "A", plan.services["default/v4only"].cluster_ip)]
    v6 = f"v6only.default.svc.{D}"
    svc6 = plan.services["default/v6only"]
    assert svc6.cluster_ip is None and svc6.cluster_ip6
    assert rdata(ask(zone, v6, "AAAA")) == [(v6, "AAAA", svc6.cluster_ip6)]
    r = ask(zone, v6, "A")
    assert r.header.rcode == RCODE.NOERROR and not r.rr
    assert ask(zone, f"nope.default.svc.{D}", "AAAA").header.rcode == RCODE.NXDOMAIN


def test_headless_per_family_with_address_hostnames(plan, zone):
    pods = [plan.pods[f"default/web-{i}"] for i in (1, 2)]
    fqdn = f"raw.default.svc.{D}"
    assert zone["a"][fqdn] == sorted(p.ip for p in pods)
    assert zone["aaaa"][fqdn] == [p.ip6 for p in pods]
    assert sorted(ip for _, _, ip in rdata(ask(zone, fqdn, "AAAA"))) == \
        sorted(p.ip6 for p in pods)
    # CoreDNS endpointHostname: one name per address, IPv6 ':' -> '-'
    assert pods[0].ip6 == "fd00:10:244::2"
    v6name = f"fd00-10-244--2.{fqdn}"
    assert zone["aaaa"][v6name] == ["fd00:10:244::2"] and v6name not in zone["a"]
    v4name = f"{pods[0].ip.replace('.', '-')}.{fqdn}"
    assert zone["a"][v4name] == [pods[0].ip] and v4name not in zone["aaaa"]
    # SRV: a target per address, and the additional section in the target's family
    srv = zone["srv"][f"_http._tcp.{fqdn}"]
    assert len(srv) == 4 and [0, 100, 8080, v6name] in srv
    reply = ask(zone, f"_http._tcp.{fqdn}", "SRV")
    assert (v6name, "AAAA", "fd00:10:244::2") in rdata(reply, "ar")
    assert (v4name, "A", pods[0].ip) in rdata(reply, "ar")
    # PTR of an IPv6 endpoint: its hostname, in nibble format
    assert zone["ptr"][nibbles(pods[0].ip6)] == v6name


def test_endpoint_hostname_rule():
    assert dns._dashed("10.244.1.5") == "10-244-1-5"
    assert dns._dashed("fd00:10:244:1::5") == "fd00-10-244-1--5"
    assert dns._dashed("fd00:10:244:1::") == "fd00-10-244-1--0"  # trailing '-' gets a 0


def test_statefulset_hostnames_in_both_families(plan, zone):
    fqdn = f"db.default.svc.{D}"
    pods = [plan.pods[f"default/db-{i}"] for i in (0, 1)]
    for p in pods:
        host = f"{p.name}.{fqdn}"
        assert zone["a"][host] == [p.ip] and zone["aaaa"][host] == [p.ip6]
        assert rdata(ask(zone, host, "AAAA")) == [(host, "AAAA", p.ip6)]
        assert rdata(ask(zone, host, "A")) == [(host, "A", p.ip)]
        assert zone["ptr"][nibbles(p.ip6)] == host
        assert zone["ptr"][dns._reverse(p.ip)] == host
    # one SRV target per pod (the name both families share), additionals in both families
    srv = zone["srv"][f"_sql._tcp.{fqdn}"]
    assert srv == [[0, 100, 5432, f"db-0.{fqdn}"], [0, 100, 5432, f"db-1.{fqdn}"]]
    extra = rdata(ask(zone, f"_sql._tcp.{fqdn}", "SRV"), "ar")
    assert (f"db-0.{fqdn}", "A", pods[0].ip) in extra
    assert (f"db-0.{fqdn}", "AAAA", pods[0].ip6) in extra


def test_ipv6_ptr_nibble_format_and_reverse_zones(plan, zone):
    web = plan.services["default/web"]
    name = nibbles(web.cluster_ip6)
    assert name.endswith(".0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa")
    assert name.count(".") == 33  # 32 nibbles, ip6, arpa
    assert zone["ptr"][name] == f"web.default.svc.{D}"
    assert rdata(ask(zone, name, "PTR")) == [(name, "PTR", f"web.default.svc.{D}")]
    kube_dns = nibbles("fd00:10:96::a")
    assert zone["ptr"][kube_dns] == f"kube-dns.kube-system.svc.{D}"
    assert kube_dns.startswith("a.0.0.0.")
    # the IPv6 service and pod ranges are the server's too (NXDOMAIN, not forwarded)
    assert zone["reverse_zones"][2:] == [
        "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",  # /112: 28 nibbles
        "0.0.4.4.2.0.0.1.0.0.0.0.d.f.ip6.arpa"]  # fd00:10:244::/56, 14 nibbles
    z = Zone(zone)
    assert z.authoritative(nibbles("fd00:10:96::77"))
    assert ask(zone, nibbles("fd00:10:96::77"), "PTR").header.rcode == RCODE.NXDOMAIN
    assert not z.authoritative(nibbles("2001:db8::1"))


def test_pod_names_of_either_family(plan, zone):
    p = plan.pods["default/web-1"]
    v6 = f"fd00-10-244--2.default.pod.{D}"
    assert rdata(ask(zone, v6, "AAAA")) == [(v6, "AAAA", p.ip6)]
    r = ask(zone, v6, "A")
    assert r.header.rcode == RCODE.NOERROR and not r.rr
    v4 = f"{p.ip.replace('.', '-')}.default.pod.{D}"
    assert rdata(ask(zone, v4, "A")) == [(v4, "A", p.ip)]
    assert not ask(zone, v4, "AAAA").rr


def test_external_name_cname_for_aaaa(zone):
    name = f"search.default.svc.{D}"
    assert rdata(ask(zone, name, "AAAA")) == [(name, "CNAME", "www.example.com")]


def test_server_command_line_and_resolv_conf(plan):
    p = Process("kube-system/coredns", "coredns", "ns", ("netlab-dns",), (), (), "/w")
    proc, _ = dns.resolve(plan, "/run/netlab/x", p)
    assert proc.argv[-1] == "--ipv6" and "--zone" in proc.argv
    internet = Process("host/internet", "dns", "ns", ("netlab-dns", "--static",
                                                      "example.com=203.0.113.1"), (), (), "/w")
    proc, _ = dns.resolve(plan, "/run/netlab/x", internet)
    assert f"example.com={plan.internet_ip6}" in proc.argv
    # resolv.conf keeps the IPv4 kube-dns address (kubelet's --cluster-dns primary)
    conf = dns.resolv_conf(plan.cluster, plan.pods["default/web-1"], plan.internet_ip)
    assert "nameserver 10.96.0.10\n" in conf and "fd00" not in conf


def test_upstream_resolver_answers_aaaa():
    args = argparse.Namespace(zone=None, upstream=None, port=53, ipv6=False,
                              static=["example.com=203.0.113.1", "example.com=2001:db8:113::1"])
    server = Server(args)
    got: list[bytes] = []
    for qtype in ("A", "AAAA"):
        server.respond(DNSRecord.question("example.com", qtype).pack(), "udp", got.append)
    a, aaaa = (DNSRecord.parse(g) for g in got)
    assert [str(r.rdata) for r in a.rr] == ["203.0.113.1"]
    assert [str(r.rdata) for r in aaaa.rr] == ["2001:db8:113::1"]


def test_single_stack_zone_has_no_ipv6_parts():
    plan = compile_lab("nlddnsu", read_text(APPS.replace("ipFamilyPolicy: PreferDualStack",
                                                         "ipFamilyPolicy: SingleStack")
                                            .replace("  ipFamilies: [IPv6]\n", ""),
                                            "t.yaml")).plan
    zone = dns.render_zone(plan)
    assert "aaaa" not in zone and not any(k.endswith("ip6.arpa") for k in zone["ptr"])
    assert len(zone["reverse_zones"]) == 2
    p = Process("kube-system/coredns", "coredns", "ns", ("netlab-dns",), (), (), "/w")
    assert "--ipv6" not in dns.resolve(plan, "/run/netlab/x", p)[0].argv
