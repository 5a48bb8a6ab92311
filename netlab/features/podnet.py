"""The pod network on each node, as flannel's bridge CNI plugin builds it: a `cni0`
bridge holding the pod gateway, and per pod a veth pair (host end on cni0, hairpin on)
with the pod's address and a default route via the gateway. Dual-stack: the same in IPv6
(host-local's second range: cni0 on the node's /64 ::1, the pod on the same host part as
its IPv4 address, a default route via ::1)."""

from __future__ import annotations

import ipaddress

from netlab import names
from netlab.features.underlay import HOST_SYSCTLS, HOST_SYSCTLS6
from netlab.intents import Address, Intent, Link, Netns, Peer, Route
from netlab.plan import NodePlan, Plan, PodPlan


def _prefix(cidr: str) -> int:
    return ipaddress.ip_network(cidr).prefixlen


def render_node_bridge(plan: Plan, node: NodePlan) -> list[Intent]:
    return [
        Link(node.netns, names.NODE_BRIDGE, names.INDEX_NODE_BRIDGE, "bridge",
             mtu=plan.cluster.pod_mtu, mac=names.bridge_mac(plan.lab, node.name)),
        *(Address(node.netns, names.NODE_BRIDGE, names.INDEX_NODE_BRIDGE,
                  f"{node.of('gateway', f)}/{_prefix(node.of('pod_cidr', f))}")
          for f in plan.cluster.families),
    ]


def render_pod_netns(pod: PodPlan) -> list[Intent]:
    """No UTS namespace is bound for a pod (unlike nodes): its sandbox has one with its
    hostname, and a command in a pod without a sandbox gets a new one (procs.launcher_argv).
    A bound namespace file is a mount in the host's table, copied into every new mount
    namespace and unmounted at `down`: one per pod is enough (the network's)."""
    return [Netns(pod.netns, sysctls=HOST_SYSCTLS6 if pod.ip6 else HOST_SYSCTLS)]


def render_pod_veth(plan: Plan, pod: PodPlan) -> list[Intent]:
    """The host end, made in the node namespace; its peer is born in the pod namespace."""
    node = plan.node(pod.node)
    return [Link(node.netns, pod.veth, pod.veth_index, "veth", mtu=plan.cluster.pod_mtu,
                 master=names.INDEX_NODE_BRIDGE, hairpin=True,
                 peer=Peer(pod.netns, names.POD_IFACE, names.INDEX_POD_ETH0,
                           mac=names.pod_mac(pod.ip or pod.ip6)))]


def render_pod_inside(plan: Plan, pod: PodPlan) -> list[Intent]:
    node = plan.node(pod.node)
    return [
        Link(pod.netns, "lo", 1, "", up=True),
        Link(pod.netns, names.POD_IFACE, names.INDEX_POD_ETH0, "", mtu=plan.cluster.pod_mtu),
        *(i for f in plan.cluster.families for i in (
            Address(pod.netns, names.POD_IFACE, names.INDEX_POD_ETH0,
                    f"{pod.address(f)}/{_prefix(node.of('pod_cidr', f))}"),
            Route(pod.netns, "::/0" if f == "IPv6" else "default", names.POD_IFACE,
                  names.INDEX_POD_ETH0, gateway=node.of("gateway", f)))),
    ]
