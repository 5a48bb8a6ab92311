"""Services in iptables, the way kube-proxy's iptables mode writes them (pkg/proxy/iptables/
proxier.go, syncProxyRules): the same Plan that features/kubeproxy.py renders into the
`ip kube-proxy` nftables table, rendered into the `nat` and `filter` chains a real node's
`iptables-save` shows, with kube-proxy's names, hashes, comments and rule order.

What proxier.go writes, and where it comes from in the Plan (one Service port = one
ServicePortPlan; its servicePortName is "namespace/name:portname", or "namespace/name" when
the port has no name, as proxy.ServicePortName.String() prints it):

  KUBE-SERVICES (nat)   per port: "<spn> cluster IP" -d ServicePlan.family_cluster_ip(family)
                        -> KUBE-SVC- (KUBE-SVL- with internalTrafficPolicy Local);
                        "<spn> external IP" -d family_external_ips(family) -> KUBE-EXT-;
                        "<spn> loadbalancer IP" -d lb_ip / lb_ip6 -> KUBE-EXT- (KUBE-FW- with
                        loadBalancerSourceRanges); last rule `-m addrtype --dst-type LOCAL
                        ! -d 127.0.0.0/8 -j KUBE-NODEPORTS` (NodePorts on every local
                        address: iptables mode's --nodeport-addresses default)
  KUBE-NODEPORTS (nat)  ServicePortPlan.node_port -> KUBE-EXT-
  KUBE-FW-<hash>        loadBalancerSourceRanges (family_source_ranges): `-s RANGE -j
                        KUBE-EXT-` per range (and `-s <LB IP>` when the node's address is in
                        one), else it falls through undone; filter KUBE-PROXY-FIREWALL then
                        drops what still goes to the LoadBalancer address
  KUBE-SVC-<hash>       all ready endpoints (ServicePortPlan.family_endpoints; with
                        trafficDistribution those hinted for this node or zone), first
                        `! -s <podCIDR> -j KUBE-MARK-MASQ` (kube-proxy's --cluster-cidr local
                        traffic detector, plan.cluster.pod_cidr / pod_cidr6), ClientIP affinity
                        (`recent --rcheck`, ServicePlan.affinity_timeout), then one rule per
                        endpoint with `statistic --mode random --probability 1/(n-i)`
  KUBE-SVL-<hash>       the same over this node's endpoints (Endpoint.node == node)
  KUBE-EXT-<hash>       NodePort / LoadBalancer entry: Cluster policy marks for masquerade and
                        goes to KUBE-SVC-; Local short-circuits pod and node-local sources to
                        KUBE-SVC- and sends the rest to KUBE-SVL-
  KUBE-SEP-<hash>       per endpoint: hairpin `-s <endpoint> -j KUBE-MARK-MASQ`, affinity
                        `recent --set`, DNAT
  KUBE-MARK-MASQ, KUBE-POSTROUTING   mark 0x4000, `MASQUERADE --random-fully`
  filter KUBE-SERVICES / KUBE-EXTERNAL-SERVICES   REJECT for ports without endpoints, DROP
                        for Local policies without local endpoints
  filter KUBE-NODEPORTS  ACCEPT for each healthCheckNodePort (the health check server is the
                        lab agent's, features/kubeproxy.render_health_servers)
  filter KUBE-FORWARD   conntrack INVALID drop, accept marked and established traffic

Chain names hash as portProtoHash / servicePortEndpointChainName do: base32(sha256(
servicePortName + lower-case protocol [+ "ip:port"]))[:16]. Endpoints are ordered as
kube-proxy's endpoints map orders them (by their "ip:port" string), Services by name.

IPv6 (family "IPv6") is what kube-proxy's IPv6 proxier of NewDualStackProxier writes with
ip6tables: the Services' IPv6 ClusterIPs, lb_ip6, IPv6 endpoints ("[addr]:port" in names,
comments and DNAT), the IPv6 pod CIDR, and `! -d ::1/128` before KUBE-NODEPORTS.

Not rendered, because netlab does not model it (or models it elsewhere):
  - localhost NodePorts: rendered as kube-proxy runs with --iptables-localhost-nodeports=false
    (no route_localnet, no KUBE-FIREWALL "block incoming localnet connections" chain, which is
    kubelet's), like the nftables mode netlab renders by default;
  - --masquerade-all, --nodeport-addresses (left at its default: NodePorts answer on every
    local address);
  - serving-terminating endpoints (the Plan's endpoints are the ready ones);
  - nfacct counters (`-m nfacct`, metrics only) and the KUBE-PROXY-CANARY monitor chains;
  - the masquerade mark is written 0x4000 (kube-proxy writes fmt "%#08x" of 1<<14, the same
    value; iptables-save prints 0x4000).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from netlab.features.services import node_zone, topology_endpoints
from netlab.plan import Endpoint, NodePlan, Plan, ServicePlan, ServicePortPlan

# chains kube-proxy fills in every sync, in the order it declares them (proxier.go)
FILTER_CHAINS = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS",
                 "KUBE-PROXY-FIREWALL")
NAT_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-FW-", "KUBE-EXT-")
TABLES = ("filter", "nat")  # the order of kube-proxy's restore input
MASQ_MARK = "0x4000"  # 1 << --iptables-masquerade-bit (14)
LARGE_CLUSTER_ENDPOINTS = 1000  # largeClusterEndpointsThreshold: above it, fewer comments
RESTORE_FLAGS = ("--noflush", "--counters")  # how kube-proxy runs iptables-restore
BUILTIN_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")

# iptablesJumpChains: (table, built-in chain, rule), each ensured with EnsureRule(Prepend) in
# this order, so the last one ends up first in its chain
JUMPS: tuple[tuple[str, str, str], ...] = (
    ("filter", "INPUT", '-m conntrack --ctstate NEW -m comment --comment '
                        '"kubernetes externally-visible service portals" '
                        '-j KUBE-EXTERNAL-SERVICES'),
    ("filter", "FORWARD", '-m conntrack --ctstate NEW -m comment --comment '
                          '"kubernetes externally-visible service portals" '
                          '-j KUBE-EXTERNAL-SERVICES'),
    ("filter", "INPUT", '-m comment --comment "kubernetes health check service ports" '
                        '-j KUBE-NODEPORTS'),
    ("filter", "FORWARD", '-m conntrack --ctstate NEW -m comment --comment '
                          '"kubernetes service portals" -j KUBE-SERVICES'),
    ("filter", "OUTPUT", '-m conntrack --ctstate NEW -m comment --comment '
                         '"kubernetes service portals" -j KUBE-SERVICES'),
    ("filter", "FORWARD", '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD'),
    ("filter", "INPUT", '-m conntrack --ctstate NEW -m comment --comment '
                        '"kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL'),
    ("filter", "OUTPUT", '-m conntrack --ctstate NEW -m comment --comment '
                         '"kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL'),
    ("filter", "FORWARD", '-m conntrack --ctstate NEW -m comment --comment '
                          '"kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL'),
    ("nat", "OUTPUT", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    ("nat", "PREROUTING", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    ("nat", "POSTROUTING", '-m comment --comment "kubernetes postrouting rules" '
                           '-j KUBE-POSTROUTING'),
)


# --- names ------------------------------------------------------------------------------------

def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """portProtoHash: the 16 characters after KUBE-SVC-/SVL-/EXT-/FW-."""
    return _hash16(service_port_name + protocol)


def endpoint_hash(service_port_name: str, protocol: str, endpoint: str) -> str:
    """servicePortEndpointChainName's hash (endpoint "ip:port", "[ip6]:port")."""
    return _hash16(service_port_name + protocol + endpoint)


def service_port_name(svc: ServicePlan, port: ServicePortPlan) -> str:
    """proxy.ServicePortName.String(): "ns/name:port", "ns/name" for an unnamed port."""
    return f"{svc.namespace}/{svc.name}" + (f":{port.name}" if port.name else "")


def _proto(port: ServicePortPlan) -> str:
    return port.protocol.lower()


def service_chain(svc: ServicePlan, port: ServicePortPlan) -> str:
    """KUBE-SVC-: the Cluster traffic policy chain (servicePortPolicyClusterChain)."""
    return "KUBE-SVC-" + port_proto_hash(service_port_name(svc, port), _proto(port))


def local_chain(svc: ServicePlan, port: ServicePortPlan) -> str:
    """KUBE-SVL-: the Local traffic policy chain (servicePortPolicyLocalChainName)."""
    return "KUBE-SVL-" + port_proto_hash(service_port_name(svc, port), _proto(port))


def external_chain(svc: ServicePlan, port: ServicePortPlan) -> str:
    """KUBE-EXT-: NodePort and LoadBalancer traffic (serviceExternalChainName)."""
    return "KUBE-EXT-" + port_proto_hash(service_port_name(svc, port), _proto(port))


def firewall_chain(svc: ServicePlan, port: ServicePortPlan) -> str:
    """KUBE-FW-: loadBalancerSourceRanges (serviceFirewallChainName)."""
    return "KUBE-FW-" + port_proto_hash(service_port_name(svc, port), _proto(port))


def endpoint_string(ep: Endpoint) -> str:
    """BaseEndpointInfo.String(): net.JoinHostPort(ip, port)."""
    return f"[{ep.ip}]:{ep.port}" if ":" in ep.ip else f"{ep.ip}:{ep.port}"


def endpoint_chain(svc: ServicePlan, port: ServicePortPlan, ep: Endpoint) -> str:
    """KUBE-SEP-: one endpoint of one Service port (servicePortEndpointChainName)."""
    return "KUBE-SEP-" + endpoint_hash(service_port_name(svc, port), _proto(port),
                                       endpoint_string(ep))


def probability(n: int) -> str:
    """computeProbability: 1/n as Go's %0.10f prints it."""
    return f"{1.0 / n:0.10f}"


def is_kube_proxy_chain(chain: str) -> bool:
    """A chain kube-proxy's iptables mode owns (isServiceChainName, or a top-level one)."""
    return chain in FILTER_CHAINS or chain in NAT_CHAINS or chain.startswith(
        SERVICE_CHAIN_PREFIXES)


# --- the ruleset ------------------------------------------------------------------------------

@dataclass
class Ruleset:
    """One node's kube-proxy rules of one family. `tables`: "filter" and "nat", each its
    chains in kube-proxy's declaration order, each chain its rules as iptables-restore lines
    (`-A CHAIN ...`). `services`: "namespace/name" -> its nat chains (SVC/SVL/EXT/SEP), the
    unit a partial sync rewrites. `jumps`: (table, built-in chain, rule) that hook the
    KUBE- chains in."""

    family: str
    tables: dict[str, dict[str, list[str]]]
    services: dict[str, tuple[str, ...]] = field(default_factory=dict)
    jumps: tuple[tuple[str, str, str], ...] = JUMPS

    def rules(self, table: str) -> list[str]:
        """All rules of a table, chain after chain."""
        return [r for rules in self.tables[table].values() for r in rules]

    def service_chains(self, key: str) -> dict[str, list[str]]:
        return {c: self.tables["nat"][c] for c in self.services.get(key, ())}


def _q(text: str) -> str:
    """A comment as kube-proxy writes it into restore input: quoted when it has a space."""
    return f'"{text}"' if " " in text else text


def _sorted_endpoints(eps: Iterable[Endpoint]) -> list[Endpoint]:
    """The endpoints map's order (sort.Sort(byEndpoint): by "ip:port"), one per ip:port."""
    by = {endpoint_string(ep): ep for ep in eps}
    return [by[k] for k in sorted(by)]


def render_node(plan: Plan, node: NodePlan | str, family: str = "IPv4") -> Ruleset:
    """One node's iptables (family "IPv6": ip6tables) ruleset, as kube-proxy's proxier of that
    family writes it in a full sync. `node` is a NodePlan (or a node name)."""
    node_name = node if isinstance(node, str) else node.name
    node_ip = "" if isinstance(node, str) else node.address(family)  # proxier.nodeIP
    zone = node_zone(plan, node_name)
    v6 = family == "IPv6"
    pod_cidr = plan.cluster.pod_cidr6 if v6 else plan.cluster.pod_cidr
    filt: dict[str, list[str]] = {c: [] for c in FILTER_CHAINS}
    nat: dict[str, list[str]] = {c: [] for c in NAT_CHAINS}
    nat["KUBE-POSTROUTING"] += [
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully"]
    nat["KUBE-MARK-MASQ"].append(f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}")
    services = [s for _, s in sorted(plan.services.items()) if s.family_cluster_ip(family)]
    total = sum(len(_sorted_endpoints(p.family_endpoints(family)))
                for s in services for p in s.ports)
    comments = total <= LARGE_CLUSTER_ENDPOINTS
    owned: dict[str, tuple[str, ...]] = {}
    for svc in services:
        chains: list[str] = []
        from_node = bool(node_ip) and any(
            ipaddress.ip_address(node_ip) in ipaddress.ip_network(r)
            for r in svc.family_source_ranges(family))
        for port in svc.ports:
            chains += _service_port(filt, nat, svc, port, family, node_name, pod_cidr,
                                    comments, zone, from_node)
        if chains:
            owned[svc.key] = tuple(chains)
    # NodePorts on every local address (`-m addrtype --dst-type LOCAL`): kube-proxy's
    # iptables mode leaves --nodeport-addresses unset (match all), unlike its nftables mode
    # (whose backend defaults it to `primary`), also in 1.33+
    no_local = "::1/128" if v6 else "127.0.0.0/8"
    nat["KUBE-SERVICES"].append(
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must '
        f'be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d {no_local} '
        "-j KUBE-NODEPORTS")
    filt["KUBE-FORWARD"] += [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
        f"-m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    return Ruleset(family, {"filter": filt, "nat": nat}, owned)


def _service_port(filt: dict[str, list[str]], nat: dict[str, list[str]], svc: ServicePlan,
                  port: ServicePortPlan, family: str, node: str, pod_cidr: str,
                  comments: bool, zone: str | None = None, from_node: bool = False
                  ) -> list[str]:
    """One Service port's rules (syncProxyRules' loop body); returns its own nat chains."""
    spn = service_port_name(svc, port)
    p = _proto(port)
    match = f"-m {p} -p {p}"
    cluster_ip = svc.family_cluster_ip(family)
    lb_ip = svc.lb_ip6 if family == "IPv6" else svc.lb_ip
    lb_ips = [lb_ip] if lb_ip else []
    external_ips = svc.family_external_ips(family)
    ranges = svc.family_source_ranges(family)
    node_port = port.node_port or 0
    svc_chain, svl_chain = service_chain(svc, port), local_chain(svc, port)
    ext_chain, fw_chain = external_chain(svc, port), firewall_chain(svc, port)

    # BaseServicePortInfo and CategorizeEndpoints (pkg/proxy/serviceport.go, topology.go)
    externally_accessible = bool(node_port or lb_ips or external_ips)
    internal_local = svc.internal_traffic_policy == "Local"
    external_local = externally_accessible and svc.external_traffic_policy == "Local"
    uses_cluster = not internal_local or externally_accessible
    uses_local = internal_local or external_local
    endpoints = _sorted_endpoints(port.family_endpoints(family))
    # trafficDistribution: the Cluster policy keeps the endpoints hinted for this node
    # (or its zone), as topologyModeFromHints decides
    topology = list(topology_endpoints(svc, tuple(endpoints), node, zone))
    cluster_eps = topology if uses_cluster else []
    local_eps = [ep for ep in endpoints if ep.node == node] if uses_local else []
    reachable = (_sorted_endpoints([*cluster_eps, *local_eps]) if uses_cluster and uses_local
                 else cluster_eps if uses_cluster else local_eps)
    has_endpoints = bool(endpoints)

    internal_chain = svl_chain if internal_local else svc_chain
    has_internal = has_endpoints and (not internal_local or bool(local_eps))
    external_policy_chain = svl_chain if external_local else svc_chain
    has_external = has_endpoints and (not external_local or bool(local_eps))
    uses_external_chain = has_endpoints and externally_accessible

    if not has_endpoints:
        internal_target = external_target = "REJECT"
        internal_comment = external_comment = f'"{spn} has no endpoints"'
    else:
        internal_target = external_target = "DROP"
        internal_comment = external_comment = f'"{spn} has no local endpoints"'

    cluster_ip_match = (f'-m comment --comment "{spn} cluster IP" {match} -d {cluster_ip} '
                        f"--dport {port.port}")
    # LoadBalancer traffic goes through a KUBE-FW- chain when loadBalancerSourceRanges
    # (of this family) limit its sources
    uses_fw = has_endpoints and bool(lb_ips) and bool(ranges)
    lb_target = fw_chain if uses_fw else ext_chain
    if has_internal:
        nat["KUBE-SERVICES"].append(f"-A KUBE-SERVICES {cluster_ip_match} -j {internal_chain}")
    else:
        filt["KUBE-SERVICES"].append(
            f"-A KUBE-SERVICES -m comment --comment {internal_comment} {match} "
            f"-d {cluster_ip} --dport {port.port} -j {internal_target}")
    for eip in external_ips:
        if has_endpoints:
            nat["KUBE-SERVICES"].append(
                f'-A KUBE-SERVICES -m comment --comment "{spn} external IP" {match} '
                f"-d {eip} --dport {port.port} -j {ext_chain}")
        if not has_external:
            filt["KUBE-EXTERNAL-SERVICES"].append(
                f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {external_comment} {match} "
                f"-d {eip} --dport {port.port} -j {external_target}")
    for lb in lb_ips:
        if has_endpoints:
            nat["KUBE-SERVICES"].append(
                f'-A KUBE-SERVICES -m comment --comment "{spn} loadbalancer IP" {match} '
                f"-d {lb} --dport {port.port} -j {lb_target}")
        if uses_fw:
            filt["KUBE-PROXY-FIREWALL"].append(
                f'-A KUBE-PROXY-FIREWALL -m comment --comment "{spn} traffic not accepted by '
                f'{fw_chain}" {match} -d {lb} --dport {port.port} -j DROP')
    if not has_external:
        for lb in lb_ips:
            filt["KUBE-EXTERNAL-SERVICES"].append(
                f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {external_comment} {match} "
                f"-d {lb} --dport {port.port} -j {external_target}")
    if node_port:
        if has_endpoints:
            nat["KUBE-NODEPORTS"].append(
                f"-A KUBE-NODEPORTS -m comment --comment {_q(spn)} {match} "
                f"--dport {node_port} -j {ext_chain}")
        if not has_external:
            filt["KUBE-EXTERNAL-SERVICES"].append(
                f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {external_comment} "
                f"-m addrtype --dst-type LOCAL {match} --dport {node_port} "
                f"-j {external_target}")

    if svc.health_check_node_port:  # accepted whether or not this node has an endpoint
        filt["KUBE-NODEPORTS"].append(
            f'-A KUBE-NODEPORTS -m comment --comment "{spn} health check node port" '
            f"-m tcp -p tcp --dport {svc.health_check_node_port} -j ACCEPT")

    # the Service's own chains, declared as kube-proxy declares them: EXT, FW, SVC, SVL, SEPs
    own: dict[str, list[str]] = {}
    if uses_external_chain:
        own[ext_chain] = []
    if uses_fw:
        own[fw_chain] = []
    if cluster_eps:
        own[svc_chain] = []
    if local_eps:
        own[svl_chain] = []
    for ep in reachable:
        own[endpoint_chain(svc, port, ep)] = []
    if has_internal and pod_cidr:  # masquerade off-cluster sources (LocalTrafficDetector)
        own[internal_chain].append(
            f"-A {internal_chain} {cluster_ip_match} ! -s {pod_cidr} -j KUBE-MARK-MASQ")
    if uses_external_chain:
        rules = own[ext_chain]
        if not external_local:
            rules.append(f'-A {ext_chain} -m comment --comment "masquerade traffic for {spn} '
                         'external destinations" -j KUBE-MARK-MASQ')
        else:
            if pod_cidr:
                rules.append(f'-A {ext_chain} -m comment --comment "pod traffic for {spn} '
                             f'external destinations" -s {pod_cidr} -j {svc_chain}')
            rules += [f'-A {ext_chain} -m comment --comment "masquerade LOCAL traffic for '
                      f'{spn} external destinations" -m addrtype --src-type LOCAL '
                      "-j KUBE-MARK-MASQ",
                      f'-A {ext_chain} -m comment --comment "route LOCAL traffic for {spn} '
                      f'external destinations" -m addrtype --src-type LOCAL -j {svc_chain}']
        if has_external:
            rules.append(f"-A {ext_chain} -j {external_policy_chain}")
    if uses_fw:
        head = f'-A {fw_chain} -m comment --comment "{spn} loadbalancer IP"'
        own[fw_chain] += [f"{head} -s {r} -j {ext_chain}" for r in ranges]
        if from_node:  # the node's address is in a range: its own traffic to the VIPs too
            own[fw_chain] += [f"{head} -s {lb} -j {ext_chain}" for lb in lb_ips]
        own[fw_chain].append(f'-A {fw_chain} -m comment --comment "other traffic to {spn} '
                             'will be dropped by KUBE-PROXY-FIREWALL"')
    if cluster_eps:
        own[svc_chain] += _balance(svc, port, spn, svc_chain, cluster_eps, comments)
    if local_eps:
        own[svl_chain] += _balance(svc, port, spn, svl_chain, local_eps, comments)
    for ep in reachable:
        sep = endpoint_chain(svc, port, ep)
        head = f"-A {sep}" + (f" -m comment --comment {_q(spn)}" if comments else "")
        affinity = (f" -m recent --name {sep} --set"
                    if svc.affinity_timeout is not None else "")
        own[sep] += [f"{head} -s {ep.ip} -j KUBE-MARK-MASQ",
                     f"{head}{affinity} {match} -j DNAT --to-destination {endpoint_string(ep)}"]
    nat.update(own)
    return list(own)


def _balance(svc: ServicePlan, port: ServicePortPlan, spn: str, chain: str,
             endpoints: list[Endpoint], comments: bool) -> list[str]:
    """writeServiceToEndpointRules: affinity first, then 1/n, 1/(n-1), ..., the last always."""
    def head(ep: Endpoint) -> str:
        text = f'"{spn} -> {endpoint_string(ep)}"'
        return f"-A {chain}" + (f" -m comment --comment {text}" if comments else "")

    rules: list[str] = []
    if svc.affinity_timeout is not None:
        for ep in endpoints:
            sep = endpoint_chain(svc, port, ep)
            rules.append(f"{head(ep)} -m recent --name {sep} --rcheck --seconds "
                         f"{svc.affinity_timeout} --reap -j {sep}")
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        chance = (f" -m statistic --mode random --probability {probability(n - i)}"
                  if i < n - 1 else "")
        rules.append(f"{head(ep)}{chance} -j {endpoint_chain(svc, port, ep)}")
    return rules


# --- loading ----------------------------------------------------------------------------------

def changed_services(new: Ruleset, old: Ruleset) -> list[str]:
    """Services whose nat chains differ between two syncs (their names or their rules)."""
    keys = sorted(set(new.services) | set(old.services))
    return [k for k in keys if new.service_chains(k) != old.service_chains(k)]


def restore_text(new: Ruleset, old: Ruleset | None = None, *, jumps: bool | None = None
                 ) -> str:
    """iptables-restore input (ip6tables-restore for an IPv6 ruleset) for one transaction,
    to be run with RESTORE_FLAGS (`--noflush`: chains it does not name stay as they are).

    As syncProxyRules writes it: `*filter` then `*nat`; a `:CHAIN - [0:0]` line (which
    creates the chain, or flushes it) for each chain written, its rules, `COMMIT`.

    Full sync (old None): every chain and rule. Partial sync (old = the ruleset loaded
    before): the filter table and the top-level nat chains (KUBE-SERVICES, KUBE-NODEPORTS,
    KUBE-POSTROUTING, KUBE-MARK-MASQ) are always declared and rewritten in full, as
    kube-proxy does; a Service's own nat chains (KUBE-SVC/SVL/EXT/SEP) only when that
    Service changed. kube-proxy decides "changed" from its Service and EndpointSlice change
    trackers; here it is the Services whose rendered chains differ (changed_services), which
    rewrites the same Services or fewer (none whose chains came out identical). Chains that
    existed before and exist no more are declared (flushed) and deleted with `-X`, as
    kube-proxy deletes the stale chains it finds with iptables-save.

    jumps (default: on a full sync) adds the rules in the built-in chains that hook the KUBE-
    chains in (`-I PREROUTING ...`, in iptablesJumpChains' order, each inserted first as
    EnsureRule(Prepend) does). kube-proxy ensures them with separate iptables calls on full
    syncs; here they are part of the one transaction, so a full sync with jumps is for a node
    without them (a first load, or after cleanup_text)."""
    if old is not None and old.family != new.family:
        raise ValueError(f"cannot sync a {new.family} ruleset over a {old.family} one")
    if jumps is None:
        jumps = old is None
    changed = set(changed_services(new, old)) if old is not None else set()
    owner = {c: k for k, chains in new.services.items() for c in chains}
    lines: list[str] = []
    for table in TABLES:
        chains = new.tables[table]
        if old is None or table == "filter":
            written = list(chains)
            deleted: list[str] = []
        else:
            written = [c for c in chains if c not in owner or owner[c] in changed]
            deleted = [c for c in old.tables[table] if c not in chains]
        lines.append(f"*{table}")
        lines += [f":{c} - [0:0]" for c in [*written, *deleted]]
        if jumps:
            lines += [f"-I {chain} {rule}" for t, chain, rule in new.jumps if t == table]
        for c in written:
            lines += chains[c]
        lines += [f"-X {c}" for c in deleted]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def cleanup_text(existing: Ruleset | str) -> str:
    """iptables-restore input (RESTORE_FLAGS) that removes all kube-proxy's iptables mode
    made, as CleanupLeftovers does when a node leaves that mode: delete the jump rules in the
    built-in chains, then flush (declare) and delete (-X) the KUBE- chains.

    `existing` is the ruleset that was loaded (with its jumps), or the node's
    `iptables-save` output, from which the kube-proxy chains and the built-in chains' rules
    jumping to them are taken (as CleanupLeftovers hunts chains in iptables-save output).
    Unlike CleanupLeftovers, this also deletes KUBE-MARK-MASQ and KUBE-PROXY-FIREWALL (no
    kubelet here shares them), and it is one transaction for both tables."""
    if isinstance(existing, Ruleset):
        chains = {t: list(existing.tables[t]) for t in TABLES}
        deletes = {t: [(c, r) for tt, c, r in existing.jumps if tt == t] for t in TABLES}
    else:
        chains, deletes = _saved(existing)
    lines: list[str] = []
    for table in TABLES:
        ours, jumps = chains.get(table, []), deletes.get(table, [])
        if not ours and not jumps:
            continue
        lines.append(f"*{table}")
        lines += [f":{c} - [0:0]" for c in ours]
        lines += [f"-D {chain} {rule}" for chain, rule in jumps]
        lines += [f"-X {c}" for c in ours]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n" if lines else ""


def _saved(text: str) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, str]]]]:
    """From iptables-save output: per table, kube-proxy's chains and the built-in chains'
    rules (chain, rule spec) that jump to one of them."""
    chains: dict[str, list[str]] = {}
    jumps: dict[str, list[tuple[str, str]]] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table in TABLES and line.startswith(":"):
            name = line[1:].split()[0]
            if is_kube_proxy_chain(name):
                chains.setdefault(table, []).append(name)
        elif table in TABLES and line.startswith("-A "):
            chain, _, rule = line[3:].partition(" ")
            words = rule.split()
            target = words[words.index("-j") + 1] if "-j" in words[:-1] else ""
            if chain in BUILTIN_CHAINS and is_kube_proxy_chain(target):
                jumps.setdefault(table, []).append((chain, rule))
    return chains, jumps
