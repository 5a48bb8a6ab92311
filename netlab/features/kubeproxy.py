"""Services in nftables, the way kube-proxy's nftables mode does it (pkg/proxy/nftables):
one `ip kube-proxy` table per node; verdict maps from address . protocol . port to a chain
per Service port; `numgen random` over per-endpoint chains that DNAT; a mark and a
`masquerade` for traffic that must be source-NATed; reject for Services without endpoints.

Per Service port (ID = base32 hash + ns/name/proto/port, as kube-proxy names them):
  service-ID      all endpoints ("cluster" policy); first masquerades off-cluster sources
  local-ID        this node's endpoints only (internalTrafficPolicy / externalTrafficPolicy
                  Local); drops when there is none
  external-ID     NodePort and LoadBalancer entry: Cluster masquerades and uses service-ID;
                  Local keeps the client address and uses local-ID
  endpoint-ID__IP/PORT   masquerade hairpin traffic, remember ClientIP affinity, DNAT

Dual-stack (NewDualStackProxier: two proxiers, one per family): a second table,
`ip6 kube-proxy`, of the same shape for the Services' IPv6 ClusterIPs and IPv6 endpoints
(ip6 matches, ipv6_addr keys, `ip6 daddr != ::1`, `dnat to [addr]:port`, ':' in endpoint
chain names written '.'; its plain `reject` is ICMPv6 port-unreachable). Each table sees
only the Services of its family: a Service's NodePort answers on the nodes' addresses of
the families the Service has, and its IPv6 LoadBalancer address is in the ip6 table.
"""

from __future__ import annotations

import base64
import functools
import hashlib

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
    no_localhost = "ip6 daddr != ::1" if v6 else "ip daddr != 127.0.0.0/8"
    t = Table(ip, TABLE)
    t.maps["service-ips"] = (f"type {addr} . inet_proto . inet_service : verdict ;", {})
    t.maps["service-nodeports"] = ("type inet_proto . inet_service : verdict ;", {})
    t.maps["no-endpoint-services"] = (f"type {addr} . inet_proto . inet_service : verdict ;",
                                      {})
    t.maps["no-endpoint-nodeports"] = ("type inet_proto . inet_service : verdict ;", {})
    t.sets["cluster-ips"] = (f"type {addr} ;", [])
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
    t.chain("filter-output", ["ct state new jump service-endpoints-check"],
            "type filter hook output priority -110 ; policy accept ;")
    t.chain("filter-output-post-dnat", ["ct state new jump cluster-ips-check"],
            "type filter hook output priority -90 ; policy accept ;")
    t.chain("services", [
        f"{ip} daddr . meta l4proto . th dport vmap @service-ips",
        f"fib daddr type local {no_localhost} meta l4proto . th dport "
        "vmap @service-nodeports"])
    t.chain("service-endpoints-check",
            [f"{ip} daddr . meta l4proto . th dport vmap @no-endpoint-services"])
    t.chain("nodeport-endpoints-check",
            [f"fib daddr type local {no_localhost} meta l4proto . th dport "
             "vmap @no-endpoint-nodeports"])
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
    for svc in plan.services.values():
        cluster_ip = svc.family_cluster_ip(family)
        if not cluster_ip:
            continue  # headless, ExternalName, not of this family: no virtual IP here
        cluster_ips.append(cluster_ip)
        uses_node = svc.internal_traffic_policy == "Local" or (
            svc.external_traffic_policy == "Local" and svc.type in ("NodePort", "LoadBalancer"))
        chains, sets, elements = _service_rules(svc, node.name if uses_node else "", pod_cidr,
                                                family)
        t.chains.update(chains)
        t.sets.update(sets)
        for map_name, key, verdict in elements:
            t.maps[map_name][1][key] = verdict
    return t


@functools.lru_cache(maxsize=65536)
def _service_rules(svc: ServicePlan, node: str, pod_cidr: str, family: str = "IPv4"
                   ) -> tuple[dict[str, list[str]], dict[str, tuple[str, list[str]]],
                              tuple[tuple[str, str, str], ...]]:
    """One Service's chains, affinity sets and map elements in one family's table. Cached:
    a Service that did not change renders once per process, whatever the number of nodes
    and syncs (`node` is "" when its rules are the same on every node)."""
    v6 = family == "IPv6"
    ip, addr = ("ip6", "ipv6_addr") if v6 else ("ip", "ipv4_addr")
    cluster_ip = svc.family_cluster_ip(family)
    lb_ip = (svc.lb_ip6 or None) if v6 else svc.lb_ip  # each table its family's address
    t = Table(ip, TABLE)
    elements: list[tuple[str, str, str]] = []
    for port in svc.ports:
        proto = port.protocol.lower()
        all_eps = port.family_endpoints(family)
        local_eps = tuple(ep for ep in all_eps if ep.node == node)
        cip_key = f"{cluster_ip} . {proto} . {port.port}"
        lb_key = f"{lb_ip} . {proto} . {port.port}" if lb_ip else None
        np_key = f"{proto} . {port.node_port}" if port.node_port else None
        if not all_eps:
            elements.append(("no-endpoint-services", cip_key, "goto reject-chain"))
            if lb_key:
                elements.append(("no-endpoint-services", lb_key, "goto reject-chain"))
            if np_key:
                elements.append(("no-endpoint-nodeports", np_key, "goto reject-chain"))
            continue
        svc_chain, local_chain = _id("service", svc, port), _id("local", svc, port)
        rules = [f"{ip} daddr {cluster_ip} {proto} dport {port.port} {ip} saddr != {pod_cidr} "
                 "jump mark-for-masquerade"]
        _balance(t, svc, port, all_eps, rules, ip)
        t.chain(svc_chain, rules)
        needs_local = (svc.internal_traffic_policy == "Local"
                       or (svc.external_traffic_policy == "Local" and (lb_key or np_key)))
        if needs_local:
            local_rules: list[str] = []
            if local_eps:
                _balance(t, svc, port, local_eps, local_rules, ip)
            else:
                local_rules.append(f"drop {comment(svc.key, ' has no local endpoints')}")
            t.chain(local_chain, local_rules)
        elements.append(("service-ips", cip_key, f"goto {local_chain}"
                         if svc.internal_traffic_policy == "Local" else f"goto {svc_chain}"))
        if lb_key or np_key:
            ext = _id("external", svc, port)
            if svc.external_traffic_policy == "Local":
                t.chain(ext, ["fib saddr type local jump mark-for-masquerade",
                              f"fib saddr type local goto {svc_chain}",
                              f"goto {local_chain}"])
            else:
                t.chain(ext, ["jump mark-for-masquerade", f"goto {svc_chain}"])
            if lb_key:
                elements.append(("service-ips", lb_key, f"goto {ext}"))
            if np_key:
                elements.append(("service-nodeports", np_key, f"goto {ext}"))
        for ep in all_eps:
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
