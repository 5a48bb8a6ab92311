"""Services, their Endpoints and EndpointSlices as the API shows them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from netlab.plan import Plan, _k8s_suffix


def _host_port(ep: Any) -> str:
    """ip:port, an IPv6 address in brackets (net.JoinHostPort, as kubectl prints it)."""
    return f"[{ep.ip}]:{ep.port}" if ":" in ep.ip else f"{ep.ip}:{ep.port}"

@dataclass(frozen=True)
class ServiceInfo:
    """A Service as the lab runs it: its addresses and, per port, its endpoints."""

    namespace: str
    name: str
    type: str
    cluster_ip: str | None
    external_ip: str | None  # the LoadBalancer address
    announced_by: str | None  # the node answering ARP for it
    selector: dict[str, str] | None
    ports: tuple[Any, ...]  # features.services.ServicePortPlan
    external_name: str | None = None
    external_traffic_policy: str = "Cluster"
    internal_traffic_policy: str = "Cluster"
    affinity_timeout: int | None = None
    not_ready_reasons: dict[str, str] = field(default_factory=dict, hash=False)  # pod -> why
    endpoint_objects: tuple[str, ...] = ()  # no selector: the objects its endpoints come from
    pending: dict[str, str] = field(default_factory=dict, hash=False)  # selected pod -> why
    # dual-stack: spec.ipFamilies (the first is the primary: `cluster_ip` is its address,
    # spec.clusterIP), spec.ipFamilyPolicy, spec.clusterIPs (in ipFamilies order)
    ip_families: tuple[str, ...] = ("IPv4",)
    ip_family_policy: str | None = "SingleStack"
    cluster_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()  # every LoadBalancer address, in ipFamilies order
    external_ips: tuple[str, ...] = ()  # spec.externalIPs
    external_announcers: tuple[tuple[str, str | None], ...] = ()  # (address, node holding it)
    source_ranges: tuple[str, ...] = ()  # spec.loadBalancerSourceRanges
    allocate_lb_node_ports: bool | None = None
    health_check_node_port: int | None = None
    traffic_distribution: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def primary_family(self) -> str:
        return self.ip_families[0] if self.ip_families else "IPv4"

    def _family(self, p: Any, ready: bool, family: str | None = None) -> tuple[Any, ...]:
        """A port's endpoints (ready or not) of one family, by default the primary one (the
        Endpoints object and the ENDPOINTS column show those, as the endpoints controller
        fills them)."""
        if (family or self.primary_family) == "IPv6":
            return getattr(p, "endpoints6" if ready else "not_ready6", ())
        return p.endpoints if ready else p.not_ready

    @property
    def not_ready(self) -> list[str]:
        """Distinct ip:port of the selected pods that are not ready (notReadyAddresses)."""
        return sorted({_host_port(ep) for p in self.ports for ep in self._family(p, False)})

    @property
    def endpoints(self) -> list[str]:
        """Distinct ip:port of every endpoint, over all ports."""
        return sorted({_host_port(ep) for p in self.ports for ep in self._family(p, True)})

    def to_k8s(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type, "ports": []}
        if self.type == "ExternalName":
            spec["externalName"] = self.external_name
        else:
            spec["clusterIP"] = self.cluster_ip or "None"
            spec["clusterIPs"] = list(self.cluster_ips) or [self.cluster_ip or "None"]
            spec["ipFamilies"] = list(self.ip_families)
            spec["ipFamilyPolicy"] = self.ip_family_policy
        if self.selector is not None:
            spec["selector"] = dict(self.selector)
        if self.external_ips:
            spec["externalIPs"] = list(self.external_ips)
        if self.source_ranges:
            spec["loadBalancerSourceRanges"] = list(self.source_ranges)
        if self.allocate_lb_node_ports is not None:
            spec["allocateLoadBalancerNodePorts"] = self.allocate_lb_node_ports
        if self.health_check_node_port:
            spec["healthCheckNodePort"] = self.health_check_node_port
        if self.traffic_distribution:
            spec["trafficDistribution"] = self.traffic_distribution
        for p in self.ports:
            port = {"name": p.name, "port": p.port, "protocol": p.protocol,
                    "targetPort": p.target}
            if p.node_port:
                port["nodePort"] = p.node_port
            spec["ports"].append({k: v for k, v in port.items() if v is not None})
        spec["sessionAffinity"] = "ClientIP" if self.affinity_timeout else "None"
        if self.type in ("NodePort", "LoadBalancer") or self.external_ips:  # externally
            spec["externalTrafficPolicy"] = self.external_traffic_policy  # accessible ones
        spec["internalTrafficPolicy"] = self.internal_traffic_policy
        status: dict[str, Any] = {"loadBalancer": {}}
        if self.external_ip:
            status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}
                                                  for ip in self.lb_ips or (self.external_ip,)]}
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec, "status": status}

    def endpoints_k8s(self) -> dict[str, Any]:
        """The Service's Endpoints object, as `kubectl get endpoints -o json` shows it:
        ready pods under addresses, the others under notReadyAddresses (an address outside
        the cluster, from a Service without a selector, has no targetRef)."""
        by_pod: dict[str, list] = {}
        pods: dict[str, tuple[Any, bool]] = {}
        for p in self.ports:
            for ready, eps in ((True, self._family(p, True)), (False, self._family(p, False))):
                for ep in eps:
                    by_pod.setdefault(ep.pod or ep.ip, []).append(
                        {k: v for k, v in (("name", p.name), ("port", ep.port),
                                           ("protocol", p.protocol)) if v is not None})
                    pods[ep.pod or ep.ip] = (ep, ready)
        subsets: dict[str, dict] = {}
        for pod, ports in sorted(by_pod.items()):
            ep, ready = pods[pod]
            subset = subsets.setdefault(repr(ports), {"ports": ports})
            address: dict[str, Any] = {"ip": ep.ip}
            if ep.node:
                address["nodeName"] = ep.node
            if ep.pod:
                ns, name = ep.pod.split("/")
                address["targetRef"] = {"kind": "Pod", "namespace": ns, "name": name}
            subset.setdefault("addresses" if ready else "notReadyAddresses", []).append(address)
        return {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "subsets": list(subsets.values())}

    def why_no_endpoints(self) -> str | None:
        """For a person: why this Service has no endpoints, or None if it has some."""
        if self.type == "ExternalName" or self.endpoints:
            return None
        if self.selector is None:
            return self._why_no_manual_endpoints()
        waiting = sorted({ep.pod or ep.ip for p in self.ports for ep in self._family(p, False)})
        if waiting:
            why = "; ".join(f"pod {pod} not ready: {self.not_ready_reasons.get(pod) or '?'}"
                            for pod in waiting)
            return f"Service {self.key} has no ready endpoints: {why}"
        if self.pending:  # selected pods that no node accepts
            why = "; ".join(f"pod {pod} is Pending: {reason}"
                            for pod, reason in sorted(self.pending.items()))
            return (f"Service {self.key} has no endpoints: the pods it selects are not "
                    f"scheduled: {why}")
        wanted = ",".join(f"{k}={v}" for k, v in self.selector.items())
        return (f"Service {self.key} has no endpoints: no pod in namespace {self.namespace} "
                f"has labels {wanted}" + ("" if self.ports and all(
                    isinstance(p.target, int) for p in self.ports) else
                    " (or none declares the named targetPort)"))


    def _why_no_manual_endpoints(self) -> str:
        if not self.endpoint_objects:
            return (f"Service {self.key} has no selector and no Endpoints/EndpointSlice "
                    "objects")
        objects = ", ".join(self.endpoint_objects)
        waiting = sorted({ep.pod or ep.ip for p in self.ports for ep in self._family(p, False)})
        if waiting:
            return (f"Service {self.key} has no selector and no ready endpoints: {objects} "
                    f"mark {', '.join(waiting)} not ready")
        names = ", ".join(f"{p.name or '(unnamed)'}/{p.protocol}" for p in self.ports)
        return (f"Service {self.key} has no selector and {objects} list no address on a port "
                f"named as the Service's ({names}): a port is matched by its name")

    def endpoint_slices(self) -> list[EndpointSliceInfo]:
        """The EndpointSlices kube-proxy reads for this Service, as the lab computed them:
        one per distinct set of ports (named targetPorts can differ per pod), as the
        EndpointSlice controller makes them. A Service without a selector gets one slice
        merging its Endpoints/EndpointSlice objects. Dual-stack: slices per family of the
        Service (addressType IPv4, IPv6), as getAddressTypesForService makes them."""
        if self.type == "ExternalName" or (self.selector is None and not self.endpoint_objects):
            return []
        return [sl for family in self.ip_families for sl in self._slices(family)]

    def _slices(self, family: str) -> list[EndpointSliceInfo]:
        addresses: dict[str, tuple[Any, dict[tuple[str, int, str], bool]]] = {}
        for p in self.ports:
            for ready in (True, False):
                for ep in self._family(p, ready, family):
                    entry = addresses.setdefault(ep.ip, (ep, {}))
                    entry[1][(p.name or "", ep.port, p.protocol)] = ready
        groups: dict[tuple, list[tuple[Any, bool]]] = {}
        for ip in sorted(addresses, key=ipaddress.ip_address):
            ep, ports = addresses[ip]
            groups.setdefault(tuple(sorted(ports)), []).append((ep, all(ports.values())))
        if not groups and self.selector is not None:  # the controller keeps an empty slice
            groups[()] = []
        managed = ("endpointslice-controller.k8s.io" if self.selector is not None else
                   "endpointslicemirroring-controller.k8s.io"
                   if all(o.startswith("Endpoints ") for o in self.endpoint_objects)
                   else "netlab")
        tag = "" if family == "IPv4" else f"/{family}"  # (IPv4 names as before dual-stack)
        hints = self.traffic_distribution if self.selector is not None else None
        return [EndpointSliceInfo(
            self.namespace, f"{self.name}-{_k8s_suffix(f'{self.key}/{ports}{tag}', 5)}",
            self.name, managed, ports, tuple(eps), self.endpoint_objects, family, hints)
            for ports, eps in groups.items()]

@dataclass(frozen=True)
class EndpointSliceInfo:
    """One EndpointSlice of a Service (discovery.k8s.io/v1)."""

    namespace: str
    name: str  # <service>-<hash>
    service: str
    managed_by: str
    ports: tuple[tuple[str, int, str], ...]  # (name, port, protocol)
    endpoints: tuple[tuple[Any, bool], ...]  # (plan.Endpoint, ready)
    merged_from: tuple[str, ...] = ()
    address_type: str = "IPv4"
    traffic_distribution: str | None = None  # the Service's, when the controller hints

    def to_k8s(self) -> dict[str, Any]:
        endpoints = []
        for ep, ready in self.endpoints:
            e: dict[str, Any] = {"addresses": [ep.ip], "conditions": {
                "ready": ready, "serving": ready, "terminating": False}}
            if ep.node:
                e["nodeName"] = ep.node
            zone = getattr(ep, "zone", None)
            if zone:
                e["zone"] = zone
            # trafficdist.ReconcileHints: a ready endpoint's own zone (and node, for
            # PreferSameNode)
            if self.traffic_distribution and ready:
                hints: dict[str, Any] = {}
                if zone:
                    hints["forZones"] = [{"name": zone}]
                if ep.node and self.traffic_distribution == "PreferSameNode":
                    hints["forNodes"] = [{"name": ep.node}]
                if hints:
                    e["hints"] = hints
            if ep.pod:
                ns, name = ep.pod.split("/")
                e["targetRef"] = {"kind": "Pod", "namespace": ns, "name": name}
            endpoints.append(e)
        meta: dict[str, Any] = {
            "name": self.name, "namespace": self.namespace,
            "labels": {"kubernetes.io/service-name": self.service,
                       "endpointslice.kubernetes.io/managed-by": self.managed_by},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": self.service,
                                 "controller": True, "blockOwnerDeletion": True}]}
        if self.merged_from:
            meta["annotations"] = {"netlab.dev/merged-from": ", ".join(self.merged_from)}
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": meta, "addressType": self.address_type,
                "endpoints": endpoints or None,
                "ports": [{"name": n, "port": port, "protocol": proto}
                          for n, port, proto in self.ports] or None}

def service_info(s: Any, plan: Plan | None = None) -> ServiceInfo:
    reasons: dict[str, str] = {}
    if plan is not None:
        reasons = {ep.pod: plan.pods[ep.pod].not_ready_reason for p in s.ports
                   for ep in (*p.not_ready, *getattr(p, "not_ready6", ())) if ep.pod in plan.pods}
    pending = {k: pp.reason for k, pp in (plan.pending if plan is not None else {}).items()
               if s.selector and pp.namespace == s.namespace
               and all(pp.labels.get(a) == b for a, b in s.selector.items())}
    cluster_ips = tuple(getattr(s, "cluster_ips", None) or ([s.cluster_ip] if s.cluster_ip else []))
    lb_ips = tuple(getattr(s, "lb_ips", ())) or ((s.lb_ip,) if s.lb_ip else ())
    # the node answering ARP for the LoadBalancer address, else for its external IPs
    holders = sorted({n for _, n in getattr(s, "external_announcers", ()) if n})
    announced = s.announcer if lb_ips else (",".join(holders) or None)
    return ServiceInfo(s.namespace, s.name, s.type, cluster_ips[0] if cluster_ips else None,
                       lb_ips[0] if lb_ips else None, announced,
                       s.selector, s.ports, s.external_name, s.external_traffic_policy,
                       s.internal_traffic_policy, s.affinity_timeout, reasons,
                       tuple(getattr(s, "endpoint_objects", ())), pending,
                       tuple(getattr(s, "ip_families", ("IPv4",))),
                       getattr(s, "ip_family_policy", "SingleStack"), cluster_ips, lb_ips,
                       tuple(getattr(s, "external_ips", ())),
                       tuple(getattr(s, "external_announcers", ())),
                       tuple(getattr(s, "source_ranges", ())),
                       getattr(s, "allocate_lb_node_ports", None),
                       getattr(s, "health_check_node_port", None),
                       getattr(s, "traffic_distribution", None))
