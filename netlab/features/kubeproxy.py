"""Services in nftables, the way kube-proxy's nftables mode does it (pkg/proxy/nftables):
one `ip kube-proxy` table per node; verdict maps from address . protocol . port to a chain
per Service port; `numgen random` over per-endpoint chains that DNAT; a mark and a
`masquerade` for traffic that must be source-NATed; reject for Services without endpoints.

Per Service port (ID = base32 hash + ns/name/proto/port, as kube-proxy names them):
  service-ID      all endpoints ("cluster" policy); first masquerades off-cluster sources
  local-ID        this node's endpoints only (internalTrafficPolicy / externalTrafficPolicy
                  Local); drops when there is none
  external-ID     NodePort, LoadBalancer and externalIPs entry: Cluster masquerades and
                  uses service-ID; Local sends pods and the node itself to service-ID, keeps
                  the client address of the rest and uses local-ID
  firewall-ID     loadBalancerSourceRanges: the `firewall-ips` map sends new connections to
                  a LoadBalancer address here (filter-prerouting / filter-output, before
                  DNAT), which drops sources outside the ranges (NodePorts are not filtered)
  endpoint-ID__IP/PORT   masquerade hairpin traffic, remember ClientIP affinity, DNAT

NodePorts answer on the node's primary address only (`nodeport-ips`): kube-proxy's
nftables mode defaults to `--nodeport-addresses primary`. With trafficDistribution, each
node's service-ID holds the endpoints kube-proxy keeps for it (topology_endpoints).

Dual-stack (NewDualStackProxier: two proxiers, one per family): a second table,
`ip6 kube-proxy`, of the same shape for the Services' IPv6 ClusterIPs and IPv6 endpoints
(ip6 matches, ipv6_addr keys, `dnat to [addr]:port`, ':' in endpoint chain names written
'.'; its plain `reject` is ICMPv6 port-unreachable). Each table sees only the Services of
its family: a Service's NodePort answers on the nodes' addresses of the families the
Service has, and its IPv6 LoadBalancer address, external IPs and source ranges are in the
ip6 table.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress

from netlab.features.services import node_zone, topology_endpoints
from netlab.intents import Serve
from netlab.nft import Table, comment
from netlab.plan import Endpoint, NodePlan, Plan, ServicePlan, ServicePortPlan

TABLE = "kube-proxy"
MASQ_MARK = "0x00004000"


def _id(prefix: str, svc: ServicePlan, port: ServicePortPlan) -> str:
    proto = port.protocol.lower()
    base = f"{svc.namespace}/{svc.name}/{proto}/{port.label}"
    digest = base64.b32encode(hashlib.sha256(base.encode()).digest()).decode()[:8]
    return f"{prefix}-{digest}-{base}"


def _ep_chain(svc: ServicePlan, port: ServicePortPlan, ep: Endpoint) -> str:
    return _id("endpoint", svc, port) + f"__{ep.ip.replace(':', '.')}/{ep.port}"


def _affinity_set(svc: ServicePlan, port: ServicePortPlan, ep: Endpoint) -> str:
    return _id("affinity", svc, port) + f"__{ep.ip.replace(':', '.')}/{ep.port}"


def _balance(t: Table, svc: ServicePlan, port: ServicePortPlan, eps: tuple[Endpoint, ...],
             rules: list[str], ip: str = "ip") -> None:
    if svc.affinity_timeout:
        rules += [f"{ip} saddr @{_affinity_set(svc, port, ep)} goto {_ep_chain(svc, port, ep)}"
                  for ep in eps]
    if len(eps) == 1:
        rules.append(f"goto {_ep_chain(svc, port, eps[0])}")
    else:
        arms = ", ".join(f"{i} : goto {_ep_chain(svc, port, ep)}" for i, ep in enumerate(eps))
        rules.append(f"numgen random mod {len(eps)} vmap {{ {arms} }}")


def render_node(plan: Plan, node: NodePlan, family: str = "IPv4") -> Table:
    """One node's `ip kube-proxy` table, or (family "IPv6") its `ip6 kube-proxy` table."""
    v6 = family == "IPv6"
    ip, addr = ("ip6", "ipv6_addr") if v6 else ("ip", "ipv4_addr")
    pod_cidr = plan.cluster.pod_cidr6 if v6 else plan.cluster.pod_cidr
    service_cidr = plan.cluster.service_cidr6 if v6 else plan.cluster.service_cidr
    t = Table(ip, TABLE)
    t.maps["service-ips"] = (f"type {addr} . inet_proto . inet_service : verdict ;", {})
    t.maps["service-nodeports"] = ("type inet_proto . inet_service : verdict ;", {})
    t.maps["no-endpoint-services"] = (f"type {addr} . inet_proto . inet_service : verdict ;",
                                      {})
    t.maps["no-endpoint-nodeports"] = ("type inet_proto . inet_service : verdict ;", {})
    t.sets["cluster-ips"] = (f"type {addr} ;", [])
    t.maps["firewall-ips"] = (f"type {addr} . inet_proto . inet_service : verdict ;", {})
    # --nodeport-addresses primary, kube-proxy's default in nftables mode: NodePorts answer
    # on the node's primary address of this family (its InternalIP), not on its other local
    # addresses (cni0's gateway, the VTEP, LoadBalancer addresses on lo)
    primary = node.address(family)
    t.sets["nodeport-ips"] = (f"type {addr} ;", [primary] if primary else [])
    t.chain("nat-prerouting", ["jump services"],
            "type nat hook prerouting priority dstnat ; policy accept ;")
    t.chain("nat-output", ["jump services"], "type nat hook output priority -100 ; policy accept ;")
    t.chain("nat-postrouting", ["jump masquerading"],
            "type nat hook postrouting priority srcnat ; policy accept ;")
    t.chain("filter-forward", ["ct state new jump service-endpoints-check",
                               "ct state new jump cluster-ips-check"],
            "type filter hook forward priority -110 ; policy accept ;")
    t.chain("filter-input", ["ct state new jump nodeport-endpoints-check",
                             "ct state new jump service-endpoints-check"],
            "type filter hook input priority -110 ; policy accept ;")
    t.chain("filter-prerouting", ["ct state new jump firewall-check"],
            "type filter hook prerouting priority -110 ; policy accept ;")
    t.chain("filter-output", ["ct state new jump service-endpoints-check",
                              "ct state new jump firewall-check"],
            "type filter hook output priority -110 ; policy accept ;")
    t.chain("filter-output-post-dnat", ["ct state new jump cluster-ips-check"],
            "type filter hook output priority -90 ; policy accept ;")
    t.chain("services", [
        f"{ip} daddr . meta l4proto . th dport vmap @service-ips",
        f"{ip} daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"])
    t.chain("service-endpoints-check",
            [f"{ip} daddr . meta l4proto . th dport vmap @no-endpoint-services"])
    t.chain("nodeport-endpoints-check",
            [f"{ip} daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"])
    t.chain("firewall-check",
            [f"{ip} daddr . meta l4proto . th dport vmap @firewall-ips"])
    t.chain("cluster-ips-check", [
        f'{ip} daddr @cluster-ips reject comment "reject traffic to invalid ports of ClusterIPs"',
        *([f'{ip} daddr {service_cidr} drop comment "drop traffic to unallocated ClusterIPs"']
          if service_cidr else [])])
    t.chain("reject-chain", ['reject comment "a Service without endpoints"'])
    t.chain("mark-for-masquerade", [f"meta mark set meta mark | {MASQ_MARK}"])
    t.chain("masquerading", [f"meta mark & {MASQ_MARK} == 0 return",
                             f"meta mark set meta mark ^ {MASQ_MARK}",
                             "masquerade fully-random"])
    cluster_ips = t.sets["cluster-ips"][1]
    zone = node_zone(plan, node.name)
    for svc in plan.services.values():
        cluster_ip = svc.family_cluster_ip(family)
        if not cluster_ip:
            continue  # headless, ExternalName, not of this family: no virtual IP here
        cluster_ips.append(cluster_ip)
        uses_node = svc.internal_traffic_policy == "Local" or (
            svc.external_traffic_policy == "Local" and _externally_accessible(svc, family))
        # trafficDistribution: the endpoints this node's Cluster policy uses (None: all)
        cluster = None
        if svc.traffic_distribution:
            cluster = tuple(topology_endpoints(svc, p.family_endpoints(family), node.name, zone)
                            for p in svc.ports)
            if cluster == tuple(p.family_endpoints(family) for p in svc.ports):
                cluster = None
        # loadBalancerSourceRanges that hold this node's address also admit the
        # LoadBalancer addresses as sources (a node's own traffic to them)
        from_node = bool(primary) and any(
            ipaddress.ip_address(primary) in ipaddress.ip_network(r)
            for r in svc.family_source_ranges(family))
        chains, sets, elements = _service_rules(svc, node.name if uses_node else "", pod_cidr,
                                                family, cluster, from_node)
        t.chains.update(chains)
        t.sets.update(sets)
        for map_name, key, verdict in elements:
            t.maps[map_name][1][key] = verdict
    return t


def _externally_accessible(svc: ServicePlan, family: str) -> bool:
    """ServicePort.ExternallyAccessible in one family's proxier: a NodePort, a LoadBalancer
    address or an external IP of that family."""
    lb_ip = svc.lb_ip6 if family == "IPv6" else svc.lb_ip
    return (any(p.node_port for p in svc.ports) or bool(lb_ip)
            or bool(svc.family_external_ips(family)))


@functools.lru_cache(maxsize=65536)
def _service_rules(svc: ServicePlan, node: str, pod_cidr: str, family: str = "IPv4",
                   cluster: tuple[tuple[Endpoint, ...], ...] | None = None,
                   from_node: bool = False
                   ) -> tuple[dict[str, list[str]], dict[str, tuple[str, list[str]]],
                              tuple[tuple[str, str, str], ...]]:
    """One Service's chains, affinity sets and map elements in one family's table. Cached:
    a Service that did not change renders once per process, whatever the number of nodes
    and syncs (`node` is "" when its rules are the same on every node). `cluster`: per port,
    the endpoints this node's Cluster policy uses when trafficDistribution narrows them
    (None: all); `from_node`: the node's address is in one of its loadBalancerSourceRanges."""
    v6 = family == "IPv6"
    ip, addr = ("ip6", "ipv6_addr") if v6 else ("ip", "ipv4_addr")
    cluster_ip = svc.family_cluster_ip(family)
    lb_ip = (svc.lb_ip6 or None) if v6 else svc.lb_ip  # each table its family's address
    external_ips = svc.family_external_ips(family)
    ranges = svc.family_source_ranges(family)
    t = Table(ip, TABLE)
    elements: list[tuple[str, str, str]] = []
    for i, port in enumerate(svc.ports):
        proto = port.protocol.lower()
        all_eps = port.family_endpoints(family)
        cluster_eps = all_eps if cluster is None else cluster[i]
        local_eps = tuple(ep for ep in all_eps if ep.node == node)
        cip_key = f"{cluster_ip} . {proto} . {port.port}"
        lb_key = f"{lb_ip} . {proto} . {port.port}" if lb_ip else None
        ext_keys = [f"{e} . {proto} . {port.port}" for e in external_ips]
        np_key = f"{proto} . {port.node_port}" if port.node_port else None
        if lb_key and ranges:  # loadBalancerSourceRanges: filtered before any DNAT
            fw_chain = _id("firewall", svc, port)
            sources = [*ranges, *([lb_ip] if from_node else [])]
            t.chain(fw_chain, [f"{ip} saddr != {{ {', '.join(sources)} }} drop"])
            elements.append(("firewall-ips", lb_key, f"goto {fw_chain}"))
        if not all_eps:
            elements.append(("no-endpoint-services", cip_key, "goto reject-chain"))
            for key in ext_keys:
                elements.append(("no-endpoint-services", key, "goto reject-chain"))
            if lb_key:
                elements.append(("no-endpoint-services", lb_key, "goto reject-chain"))
            if np_key:
                elements.append(("no-endpoint-nodeports", np_key, "goto reject-chain"))
            continue
        svc_chain, local_chain = _id("service", svc, port), _id("local", svc, port)
        rules = [f"{ip} daddr {cluster_ip} {proto} dport {port.port} {ip} saddr != {pod_cidr} "
                 "jump mark-for-masquerade"]
        _balance(t, svc, port, cluster_eps, rules, ip)
        t.chain(svc_chain, rules)
        needs_local = (svc.internal_traffic_policy == "Local"
                       or (svc.external_traffic_policy == "Local"
                           and (lb_key or np_key or ext_keys)))
        if needs_local:
            local_rules: list[str] = []
            if local_eps:
                _balance(t, svc, port, local_eps, local_rules, ip)
            else:
                local_rules.append(f"drop {comment(svc.key, ' has no local endpoints')}")
            t.chain(local_chain, local_rules)
        elements.append(("service-ips", cip_key, f"goto {local_chain}"
                         if svc.internal_traffic_policy == "Local" else f"goto {svc_chain}"))
        if lb_key or np_key or ext_keys:
            ext = _id("external", svc, port)
            if svc.external_traffic_policy == "Local":
                # pod traffic to an external destination short-circuits to the Cluster
                # policy (as if it went out to the load balancer and came back), the node's
                # own is masqueraded and does too; the rest keeps its source, goes local
                t.chain(ext, [*([f"{ip} saddr {pod_cidr} goto {svc_chain}"] if pod_cidr else []),
                              "fib saddr type local jump mark-for-masquerade",
                              f"fib saddr type local goto {svc_chain}",
                              f"goto {local_chain}"])
            else:
                t.chain(ext, ["jump mark-for-masquerade", f"goto {svc_chain}"])
            for key in ext_keys:  # kube-proxy: external IPs go to the external chain
                elements.append(("service-ips", key, f"goto {ext}"))
            if lb_key:
                elements.append(("service-ips", lb_key, f"goto {ext}"))
            if np_key:
                elements.append(("service-nodeports", np_key, f"goto {ext}"))
        reachable = all_eps if cluster is None else tuple(
            ep for ep in all_eps if ep in cluster_eps or ep in local_eps)
        for ep in reachable:
            ep_rules = [f"{ip} saddr {ep.ip} jump mark-for-masquerade"]
            if svc.affinity_timeout:
                aset = _affinity_set(svc, port, ep)
                t.sets[aset] = (f"type {addr} ; flags dynamic,timeout ; "
                                f"timeout {svc.affinity_timeout}s ;", [])
                ep_rules.append(f"update @{aset} {{ {ip} saddr }}")
            target = f"[{ep.ip}]" if v6 else ep.ip  # net.JoinHostPort
            ep_rules.append(f"meta l4proto {proto} dnat to {target}:{ep.port}")
            t.chain(_ep_chain(svc, port, ep), ep_rules)
    return t.chains, t.sets, tuple(elements)


def render_egress(plan: Plan, node: NodePlan, family: str = "ip") -> Table:
    """flannel's ip-masq: pod traffic leaving the pod network takes the node's address;
    traffic between pods (also after a Service's DNAT) keeps the pod address. Dual-stack:
    the same in IPv6 (family "ip6"), as flannel's `ip6 flannel-ipv6` table does it."""
    cidr, name, multicast = ((plan.cluster.pod_cidr, "flannel-ipv4", "224.0.0.0/4")
                             if family == "ip" else
                             (plan.cluster.pod_cidr6, "flannel-ipv6", "ff00::/8"))
    t = Table(family, name)
    t.chain("postrtg", [
        f"{family} saddr {cidr} {family} daddr {cidr} return",
        f"{family} saddr {cidr} {family} daddr {multicast} return",
        f"{family} saddr {cidr} masquerade fully-random"],
        "type nat hook postrouting priority srcnat + 1 ; policy accept ;")
    return t


def render_tables(plan: Plan, node: NodePlan) -> list[Table]:
    """The node's kube-proxy and masquerade tables, for each family of the cluster (in
    proxyMode iptables only the masquerade ones: kubeproxy_iptables renders the rest)."""
    nft = plan.cluster.proxy_mode == "nftables"
    return [*([*([render_node(plan, node)] if nft else []), render_egress(plan, node)]
              if plan.cluster.ipv4 else []),
            *([render_egress(plan, node, "ip6"), *([render_node(plan, node, "IPv6")]
                                                   if nft else [])]
              if plan.cluster.ipv6 else [])]


def health_check_reply(svc: ServicePlan, local_endpoints: int) -> str:
    """What kube-proxy's service health check server (pkg/proxy/healthcheck, hcHandler)
    answers: 200 when the node has a ready local endpoint of the Service, else 503, with
    the count as X-Load-Balancing-Endpoint-Weight and in its JSON (the proxy here is always
    healthy: its rules are loaded when the lab converges). Go's Date header is left out."""
    body = (f'{{\n\t"service": {{\n\t\t"namespace": "{svc.namespace}",\n\t\t"name": '
            f'"{svc.name}"\n\t}},\n\t"localEndpoints": {local_endpoints},\n'
            '\t"serviceProxyHealthy": true\n}')
    status = "200 OK" if local_endpoints else "503 Service Unavailable"
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            f"X-Load-Balancing-Endpoint-Weight: {local_endpoints}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}")


def render_health_servers(plan: Plan) -> dict[str, Serve]:
    """Each node's kube-proxy health check server: for every Service with a
    healthCheckNodePort (a LoadBalancer with externalTrafficPolicy Local), an HTTP answer on
    that port saying how many ready endpoints of the Service the node has (distinct
    addresses, EndpointsMap.LocalReadyEndpoints), in each family the Service has (each
    family's proxier runs its own). It listens where NodePorts answer: the node's primary
    address in nftables mode (--nodeport-addresses primary), every address in iptables
    mode. Served by the lab's agent (owner node/NAME); the answers follow the endpoints."""
    out: dict[str, Serve] = {}
    nft = plan.cluster.proxy_mode == "nftables"
    for node in plan.nodes:
        ports: list[str] = []
        replies: list[tuple[str, str]] = []
        for svc in sorted(plan.services.values(), key=lambda s: s.key):
            if not svc.health_check_node_port:
                continue
            for family in plan.cluster.families:
                if not svc.family_cluster_ip(family):
                    continue
                local = {ep.ip for p in svc.ports for ep in p.family_endpoints(family)
                         if ep.node == node.name}
                spec = f"tcp{'6' if family == 'IPv6' else ''}:{svc.health_check_node_port}"
                if nft:
                    spec += f"@{node.address(family)}"
                if spec not in ports:
                    ports.append(spec)
                    replies.append((spec, health_check_reply(svc, len(local))))
        if ports:
            key = f"node/{node.name}"
            out[key] = Serve(key, node.name, node.netns, tuple(ports), tuple(replies))
    return out


def stale_udp_endpoints(previous: Plan | None, plan: Plan) -> list[tuple[str, int]]:
    """UDP endpoints (address, port) that a Service port no longer sends to, whose conntrack
    entries must go, as kube-proxy clears them after each sync (pkg/proxy/conntrack): a UDP
    flow lives as long as its client keeps sending, so a client that reuses its source port
    (a resolver, a syslog or statsd client) would keep going to the DNAT target of its first
    packet, a pod that is gone, forever. (TCP needs nothing: the connection breaks and the
    next one is DNATed afresh.) kube-proxy also clears UDP flows to Service ports that had no
    endpoints; here such packets are rejected before their conntrack entry is confirmed, so
    no entry is left to clear."""
    if previous is None:
        return []

    def udp_endpoints(p: Plan) -> dict[tuple[str, int], set[tuple[str, int]]]:
        # both families' (conntrack -D picks the family from the address, as kube-proxy's
        # IPv6 proxier clears its own with AF_INET6)
        return {(s.key, port.port): {(ep.ip, ep.port)
                                     for ep in (*port.endpoints, *port.endpoints6)}
                for s in p.services.values() for port in s.ports if port.protocol == "UDP"}

    now = udp_endpoints(plan)
    stale = {ep for key, eps in udp_endpoints(previous).items() for ep in eps - now.get(key, set())}
    return sorted(stale)
