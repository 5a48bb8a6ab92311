"""LoadBalancer addresses (and external IPs), announced MetalLB-L2 style: exactly one node
answers ARP for a Service's address on the underlay. The announcing node holds the address
as a /32 on `lo` (kube-proxy's IPVS mode binds them to a dummy, kube-ipvs0; this kernel has
no dummy devices), so its kernel answers ARP for it on eth0; the node's kube-proxy table
DNATs the traffic to an endpoint before it could be delivered locally.

IPv6 has no ARP, and Linux answers a Neighbour Solicitation only for an address on the
interface it arrived on (not for one on lo), so a Service's IPv6 address sits on the same
node's eth0 as a /128 (added nodad: no duplicate address detection delays it), as
MetalLB's speaker answers NS for it on that interface; taking it over is announced with an
unsolicited Neighbour Advertisement (see KernelPort.announce). It is added deprecated
(preferred_lft 0, as keepalived adds IPv6 VIPs): otherwise source address selection may
pick it for the node's own traffic, and the node's masquerade would hide pods behind a
Service's address."""

from __future__ import annotations

from netlab import names
from netlab.intents import Address
from netlab.plan import NodePlan, Plan


def announced(plan: Plan, node: NodePlan) -> list[Address]:
    """The addresses this node holds for Services: LoadBalancer addresses it announces, and
    the external IPs (spec.externalIPs) it was chosen to hold. kube-proxy itself holds
    neither in iptables or nftables mode: something outside it routes them to a node (a
    MetalLB speaker, an administrator's route); in the lab that is this node answering ARP
    (IPv6: neighbour solicitations) for them on the underlay, each address on one node."""
    out: list[Address] = []
    seen: set[str] = set()

    def hold(ip: str) -> None:
        if ip in seen:
            return
        seen.add(ip)
        if ":" in ip:
            out.append(Address(node.netns, names.NODE_UNDERLAY_IFACE, names.INDEX_NODE_ETH0,
                               f"{ip}/128", deprecated=True))
        else:
            out.append(Address(node.netns, names.NODE_LB, names.INDEX_NODE_LB, f"{ip}/32"))

    for svc in sorted(plan.services.values(), key=lambda s: s.key):
        if svc.announcer == node.name:
            for ip in (svc.lb_ip, svc.lb_ip6):
                if ip:
                    hold(ip)
        for ip, holder in svc.external_announcers:
            if holder == node.name:
                hold(ip)
    return out
