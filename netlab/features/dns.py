"""Cluster DNS: the add-on's manifests, the records it serves, and each pod's resolv.conf.

The records follow the Kubernetes DNS specification (kubernetes/dns, docs/specification.md)
and "DNS for Services and Pods". They are rendered here from the plan, purely, into a zone
file that the server (netlab.dns_server, in the kube-system/coredns pod) reloads when it
changes; so a Service applied to a running lab resolves well within a second.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from typing import Any

from netlab.intents import File, Process, ReadyWhen
from netlab.loader import RawDoc
from netlab.model import Cluster
from netlab.plan import Plan, PodPlan

DNS_POD, DNS_SERVICE = "coredns", "kube-dns"
ZONE_FILE = "dns/zone.json"  # in the lab's state directory
COMMAND = "netlab-dns"  # the placeholder command of the add-on's (and internet's) server
SCHEMA_VERSION = "1.1.0"  # the DNS specification's version, served as dns-version TXT
UPSTREAM_NAMES = {  # what the `internet` host's resolver knows
    "example.com": "203.0.113.1", "www.example.com": "203.0.113.1",
    "internet.example": "203.0.113.1",
}


def addon_docs(cluster: Cluster, first_node: str) -> list[RawDoc]:
    """kube-system/coredns (labelled k8s-app: kube-dns, so NetworkPolicies that allow DNS
    the usual way work) and the kube-dns Service at the cluster DNS address."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": DNS_POD, "namespace": "kube-system",
                        "labels": {"k8s-app": "kube-dns"},
                        "annotations": {"netlab.dev/responder": "off"}},
           "spec": {"nodeName": first_node, "containers": [{
               "name": "coredns", "image": "netlab-dns", "command": ["netlab-dns"],
               "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                         {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}]}]}}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": DNS_SERVICE, "namespace": "kube-system",
                            "labels": {"k8s-app": "kube-dns"}},
               "spec": {"clusterIP": cluster.cluster_dns, "selector": {"k8s-app": "kube-dns"},
                        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                  {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}
    ips = cluster.dns_ips()
    if len(ips) == 2:  # dual-stack Services: kube-dns in both families, as kind makes it
        service["spec"].update({"ipFamilyPolicy": "PreferDualStack",
                                "clusterIPs": list(ips.values())})
    return [RawDoc(pod, "<netlab add-on: cluster DNS>"),
            RawDoc(service, "<netlab add-on: cluster DNS>")]


def cluster_dns6(cluster: Cluster) -> str:
    """The kube-dns Service's IPv6 ClusterIP ("" without an IPv6 Service range): the 10th
    address of the IPv6 service range (fd00:10:96::a in kind's fd00:10:96::/112)."""
    return cluster.dns_ips().get("IPv6", "")


def _dashed(ip: str) -> str:
    """An endpoint's hostname from its address (CoreDNS endpointHostname): IPv4 '.' -> '-';
    IPv6 ':' -> '-', with a '0' after a trailing '-' (fd00:10:244:1::5 -> fd00-10-244-1--5)."""
    if ":" not in ip:
        return ip.replace(".", "-")
    dashed = ip.replace(":", "-")
    return dashed + "0" if dashed.endswith("-") else dashed


def _reverse(ip: str) -> str:
    """The PTR name: a.b.c.d -> d.c.b.a.in-addr.arpa; IPv6 in nibble format under ip6.arpa."""
    if ":" in ip:
        return ipaddress.IPv6Address(ip).reverse_pointer
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def _ip_key(ip: str) -> int:
    return int(ipaddress.ip_address(ip))


def render_zone(plan: Plan) -> dict[str, Any]:
    """All records of the cluster domain, as plain data (JSON for the server). In a
    dual-stack lab also AAAA records ("aaaa"), ip6.arpa PTRs and reverse zones; a
    single-stack lab's zone has no "aaaa" key at all (the same bytes as before)."""
    cluster = plan.cluster
    d = cluster.cluster_domain
    a: dict[str, list[str]] = {}
    aaaa: dict[str, list[str]] = {}
    srv: dict[str, list[list]] = {}
    cname: dict[str, str] = {}
    ptr: dict[str, str] = {}
    names: set[str] = {d, f"svc.{d}", f"pod.{d}"}
    for ns in plan.namespaces:
        names |= {f"{ns}.svc.{d}", f"{ns}.pod.{d}"}
    pods_by_key = plan.pods

    def records(ip: str) -> dict[str, list[str]]:
        return aaaa if ":" in ip else a

    for svc in sorted(plan.services.values(), key=lambda s: s.key):
        fqdn = f"{svc.name}.{svc.namespace}.svc.{d}"
        if svc.type == "ExternalName":
            cname[fqdn] = svc.external_name.rstrip(".") if svc.external_name else ""
            names.add(fqdn)
            continue
        if not svc.headless:
            # one record per ClusterIP (CoreDNS: each of spec.clusterIPs), A or AAAA; a
            # name with only the other family's record answers NOERROR without data
            for ip in (svc.cluster_ip, svc.cluster_ip6):
                if ip:
                    records(ip)[fqdn] = [ip]
                    ptr[_reverse(ip)] = fqdn
            names.add(fqdn)
            for port in svc.ports:
                if port.name:
                    srv[f"_{port.name}._{port.protocol.lower()}.{fqdn}"] = [
                        [0, 100, port.port, fqdn]]
            continue
        # headless: the ready endpoints themselves, each family's from its EndpointSlice
        endpoint_names: dict[str, str] = {}
        for port in svc.ports:
            for ep in (*port.endpoints, *port.endpoints6):
                pod: PodPlan | None = pods_by_key.get(ep.pod) if ep.pod else None
                if pod is not None and pod.subdomain == svc.name:
                    host = f"{pod.hostname}.{fqdn}"  # both families under one name
                else:
                    host = f"{_dashed(ep.ip)}.{fqdn}"  # one name per address
                endpoint_names[ep.ip] = host
        if not endpoint_names:
            continue  # no endpoints: the name does not exist (NXDOMAIN)
        for ip in sorted(endpoint_names, key=_ip_key):
            records(ip).setdefault(fqdn, []).append(ip)
        names.add(fqdn)
        for ip, host in endpoint_names.items():
            records(ip).setdefault(host, []).append(ip)
            names.add(host)
            ptr.setdefault(_reverse(ip), host)
        for port in svc.ports:
            if port.name:
                entries = [[0, 100, ep.port, endpoint_names[ep.ip]] for ep in port.endpoints]
                for ep in port.endpoints6:  # a name both families share is one target
                    entry = [0, 100, ep.port, endpoint_names[ep.ip]]
                    if entry not in entries:
                        entries.append(entry)
                srv[f"_{port.name}._{port.protocol.lower()}.{fqdn}"] = entries
    for key in srv:
        names.add(key)
    zone: dict[str, Any] = {"domain": d, "version": SCHEMA_VERSION, "a": a, "srv": srv,
                            "cname": cname, "ptr": ptr, "names": sorted(names),
                            "pods": {p.ip: p.namespace for p in plan.pods.values() if p.ip},
                            "reverse_zones": [_reverse_zone(c) for c in (cluster.service_cidr,
                                                                         cluster.pod_cidr) if c]}
    if cluster.ipv6:
        zone["aaaa"] = aaaa
        zone["pods"].update({p.ip6: p.namespace for p in plan.pods.values() if p.ip6})
        zone["reverse_zones"] += [_reverse_zone(c) for c in (cluster.service_cidr6,
                                                              cluster.pod_cidr6) if c]
    return zone


def _reverse_zone(cidr: str) -> str:
    """The reverse zone that holds a range: whole octets (in-addr.arpa) or nibbles
    (ip6.arpa) of its prefix, rounded down."""
    if ":" in cidr:
        net6 = ipaddress.IPv6Network(cidr)
        nibbles = net6.network_address.exploded.replace(":", "")[: max(1, net6.prefixlen // 4)]
        return ".".join(reversed(nibbles)) + ".ip6.arpa"
    net = ipaddress.IPv4Network(cidr)
    octets = str(net.network_address).split(".")[: max(1, net.prefixlen // 8)]
    return ".".join(reversed(octets)) + ".in-addr.arpa"


def resolv_conf(cluster: Cluster, pod: PodPlan, upstream: str) -> str:
    """/etc/resolv.conf as the kubelet writes it for the pod's dnsPolicy and dnsConfig.
    `Default` means the node's resolver: in the lab, the internet host's."""
    d = cluster.cluster_domain
    nameservers: list[str] = []
    searches: list[str] = []
    options: dict[str, str | None] = {}
    policy = pod.dns_policy
    if policy == "ClusterFirst" and pod.host_network:
        policy = "Default"  # kubelet: a hostNetwork pod asks for ClusterFirstWithHostNet
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        # Only the primary family's kube-dns address, also in a dual-stack lab: kubelet
        # writes its --cluster-dns list, which kubeadm and kind set to the primary family's
        # ClusterIP alone; the server answers AAAA queries over IPv4 just as well, and
        # listens in both families for clients that ask the other ClusterIP.
        nameservers = [cluster.cluster_dns]
        searches = [f"{pod.namespace}.svc.{d}", f"svc.{d}", d]
        options = {"ndots": "5"}
    elif policy == "Default":
        nameservers = [upstream]
    cfg = pod.dns_config or {}
    for ns in cfg.get("nameservers") or []:
        if ns not in nameservers:
            nameservers.append(str(ns))
    for s in cfg.get("searches") or []:
        if s not in searches:
            searches.append(str(s))
    for o in cfg.get("options") or []:
        options[str(o["name"])] = None if o.get("value") is None else str(o["value"])
    lines = []
    if searches:
        lines.append("search " + " ".join(searches))
    lines += [f"nameserver {n}" for n in nameservers[:3]]
    if options:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}"
                                           for k, v in options.items()))
    return "\n".join(lines) + "\n"


def render_files(plan: Plan) -> list[File]:
    """The zone file; the server reloads it when it changes (within 0.1 s)."""
    return [File(ZONE_FILE, json.dumps(render_zone(plan), separators=(",", ":")).encode())]


def resolve(plan: Plan, lab_dir: str, p: Process) -> tuple[Process, ReadyWhen]:
    """The server's real command line: netlab.dns_server with the zone (cluster mode) or the
    static names it was given (the internet's resolver); in a dual-stack lab the cluster
    DNS listens on IPv6 too (--ipv6). Ready once it listens on UDP and TCP (two lines in
    its log, printed once every socket is bound)."""
    cluster = plan.cluster
    extra = p.argv[1:] or ("--zone", f"{lab_dir}/{ZONE_FILE}", *(
        ("--upstream", plan.internet(cluster.primary)) if cluster.upstream_dns else ()), *(
        ("--ipv6",) if cluster.ipv6 else ()))
    if extra[:1] == ("--static",) and cluster.ipv6:
        # the internet's names in the cluster's families: A with the internet host's IPv4
        # address (UPSTREAM_NAMES), AAAA with its IPv6 one; the resolver listens in both
        names_ = (extra[1:] if cluster.ipv4 else ()) + tuple(
            f"{n}={plan.internet_ip6}" for n, ip in sorted(UPSTREAM_NAMES.items())
            if ip == UPSTREAM_NAMES["example.com"])
        extra = ("--static", *names_, "--ipv6")
    argv = (sys.executable, "-m", "netlab.dns_server", *extra)
    return (Process(p.pod, p.container, p.netns, argv, p.env, p.binds, p.workdir),
            ReadyWhen(p.pod, p.container, f"{p.workdir}/{p.container}.log", 2))
