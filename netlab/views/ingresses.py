"""Ingresses and IngressClasses, and why an Ingress is not served."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netlab.model import Manifests
from netlab.plan import Plan


@dataclass(frozen=True)
class IngressInfo:
    namespace: str
    name: str
    class_name: str | None
    hosts: list[str]
    address: str | None  # the controller's LoadBalancer address, when this lab serves it
    ports: list[int]
    rules: list[tuple[str, str | None, str, str]]  # host, path, pathType, backend
    tls_hosts: list[str]
    problems: list[str]

    def to_k8s(self) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"ingressClassName": self.class_name,
                         "rules": [{"host": h, "path": p, "pathType": t, "backend": b}
                                   for h, p, t, b in self.rules]},
                "status": {"loadBalancer": {"ingress": [{"ip": self.address}]}
                           if self.address else {}},
                "netlab": {"problems": self.problems, "tlsHosts": self.tls_hosts}}

def ingress_infos(plan: Plan, m: Manifests, namespace: str | None = None) -> list[IngressInfo]:
    """Ingress objects with their rules, backends, the controller's address, and problems
    that keep some of them from being served (from the same rendering nginx gets)."""
    from pathlib import Path

    from netlab.features import ingress

    cfg = ingress.render(plan, m, Path("/"))
    controller = plan.services.get(f"{ingress.NAMESPACE}/{ingress.SERVICE}")
    out = []
    for ing in sorted(m.ingresses.values(), key=lambda i: (i.namespace, i.name)):
        if namespace is not None and ing.namespace != namespace:
            continue
        key = f"{ing.namespace}/{ing.name}"
        served = ingress.why_not_served(ing, m, plan.cluster) is None
        rules = [(r.host or "*", r.path, r.path_type, _backend_text(ing, r))
                 for r in cfg.routes if r.ingress == key]
        if ing.default_backend is not None:
            b = ing.default_backend
            rules.append(("*", "(default)", "-", f"{b.service}:{b.port_number or b.port_name}"
                          if b.service else b.resource or ""))
        hosts = sorted({r.host for r in ing.rules if r.host}) or ["*"]
        tls_hosts = sorted({h for t in ing.tls for h in t.hosts})
        out.append(IngressInfo(
            ing.namespace, ing.name, ingress.assigned_class(ing, m), hosts,
            controller.lb_ip if (served and controller) else None,
            [80, 443] if tls_hosts else [80], rules, tls_hosts,
            [w for w in cfg.warnings if w.startswith(f"Ingress {key}:")]))
    return out

@dataclass(frozen=True)
class IngressClassInfo:
    """An IngressClass: the controller that implements Ingresses of the class, and whether
    the lab's controller (ingress-nginx) serves it."""

    name: str
    controller: str
    parameters: dict[str, str] | None  # apiGroup, kind, name, scope, namespace as written
    is_default: bool
    served: bool
    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def parameters_text(self) -> str:
        """kubectl's PARAMETERS column: Kind[.apiGroup]/name, or <none>."""
        p = self.parameters
        if not p:
            return "<none>"
        group = f".{p['apiGroup']}" if p.get("apiGroup") else ""
        return f"{p['kind']}{group}/{p['name']}"

    def to_k8s(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name}
        if self.labels:
            meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        spec: dict[str, Any] = {"controller": self.controller}
        if self.parameters:
            spec["parameters"] = dict(self.parameters)
        return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": meta, "spec": spec, "netlab": {"served": self.served}}

def ingress_class_infos(plan: Plan, m: Manifests) -> list[IngressClassInfo]:
    """The lab's IngressClass objects, by name."""
    from netlab.features import ingress

    ours = set(ingress.served_classes(m, plan.cluster))
    out = []
    for c in sorted(m.ingress_classes.values(), key=lambda c: c.name):
        p = c.parameters
        params = None if p is None else {k: v for k, v in (
            ("apiGroup", p.api_group), ("kind", p.kind), ("name", p.name),
            ("scope", p.scope), ("namespace", p.namespace)) if v is not None}
        out.append(IngressClassInfo(c.name, c.controller, params, c.is_default,
                                    c.name in ours, dict(c.labels), dict(c.annotations)))
    return out

def _backend_text(ing: Any, route: Any) -> str:
    if route.upstream is None:
        return "(503: see problems)"
    for r in ing.rules:
        for p in r.paths:
            if (r.host, (p.path or "/").rstrip("/") or "/") == (route.host, route.path):
                b = p.backend
                return f"{b.service}:{b.port_number or b.port_name}"
    return route.upstream

def no_controller_message(m: Manifests, cluster: Any, host: str | None = None) -> str:
    """Why the lab has no ingress controller to send a request to, for a person: each
    Ingress (those with a rule for `host` when some have one) with its class and how it got
    it (ingressClassName, the legacy annotation, the default IngressClass) and why that class
    is not served, as `get ingresses` reports it; or that there is no Ingress at all."""
    from netlab.features import ingress

    served = ", ".join(repr(c) for c in ingress.served_classes(m, cluster))
    ings = sorted(m.ingresses.values(), key=lambda i: (i.namespace, i.name))
    if not ings:
        return ("the lab has no ingress controller: it starts with the first Ingress of a class "
                f"it serves ({served}), and the lab has no Ingress")
    for_host = [i for i in ings if host and any(r.host == host for r in i.rules)]
    lines = []
    for i in for_host or ings:
        why = ingress.why_not_served(i, m, cluster) or "served"
        lines.append(f"Ingress {i.namespace}/{i.name} ({_class_origin(i, m)}): {why}")
    return ("the lab has no ingress controller: no Ingress is of a class it serves "
            f"({served}). " + "; ".join(lines))

def _class_origin(ing: Any, m: Manifests) -> str:
    """The Ingress's class and where it comes from."""
    from netlab.features import ingress

    if ing.class_name is not None:
        return f"class {ing.class_name!r} from spec.ingressClassName"
    legacy = ing.annotations.get(ingress.LEGACY_INGRESS_CLASS)
    if legacy is not None:
        return f"class {legacy!r} from the annotation {ingress.LEGACY_INGRESS_CLASS}"
    defaults = ingress.default_classes(m)
    if len(defaults) == 1:
        return f"class {defaults[0].name!r}, the default IngressClass"
    if defaults:
        return "no class: several IngressClasses are marked default"
    return "no class: no ingressClassName, no annotation, no default IngressClass"
