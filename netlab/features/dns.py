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
    return [RawDoc(pod, "<netlab add-on: cluster DNS>"),
            RawDoc(service, "<netlab add-on: cluster DNS>")]


def _dashed(ip: str) -> str:
    return ip.replace(".", "-")


def _reverse(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def render_zone(plan: Plan) -> dict[str, Any]:
    """All records of the cluster domain, as plain data (JSON for the server)."""
    d = plan.cluster.cluster_domain
    a: dict[str, list[str]] = {}
    srv: dict[str, list[list]] = {}
    cname: dict[str, str] = {}
    ptr: dict[str, str] = {}
    names: set[str] = {d, f"svc.{d}", f"pod.{d}"}
    for ns in plan.namespaces:
        names |= {f"{ns}.svc.{d}", f"{ns}.pod.{d}"}
    pods_by_key = plan.pods
    for svc in sorted(plan.services.values(), key=lambda s: s.key):
        fqdn = f"{svc.name}.{svc.namespace}.svc.{d}"
        if svc.type == "ExternalName":
            cname[fqdn] = svc.external_name.rstrip(".") if svc.external_name else ""
            names.add(fqdn)
            continue
        if svc.cluster_ip:
            a[fqdn] = [svc.cluster_ip]
            names.add(fqdn)
            ptr[_reverse(svc.cluster_ip)] = fqdn
            for port in svc.ports:
                if port.name:
                    srv[f"_{port.name}._{port.protocol.lower()}.{fqdn}"] = [
                        [0, 100, port.port, fqdn]]
            continue
        # headless: the ready endpoints themselves
        endpoint_names: dict[str, str] = {}
        for port in svc.ports:
            for ep in port.endpoints:
                pod: PodPlan | None = pods_by_key.get(ep.pod)
                if pod is not None and pod.subdomain == svc.name:
                    host = f"{pod.hostname}.{fqdn}"
                else:
                    host = f"{_dashed(ep.ip)}.{fqdn}"
                endpoint_names[ep.ip] = host
        if not endpoint_names:
            continue  # no endpoints: the name does not exist (NXDOMAIN)
        a[fqdn] = sorted(endpoint_names, key=lambda ip: tuple(map(int, ip.split("."))))
        names.add(fqdn)
        for ip, host in endpoint_names.items():
            a.setdefault(host, []).append(ip)
            names.add(host)
            ptr.setdefault(_reverse(ip), host)
        for port in svc.ports:
            if port.name:
                srv[f"_{port.name}._{port.protocol.lower()}.{fqdn}"] = [
                    [0, 100, ep.port, endpoint_names[ep.ip]] for ep in port.endpoints]
    for key in srv:
        names.add(key)
    return {"domain": d, "version": SCHEMA_VERSION, "a": a, "srv": srv, "cname": cname,
            "ptr": ptr, "names": sorted(names),
            "pods": {p.ip: p.namespace for p in plan.pods.values()},
            "reverse_zones": [_reverse_zone(plan.cluster.service_cidr),
                              _reverse_zone(plan.cluster.pod_cidr)]}


def _reverse_zone(cidr: str) -> str:
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
    if pod.dns_policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        nameservers = [cluster.cluster_dns]
        searches = [f"{pod.namespace}.svc.{d}", f"svc.{d}", d]
        options = {"ndots": "5"}
    elif pod.dns_policy == "Default":
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
    static names it was given (the internet's resolver). Ready once it listens on UDP and
    TCP (two lines in its log)."""
    extra = p.argv[1:] or ("--zone", f"{lab_dir}/{ZONE_FILE}", *(
        ("--upstream", plan.internet_ip) if plan.cluster.upstream_dns else ()))
    argv = (sys.executable, "-m", "netlab.dns_server", *extra)
    return (Process(p.pod, p.container, p.netns, argv, p.env, p.binds, p.workdir),
            ReadyWhen(p.pod, p.container, f"{p.workdir}/{p.container}.log", 2))
