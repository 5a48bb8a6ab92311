"""Gateway API objects as `kubectl get` shows them: GatewayClasses, Gateways, HTTPRoutes and
ReferenceGrants with the status netlab's controller writes (netlab.gateway.controller), and
the problems that keep some of them from being served."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from netlab.gateway.controller import CONTROLLER_NAME, Reconciled, builtin_class
from netlab.model import Manifests

GROUP = "gateway.networking.k8s.io"


def _condition(status: dict[str, Any], kind: str) -> str:
    """kubectl's printer column for a condition: True, False or Unknown."""
    c = next((c for c in status.get("conditions", []) if c.get("type") == kind), None)
    return str(c["status"]) if c else "Unknown"


@dataclass
class GatewayApiInfo:
    """One Gateway API object: its document as applied, with the status the controller
    wrote, and the controller's words about it."""

    kind: str
    namespace: str  # "" for a GatewayClass
    name: str
    raw: dict[str, Any] = field(default_factory=dict, hash=False)
    status: dict[str, Any] = field(default_factory=dict, hash=False)
    created: float = 0.0  # when the lab got it (the lab's start: netlab keeps no more)
    problems: list[str] = field(default_factory=list)
    served: bool = True  # by netlab's controller

    def to_k8s(self) -> dict[str, Any]:
        doc = copy.deepcopy(self.raw)
        meta = doc.setdefault("metadata", {})
        meta["name"] = self.name
        if self.namespace:
            meta["namespace"] = self.namespace
        if self.status:
            doc["status"] = self.status
        return doc

    @property
    def spec(self) -> dict[str, Any]:
        return self.raw.get("spec") or {}

    def condition(self, kind: str) -> str:
        return _condition(self.status, kind)

    # --- what the printer columns show ---------------------------------------------------

    @property
    def addresses(self) -> str:
        return ",".join(a["value"] for a in self.status.get("addresses", [])) or ""

    @property
    def listeners(self) -> str:
        return ",".join(f"{li.get('name')}:{li.get('protocol')}/{li.get('port')}"
                        + (f" {li['hostname']}" if li.get("hostname") else "")
                        for li in self.spec.get("listeners", []))

    @property
    def attached(self) -> str:
        return ",".join(f"{li['name']}={li.get('attachedRoutes', 0)}"
                        for li in self.status.get("listeners", []))

    @property
    def hostnames(self) -> str:
        return ",".join(self.spec.get("hostnames", [])) or "*"

    @property
    def parents(self) -> str:
        """Each parent: NAME[/SECTION] Accepted/ResolvedRefs as the controller decided."""
        out = []
        for p in self.status.get("parents", []):
            ref = p["parentRef"]
            where = ref["name"] + (f"/{ref['sectionName']}" if ref.get("sectionName") else "")
            conds = {c["type"]: c for c in p.get("conditions", [])}
            states = [f"{t}={c['status']}" + ("" if c["status"] == "True" else
                                               f"({c['reason']})")
                      for t, c in conds.items() if t in ("Accepted", "ResolvedRefs")]
            out.append(f"{where} {' '.join(states)}")
        return "; ".join(out) or "<none>"

    @property
    def grants(self) -> str:
        froms = ",".join(f"{f.get('kind')}/{f.get('namespace')}"
                         for f in self.spec.get("from", []))
        tos = ",".join(f"{t.get('kind')}" + (f"/{t['name']}" if t.get("name") else "")
                       for t in self.spec.get("to", []))
        return f"{froms} -> {tos}"


def gateway_api_infos(kind: str, m: Manifests, docs: list[Any], result: Reconciled,
                      created: float, namespace: str | None = None) -> list[GatewayApiInfo]:
    """One per object of `kind` (GatewayClass, Gateway, HTTPRoute, ReferenceGrant) in
    `namespace` (None: all), with its document from `docs` and its status from `result`.
    GatewayClasses include the built-in `netlab`."""
    raw = {(d.kind, str((d.doc.get("metadata") or {}).get("namespace") or "default")
            if d.kind != "GatewayClass" else "",
            str((d.doc.get("metadata") or {}).get("name", ""))): d.doc for d in docs}
    status = result.to_status()
    objects = {"GatewayClass": m.gateway_classes, "Gateway": m.gateways,
               "HTTPRoute": m.http_routes, "ReferenceGrant": m.reference_grants}[kind]
    out = []
    if kind == "GatewayClass" and builtin_class().key not in objects:
        c = result.classes.get(builtin_class().key)
        out.append(GatewayApiInfo(
            kind, "", builtin_class().key,
            {"apiVersion": f"{GROUP}/v1", "kind": "GatewayClass",
             "metadata": {"name": builtin_class().key,
                          "annotations": {"netlab.dev/built-in": "true"}},
             "spec": {"controllerName": CONTROLLER_NAME,
                      "description": "netlab's built-in class: an nginx data plane per "
                                     "Gateway"}},
            {"conditions": [x.to_json() for x in c.conditions]} if c else {}, created))
    for key in sorted(objects):
        obj = objects[key]
        ns = obj.meta.namespace or ""
        if namespace is not None and kind != "GatewayClass" and ns != namespace:
            continue
        prefix = f"{kind} {key}"
        problems = [w for w in result.warnings if w.startswith(prefix + ":")
                    or w.startswith(prefix + " ")]
        served = True
        if kind == "Gateway":
            g = result.gateways.get(key)
            served = bool(g and g.served)
        elif kind == "GatewayClass":
            c = result.classes.get(key)
            served = bool(c and c.served)
        out.append(GatewayApiInfo(kind, ns, obj.meta.name, raw.get((kind, ns, obj.meta.name),
                                                                  {}),
                                  status.get(prefix, {}), created, problems, served))
    return out





def gateway_hints(result: Reconciled, gateway: str, host: str) -> list[str]:
    """Why a request for `host` through Gateway `gateway` ("ns/name") may not have gone as
    hoped, in the controller's words: the Gateway's and its listeners' conditions that are
    not as they should be, and those of the HTTPRoutes attached to it for that host (or that
    none is)."""
    from netlab.gateway.controller import host_matches

    g = result.gateways.get(gateway)
    if g is None:
        return []
    if not g.served:
        return [f"Gateway {gateway} is not served: {g.why}"]
    out = [f"Gateway {gateway}: {c.type} {c.status} ({c.reason}): {c.message}"
           for c in g.conditions if not c.status and c.message]
    out += [f"Gateway {gateway} listener {lr.listener.name}: {c.type} {c.status} "
            f"({c.reason}): {c.message}"
            for lr in g.listeners for c in lr.conditions
            if (c.type == "Conflicted") == bool(c.status) and c.message]
    serving = []
    for key, r in sorted(result.routes.items()):
        names = r.route.hostnames
        if names and not any(host_matches(n, host) for n in names):
            continue
        for p in r.parents:
            if p.gateway != gateway:
                continue
            if p.accepted:
                serving.append(key)
            out += [f"HTTPRoute {key}: {c.type} {c.status} ({c.reason}): {c.message}"
                    for c in p.conditions
                    if (c.type == "PartiallyInvalid") == bool(c.status) and c.message]
    if not serving:
        attached = sorted({k for k, r in result.routes.items()
                           for p in r.parents if p.gateway == gateway and p.accepted})
        out.append(f"no HTTPRoute attached to Gateway {gateway} is for host {host!r}"
                   + (f" (attached: {', '.join(attached)})" if attached else
                      " (none is attached)"))
    return out


__all__ = ["GatewayApiInfo", "gateway_api_infos", "gateway_hints"]
