"""LoadBalancer addresses, announced MetalLB-L2 style: exactly one node answers ARP for a
Service's address on the underlay. The announcing node holds the address as a /32 on `lo`
(kube-proxy's IPVS mode binds them to a dummy, kube-ipvs0; this kernel has no dummy
devices), so its kernel answers ARP for it on eth0; the node's kube-proxy table DNATs the
traffic to an endpoint before it could be delivered locally."""

from __future__ import annotations

from netlab import names
from netlab.intents import Address
from netlab.plan import NodePlan, Plan


def announced(plan: Plan, node: NodePlan) -> list[Address]:
    return [Address(node.netns, names.NODE_LB, names.INDEX_NODE_LB, f"{svc.lb_ip}/32")
            for svc in sorted(plan.services.values(), key=lambda s: s.key)
            if svc.lb_ip and svc.announcer == node.name]
