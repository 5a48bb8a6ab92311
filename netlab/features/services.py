"""Services, planned: virtual addresses (ClusterIP, NodePort, LoadBalancer), endpoints,
and the ports each pod's responder must answer on. Pure.

Allocation is deterministic and stable: a Service keeps its addresses and node ports for as
long as it exists in the lab; new ones take the lowest free value (the API server picks at
random; a lab prefers reproducible addresses).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import replace

from netlab.errors import InputError
from netlab.model import (
    Cluster,
    EndpointAddress,
    EndpointGroup,
    EndpointsObject,
    Manifests,
    Service,
)
from netlab.plan import Endpoint, Plan, PodPlan, ServicePlan, ServicePortPlan
from netlab.scheduling import node_labels

__all__ = ["Endpoint", "ServicePlan", "ServicePortPlan", "plan_services"]

NODE_PORT_RANGE = (30000, 32767)
RESPONDER_OFF = "netlab.dev/responder"  # annotation: "off" disables a pod's responder
ZONE_LABEL = "topology.kubernetes.io/zone"


def _where(svc: Service, field_: str) -> dict:
    return {"file": str(svc.source) if svc.source else None, "obj": f"Service {svc.namespace}/"
            f"{svc.name}", "field": field_}


def _resolve_target(port_target: int | str | None, port: int, pod_ports: dict[tuple[str, str], int],
                    protocol: str) -> int | None:
    if port_target is None:
        return port
    if isinstance(port_target, int):
        return port_target
    return pod_ports.get((port_target, protocol))


def plan_services(m: Manifests, plan: Plan, previous: Plan | None = None,
                  readiness: dict[str, tuple[bool, str]] | None = None) -> Plan:
    """Return `plan` with services and each pod's responder ports filled in. `readiness`:
    what the lab's agent last saw of each pod (ready, why not); a pod it has not reported
    on is ready unless a container has a readiness probe (Kubernetes: not ready until the
    probe first succeeds) or it has init containers to run. Only ready pods are endpoints,
    unless the Service publishes not-ready addresses; the others are listed as not ready,
    with the reason."""
    readiness = readiness or {}

    def ready(p: PodPlan) -> tuple[bool, str]:
        if p.key in readiness:
            return readiness[p.key]
        if any(c.argv and not c.sidecar for c in p.init_containers):
            return (False, "initializing: its init containers have not completed")
        return (False, "waiting for its first readiness probe") if p.readiness_probed \
            else (True, "")

    plan = replace(plan, pods={k: replace(p, ready=r[0], not_ready_reason=r[1])
                               for k, p in plan.pods.items() for r in (ready(p),)})
    cluster = plan.cluster
    nets: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {
        f: ipaddress.ip_network(cluster.cidr("service", f)) for f in cluster.families
        if cluster.cidr("service", f)}  # the primary family's first: the default family
    prev = previous.services if previous else {}
    families = {key: _ip_families(svc, nets, prev.get(key))
                for key, svc in sorted(m.services.items())}
    pods = list(plan.pods.values())
    pod_ports = {p.key: {(cp[0], cp[1]): cp[2] for cp in p.named_ports} for p in pods}
    # pods by (namespace, label, value), and by namespace: a selector looks at the pods
    # carrying its first label, not at every pod (1,000 Services over many pods)
    by_label: dict[tuple[str, str, str], list[PodPlan]] = {}
    by_ns: dict[str, list[PodPlan]] = {}
    for p in pods:
        by_ns.setdefault(p.namespace, []).append(p)
        for k, v in p.labels.items():
            by_label.setdefault((p.namespace, k, v), []).append(p)

    pods_by_ip = {ip: p for p in pods for ip in (p.ip, p.ip6) if ip}
    slices: dict[tuple[str, str], list[EndpointsObject]] = {}
    for o in sorted(m.endpoint_slices.values(), key=lambda o: o.name):
        if o.service is not None and o.address_type in ("IPv4", "IPv6"):
            slices.setdefault((o.namespace, o.service), []).append(o)

    def selected_by(namespace: str, selector: dict[str, str]) -> list[PodPlan]:
        if not selector:
            return list(by_ns.get(namespace, []))
        (k, v), *rest = selector.items()
        return [p for p in by_label.get((namespace, k, v), [])
                if all(p.labels.get(k2) == v2 for k2, v2 in rest)]

    # Addresses, per family: manifest values first (checked), then what existing Services
    # had, then new.
    # reserved: kube-dns in each family, and the primary range's first address (the
    # `kubernetes` Service's, single-stack in the primary family)
    used: dict[str, set[str]] = {"IPv4": set(), "IPv6": set()}
    for family, ip in cluster.dns_ips().items():
        used[family].add(ip)
    first = next(iter(nets.values()))
    used["IPv6" if first.version == 6 else "IPv4"].add(str(first.network_address + 1))
    used_ports: set[int] = set()
    # node ports (nodePorts and healthCheckNodePorts) the lab's Services hold already: one
    # asked for by another Service is taken (the allocator is shared)
    held = {port: key for key, old in prev.items() if key in m.services
            for port in (*(p.node_port for p in old.ports), old.health_check_node_port)
            if port}
    used_lb: set[str] = set()  # both families' LoadBalancer addresses
    wanted_by: dict[str, dict[str, str | None]] = {"IPv4": {}, "IPv6": {}}
    for key, svc in sorted(m.services.items()):
        if svc.type == "ExternalName" or svc.cluster_ip == "None":
            for w in wanted_by.values():
                w[key] = None
            continue
        for i, given in enumerate(svc.cluster_ips):
            ip = ipaddress.ip_address(given)
            family = f"IPv{ip.version}"
            field_ = "spec.clusterIP" if i == 0 else f"spec.clusterIPs[{i}]"
            if ip not in nets[family]:
                raise InputError(f"{ip} is not inside serviceCIDR {nets[family]}",
                                 **_where(svc, field_))
            wanted = wanted_by[family]
            taken = [k for k, v in wanted.items() if v == str(ip)]
            if taken or (str(ip) in used[family] and not _is_dns(svc, cluster.cluster_dns)):
                raise InputError(f"{ip} is already allocated"
                                 f"{' to Service ' + taken[0] if taken else ''}",
                                 **_where(svc, field_))
            wanted[key] = str(ip)
        for p in svc.ports:
            if p.node_port is not None:
                if p.node_port in used_ports or held.get(p.node_port, key) != key:
                    raise InputError(f"nodePort {p.node_port} is already allocated",
                                     **_where(svc, "spec.ports.nodePort"))
                used_ports.add(p.node_port)
        if svc.health_check_node_port is not None and needs_health_check(svc):
            _reserve_health_check_node_port(svc, prev.get(key), used_ports,
                                            held.get(svc.health_check_node_port, key) != key)
    for family, wanted in wanted_by.items():
        used[family] |= {v for v in wanted.values() if v}
    for key, old in prev.items():
        svc = m.services.get(key)
        if svc is None:
            continue
        for family in families[key][1]:
            wanted, old_ip = wanted_by[family], old.family_cluster_ip(family)
            if key not in wanted and old_ip and old_ip not in used[family]:
                wanted[key] = old_ip
                used[family].add(old_ip)
        for p in old.ports:
            if p.node_port:
                used_ports.add(p.node_port)
        if old.health_check_node_port and needs_health_check(svc):
            used_ports.add(old.health_check_node_port)
        if old.lb_ip:
            used_lb.add(old.lb_ip)
        if old.lb_ip6:
            used_lb.add(old.lb_ip6)
    hosts = {family: net.hosts() for family, net in nets.items()}
    pool = [str(a) for a in cluster.lb_pool()]
    # each node's topology.kubernetes.io/zone, as the EndpointSlice controller copies it
    # into its endpoints' `zone`
    zones = {n.name: z for n in cluster.nodes
             if (z := node_labels(n).get(ZONE_LABEL)) is not None}
    taken_by_lab = _lab_addresses(plan)
    services: dict[str, ServicePlan] = {}
    for key, svc in sorted(m.services.items()):
        policy, svc_families = families[key]
        for family in svc_families:
            wanted = wanted_by[family]
            if key in wanted:
                continue
            for ip in hosts[family]:
                if str(ip) not in used[family]:
                    wanted[key] = str(ip)
                    used[family].add(str(ip))
                    break
            else:
                raise InputError(f"serviceCIDR {nets[family]} is full",
                                 **_where(svc, "spec.clusterIP"))
        old = prev.get(key)
        old_ports = {(p.protocol, p.port): p.node_port for p in old.ports} if old else {}
        selected = ([] if svc.selector is None or svc.type == "ExternalName" else
                    selected_by(svc.namespace, svc.selector))
        manual = (_manual_objects(m, slices, svc, svc_families) if svc.selector is None
                  and svc.type != "ExternalName" else [])
        ports = []
        # allocateLoadBalancerNodePorts false: a LoadBalancer gets no new nodePorts; those
        # given, or allocated before, stay (the API server does not release them)
        allocate = svc.type == "NodePort" or (svc.type == "LoadBalancer"
                                              and svc.allocate_lb_node_ports is not False)
        for sp in svc.ports:
            node_port = None
            if svc.type in ("NodePort", "LoadBalancer"):
                node_port = sp.node_port or old_ports.get((sp.protocol, sp.port))
                if node_port is None and allocate:
                    node_port = _free_node_port(used_ports)
                    if node_port is None:
                        raise InputError("no free nodePort left", **_where(svc, "spec.ports"))
                if node_port is not None:
                    used_ports.add(node_port)
            target = sp.target_port if sp.target_port is not None else sp.port
            # one EndpointSlice per family of the Service (addressType IPv4, IPv6)
            eps: dict[str, tuple[list[Endpoint], list[Endpoint]]] = {}
            for family in svc_families:
                endpoints, not_ready = [], []
                if manual:
                    endpoints, not_ready = _manual_endpoints(manual, sp.name or "", sp.protocol,
                                                             pods_by_ip, family)
                for p in selected:
                    address = p.ip6 if family == "IPv6" else p.ip
                    number = _resolve_target(sp.target_port, sp.port, pod_ports[p.key],
                                             sp.protocol)
                    if number is None or not address:  # a pod without the named port (or
                        continue  # without an address of the family) is not an endpoint
                    ep = Endpoint(p.key, address, p.node, number, zones.get(p.node))
                    (endpoints if p.ready or svc.publish_not_ready else not_ready).append(ep)
                eps[family] = (endpoints, not_ready)
            v4, v6 = eps.get("IPv4", ([], [])), eps.get("IPv6", ([], []))
            ports.append(ServicePortPlan(sp.name, sp.protocol, sp.port, target, node_port,
                                         tuple(v4[0]), tuple(v4[1]), tuple(v6[0]), tuple(v6[1])))
        lb_ip, lb_ip6 = None, ""
        if svc.type == "LoadBalancer" and "IPv4" in svc_families:
            lb_ip = old.lb_ip if old and old.lb_ip else None
            if svc.load_balancer_ip and ":" not in svc.load_balancer_ip:
                if svc.load_balancer_ip not in pool:
                    raise InputError(f"{svc.load_balancer_ip} is not in the load balancer pool "
                                     f"{cluster.load_balancer_pool}",
                                     **_where(svc, "spec.loadBalancerIP"))
                lb_ip = svc.load_balancer_ip
            if lb_ip is None:
                lb_ip = next((a for a in pool if a not in used_lb), None)
            if lb_ip is not None:
                used_lb.add(lb_ip)
        if svc.type == "LoadBalancer" and "IPv6" in svc_families:
            lb_ip6 = _lb_ip6(cluster, svc, old.lb_ip6 if old else "", used_lb)
        elif svc.type == "LoadBalancer" and svc.load_balancer_ip and ":" in svc.load_balancer_ip:
            raise InputError(f"{svc.load_balancer_ip} is an IPv6 address but the Service has "
                             "no IPv6 family (ipFamilies)", **_where(svc, "spec.loadBalancerIP"))
        health = None
        if needs_health_check(svc):  # after the Service's nodePorts, as the API server does
            health = svc.health_check_node_port or (old.health_check_node_port if old else None)
            if health is None:
                health = _free_node_port(used_ports)
                if health is None:
                    raise InputError("Internal error occurred: failed to allocate a HealthCheck "
                                     "NodePort 0: range is full",
                                     **_where(svc, "spec.healthCheckNodePort"))
            used_ports.add(health)
        external_ips = _external_ips(svc, svc_families, cluster, taken_by_lab)
        services[key] = ServicePlan(
            svc.namespace, svc.name, svc.type, wanted_by["IPv4"].get(key), tuple(ports),
            dict(svc.selector) if svc.selector is not None else None, lb_ip,
            _announcer(plan, key, tuple(ports), svc.external_traffic_policy)
            if lb_ip or lb_ip6 else None,
            svc.affinity_timeout if svc.session_affinity == "ClientIP" else None,
            svc.external_traffic_policy, svc.internal_traffic_policy, svc.external_name,
            svc.publish_not_ready, tuple(f"{o.kind} {o.name}" for o in manual),
            svc_families, policy, wanted_by["IPv6"].get(key), lb_ip6, external_ips,
            source_ranges=tuple(str(ipaddress.ip_network(r, strict=False))
                                for r in svc.source_ranges) if svc.type == "LoadBalancer"
            else (),
            allocate_lb_node_ports=(svc.allocate_lb_node_ports is not False)
            if svc.type == "LoadBalancer" else None,
            health_check_node_port=health, traffic_distribution=svc.traffic_distribution)
    services = _external_ip_announcers(plan, services)

    # Each pod answers on its container ports and on numeric targetPorts aimed at it.
    serves: dict[str, set[tuple[str, int]]] = {p.key: set(p.container_ports) for p in pods}
    for s in services.values():
        for sp in s.ports:
            for ep in (*sp.endpoints, *sp.not_ready, *sp.endpoints6, *sp.not_ready6):
                # (a not-ready pod is probed there)
                if ep.pod is not None:  # (an address outside the cluster has no pod)
                    serves[ep.pod].add((sp.protocol, ep.port))
    new_pods = {}
    for p in pods:
        off = p.annotations.get(RESPONDER_OFF, "").lower() in ("off", "false", "disabled")
        new_pods[p.key] = replace(p, serves=() if off else tuple(sorted(serves[p.key])))
    return replace(plan, pods=new_pods, services=services)


def _manual_objects(m: Manifests, slices: dict[tuple[str, str], list[EndpointsObject]],
                    svc: Service, families: tuple[str, ...]) -> list[EndpointsObject]:
    """The Endpoints and EndpointSlices of a Service without a selector: kube-proxy reads
    every slice labelled kubernetes.io/service-name=NAME, and the EndpointSlice mirroring
    controller makes one from the Endpoints object of the Service's name (unless it is
    labelled endpointslice.kubernetes.io/skip-mirror=true)."""
    out = []
    ep = m.endpoints.get(f"{svc.namespace}/{svc.name}")
    if ep is not None and ep.labels.get("endpointslice.kubernetes.io/skip-mirror") != "true":
        out.append(ep)
    return out + [o for o in slices.get((svc.namespace, svc.name), [])
                  if o.address_type in families]


def _manual_endpoints(objects: list[EndpointsObject], name: str, protocol: str,
                      pods_by_ip: dict[str, PodPlan], family: str = "IPv4"
                      ) -> tuple[list[Endpoint], list[Endpoint]]:
    """One Service port's endpoints from hand-written objects, as kube-proxy takes them from
    slices: the slice port whose name (and protocol) is the Service port's, whatever its
    targetPort; addresses merged over all slices (one endpoint per ip:port); ready ones get
    traffic, and when none is ready, those still serving while terminating (kube-proxy's
    fallback). An address that is a pod's is that pod, on its node; any other is outside
    the pod network (the node is the object's nodeName, if any). `family`: the slices of
    that addressType, and an Endpoints object's addresses of that family (the mirroring
    controller makes one slice per family of them)."""
    found: dict[tuple[str, int], EndpointAddress] = {}
    version = 6 if family == "IPv6" else 4
    groups: list[EndpointGroup] = [
        EndpointGroup(tuple(a for a in g.addresses
                            if ipaddress.ip_address(a.ip).version == version), g.ports)
        for o in objects if o.kind == "Endpoints" or o.address_type == family
        for g in o.groups]
    for g in groups:
        for gp in g.ports:
            if gp.name != name or gp.protocol != protocol:
                continue
            for a in g.addresses:
                old = found.get((a.ip, gp.port))
                if old is None or (a.ready and not old.ready):
                    found[(a.ip, gp.port)] = a
    ready = [k for k, a in found.items() if a.ready]
    if not ready:
        ready = [k for k, a in found.items() if a.serving and a.terminating]

    def endpoint(ip: str, port: int) -> Endpoint:
        pod = pods_by_ip.get(ip)
        if pod is not None:
            return Endpoint(pod.key, ip, pod.node, port)
        return Endpoint(None, ip, found[(ip, port)].node_name, port)

    def order(k: tuple[str, int]) -> tuple:
        return (ipaddress.ip_address(k[0]), k[1])

    return ([endpoint(*k) for k in sorted(ready, key=order)],
            [endpoint(*k) for k in sorted(set(found) - set(ready), key=order)])


def _other(family: str) -> str:
    return "IPv4" if family == "IPv6" else "IPv6"


def _go_strings(values: tuple[str, ...]) -> str:
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def _ip_families(svc: Service, nets: dict, old: ServicePlan | None
                 ) -> tuple[str | None, tuple[str, ...]]:
    """(spec.ipFamilyPolicy, spec.ipFamilies) as kube-apiserver defaults them against the
    cluster's Service CIDRs (`nets`, one allocator per family; the first is the default),
    or the InputError it answers (pkg/registry/core/service/storage/alloc.go
    initIPFamilyFields, with its messages and their order). An unset policy is the one
    the Service had (an update), else SingleStack, but RequireDualStack for a headless
    Service without a selector; ExternalName Services have neither."""
    if svc.type == "ExternalName":
        return None, ()
    policy = svc.ip_family_policy
    if policy is None:
        if old is not None and old.ip_family_policy:
            policy = old.ip_family_policy
        elif svc.cluster_ip == "None" and not svc.selector:
            policy = "RequireDualStack"
        else:
            policy = "SingleStack"
    families = list(svc.ip_families)
    ips = svc.cluster_ips
    errors: list[tuple[str, str]] = []
    if policy == "SingleStack":
        if len(ips) == 2:
            errors.append(("spec.ipFamilyPolicy", f'Invalid value: "{policy}": must be '
                           "'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs "
                           "are specified"))
        if len(families) == 2:
            errors.append(("spec.ipFamilyPolicy", f'Invalid value: "{policy}": must be '
                           "'RequireDualStack' or 'PreferDualStack' when multiple IP families "
                           "are specified"))
    for i, ip in enumerate(ips):
        if ip == "None":
            break
        family = f"IPv{ipaddress.ip_address(ip).version}"
        if i >= len(families):
            if family not in nets:
                errors.append((f"spec.clusterIPs[{i}]", f"Invalid value: {_go_strings(ips)}: "
                               f"{family} is not configured on this cluster"))
            else:
                families.append(family)
    _raise(svc, errors)
    if svc.cluster_ip == "None" and not svc.selector:
        # headless without a selector: any families, even on a single-stack cluster
        families = families or [next(iter(nets))]
        if len(families) < 2 and policy != "SingleStack":
            families.append(_other(families[0]))
        return policy, tuple(families)
    if policy == "RequireDualStack" and len(nets) < 2:
        errors.append(("spec.ipFamilyPolicy", f'Invalid value: "{policy}": this cluster is not '
                       "configured for dual-stack services"))
    for i, family in enumerate(families):
        if family not in nets:
            errors.append((f"spec.ipFamilies[{i}]", f'Invalid value: "{family}": not configured '
                           "on this cluster"))
    _raise(svc, errors)
    families = families or [next(iter(nets))]
    if policy != "SingleStack" and len(families) == 1 and len(nets) == 2:
        families.append(_other(families[0]))
    return policy, tuple(families)


def _raise(svc: Service, errors: list[tuple[str, str]]) -> None:
    """The API server's field errors as one InputError (exit 2): one names its field; more
    are listed as kubectl prints them, `[field: detail, field: detail]`."""
    if len(errors) == 1:
        raise InputError(errors[0][1], **_where(svc, errors[0][0]))
    if errors:
        where = _where(svc, errors[0][0])
        where["field"] = None
        raise InputError("[" + ", ".join(f"{f}: {d}" for f, d in errors) + "]", **where)


def _is_dns(svc: Service, dns_ip: str) -> bool:
    return svc.cluster_ip == dns_ip


def _announcer(plan: Plan, key: str, ports: tuple[ServicePortPlan, ...], etp: str) -> str | None:
    """The node that answers ARP (and IPv6 neighbour solicitations) for a Service's
    LoadBalancer addresses, like MetalLB's L2 mode: chosen by a hash of the Service among
    eligible nodes (with ETP Local, only nodes that have a local endpoint)."""
    nodes = [n.name for n in plan.nodes]
    if etp == "Local":
        local = {ep.node for p in ports for ep in (*p.endpoints, *p.endpoints6)}
        nodes = [n for n in nodes if n in local]
    if not nodes:
        return None
    return min(nodes, key=lambda n: hashlib.sha256(f"{n}/{key}".encode()).hexdigest())


def _lb_ip6(cluster: Cluster, svc: Service, old: str, used: set[str]) -> str:
    """A LoadBalancer Service's IPv6 address from the cluster's IPv6 pool: the one an IPv6
    spec.loadBalancerIP asks for, else the one it had (stable across applies), else the
    first free one;
    "" when the pool is used up (the Service stays <pending> in that family, as MetalLB
    leaves it)."""
    rng = cluster.lb_range6()
    if rng is None:
        return ""
    lo, hi = rng
    asked = svc.load_balancer_ip if svc.load_balancer_ip and ":" in svc.load_balancer_ip else None
    if asked is not None:
        try:
            ip = ipaddress.IPv6Address(asked)
        except ValueError:
            ip = None
        if ip is None or not lo <= ip <= hi:
            raise InputError(f"{asked} is not in the load balancer pool "
                             f"{cluster.load_balancer_pool6}",
                             **_where(svc, "spec.loadBalancerIP"))
        used.add(str(ip))
        return str(ip)
    if old and lo <= ipaddress.IPv6Address(old) <= hi:
        used.add(old)
        return old
    for i in range(int(lo), int(hi) + 1):
        if str(ipaddress.IPv6Address(i)) not in used:
            used.add(str(ipaddress.IPv6Address(i)))
            return str(ipaddress.IPv6Address(i))
    return ""


# --- externalIPs, health check node ports, topology -------------------------------------------


def needs_health_check(svc: Service | ServicePlan) -> bool:
    """apiservice.NeedsHealthCheck: a LoadBalancer with externalTrafficPolicy Local."""
    return svc.type == "LoadBalancer" and svc.external_traffic_policy == "Local"


def _free_node_port(used: set[int]) -> int | None:
    return next((n for n in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1)
                 if n not in used), None)


def _reserve_health_check_node_port(svc: Service, old: ServicePlan | None,
                                    used: set[int], held_by_another: bool = False) -> None:
    """A healthCheckNodePort the manifest asks for, reserved as the API server's allocator
    does (the nodePort range, shared with nodePorts), and immutable while the Service
    needs one (validateServiceExternalTrafficFieldsUpdate)."""
    port = svc.health_check_node_port
    assert port is not None
    where = _where(svc, "spec.healthCheckNodePort")
    if old is not None and old.health_check_node_port and old.health_check_node_port != port:
        raise InputError("Forbidden: field is immutable", **where)
    why = None
    if not NODE_PORT_RANGE[0] <= port <= NODE_PORT_RANGE[1]:
        why = ("provided port is not in the valid range. The range of valid ports is "
               f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}")
    elif port in used or held_by_another:
        why = "provided port is already allocated"
    if why:
        raise InputError("Internal error occurred: failed to allocate requested HealthCheck "
                         f"NodePort {port}: {why}", **where)
    used.add(port)


def _lab_addresses(plan: Plan) -> dict[str, str]:
    """The underlay addresses the lab itself uses: address -> what has it."""
    out = {}
    for family in plan.cluster.families:
        for n in plan.nodes:
            if n.address(family):
                out[n.address(family)] = f"node {n.name}'s address"
        for what, address in (("the underlay's gateway (the internet host)",
                               plan.gateway(family)),
                              ("the external host's address", plan.external(family))):
            if address:
                out[address] = what
    return out


def _external_ips(svc: Service, families: tuple[str, ...], cluster: Cluster,
                  taken: dict[str, str]) -> tuple[str, ...]:
    """spec.externalIPs as the lab can honour them. Nothing outside a real cluster knows
    about them either: an administrator routes each to a node. Here the underlay is the
    network outside, so an external IP must be an address of the underlay that nothing else
    has (not a node's, not the gateway's or the external host's, not in the LoadBalancer
    pool), and one node holds it, as a LoadBalancer address is held (_external_ip_announcers).
    An address of a family the Service does not have would be ignored by kube-proxy (each
    family's proxier takes only its own): refused here, so it cannot look like it works."""
    out: list[str] = []
    for i, ip in enumerate(svc.external_ips):
        where = _where(svc, f"spec.externalIPs[{i}]")
        addr = ipaddress.ip_address(ip)
        family = f"IPv{addr.version}"
        if family not in families:
            raise InputError(f"{ip} is an {family} address but the Service has no {family} "
                             "family (ipFamilies): kube-proxy would ignore it", **where)
        underlay = cluster.cidr("underlay", family)
        net = ipaddress.ip_network(underlay) if underlay else None
        if net is None or addr not in net or addr in (net.network_address,
                                                      net.broadcast_address):
            raise InputError(
                f"{ip} is not an address of the lab's underlay ({underlay or 'none'} for "
                f"{family}): nothing outside the cluster routes an external IP to a node, so "
                "netlab has one node hold it on the underlay, as a LoadBalancer address; use a "
                "free address of the underlay", **where)
        if ip in taken:
            raise InputError(f"{ip} is {taken[ip]}: an external IP must be a free address of "
                             "the underlay", **where)
        if _in_lb_pool(cluster, addr):
            raise InputError(f"{ip} is in the load balancer pool: an external IP must not be "
                             "an address the LoadBalancer allocator hands out", **where)
        str_ip = str(addr)
        if str_ip not in out:
            out.append(str_ip)
    return tuple(out)


def _in_lb_pool(cluster: Cluster, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if addr.version == 4:
        return addr in cluster.lb_pool()
    rng = cluster.lb_range6()
    return rng is not None and rng[0] <= addr <= rng[1]


def _external_ip_announcers(plan: Plan, services: dict[str, ServicePlan]
                            ) -> dict[str, ServicePlan]:
    """The node holding each external IP: one per address (Services may share one on
    different ports), among the nodes every Service using it accepts external traffic on
    (externalTrafficPolicy Local: those with a local endpoint; if they have none in common,
    any of them), chosen by a hash of the address; none when no node qualifies (no local
    endpoint anywhere)."""
    users: dict[str, list[ServicePlan]] = {}
    for s in services.values():
        for ip in s.external_ips:
            users.setdefault(ip, []).append(s)
    if not users:
        return services
    all_nodes = [n.name for n in plan.nodes]

    def eligible(s: ServicePlan) -> set[str]:
        if s.external_traffic_policy != "Local":
            return set(all_nodes)
        return {ep.node for p in s.ports for ep in (*p.endpoints, *p.endpoints6) if ep.node}

    holder: dict[str, str | None] = {}
    for ip, svcs in users.items():
        sets = [eligible(s) for s in svcs]
        nodes = set.intersection(*sets) or set.union(*sets)
        holder[ip] = min(sorted(nodes), key=lambda n: hashlib.sha256(
            f"{n}/{ip}".encode()).hexdigest()) if nodes else None
    return {k: replace(s, external_announcers=tuple((ip, holder[ip]) for ip in s.external_ips))
            if s.external_ips else s for k, s in services.items()}


def endpoint_hints(svc: ServicePlan, ep: Endpoint) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The EndpointSlice controller's hints for an endpoint (trafficdist.ReconcileHints):
    (forZones, forNodes). With trafficDistribution PreferClose / PreferSameZone /
    PreferSameNode, a ready endpoint gets its own zone (when its node has one) and, for
    PreferSameNode, its own node; otherwise none. Only slices the controller manages (a
    Service with a selector) get hints."""
    if not svc.traffic_distribution or svc.selector is None:
        return (), ()
    zones = (ep.zone,) if ep.zone else ()
    nodes = (ep.node,) if ep.node and svc.traffic_distribution == "PreferSameNode" else ()
    return zones, nodes


def topology_endpoints(svc: ServicePlan, eps: tuple[Endpoint, ...], node: str,
                       zone: str | None) -> tuple[Endpoint, ...]:
    """The endpoints one node's kube-proxy uses for the Cluster traffic policy
    (CategorizeEndpoints with topologyModeFromHints): those hinted for this node when every
    endpoint has a node hint and one is for this node (PreferSameNode); else those hinted
    for this node's zone when every endpoint has a zone hint and one is for this zone;
    else all of them."""
    if not eps or not svc.traffic_distribution or svc.selector is None:
        return eps
    hints = [endpoint_hints(svc, ep) for ep in eps]
    if all(n for _, n in hints):
        mine = tuple(ep for ep, (_, n) in zip(eps, hints, strict=True) if node in n)
        if mine:
            return mine
    if all(z for z, _ in hints) and zone:
        mine = tuple(ep for ep, (z, _) in zip(eps, hints, strict=True) if zone in z)
        if mine:
            return mine
    return eps


def node_zone(plan: Plan, node: str) -> str | None:
    spec = next((n for n in plan.cluster.nodes if n.name == node), None)
    return node_labels(spec).get(ZONE_LABEL) if spec is not None else None
