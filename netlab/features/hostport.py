"""hostPort in the native pod network, as kubenet's hostport manager did it (kubelet
pkg/kubelet/dockershim/network/hostport, KUBE-HOSTPORTS): traffic to one of the node's own
addresses (or to the port's hostIP only) on a hostPort is DNATed to the pod's address and
containerPort, both from outside (prerouting) and from the node itself (output); a pod that
reaches its own hostPort (hairpin) is masqueraded, or its reply would bypass the DNAT.

One `ip netlab-hostport` table per node (and `ip6` in a cluster with IPv6), present only while
a pod on that node asks for a hostPort. hostNetwork pods listen on the node's ports
themselves: nothing to DNAT. In CNI mode the portmap plugin does this instead. Pure."""

from __future__ import annotations

from netlab.nft.table import Table, comment
from netlab.plan import NodePlan, Plan

TABLE = "netlab-hostport"


def render_node(plan: Plan, node: NodePlan, family: str) -> Table | None:
    """The node's hostport table in one family, or None when no pod there has a hostPort."""
    v6 = family == "IPv6"
    ip = "ip6" if v6 else "ip"
    entries = [(p, proto, host_ip, host_port, port)
               for p in sorted(plan.pods.values(), key=lambda p: p.key)
               if p.node == node.name and not p.host_network and p.address(family)
               for proto, host_ip, host_port, port in p.host_ports
               if not host_ip or (":" in host_ip) == v6]
    if not entries:
        return None
    t = Table(ip, TABLE)
    # before kube-proxy's (dstnat): a hostPort wins over a NodePort of the same number, as
    # KUBE-HOSTPORTS came first in kubenet's PREROUTING
    t.chain("prerouting", ["fib daddr type local jump hostports"],
            "type nat hook prerouting priority dstnat - 1 ; policy accept ;")
    t.chain("output", ["fib daddr type local jump hostports"],
            "type nat hook output priority -101 ; policy accept ;")
    rules, hairpin = [], []
    for p, proto, host_ip, host_port, port in entries:
        address = p.address(family)
        target = f"[{address}]:{port}" if v6 else f"{address}:{port}"
        only = f"{ip} daddr {host_ip} " if host_ip and host_ip not in ("0.0.0.0", "::") else ""
        tag = comment(f"{p.key} {host_port}/{proto}")
        rules.append(f"{only}{proto.lower()} dport {host_port} dnat to {target} {tag}")
        hairpin.append(f"{ip} saddr {address} {ip} daddr {address} {proto.lower()} dport "
                       f"{port} ct status dnat masquerade {tag}")
    t.chain("hostports", rules)
    t.chain("postrouting", hairpin,
            "type nat hook postrouting priority srcnat ; policy accept ;")
    return t


def render_tables(plan: Plan, node: NodePlan) -> list[Table]:
    return [t for f in ("IPv4", "IPv6") if f in plan.cluster.families
            for t in (render_node(plan, node, f),) if t is not None]
