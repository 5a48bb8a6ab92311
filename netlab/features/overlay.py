"""Routes between nodes' pod CIDRs, as flannel's two simplest backends do it.

vxlan (flannel `pkg/backend/vxlan`): a `flannel.1` VXLAN device per node (VNI 1, UDP 8472,
learning off) holding the node's .0 address; for each remote node exactly one route
(its podCIDR via its .0, onlink), one permanent neighbour (.0 -> its VTEP MAC) and one
FDB entry (VTEP MAC -> its underlay IP). No multicast, no flooding, nothing learnt.

host-gw: for each remote node a route to its podCIDR via its underlay address.

bgp: nothing; BIRD in every node learns those routes (features/bgp.py).

Dual-stack, as flannel does it (pkg/backend/vxlan, hostgw): the same again in IPv6 over the
IPv6 underlay (the IPv6 overlay never rides on IPv4): a second device `flannel-v6.1` (same
VNI and port, its own MAC, the node's /64 network address as its /128 VTEP address) with a
neighbour, an FDB entry and an onlink route per remote node; host-gw one IPv6 route per
remote node via its IPv6 underlay address. flannel gives flannel-v6.1 the same MTU as
flannel.1 (underlay - 50; flannel#1781), but VXLAN over IPv6 costs 70 bytes, so here it is
underlay - 70: a pod's bigger IPv6 packets meet ICMPv6 Packet Too Big at the node instead
of being lost on the wire.
"""

from __future__ import annotations

from netlab import names
from netlab.intents import Address, Fdb, Intent, Link, Neighbour, Route, Vxlan
from netlab.plan import NodePlan, Plan

VXLAN_VNI = 1
VXLAN_PORT = 8472  # flannel's (Linux's historical) port, not IANA's 4789


def render_node(plan: Plan, node: NodePlan) -> list[Intent]:
    return [i for f in plan.cluster.families
            for i in _render_family(plan, node, "6" if f == "IPv6" else "")]


def _render_family(plan: Plan, node: NodePlan, v: str) -> list[Intent]:
    """One family's routes: `v` "" for IPv4, "6" for IPv6 (the NodePlan fields' suffix)."""
    def f(n: NodePlan, attr: str) -> str:
        return getattr(n, attr + v)

    remotes = [n for n in plan.nodes if n.name != node.name]
    if plan.cluster.backend == "bgp":  # BIRD learns them (features/bgp.py): nothing here
        return []
    if plan.cluster.backend == "host-gw":
        return [Route(node.netns, f(r, "pod_cidr"), names.NODE_UNDERLAY_IFACE,
                      names.INDEX_NODE_ETH0, gateway=f(r, "underlay_ip")) for r in remotes]
    dev, idx = ((names.NODE_VXLAN6, names.INDEX_NODE_VXLAN6) if v else
                (names.NODE_VXLAN, names.INDEX_NODE_VXLAN))
    out: list[Intent] = [
        Link(node.netns, dev, idx, "vxlan", mtu=plan.cluster.mtu - (70 if v else 50),
             mac=f(node, "vtep_mac"),
             vxlan=Vxlan(VXLAN_VNI, f(node, "underlay_ip"), VXLAN_PORT, names.INDEX_NODE_ETH0)),
        Address(node.netns, dev, idx, f"{f(node, 'vtep_ip')}/{128 if v else 32}"),
    ]
    for r in remotes:
        out += [
            Neighbour(node.netns, dev, idx, f(r, "vtep_ip"), f(r, "vtep_mac")),
            Fdb(node.netns, dev, idx, f(r, "vtep_mac"), f(r, "underlay_ip")),
            Route(node.netns, f(r, "pod_cidr"), dev, idx, gateway=f(r, "vtep_ip"), onlink=True),
        ]
    return out
