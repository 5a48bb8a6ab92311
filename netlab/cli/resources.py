"""The resource types `netlab get` knows (kubectl's names for them, how to read them from a
Lab, their table columns) and the listings made of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netlab import lab as api
from netlab.cli.printers import Column, Listing
from netlab.errors import InputError
from netlab.views import (
    EndpointSliceInfo,
    JobInfo,
    PodInfo,
    ServiceInfo,
    WorkloadInfo,
    age,
)


def _labels(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or "<none>"


def _ports(s: ServiceInfo) -> str:
    out = []
    for p in s.ports:
        out.append(f"{p.port}:{p.node_port}/{p.protocol}" if p.node_port
                   else f"{p.port}/{p.protocol}")
    return ",".join(out) or "<none>"


def _endpoints(s: ServiceInfo) -> str:
    eps = s.endpoints
    if not eps:
        return "<none>"
    return ",".join(eps[:3]) + (f" + {len(eps) - 3} more" if len(eps) > 3 else "")


def _slice_ports(sl: EndpointSliceInfo) -> str:
    return ",".join(str(port) for _, port, _ in sl.ports) or "<unset>"


def _slice_endpoints(sl: EndpointSliceInfo) -> str:
    """As kubectl prints them: the first three addresses, then how many more."""
    ips = [ep.ip for ep, _ in sl.endpoints]
    if not ips:
        return "<unset>"
    return ",".join(ips[:3]) + (f" + {len(ips) - 3} more..." if len(ips) > 3 else "")


def _external(s: ServiceInfo) -> str:
    # kubectl's column: every status.loadBalancer.ingress address, then spec.externalIPs,
    # comma-separated; <pending> for a LoadBalancer with neither
    external = ",".join([*(s.lb_ips or ([s.external_ip] if s.external_ip else [])),
                         *s.external_ips]) or (
        s.external_name if s.type == "ExternalName" else None)
    if s.type == "LoadBalancer" and not external:
        external = "<pending>"
    return external or "<none>"


def _no_endpoints(svcs: list[ServiceInfo]) -> list[tuple[str, str]]:
    return [("note", h) for s in svcs if (h := s.why_no_endpoints())]


def _name(o: Any) -> str:
    return o.name


NAMESPACE = Column("NAMESPACE", lambda o: o.namespace)
LABELS = Column("LABELS", lambda o: _labels(o.to_k8s()["metadata"].get("labels")))


@dataclass(frozen=True)
class Kind:
    """A resource type `get` knows: its names, how to read it, how to show it."""

    plural: str
    aliases: tuple[str, ...]
    singular: str  # -o name prints singular/NAME (kubectl's resource[.group])
    namespaced: bool
    read: Callable[[api.Lab, str | None], list[Any]]  # namespace, None for all
    columns: tuple[Column, ...]
    document: Callable[[Any], dict[str, Any]] = lambda o: o.to_k8s()
    notes: Callable[[list[Any]], list[tuple[str, str]]] | None = None

    @property
    def not_found_name(self) -> str:
        """As kubectl's NotFound names the type: pods, ingresses.networking.k8s.io."""
        group = self.singular.partition(".")[2]
        return f"{self.plural}.{group}" if group else self.plural


def _restarts(p: PodInfo) -> str:
    """kubectl's RESTARTS: the count, and how long ago the last one was."""
    if not p.restarts:
        return "0"
    last = max((c.started_at for c in p.containers if c.restarts), default=0.0)
    return f"{p.restarts} ({age(time.time() - last)} ago)" if last else str(p.restarts)


def _job_age(j: JobInfo) -> str:
    return age(time.time() - j.job.start_time) if j.job.start_time else "<unknown>"


def _workload_age(w: WorkloadInfo) -> str:
    return age(time.time() - w.created) if w.created else "<unknown>"


def _workloads(kind: str) -> Callable[[api.Lab, str | None], list[Any]]:
    return lambda lab, ns: lab.workloads(kind, ns)


def _count(attr: str) -> Column:
    return Column(attr.upper(), lambda w: str(getattr(w, attr)))


def _gateway_api(kind: str) -> Callable[[api.Lab, str | None], list[Any]]:
    return lambda lab, ns: lab.gateway_api_objects(kind, ns)


def _gateway_age(o: Any) -> str:
    return age(time.time() - o.created) if o.created else "<unknown>"


def _gateway_problems(items: list[Any]) -> list[tuple[str, str]]:
    return [("problem", p) for o in items for p in o.problems]


_WORKLOAD_WIDE = (Column("CONTAINERS", lambda w: w.container_names, wide=True),
                  Column("IMAGES", lambda w: w.images, wide=True))
_SELECTOR = Column("SELECTOR", lambda w: w.selector, wide=True)
_REPLICAS = (Column("NAME", _name), _count("desired"), _count("current"), _count("ready"),
             Column("AGE", _workload_age), *_WORKLOAD_WIDE, _SELECTOR)


KINDS = (
    Kind("pods", ("pod", "po"), "pod", True, lambda lab, ns: lab.pods(ns), (
        Column("NAME", _name), Column("READY", lambda p: p.ready),
        Column("STATUS", lambda p: p.status), Column("RESTARTS", _restarts),
        Column("AGE", lambda p: age(time.time() - p.created) if p.created else "<unknown>"),
        Column("IP", lambda p: p.ip or "<none>"),
        Column("NODE", lambda p: p.node or "<none>"), Column("LABELS", lambda p: _labels(p.labels),
                                                 wide=True))),
    Kind("services", ("service", "svc"), "service", True, lambda lab, ns: lab.services(ns), (
        Column("NAME", _name), Column("TYPE", lambda s: s.type),
        Column("CLUSTER-IP", lambda s: s.cluster_ip or "None"),
        Column("EXTERNAL-IP", _external), Column("PORT(S)", _ports),
        Column("ENDPOINTS", lambda s: _endpoints(s) if s.type != "ExternalName" else "-"),
        Column("SELECTOR", lambda s: _labels(s.selector), wide=True),
        Column("ANNOUNCED-BY", lambda s: s.announced_by or "-", wide=True)),
        notes=_no_endpoints),
    Kind("endpoints", ("endpoint", "ep"), "endpoints", True, lambda lab, ns: lab.services(ns),
         (Column("NAME", _name), Column("ENDPOINTS", _endpoints)),
         document=lambda s: s.endpoints_k8s(), notes=_no_endpoints),
    Kind("ingresses", ("ingress", "ing"), "ingress.networking.k8s.io", True,
         lambda lab, ns: lab.ingresses(ns), (
             Column("NAME", _name), Column("CLASS", lambda i: i.class_name or "<none>"),
             Column("HOSTS", lambda i: ",".join(i.hosts)),
             Column("ADDRESS", lambda i: i.address or ""),
             Column("PORTS", lambda i: ",".join(map(str, i.ports))),
             Column("RULES", lambda i: "\n".join(f"{h}{p or ''} ({pt}) -> {b}"
                                                 for h, p, pt, b in i.rules), wide=True)),
         notes=lambda items: [("problem", p) for i in items for p in i.problems]),
    Kind("nodes", ("node", "no"), "node", False, lambda lab, ns: lab.nodes(), (
        Column("NAME", _name), Column("STATUS", lambda n: "Ready"),
        Column("INTERNAL-IP", lambda n: n.internal_ips[0]),
        Column("POD-CIDR", lambda n: ",".join(n.pod_cidrs)),
        Column("PODS", lambda n: str(n.pods)), Column("BACKEND", lambda n: n.backend, wide=True),
        Column("VTEP-MAC", lambda n: ",".join(m for m in (n.vtep_mac, n.vtep_mac6) if m)
               or "-", wide=True),
        Column("BGP", lambda n: n.bgp_state, wide=True),
        Column("LABELS", lambda n: _labels(n.labels), wide=True))),
    Kind("namespaces", ("namespace", "ns"), "namespace", False,
         lambda lab, ns: lab.namespaces(), (
             Column("NAME", _name), Column("STATUS", lambda n: "Active"),
             Column("LABELS", lambda n: _labels(n.labels), wide=True))),
    Kind("endpointslices", ("endpointslice",), "endpointslice.discovery.k8s.io", True,
         lambda lab, ns: [sl for s in lab.services(ns) for sl in s.endpoint_slices()],
         (Column("NAME", _name), Column("ADDRESSTYPE", lambda sl: sl.address_type),
          Column("PORTS", _slice_ports), Column("ENDPOINTS", _slice_endpoints))),
    Kind("clusternetworkpolicies", ("clusternetworkpolicy", "cnp"),
         "clusternetworkpolicy.policy.networking.k8s.io", False,
         lambda lab, ns: lab.cluster_policy_infos(), (
             Column("NAME", _name), Column("TIER", lambda p: p.tier),
             Column("PRIORITY", lambda p: str(p.priority)),
             Column("AGE", lambda p: age(time.time() - p.created) if p.created else "<unknown>"),
             Column("KIND", lambda p: p.kind, wide=True),
             Column("SUBJECT", lambda p: p.subject, wide=True),
             Column("RULES", lambda p: f"{p.ingress} ingress, {p.egress} egress", wide=True))),
    Kind("ingressclasses", ("ingressclass",), "ingressclass.networking.k8s.io", False,
         lambda lab, ns: lab.ingress_classes(), (
             Column("NAME", lambda c: c.name + (" (default)" if c.is_default else "")),
             Column("CONTROLLER", lambda c: c.controller),
             Column("PARAMETERS", lambda c: c.parameters_text),
             Column("SERVED", lambda c: "yes" if c.served else "no", wide=True))),
    # Gateway API, with the printer columns of its CRDs (and -o wide: what a person asks next)
    Kind("gatewayclasses", ("gatewayclass", "gc"), "gatewayclass.gateway.networking.k8s.io",
         False, _gateway_api("GatewayClass"), (
             Column("NAME", _name),
             Column("CONTROLLER", lambda c: c.spec.get("controllerName", "")),
             Column("ACCEPTED", lambda c: c.condition("Accepted") if c.served else "-"),
             Column("AGE", _gateway_age),
             Column("DESCRIPTION", lambda c: c.spec.get("description", ""), wide=True)),
         notes=_gateway_problems),
    Kind("gateways", ("gateway", "gtw"), "gateway.gateway.networking.k8s.io", True,
         _gateway_api("Gateway"), (
             Column("NAME", _name), Column("CLASS", lambda g: g.spec.get("gatewayClassName")),
             Column("ADDRESS", lambda g: g.addresses),
             Column("PROGRAMMED", lambda g: g.condition("Programmed") if g.served else "-"),
             Column("AGE", _gateway_age),
             Column("LISTENERS", lambda g: g.listeners, wide=True),
             Column("ATTACHED-ROUTES", lambda g: g.attached, wide=True)),
         notes=_gateway_problems),
    Kind("httproutes", ("httproute",), "httproute.gateway.networking.k8s.io", True,
         _gateway_api("HTTPRoute"), (
             Column("NAME", _name), Column("HOSTNAMES", lambda r: r.hostnames),
             Column("AGE", _gateway_age),
             Column("PARENTS", lambda r: r.parents, wide=True)),
         notes=_gateway_problems),
    Kind("referencegrants", ("referencegrant", "refgrant"),
         "referencegrant.gateway.networking.k8s.io", True, _gateway_api("ReferenceGrant"), (
             Column("NAME", _name), Column("AGE", _gateway_age),
             Column("FROM-TO", lambda r: r.grants, wide=True))),
    Kind("jobs", ("job",), "job.batch", True, lambda lab, ns: lab.jobs(ns), (
        Column("NAME", _name), Column("STATUS", lambda j: j.status),
        Column("COMPLETIONS", lambda j: j.completions),
        Column("DURATION", lambda j: j.duration(time.time())), Column("AGE", _job_age),
        Column("SELECTOR", lambda j: _labels(j.job.selector), wide=True))),
    # the workload kinds netlab plans into pods, with kubectl's columns
    Kind("deployments", ("deployment", "deploy"), "deployment.apps", True,
         _workloads("Deployment"), (
             Column("NAME", _name), Column("READY", lambda w: f"{w.ready}/{w.replicas}"),
             Column("UP-TO-DATE", lambda w: str(w.updated)), _count("available"),
             Column("AGE", _workload_age), *_WORKLOAD_WIDE, _SELECTOR)),
    Kind("replicasets", ("replicaset", "rs"), "replicaset.apps", True,
         _workloads("ReplicaSet"), _REPLICAS),
    Kind("replicationcontrollers", ("replicationcontroller", "rc"), "replicationcontroller",
         True, _workloads("ReplicationController"), _REPLICAS),
    Kind("statefulsets", ("statefulset", "sts"), "statefulset.apps", True,
         _workloads("StatefulSet"), (
             Column("NAME", _name), Column("READY", lambda w: f"{w.ready}/{w.replicas}"),
             Column("AGE", _workload_age), *_WORKLOAD_WIDE)),
    Kind("daemonsets", ("daemonset", "ds"), "daemonset.apps", True,
         _workloads("DaemonSet"), (
             Column("NAME", _name), _count("desired"), _count("current"), _count("ready"),
             Column("UP-TO-DATE", lambda w: str(w.updated)), _count("available"),
             Column("NODE SELECTOR", lambda w: _labels(w.node_selector)),
             Column("AGE", _workload_age), *_WORKLOAD_WIDE, _SELECTOR)),
)
_BY_NAME = {n: k for k in KINDS for n in (k.plural, *k.aliases, k.singular)}
TYPES_HELP = ", ".join(f"{k.plural} ({', '.join(k.aliases)})" for k in KINDS)


def kind(name: str) -> Kind:
    k = _BY_NAME.get(name.lower())
    if k is None:
        raise InputError(f"the lab has no resource type {name!r}: netlab get knows "
                         f"{TYPES_HELP}")
    return k


def parse_args(args: list[str]) -> list[tuple[Kind, list[str]]]:
    """kubectl's forms: TYPE[,TYPE...] [NAME...], or TYPE/NAME [TYPE/NAME...]."""
    if not args:
        raise InputError(f"say what to get: netlab get TYPE [NAME], where TYPE is one of "
                         f"{TYPES_HELP}")
    if "/" in args[0]:
        wanted: dict[str, tuple[Kind, list[str]]] = {}
        for a in args:
            t, slash, name = a.partition("/")
            if not slash or not t or not name or "," in t:
                raise InputError(f"{a!r}: once one argument is TYPE/NAME, all must be "
                                 "(e.g. netlab get pod/web-1 svc/web)")
            k = kind(t)
            wanted.setdefault(k.plural, (k, []))[1].append(name)
        return list(wanted.values())
    kinds = list({k.plural: k for k in map(kind, filter(None, args[0].split(",")))}.values())
    for a in args[1:]:
        if "/" in a:
            raise InputError(f"{a!r}: give either TYPE NAME... or TYPE/NAME..., not both")
    return [(k, list(args[1:])) for k in kinds]


def pods_listing(pods: list[PodInfo], all_namespaces: bool) -> Listing:
    return listing(KINDS[0], pods, all_namespaces)


def listing(k: Kind, items: list[Any], all_namespaces: bool, *, show_labels: bool = False,
            namespace: str = "default") -> Listing:
    columns = list(k.columns)
    if show_labels and not any(c.header == "LABELS" for c in columns):
        columns.append(LABELS)
    elif show_labels:  # the wide-only LABELS column, shown always
        columns = [Column(c.header, c.cell) if c.header == "LABELS" else c for c in columns]
    if all_namespaces and k.namespaced:
        columns.insert(0, NAMESPACE)
    where = f" in {namespace} namespace" if k.namespaced and not all_namespaces else ""
    return Listing(k.singular, items, columns, _name, k.document, k.notes,
                   empty=f"No resources found{where}.")
