"""Target references, as the CLI and the API take them, parsed in one place (pure):

  NAME, NS/NAME, pod/[NS/]NAME   a pod (a bare NAME: in `default`, else the only pod so named)
  svc/[NS/]NAME                  a Service (a bare NAME: in `default`, else the only one)
  node/NAME                      a node
  external, internet             the machines outside the cluster, on the underlay
  fabric                         the underlay switch
  an IPv4 address                that address
  anything else                  a DNS name, resolved from a pod by the cluster DNS
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Literal

from netlab import names
from netlab.errors import InputError, PodNotFoundError
from netlab.plan import NodePlan, Plan, PodPlan

Kind = Literal["pod", "service", "node", "host", "fabric", "address", "dns"]


class PodPendingError(InputError, PodNotFoundError):
    """The pod exists but no node accepts it (plan.pending): it has no node, no address and
    no network namespace, so nothing can run in it or reach it (exit status 2). A
    PodNotFoundError too, for callers that look such pods up elsewhere (Lab.pod)."""

    def __init__(self, pending: Any) -> None:  # plan.PendingPod
        self.pending = pending
        reason = pending.reason.rstrip(".")
        super().__init__(f"pod {pending.key} is Pending: {reason}. No node accepts it, so it "
                         "has no address and nothing runs in it (`netlab get pod "
                         f"{pending.name} -n {pending.namespace} -o yaml` shows its "
                         "PodScheduled condition)")


@dataclass(frozen=True)
class Target:
    kind: Kind
    name: str  # pod or Service reference ([NS/]NAME), node, host, address or DNS name
    text: str  # as written

    @property
    def outside(self) -> bool:
        """A machine outside the cluster (it reaches a LoadBalancer by its address)."""
        return self.kind == "host"


def parse(text: str, plan: Plan | None = None) -> Target:
    """What `text` refers to. Without a plan, a bare word is a pod; with one, a bare word
    that names no pod is a DNS name."""
    if text.startswith("svc/"):
        return Target("service", text[4:], text)
    if text.startswith("node/"):
        return Target("node", text[5:], text)
    if text.startswith("pod/"):
        return Target("pod", text[4:], text)
    if text in names.HOSTS:
        return Target("host", text, text)
    if text == "fabric":
        return Target("fabric", text, text)
    try:
        return Target("address", str(ipaddress.ip_address(text)), text)
    except ValueError:
        pass
    if "/" in text or plan is None or any(p.name == text for p in plan.pods.values()) \
            or any(p.name == text for p in plan.pending.values()):
        return Target("pod", text, text)
    return Target("dns", text, text)


def pod(plan: Plan, ref: str) -> PodPlan:
    """A pod by [NS/]NAME (or pod/[NS/]NAME)."""
    ref = ref[4:] if ref.startswith("pod/") else ref
    pods = plan.pods
    if "/" in ref:
        if ref in pods:
            return pods[ref]
    else:
        if f"default/{ref}" in pods:
            return pods[f"default/{ref}"]
        matches = [p for p in pods.values() if p.name == ref]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise PodNotFoundError(f"pod name {ref!r} exists in several namespaces "
                                   f"({', '.join(p.namespace for p in matches)}): write "
                                   "NAMESPACE/NAME")
    pending = _pending(plan, ref)
    if pending is not None:
        raise PodPendingError(pending)
    near = sorted(k for k in pods if ref.split("/")[-1] in k)[:5]
    hint = f" (did you mean {', '.join(near)}?)" if near else " (`netlab get pods -A` lists them)"
    raise PodNotFoundError(f"lab {plan.lab}: no pod {ref!r}{hint}")


def _pending(plan: Plan, ref: str) -> Any:
    """The Pending pod (plan.pending) `ref` names, found as `pod` finds a running one."""
    pending = getattr(plan, "pending", None) or {}
    if "/" in ref:
        return pending.get(ref)
    if f"default/{ref}" in pending:
        return pending[f"default/{ref}"]
    matches = [p for p in pending.values() if p.name == ref]
    return matches[0] if len(matches) == 1 else None


def node(plan: Plan, name: str) -> NodePlan:
    for n in plan.nodes:
        if n.name == name:
            return n
    raise InputError(f"no node {name!r} (nodes: {', '.join(n.name for n in plan.nodes)})")


def service(plan: Plan, ref: str) -> Any:  # features.services.ServicePlan
    """A Service by [NS/]NAME: in `default`, else the only one of that name."""
    ns, _, name = ref.rpartition("/")
    services = plan.services
    key = f"{ns or 'default'}/{name}"
    if key not in services:
        matches = [k for k in services if k.endswith(f"/{name}")] if not ns else []
        if len(matches) != 1:
            raise InputError(f"no Service {ref!r} (`netlab get svc -A` lists them)")
        key = matches[0]
    return services[key]


def host_address(plan: Plan, host: str, family: str | None = None) -> str:
    """The `external` or `internet` host's address in `family` (None: the primary one)."""
    f = family or plan.cluster.primary
    return plan.external(f) if host == "external" else plan.internet(f)


FAMILIES = ("IPv4", "IPv6")


def _check_family(family: str | None) -> None:
    if family not in (None, *FAMILIES):
        raise InputError(f"family {family!r} is not one of {', '.join(FAMILIES)}")


def _lab_family(plan: Plan, t: Target, family: str | None) -> str:
    """`family`, checked against the lab's families; None: the lab's primary family."""
    _check_family(family)
    if family is None:
        return plan.cluster.primary
    if family not in plan.cluster.families:
        kind = ("single-stack (IPv4)" if plan.cluster.families == ("IPv4",) else
                "IPv6-only")
        hint = (" (dual-stack: podCIDR: 10.244.0.0/16,fd00:10:244::/56)"
                if family == "IPv6" else "")
        raise InputError(f"lab {plan.lab} is {kind}: {t.text} has no {family} address{hint}")
    return family


def in_family(plan: Plan, t: Target, found: str, family: str | None) -> str:
    """The address of `t` in `family` (None: the lab's primary family); `found`: what was
    found for a literal address, which is what it is."""
    if t.kind == "address":
        _check_family(family)
        if family is not None and (":" in found) != (family == "IPv6"):
            raise InputError(f"{t.text} is an {'IPv6' if ':' in found else 'IPv4'} address, "
                             f"not {family}")
        return found
    f = _lab_family(plan, t, family)
    out: str | None = None
    if t.kind == "pod":
        out = pod(plan, t.name).address(f)
    elif t.kind == "node":
        out = node(plan, t.name).address(f)
    elif t.kind == "host":
        out = host_address(plan, t.name, f)
    if not out:
        raise InputError(f"{t.text} has no {f} address")
    return out


def address(plan: Plan, t: Target, family: str | None = None) -> str:
    """The address of a pod, node (its underlay address), host or literal address, in
    `family` (None: the lab's primary family)."""
    if t.kind == "address":
        return in_family(plan, t, t.name, family)
    if t.kind in ("node", "host", "pod"):
        return in_family(plan, t, "", family)
    raise InputError(f"{t.text!r} has no single address (a {t.kind}): name a pod, a node, "
                     "a host or an IP")


def netns(plan: Plan, t: Target) -> str:
    """The network namespace something runs in: a pod, a node, a host or the fabric."""
    if t.kind == "pod":
        return pod(plan, t.name).netns
    if t.kind == "node":
        return node(plan, t.name).netns
    if t.kind == "host":
        return names.host_netns(plan.lab, t.name)
    if t.kind == "fabric":
        return names.fabric_netns(plan.lab)
    raise InputError(f"{t.text!r} is not somewhere a command or packet can start from: name "
                     "a pod ([NS/]NAME), node/NAME, external, internet or fabric")


PROTOCOLS = ("tcp", "udp", "sctp", "icmp")


def check_protocol(protocol: str | None) -> str | None:
    if protocol is not None and protocol.lower() not in PROTOCOLS:
        raise InputError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    return protocol.lower() if protocol else None


def _service_address(plan: Plan, svc: Any, from_outside: bool, family: str | None
                     ) -> str | None:
    """Where a probe to a Service goes: its LoadBalancer address from outside the cluster
    (in `family`; None: its primary one), else its ClusterIP in `family` (None: spec.clusterIP,
    the Service's primary family's)."""
    _check_family(family)
    lb6 = getattr(svc, "lb_ip6", "") or None
    if from_outside and (svc.lb_ip or lb6):
        chosen = {"IPv4": svc.lb_ip, "IPv6": lb6}.get(family or "")
        if family is None:
            chosen = next((a for a in getattr(svc, "lb_ips", ()) if a), svc.lb_ip or lb6)
        if chosen is None:
            raise InputError(f"Service {svc.key} has no {family} LoadBalancer address "
                             f"(ipFamilies: {', '.join(getattr(svc, 'ip_families', ()))}): "
                             "probe its ClusterIP from a pod instead")
        return chosen
    v6 = getattr(svc, "cluster_ip6", None)
    if family is None:
        return next(iter(getattr(svc, "cluster_ips", ())), None) or svc.cluster_ip or v6
    found = v6 if family == "IPv6" else svc.cluster_ip
    if not found and not svc.headless and svc.type != "ExternalName":
        families = ", ".join(getattr(svc, "ip_families", ()) or ("IPv4",))
        raise InputError(f"Service {svc.key} has no {family} ClusterIP (ipFamilies: "
                         f"{families})")
    return found


def destination(plan: Plan, t: Target, from_outside: bool, port: int | None,
                protocol: str | None, family: str | None = None) -> tuple[str, int, str]:
    """(address, port, protocol) a probe to `t` goes to; a port not given is the Service's
    first port, the pod's first served port, or 80 for an outside host; in `family` (None:
    the lab's primary family, a Service's own primary family). A DNS name must be resolved
    (to an address target) first."""
    proto = check_protocol(protocol)
    if t.kind in ("host", "pod", "node"):
        where = in_family(plan, t, "", family)
    if t.kind == "service":
        svc = service(plan, t.name)
        address = _service_address(plan, svc, from_outside, family)
        if address is None:
            raise InputError(f"Service {svc.key} has no virtual IP ({svc.type}"
                             f"{', headless' if svc.type != 'ExternalName' else ''}): "
                             "probe its pods instead")
        chosen = next((p for p in svc.ports if port is None or p.port == port), None)
        if chosen is None:
            raise InputError(f"Service {svc.key} has no port {port} (ports: "
                             f"{', '.join(str(p.port) for p in svc.ports)})")
        return address, chosen.port, proto or chosen.protocol.lower()
    if t.kind == "host":
        return where, port or 80, proto or "tcp"
    if t.kind == "pod":
        p = pod(plan, t.name)
        if port is None and proto != "icmp":
            if not p.serves:
                raise InputError(f"pod {p.key} declares no port: give --port (its responder "
                                 "answers only on declared ports and Service targetPorts)")
            return where, p.serves[0][1], proto or p.serves[0][0].lower()
        return where, port or 0, proto or "tcp"
    if t.kind == "node":
        if port is None and proto != "icmp":
            raise InputError("a node has no default port: give --port (a NodePort)")
        return where, port or 0, proto or "tcp"
    if t.kind == "address":
        in_family(plan, t, t.name, family)
        svc = next((s for s in plan.services.values() if t.name in s.cluster_ips), None)
        owner = next((p for p in plan.pods.values() if t.name in (p.ip, p.ip6)), None)
        if port is None and svc is not None and svc.ports:
            return t.name, svc.ports[0].port, proto or svc.ports[0].protocol.lower()
        if port is None and owner is not None and owner.serves:
            return t.name, owner.serves[0][1], proto or owner.serves[0][0].lower()
        if port is None and proto != "icmp":
            shown = t.text if t.text == t.name else f"{t.text} ({t.name})"
            raise InputError(f"give --port for {shown}")
        return t.name, port or 0, proto or "tcp"
    raise InputError(f"{t.text!r} cannot be probed (a {t.kind})")
