"""The underlay: a fabric namespace with an L2 bridge that every node's eth0 plugs into,
standing for the physical network between machines."""

from __future__ import annotations

import ipaddress

from netlab import names
from netlab.intents import Address, Intent, Link, Netns, Peer
from netlab.plan import NodePlan, Plan

# Namespaces of routers: forwarding on, IPv6 off (no NDP/MLD noise in captures).
ROUTER_SYSCTLS = (("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.disable_ipv6", "1"),
                  ("net.ipv6.conf.default.disable_ipv6", "1"))
HOST_SYSCTLS = (("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"))


def render_fabric(plan: Plan) -> list[Intent]:
    fabric = names.fabric_netns(plan.lab)
    return [Netns(fabric, sysctls=HOST_SYSCTLS),
            Link(fabric, names.FABRIC_BRIDGE, names.INDEX_UNDERLAY_BRIDGE, "bridge",
                 mtu=plan.cluster.mtu)]


def render_node(plan: Plan, node: NodePlan) -> list[Intent]:
    """A node namespace and its eth0 on the underlay (the veth is made from the fabric side)."""
    fabric = names.fabric_netns(plan.lab)
    prefix = ipaddress.IPv4Network(plan.cluster.underlay_cidr).prefixlen
    return [
        Netns(node.netns, hostname=node.name, sysctls=ROUTER_SYSCTLS),
        Link(fabric, node.fabric_port, names.INDEX_PORT_BASE + node.number, "veth",
             mtu=plan.cluster.mtu, master=names.INDEX_UNDERLAY_BRIDGE,
             peer=Peer(node.netns, names.NODE_UNDERLAY_IFACE, names.INDEX_NODE_ETH0)),
        Link(node.netns, "lo", 1, "", up=True),
        Link(node.netns, names.NODE_UNDERLAY_IFACE, names.INDEX_NODE_ETH0, "",
             mtu=plan.cluster.mtu),
        Address(node.netns, names.NODE_UNDERLAY_IFACE, names.INDEX_NODE_ETH0,
                f"{node.underlay_ip}/{prefix}"),
    ]
