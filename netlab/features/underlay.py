"""The underlay: a fabric namespace with an L2 bridge that every node's eth0 plugs into,
standing for the physical network between machines."""

from __future__ import annotations

import ipaddress

from netlab import names
from netlab.intents import Address, Intent, Link, Netns, Peer, Process, Route, Serve
from netlab.plan import NodePlan, Plan

# Namespaces of routers: forwarding on, IPv6 off (no NDP/MLD noise in captures).
# arp_ignore=0 (answer ARP for any local address) is the kernel default, set explicitly because
# IPv4 settings of a new namespace are inherited from the host's: LoadBalancer addresses rely
# on it.
ROUTER_SYSCTLS = (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.arp_ignore", "0"),
                  ("net.ipv4.conf.default.arp_ignore", "0"),
                  ("net.ipv6.conf.all.disable_ipv6", "1"),
                  ("net.ipv6.conf.default.disable_ipv6", "1"))
HOST_SYSCTLS = (("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"))
# Dual-stack: IPv6 on, and quiet and immediate: no router advertisements taken, no
# duplicate address detection (addresses are also added `nodad`), as the bridge CNI plugin
# sets its interfaces (accept_ra=0, accept_dad=0). A new namespace gets the kernel's IPv6
# defaults, not the host's (net.core.devconf_inherit_init_net=0), so all are set.
_IPV6_ON = tuple((f"net.ipv6.conf.{scope}.{key}", value) for key, value in
                 (("disable_ipv6", "0"), ("accept_ra", "0"), ("accept_dad", "0"))
                 for scope in ("all", "default"))
ROUTER_SYSCTLS6 = (*ROUTER_SYSCTLS[:3], *_IPV6_ON, ("net.ipv6.conf.all.forwarding", "1"),
                   ("net.ipv6.conf.default.forwarding", "1"))
HOST_SYSCTLS6 = _IPV6_ON


def router_sysctls(plan: Plan) -> tuple[tuple[str, str], ...]:
    return ROUTER_SYSCTLS6 if plan.cluster.ipv6 else ROUTER_SYSCTLS


def host_sysctls(plan: Plan) -> tuple[tuple[str, str], ...]:
    return HOST_SYSCTLS6 if plan.cluster.ipv6 else HOST_SYSCTLS


def _prefix(cidr: str) -> int:
    return ipaddress.ip_network(cidr).prefixlen


def _default(family: str) -> str:
    return "::/0" if family == "IPv6" else "default"


def render_fabric(plan: Plan) -> list[Intent]:
    fabric = names.fabric_netns(plan.lab)
    return [Netns(fabric, sysctls=host_sysctls(plan)),
            Link(fabric, names.FABRIC_BRIDGE, names.INDEX_UNDERLAY_BRIDGE, "bridge",
                 mtu=plan.cluster.mtu)]


def render_hosts(plan: Plan) -> list[Intent]:
    """Two machines outside the cluster on the underlay. `internet` is also the underlay's
    gateway (the nodes' default route) and holds an address of the outside world
    (internetCIDR) with a responder on it; `external` is a client (NodePort, LoadBalancer)."""
    fabric = names.fabric_netns(plan.lab)
    families = plan.cluster.families
    out: list[Intent] = []
    for number, (host, address) in enumerate((("internet", plan.gateway),
                                              ("external", plan.external)), start=1):
        netns = names.host_netns(plan.lab, host)
        out += [
            Netns(netns, hostname=host, sysctls=host_sysctls(plan)),
            Link(fabric, names.host_port(host), names.INDEX_PORT_BASE - number, "veth",
                 mtu=plan.cluster.mtu, master=names.INDEX_UNDERLAY_BRIDGE,
                 peer=Peer(netns, "eth0", names.INDEX_HOST_ETH0)),
            Link(netns, "lo", 1, "", up=True),
            Link(netns, "eth0", names.INDEX_HOST_ETH0, "", mtu=plan.cluster.mtu),
            *(Address(netns, "eth0", names.INDEX_HOST_ETH0,
                      f"{address(f)}/{_prefix(plan.cluster.cidr('underlay', f))}")
              for f in families),
        ]
    internet = names.host_netns(plan.lab, "internet")
    external = names.host_netns(plan.lab, "external")
    for f in families:
        wan = plan.cluster.cidr("internet", f)
        out += [
            Address(internet, "lo", names.INDEX_HOST_WAN, f"{plan.internet(f)}/{_prefix(wan)}"),
            Route(external, wan, "eth0", names.INDEX_HOST_ETH0, gateway=plan.gateway(f)),
            # The external client's router knows the pod routes (as with Calico's BGP peering
            # or flannel's host-gw): it can reach pods directly, and ipBlock policies can be
            # tried. With backend bgp and bgp.external it learns them from the nodes instead.
            *(Route(external, n.of("pod_cidr", f), "eth0", names.INDEX_HOST_ETH0,
                    gateway=n.address(f)) for n in plan.nodes
              if not (plan.cluster.backend == "bgp" and plan.cluster.bgp_external)),
        ]
    return out


INTERNET_PORTS = ("tcp:80", "tcp:443", "udp:80")


def render_processes(plan: Plan) -> list[Process]:
    """A resolver for the world outside the cluster, which the cluster DNS forwards to."""
    from netlab.features.dns import COMMAND, UPSTREAM_NAMES

    internet = names.host_netns(plan.lab, "internet")
    return [Process("host/internet", "dns", internet,
                    (COMMAND, "--static", *(f"{n}={ip}" for n, ip in
                                            sorted(UPSTREAM_NAMES.items()))))]


def render_serve(plan: Plan) -> Serve:
    """The internet host's responder (web on 80 and 443, UDP on 80), in both families in a
    dual-stack lab."""
    ports = INTERNET_PORTS if plan.cluster.ipv4 else ()
    if plan.cluster.ipv6:
        ports += tuple(p.replace(":", "6:", 1) for p in INTERNET_PORTS)
    return Serve("host/internet", "internet", names.host_netns(plan.lab, "internet"), ports)


def render_node(plan: Plan, node: NodePlan) -> list[Intent]:
    """A node namespace and its eth0 on the underlay (the veth is made from the fabric side)."""
    fabric = names.fabric_netns(plan.lab)
    return [
        Netns(node.netns, hostname=node.name, sysctls=router_sysctls(plan)),
        Link(fabric, node.fabric_port, names.INDEX_PORT_BASE + node.number, "veth",
             mtu=plan.cluster.mtu, master=names.INDEX_UNDERLAY_BRIDGE,
             peer=Peer(node.netns, names.NODE_UNDERLAY_IFACE, names.INDEX_NODE_ETH0)),
        Link(node.netns, "lo", 1, "", up=True),
        Link(node.netns, names.NODE_UNDERLAY_IFACE, names.INDEX_NODE_ETH0, "",
             mtu=plan.cluster.mtu),
        *(i for f in plan.cluster.families for i in (
            Address(node.netns, names.NODE_UNDERLAY_IFACE, names.INDEX_NODE_ETH0,
                    f"{node.address(f)}/{_prefix(plan.cluster.cidr('underlay', f))}"),
            Route(node.netns, _default(f), names.NODE_UNDERLAY_IFACE, names.INDEX_NODE_ETH0,
                  gateway=plan.gateway(f)))),
    ]
