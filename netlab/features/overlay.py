"""Routes between nodes' pod CIDRs, as flannel's two simplest backends do it.

vxlan (flannel `pkg/backend/vxlan`): a `flannel.1` VXLAN device per node (VNI 1, UDP 8472,
learning off) holding the node's .0 address; for each remote node exactly one route
(its podCIDR via its .0, onlink), one permanent neighbour (.0 -> its VTEP MAC) and one
FDB entry (VTEP MAC -> its underlay IP). No multicast, no flooding, nothing learnt.

host-gw: for each remote node a route to its podCIDR via its underlay address.
"""

from __future__ import annotations

from netlab import names
from netlab.intents import Address, Fdb, Intent, Link, Neighbour, Route, Vxlan
from netlab.plan import NodePlan, Plan

VXLAN_VNI = 1
VXLAN_PORT = 8472  # flannel's (Linux's historical) port, not IANA's 4789


def render_node(plan: Plan, node: NodePlan) -> list[Intent]:
    remotes = [n for n in plan.nodes if n.name != node.name]
    if plan.cluster.backend == "host-gw":
        return [Route(node.netns, r.pod_cidr, names.NODE_UNDERLAY_IFACE, names.INDEX_NODE_ETH0,
                      gateway=r.underlay_ip) for r in remotes]
    dev, idx = names.NODE_VXLAN, names.INDEX_NODE_VXLAN
    out: list[Intent] = [
        Link(node.netns, dev, idx, "vxlan", mtu=plan.cluster.mtu - 50, mac=node.vtep_mac,
             vxlan=Vxlan(VXLAN_VNI, node.underlay_ip, VXLAN_PORT, names.INDEX_NODE_ETH0)),
        Address(node.netns, dev, idx, f"{node.vtep_ip}/32"),
    ]
    for r in remotes:
        out += [
            Neighbour(node.netns, dev, idx, r.vtep_ip, r.vtep_mac),
            Fdb(node.netns, dev, idx, r.vtep_mac, r.underlay_ip),
            Route(node.netns, r.pod_cidr, dev, idx, gateway=r.vtep_ip, onlink=True),
        ]
    return out
