"""What a conformant Gateway API controller decides, pure: which GatewayClasses and
Gateways netlab serves, the status a real controller would write on each object, and per
served Gateway the resolved data plane (netlab.gateway.dataplane.GatewayConfig).

`reconcile(classes, gateways, routes, grants, services=..., namespaces=..., secrets=...,
addresses=...)` -> `Reconciled`. Decisions, with the spec text they follow (gateway-api
apis/v1 docs and conformance/tests):

- GatewayClass: ours when spec.controllerName is CONTROLLER_NAME (Accepted True). A class
  named `netlab` is always there (built in) unless the manifests define one. Classes of
  other controllers get no status from us.
- Gateway: served when its class is ours. Accepted False UnsupportedAddress when
  spec.addresses is set (netlab assigns the LoadBalancer address itself). Listeners: HTTP and
  HTTPS are supported (TLS/TCP/UDP: Accepted False UnsupportedProtocol); HTTP and HTTPS on one
  port conflict (Conflicted True ProtocolConflict, not accepted: "ALL indistinct Listeners
  must not be accepted"); an HTTPS listener needs a certificateRef to a Secret holding PEM
  tls.crt and tls.key (InvalidCertificateRef), one in another namespace a ReferenceGrant
  (RefNotPermitted); allowedRoutes.kinds other than HTTPRoute: ResolvedRefs False
  InvalidRouteKinds. The Gateway is Accepted (reason ListenersNotValid when some listener is
  not valid) while at least one listener is; Programmed needs an address (AddressNotAssigned).
  HostnameConflict is never raised: the Gateway CRD already refuses two listeners with the
  same port, protocol and hostname, and each Gateway has its own data plane. PortUnavailable
  marks the listeners of a protocol-conflicted port.
- HTTPRoute, per parentRef to one of our Gateways: sectionName and port select listeners
  (none: NoMatchingParent); each must be accepted, allow the route's kind and namespace
  (NotAllowedByListeners) and share a hostname with the route (NoMatchingListenerHostname);
  attached to at least one: Accepted. ResolvedRefs from the backendRefs (InvalidKind,
  RefNotPermitted, BackendNotFound), each invalid ref kept as a 500 backend with its weight.
  A rule using a filter netlab does not implement (CORS, ExtensionRef, backendRef redirect /
  rewrite / mirror) answers 500 (the spec: such a filter "MUST NOT be skipped"); the route is
  then PartiallyInvalid (UnsupportedValue), or not Accepted (UnsupportedValue) when no rule is
  left. Parents that are not our Gateways get no entry.
- Data plane: one Server per port; virtual hosts are the intersections of listener and route
  hostnames. Listener isolation (GatewayHTTPListenerIsolation): a request is handled by the
  most specific listener whose hostname matches it, so a route hostname reached through a
  listener is dropped when a more specific listener of the port covers all of it, and every
  listener hostname has a virtual host of its own (empty: 404). As in Envoy Gateway, a
  request is served by the one most specific virtual host matching its Host, with no fallback
  to less specific ones: a request for foo.example.com that no rule of the foo.example.com
  virtual host matches gets 404 even if *.example.com has a matching rule
  (conformance HTTPRouteHostnameIntersection, HTTPRouteListenerHostnameMatching,
  GatewayHTTPListenerIsolation).
- Rule precedence within a virtual host (HTTPRouteRule docs, "Across all rules..."): Exact
  path, then RegularExpression paths (implementation-specific in the spec: netlab puts them
  after Exact and before every prefix, in route order), then PathPrefix by length; then a
  method; then more header matches; then more query matches; then the oldest route
  (creationTimestamp; routes without one count as newer), then "ns/name"; then rule order,
  then match order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netlab.gateway import dataplane as dp
from netlab.gateway.api import (
    GROUP,
    BackendRef,
    Filter,
    Gateway,
    GatewayClass,
    HTTPRoute,
    Listener,
    Meta,
    ParentRef,
    ReferenceGrant,
    RouteRule,
)
from netlab.model import Secret
from netlab.plan import ServicePlan

CONTROLLER_NAME = "netlab.dev/gateway-controller"
BUILTIN_CLASS = "netlab"
SUPPORTED_PROTOCOLS = ("HTTP", "HTTPS")
ROUTE_KIND = (GROUP, "HTTPRoute")
# filters a rule can carry into the data plane (the rest answer 500)
RULE_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect",
                "URLRewrite", "RequestMirror")
BACKEND_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier")


# --- status objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""
    generation: int = 1

    def to_json(self) -> dict[str, Any]:
        """metav1.Condition; lastTransitionTime left out (netlab has no clock to keep)."""
        return {"type": self.type, "status": "True" if self.status else "False",
                "reason": self.reason, "message": self.message,
                "observedGeneration": self.generation}


def _find(conditions: Iterable[Condition], kind: str) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)


@dataclass
class ClassResult:
    gateway_class: GatewayClass
    served: bool
    conditions: list[Condition] = field(default_factory=list)
    builtin: bool = False


@dataclass
class ListenerResult:
    listener: Listener
    supported_kinds: list[tuple[str, str]]
    conditions: list[Condition]
    attached_routes: int = 0
    certificate: tuple[str, str] | None = None  # (cert file, key file) in GatewayConfig.files

    def condition(self, kind: str) -> Condition | None:
        return _find(self.conditions, kind)

    @property
    def accepted(self) -> bool:
        c = self.condition("Accepted")
        return c is not None and c.status

    @property
    def programmable(self) -> bool:
        """Accepted, and for HTTPS with a usable certificate: goes into the data plane."""
        return self.accepted and (self.listener.protocol != "HTTPS" or
                                  self.certificate is not None)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.listener.name,
                "supportedKinds": [{"group": g, "kind": k} for g, k in self.supported_kinds],
                "attachedRoutes": self.attached_routes,
                "conditions": [c.to_json() for c in self.conditions]}


@dataclass
class GatewayResult:
    gateway: Gateway
    served: bool
    why: str | None = None  # not served: the reason
    conditions: list[Condition] = field(default_factory=list)
    listeners: list[ListenerResult] = field(default_factory=list)
    addresses: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        c = _find(self.conditions, "Accepted")
        return c is not None and c.status

    def to_json(self) -> dict[str, Any]:
        return {"addresses": [{"type": "IPAddress", "value": a} for a in self.addresses],
                "conditions": [c.to_json() for c in self.conditions],
                "listeners": [li.to_json() for li in self.listeners]}


@dataclass
class ParentResult:
    ref: ParentRef
    conditions: list[Condition]
    gateway: str = ""  # "ns/name"
    # (listener name, hostnames the route has through it: () for none, (None,) for any)
    attached: list[tuple[str, tuple[str | None, ...]]] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        c = _find(self.conditions, "Accepted")
        return c is not None and c.status

    def to_json(self) -> dict[str, Any]:
        return {"parentRef": self.ref.to_json(), "controllerName": CONTROLLER_NAME,
                "conditions": [c.to_json() for c in self.conditions]}


@dataclass
class RouteResult:
    route: HTTPRoute
    parents: list[ParentResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"parents": [p.to_json() for p in self.parents]}


@dataclass
class Reconciled:
    classes: dict[str, ClassResult] = field(default_factory=dict)
    gateways: dict[str, GatewayResult] = field(default_factory=dict)
    routes: dict[str, RouteResult] = field(default_factory=dict)
    configs: dict[str, dp.GatewayConfig] = field(default_factory=dict)  # gateway key ->
    warnings: list[str] = field(default_factory=list)

    def to_status(self) -> dict[str, dict[str, Any]]:
        """Each object's `.status` as the API's JSON, by "Kind key" ("GatewayClass netlab",
        "Gateway ns/name", "HTTPRoute ns/name"). Objects netlab leaves alone (other
        controllers' classes and Gateways, routes with no parent of ours) and the built-in
        class (no object) are absent."""
        out: dict[str, dict[str, Any]] = {}
        for name, c in sorted(self.classes.items()):
            if c.served and not c.builtin:
                out[f"GatewayClass {name}"] = {"conditions": [x.to_json()
                                                              for x in c.conditions]}
        for key, g in sorted(self.gateways.items()):
            if g.served:
                out[f"Gateway {key}"] = g.to_json()
        for key, r in sorted(self.routes.items()):
            if r.parents:
                out[f"HTTPRoute {key}"] = r.to_json()
        return out


# --- hostnames --------------------------------------------------------------------------------


def host_matches(pattern: str | None, host: str) -> bool:
    """Whether a request's `host` matches a listener or route hostname: None matches any;
    `*.example.com` matches one or more labels before example.com, never example.com."""
    if pattern is None:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def covers(outer: str | None, inner: str | None) -> bool:
    """Whether every host `inner` matches is matched by `outer`."""
    if outer is None:
        return True
    if inner is None:
        return False
    if inner.startswith("*."):
        return outer.startswith("*.") and (inner == outer or inner.endswith(outer[1:]))
    return host_matches(outer, inner)


def intersect(listener: str | None, route: str | None) -> str | bool | None:
    """The hostname a route hostname gives through a listener hostname (HTTPRouteSpec
    .hostnames): the more specific of the two when one covers the other, else False."""
    if covers(listener, route):
        return route
    if covers(route, listener):
        return listener
    return False


def specificity(hostname: str | None) -> tuple[int, int]:
    """Exact before wildcard, a longer wildcard suffix before a shorter, any host last."""
    if hostname is None:
        return (0, 0)
    if hostname.startswith("*."):
        return (1, hostname.count("."))
    return (2, 0)


def route_hostnames(listener: str | None, hostnames: tuple[str, ...]
                    ) -> tuple[str | None, ...]:
    """The hostnames a route has through a listener: () when none intersect."""
    if not hostnames:
        return (listener,)
    out: list[str | None] = []
    for h in hostnames:
        x = intersect(listener, h)
        if x is not False and x not in out:
            out.append(x)  # type: ignore[arg-type]
    return tuple(out)


# --- references -------------------------------------------------------------------------------


def _granted(grants: Iterable[ReferenceGrant], from_kind: str, from_ns: str, to_group: str,
             to_kind: str, to_ns: str, to_name: str) -> bool:
    """A ReferenceGrant in the target's namespace lets `from_kind` objects of `from_ns`
    refer to it (ReferenceGrant docs)."""
    return any(g.meta.namespace == to_ns and
               g.permits(GROUP, from_kind, from_ns, to_group, to_kind, to_name)
               for g in grants)


def _is_pem(data: bytes, what: bytes) -> bool:
    return b"-----BEGIN " in data and what in data


def _certificate(gw: Gateway, li: Listener, grants: list[ReferenceGrant],
                 secrets: Mapping[str, Secret], files: dict[str, bytes]
                 ) -> tuple[Condition | None, tuple[str, str] | None, list[str]]:
    """The listener's certificate: (a failed ResolvedRefs condition, the files, notes)."""
    ns = gw.meta.namespace or "default"
    gen = gw.meta.generation
    tls = li.tls
    if tls is None or not tls.certificate_refs:
        return (Condition("ResolvedRefs", False, "InvalidCertificateRef",
                          "an HTTPS listener needs tls.certificateRefs (a Secret with tls.crt "
                          "and tls.key)", gen), None, [])
    chosen: tuple[str, str] | None = None
    failure: Condition | None = None
    notes: list[str] = []
    for ref in tls.certificate_refs:
        target_ns = ref.namespace or ns
        key = f"{target_ns}/{ref.name}"
        problem: Condition | None = None
        if (ref.group, ref.kind) != ("", "Secret"):
            problem = Condition("ResolvedRefs", False, "InvalidCertificateRef",
                                f"certificateRef {ref.kind}.{ref.group or 'core'} {key}: only "
                                "core Secrets are supported", gen)
        elif target_ns != ns and not _granted(grants, "Gateway", ns, "", "Secret", target_ns,
                                              ref.name):
            problem = Condition("ResolvedRefs", False, "RefNotPermitted",
                                f"certificateRef Secret {key}: no ReferenceGrant in namespace "
                                f"{target_ns} allows Gateways of {ns} to refer to it", gen)
        elif (secret := secrets.get(key)) is None:
            problem = Condition("ResolvedRefs", False, "InvalidCertificateRef",
                                f"certificateRef Secret {key} not found", gen)
        elif not (_is_pem(secret.data.get("tls.crt", b""), b"CERTIFICATE")
                  and _is_pem(secret.data.get("tls.key", b""), b"PRIVATE KEY")):
            problem = Condition("ResolvedRefs", False, "InvalidCertificateRef",
                                f"certificateRef Secret {key} has no PEM certificate and key "
                                "in tls.crt and tls.key", gen)
        if problem is not None:
            failure = failure or problem
            continue
        if chosen is None:
            base = "secret-" + key.replace("/", "-")
            files[base + ".crt"] = secrets[key].data["tls.crt"]
            files[base + ".key"] = secrets[key].data["tls.key"]
            chosen = (base + ".crt", base + ".key")
        else:
            notes.append(f"certificateRef Secret {key} is not used: netlab presents one "
                         "certificate per listener (the first valid one)")
    # the spec: a listener with any invalid certificateRef has ResolvedRefs False
    return failure, chosen, notes


# --- Gateways ---------------------------------------------------------------------------------


def _listener_result(gw: Gateway, li: Listener, conflicted: set[int], grants: list[ReferenceGrant],
                     secrets: Mapping[str, Secret], files: dict[str, bytes],
                     notes: list[str]) -> ListenerResult:
    gen = gw.meta.generation
    if li.protocol not in SUPPORTED_PROTOCOLS:
        conds = [Condition("Accepted", False, "UnsupportedProtocol",
                           f"protocol {li.protocol} is not supported by netlab (HTTP, HTTPS)",
                           gen),
                 Condition("Programmed", False, "Invalid", "the listener is not accepted", gen),
                 Condition("ResolvedRefs", True, "ResolvedRefs", "", gen),
                 Condition("Conflicted", False, "NoConflicts", "", gen)]
        return ListenerResult(li, [], conds)
    wanted = li.kinds or (ROUTE_KIND,)
    supported = [k for k in wanted if k == ROUTE_KIND]
    resolved = Condition("ResolvedRefs", True, "ResolvedRefs", "", gen)
    bad_kinds = [k for k in wanted if k != ROUTE_KIND]
    if bad_kinds:
        resolved = Condition("ResolvedRefs", False, "InvalidRouteKinds",
                             "route kinds not supported: " + ", ".join(
                                 f"{k} ({g or 'core'})" for g, k in bad_kinds)
                             + "; netlab serves HTTPRoute", gen)
    result = ListenerResult(li, supported, [])
    if li.port in conflicted:
        accepted = Condition("Accepted", False, "PortUnavailable",
                             f"port {li.port} has HTTP and HTTPS listeners", gen)
        conflict = Condition("Conflicted", True, "ProtocolConflict",
                             f"another listener on port {li.port} has a different protocol", gen)
    else:
        accepted = Condition("Accepted", True, "Accepted", "", gen)
        conflict = Condition("Conflicted", False, "NoConflicts", "", gen)
    if li.protocol == "HTTPS":
        failure, result.certificate, more = _certificate(gw, li, grants, secrets, files)
        notes += [f"listener {li.name}: {n}" for n in more]
        if failure is not None and resolved.status:
            resolved = failure
    result.conditions = [accepted, resolved, conflict]
    if not accepted.status:
        programmed = Condition("Programmed", False, "Invalid", "the listener is not accepted",
                               gen)
    elif not result.programmable:
        programmed = Condition("Programmed", False, "Invalid",
                               "no valid certificate to present", gen)
    else:
        programmed = Condition("Programmed", True, "Programmed", "", gen)
    result.conditions.insert(1, programmed)
    return result


def _conflicted_ports(gw: Gateway) -> set[int]:
    """Ports with both HTTP and HTTPS listeners (ProtocolConflict)."""
    protocols: dict[int, set[str]] = {}
    for li in gw.listeners:
        if li.protocol in SUPPORTED_PROTOCOLS:
            protocols.setdefault(li.port, set()).add(li.protocol)
    return {p for p, s in protocols.items() if len(s) > 1}


def _gateway_result(gw: Gateway, grants: list[ReferenceGrant], secrets: Mapping[str, Secret],
                    addresses: tuple[str, ...], files: dict[str, bytes],
                    warnings: list[str]) -> GatewayResult:
    gen = gw.meta.generation
    conflicted = _conflicted_ports(gw)
    notes: list[str] = []
    listeners = [_listener_result(gw, li, conflicted, grants, secrets, files, notes)
                 for li in gw.listeners]
    bad = [lr for lr in listeners if not lr.accepted or not _find(lr.conditions,
                                                                  "ResolvedRefs").status]
    good = [lr for lr in listeners if lr.accepted]
    result = GatewayResult(gw, True, listeners=listeners, addresses=addresses)
    if gw.parameters_ref is not None:  # the API: InvalidParameters when it cannot be used
        accepted = Condition("Accepted", False, "InvalidParameters",
                             f"spec.infrastructure.parametersRef {gw.parameters_ref}: netlab's "
                             "controller takes no infrastructure parameters (remove it)", gen)
    elif gw.addresses:
        accepted = Condition("Accepted", False, "UnsupportedAddress",
                             "spec.addresses is not supported: netlab assigns the Gateway's "
                             "LoadBalancer address itself", gen)
    elif not good:
        accepted = Condition("Accepted", False, "ListenersNotValid",
                             "no valid listener: " + _listener_problems(bad), gen)
    elif bad:
        accepted = Condition("Accepted", True, "ListenersNotValid",
                             "some listeners are not valid: " + _listener_problems(bad), gen)
    else:
        accepted = Condition("Accepted", True, "Accepted", "", gen)
    if not accepted.status:
        programmed = Condition("Programmed", False, "Invalid", "the Gateway is not accepted",
                               gen)
    elif not addresses:
        programmed = Condition("Programmed", False, "AddressNotAssigned",
                               "no LoadBalancer address assigned yet", gen)
    else:
        programmed = Condition("Programmed", True, "Programmed", "", gen)
    result.conditions = [accepted, programmed]
    who = f"Gateway {gw.key}"
    if not accepted.status:
        warnings.append(f"{who}: not accepted ({accepted.reason}): {accepted.message}"
                        + ("; remove spec.addresses" if gw.addresses else ""))
    for lr in bad:
        for c in lr.conditions:
            if c.type in ("Accepted", "ResolvedRefs") and not c.status:
                warnings.append(f"{who}: listener {lr.listener.name}: {c.reason}: {c.message}")
    warnings += [f"{who}: {n}" for n in notes]
    return result


def _listener_problems(bad: list[ListenerResult]) -> str:
    parts = []
    for lr in bad:
        c = next(c for c in lr.conditions if c.type in ("Accepted", "ResolvedRefs")
                 and not c.status)
        parts.append(f"{lr.listener.name} ({c.reason})")
    return ", ".join(parts)


# --- routes -----------------------------------------------------------------------------------


def _namespace_allowed(li: Listener, gw: Gateway, route_ns: str,
                       namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    if li.namespaces_from == "All":
        return True
    if li.namespaces_from == "Selector":
        sel = li.namespace_selector
        return sel is not None and sel.matches(dict(namespaces.get(route_ns, {})))
    return route_ns == gw.meta.namespace


def _attach(route: HTTPRoute, ref: ParentRef, g: GatewayResult,
            namespaces: Mapping[str, Mapping[str, str]]) -> ParentResult:
    """Accepted for one parentRef to one of our Gateways, and the listeners it attaches to."""
    gen = route.meta.generation
    gw = g.gateway
    out = ParentResult(ref, [], gw.key)
    if not g.accepted:
        out.conditions.append(Condition("Accepted", False, "NoMatchingParent",
                                        f"Gateway {gw.key} is not accepted", gen))
        return out
    selected = [lr for lr in g.listeners
                if (ref.section_name is None or lr.listener.name == ref.section_name)
                and (ref.port is None or lr.listener.port == ref.port)]
    if not selected:
        what = " and ".join(x for x in (
            f"named {ref.section_name!r}" if ref.section_name is not None else "",
            f"on port {ref.port}" if ref.port is not None else "") if x)
        out.conditions.append(Condition("Accepted", False, "NoMatchingParent",
                                        f"Gateway {gw.key} has no listener {what}", gen))
        return out
    reached_hostnames = False
    for lr in selected:
        li = lr.listener
        if not lr.accepted or ROUTE_KIND not in lr.supported_kinds:
            continue
        if not _namespace_allowed(li, gw, route.meta.namespace or "default", namespaces):
            continue
        reached_hostnames = True
        hosts = route_hostnames(li.hostname, route.hostnames)
        if hosts:
            out.attached.append((li.name, hosts))
    if out.attached:
        out.conditions.append(Condition("Accepted", True, "Accepted", "", gen))
    elif reached_hostnames:
        out.conditions.append(Condition(
            "Accepted", False, "NoMatchingListenerHostname",
            f"no hostname of the route ({', '.join(route.hostnames)}) matches a listener "
            f"hostname ({', '.join(lr.listener.hostname or '*' for lr in selected)})", gen))
    else:
        out.conditions.append(Condition(
            "Accepted", False, "NotAllowedByListeners",
            f"no listener of Gateway {gw.key} allows HTTPRoutes from namespace "
            f"{route.meta.namespace} (see the listeners' allowedRoutes, protocol and status)",
            gen))
    return out


@dataclass
class _Backends:
    """Resolves backendRefs to dataplane.Backends, naming upstreams uniquely."""

    services: Mapping[str, ServicePlan]
    grants: list[ReferenceGrant]
    families: tuple[str, ...] | None
    names: dict[tuple[str, str, int], str] = field(default_factory=dict)
    invalid: int = 0

    def upstream(self, ns: str, name: str, port: int) -> str:
        key = (ns, name, port)
        if key not in self.names:
            base = f"{ns}-{name}-{port}"
            taken = set(self.names.values())
            candidate, n = base, 1
            while candidate in taken:
                n += 1
                candidate = f"{base}-{n}"
            self.names[key] = candidate
        return self.names[key]

    def resolve(self, route: HTTPRoute, ref: BackendRef
                ) -> tuple[dp.Backend, Condition | None, str]:
        """The backend, a failed ResolvedRefs condition (or None), and a note."""
        gen = route.meta.generation
        route_ns = route.meta.namespace or "default"
        ns = ref.namespace or route_ns
        written = str(ref)
        problem: Condition | None = None
        if (ref.group, ref.kind) != ("", "Service"):
            problem = Condition("ResolvedRefs", False, "InvalidKind",
                                f"backendRef {written}: only core Services are supported", gen)
        elif ns != route_ns and not _granted(self.grants, "HTTPRoute", route_ns, "", "Service",
                                             ns, ref.name):
            problem = Condition("ResolvedRefs", False, "RefNotPermitted",
                                f"backendRef {written}: no ReferenceGrant in namespace {ns} "
                                f"allows HTTPRoutes of {route_ns} to refer to it", gen)
        elif (svc := self.services.get(f"{ns}/{ref.name}")) is None:
            problem = Condition("ResolvedRefs", False, "BackendNotFound",
                                f"backendRef {written}: Service {ns}/{ref.name} not found", gen)
        elif (port := next((p for p in svc.ports if p.port == ref.port), None)) is None:
            problem = Condition("ResolvedRefs", False, "BackendNotFound",
                                f"backendRef {written}: Service {ns}/{ref.name} has no port "
                                f"{ref.port}", gen)
        if problem is not None:
            self.invalid += 1
            return (dp.Backend(f"invalid-{self.invalid}", ref.weight, (), 500, ref=written),
                    problem, "")
        assert ref.port is not None
        family = next((f for f in svc.ip_families
                       if self.families is None or f in self.families), None)
        servers = tuple(sorted({f"[{ep.ip}]:{ep.port}" if ":" in ep.ip else f"{ep.ip}:{ep.port}"
                                for ep in port.family_endpoints(family)} if family else ()))
        note = ""
        if svc.type == "ExternalName" or not servers:
            note = (f"backendRef {written}: Service {svc.key} has no ready endpoints"
                    + (" (ExternalName Services are not resolved)" if svc.type == "ExternalName"
                       else "") + "; its share of requests gets 503")
        headers = {f.type: f.headers for f in ref.filters if f.type in BACKEND_FILTERS}
        return (dp.Backend(self.upstream(ns, ref.name, ref.port), ref.weight, servers,
                           request_headers=headers.get("RequestHeaderModifier"),
                           response_headers=headers.get("ResponseHeaderModifier"),
                           ref=written), None, note)


@dataclass
class _RouteRules:
    """One route's rules resolved once (shared by all its parents)."""

    rules: list[tuple[RouteRule, tuple[dp.Rule, ...]]]
    resolved: Condition
    unsupported: list[str]


def _unsupported(rule: RouteRule) -> list[str]:
    bad = [f"filter {f.type}" for f in rule.filters if f.type not in RULE_FILTERS]
    for b in rule.backend_refs:
        bad += [f"backendRef {b} filter {f.type}" for f in b.filters
                if f.type not in BACKEND_FILTERS]
    return bad


def _resolve_rules(route: HTTPRoute, backends: _Backends, warnings: list[str]) -> _RouteRules:
    gen = route.meta.generation
    failures: list[Condition] = []
    unsupported: list[str] = []
    out = []
    for i, rule in enumerate(route.rules):
        where = f"HTTPRoute {route.key}: rules[{i}]"
        bad = _unsupported(rule)
        for b in bad:
            unsupported.append(f"rules[{i}]: {b}")
            warnings.append(f"{where}: {b} is not supported by netlab: the rule answers 500")
        resolved = []
        for ref in rule.backend_refs:
            backend, problem, note = backends.resolve(route, ref)
            if problem is not None:
                failures.append(problem)
                warnings.append(f"{where}: {problem.reason}: {problem.message}; its share of "
                                "requests gets 500")
            if note:
                warnings.append(f"{where}: {note}")
            resolved.append(backend)
        mirrors = []
        for f in rule.filters:
            if f.type == "RequestMirror" and f.mirror is not None:
                backend, problem, note = backends.resolve(route, f.mirror)
                if problem is not None:
                    failures.append(problem)
                    warnings.append(f"{where}: RequestMirror: {problem.reason}: "
                                    f"{problem.message}; not mirrored")
                    continue
                mirrors.append(dp.Mirror(backend, f.mirror_percent))
        kinds: dict[str, Filter] = {f.type: f for f in rule.filters}
        request = kinds.get("RequestHeaderModifier")
        response = kinds.get("ResponseHeaderModifier")
        redirect = kinds.get("RequestRedirect")
        rewrite = kinds.get("URLRewrite")
        rules = tuple(dp.Rule(route.key, i, m,
                              request_headers=request.headers if request else None,
                              response_headers=response.headers if response else None,
                              redirect=redirect.redirect if redirect else None,
                              rewrite=rewrite.rewrite if rewrite else None,
                              mirrors=tuple(mirrors), backends=tuple(resolved),
                              error=500 if bad else None)
                      for m in rule.matches)
        out.append((rule, rules))
    if failures:
        first = failures[0]
        message = "; ".join(dict.fromkeys(c.message for c in failures))
        resolved_cond = Condition("ResolvedRefs", False, first.reason, message, gen)
    else:
        resolved_cond = Condition("ResolvedRefs", True, "ResolvedRefs", "", gen)
    return _RouteRules(out, resolved_cond, unsupported)


# --- precedence and the data plane ------------------------------------------------------------


def _created(meta: Meta) -> tuple[int, str]:
    return (0, meta.creation_timestamp) if meta.creation_timestamp else (1, "")


def precedence(rule: dp.Rule, route: HTTPRoute, match_index: int) -> tuple[Any, ...]:
    """The sort key of one rule match across all routes of a virtual host (lower first)."""
    m = rule.match
    path = {"Exact": (0, 0), "RegularExpression": (1, 0),
            "PathPrefix": (2, -len(m.path))}[m.path_type]
    return (path, m.method is None, -len(m.headers), -len(m.query), _created(route.meta),
            route.key, rule.index, match_index)


def _owner(listeners: list[Listener], hostname: str | None) -> Listener | None:
    """The listener of a port that handles every request for `hostname`: the most specific
    one covering it."""
    covering = [li for li in listeners if covers(li.hostname, hostname)]
    return max(covering, key=lambda li: specificity(li.hostname), default=None)


def _server(port: int, listeners: list[ListenerResult],
            attached: list[tuple[HTTPRoute, str, tuple[str | None, ...], _RouteRules]]
            ) -> dp.Server:
    plain = [lr.listener for lr in listeners]
    hosts: dict[str | None, list[tuple[tuple[Any, ...], dp.Rule]]] = {
        li.hostname: [] for li in plain}
    done: set[tuple[str | None, str]] = set()
    for route, listener_name, hostnames, resolved in attached:
        li = next((x for x in plain if x.name == listener_name), None)
        if li is None:
            continue
        for h in hostnames:
            owner = _owner(plain, h)
            # listener isolation: a more specific listener takes these requests
            if owner is None or owner.name != li.name or (h, route.key) in done:
                continue
            done.add((h, route.key))
            table = hosts.setdefault(h, [])
            for _, rules in resolved.rules:
                for j, r in enumerate(rules):
                    table.append((precedence(r, route, j), r))
    vhosts = tuple(dp.VirtualHost(h, tuple(r for _, r in sorted(table, key=lambda x: x[0])))
                   for h, table in sorted(hosts.items(),
                                          key=lambda kv: (-specificity(kv[0])[0],
                                                          -specificity(kv[0])[1], kv[0] or "")))
    protocol = plain[0].protocol
    certificates: tuple[dp.Certificate, ...] = ()
    if protocol == "HTTPS":
        with_cert = [lr for lr in listeners if lr.certificate is not None]
        # the default certificate: the catch-all listener's, else the first listener's
        with_cert.sort(key=lambda lr: lr.listener.hostname is not None)
        certificates = tuple(dp.Certificate((lr.listener.hostname,) if lr.listener.hostname
                                            else (), *lr.certificate)  # type: ignore[misc]
                             for lr in with_cert)
    return dp.Server(port, protocol, vhosts, certificates)  # type: ignore[arg-type]


def _config(g: GatewayResult, routes: list[tuple[HTTPRoute, ParentResult, _RouteRules]],
            files: dict[str, bytes]) -> dp.GatewayConfig:
    by_port: dict[int, list[ListenerResult]] = {}
    for lr in g.listeners:
        if lr.programmable:
            by_port.setdefault(lr.listener.port, []).append(lr)
    servers = []
    for port, lrs in sorted(by_port.items()):
        names = {lr.listener.name for lr in lrs}
        attached = [(route, name, hosts, resolved)
                    for route, parent, resolved in routes
                    for name, hosts in parent.attached if name in names]
        servers.append(_server(port, lrs, attached))
    return dp.GatewayConfig(g.gateway.key, tuple(servers), files)


# --- reconcile --------------------------------------------------------------------------------


def builtin_class() -> GatewayClass:
    return GatewayClass(Meta(BUILTIN_CLASS, None), CONTROLLER_NAME,
                        "netlab's built-in class")


def _classes(classes: Iterable[GatewayClass], warnings: list[str]) -> dict[str, ClassResult]:
    out = {BUILTIN_CLASS: ClassResult(builtin_class(), True, [Condition(
        "Accepted", True, "Accepted", "", 1)], builtin=True)}
    for c in sorted(classes, key=lambda c: c.key):
        if c.controller_name == CONTROLLER_NAME:
            out[c.key] = ClassResult(c, True, [Condition("Accepted", True, "Accepted", "",
                                                         c.meta.generation)])
        else:
            out[c.key] = ClassResult(c, False)
            warnings.append(f"GatewayClass {c.key}: controllerName {c.controller_name} is not "
                            f"netlab's ({CONTROLLER_NAME}): its Gateways are not served")
    return out


def _why_not_served(gw: Gateway, classes: dict[str, ClassResult]) -> str | None:
    c = classes.get(gw.class_name)
    if c is None:
        return (f"gatewayClassName {gw.class_name!r}: no GatewayClass of that name: not served; "
                f"use gatewayClassName: {BUILTIN_CLASS} (built in) or create a GatewayClass "
                f"with controllerName: {CONTROLLER_NAME}")
    if not c.served:
        return (f"gatewayClassName {gw.class_name!r}: GatewayClass {c.gateway_class.key} is for "
                f"controller {c.gateway_class.controller_name}, not netlab's "
                f"({CONTROLLER_NAME}): not served")
    return None


def reconcile(classes: Iterable[GatewayClass], gateways: Iterable[Gateway],
              routes: Iterable[HTTPRoute], grants: Iterable[ReferenceGrant], *,
              services: Mapping[str, ServicePlan],
              namespaces: Mapping[str, Mapping[str, str]],
              secrets: Mapping[str, Secret],
              addresses: Mapping[str, tuple[str, ...]],
              families: tuple[str, ...] | None = None) -> Reconciled:
    """Every decision of netlab's Gateway API controller over one lab's objects (see the
    module's docstring). `services` by "ns/name" (the plan's), `namespaces` their labels,
    `secrets` by "ns/name", `addresses` each Gateway's LoadBalancer addresses, `families`
    the address families the proxy can reach (None: any; a Service's first family in it is
    used for its endpoints)."""
    out = Reconciled()
    grants = list(grants)
    out.classes = _classes(classes, out.warnings)
    files: dict[str, dict[str, bytes]] = {}
    for gw in sorted(gateways, key=lambda g: g.key):
        why = _why_not_served(gw, out.classes)
        if why is not None:
            out.gateways[gw.key] = GatewayResult(gw, False, why)
            out.warnings.append(f"Gateway {gw.key}: {why}")
            continue
        files[gw.key] = {}
        out.gateways[gw.key] = _gateway_result(gw, grants, secrets,
                                               tuple(addresses.get(gw.key, ())),
                                               files[gw.key], out.warnings)
    backends = _Backends(services, grants, families)
    by_gateway: dict[str, list[tuple[HTTPRoute, ParentResult, _RouteRules]]] = {}
    for route in sorted(routes, key=lambda r: r.key):
        result = RouteResult(route)
        out.routes[route.key] = result
        ours = [(i, ref, out.gateways.get(f"{ref.namespace or route.meta.namespace}/{ref.name}"))
                for i, ref in enumerate(route.parent_refs)]
        for i, ref, g in ours:
            if (ref.group, ref.kind) != (GROUP, "Gateway"):
                out.warnings.append(f"HTTPRoute {route.key}: parentRefs[{i}]: {ref.kind} "
                                    f"{ref.name} is not a Gateway: not served by netlab")
            elif g is None:
                out.warnings.append(f"HTTPRoute {route.key}: parentRefs[{i}]: Gateway "
                                    f"{ref.namespace or route.meta.namespace}/{ref.name} not "
                                    "found")
        ours_ok = [(i, ref, g) for i, ref, g in ours
                   if g is not None and g.served and (ref.group, ref.kind) == (GROUP, "Gateway")]
        if not ours_ok:
            continue
        resolved = _resolve_rules(route, backends, out.warnings)
        all_bad = len(resolved.unsupported) > 0 and all(
            _unsupported(r) for r in route.rules)
        for i, ref, g in ours_ok:
            assert g is not None
            parent = _attach(route, ref, g, namespaces)
            accepted = parent.conditions[0]
            if accepted.status and all_bad:
                parent.conditions[0] = Condition(
                    "Accepted", False, "UnsupportedValue",
                    "no rule netlab can serve: " + "; ".join(resolved.unsupported),
                    route.meta.generation)
                parent.attached = []
            parent.conditions.append(resolved.resolved)
            if parent.accepted and resolved.unsupported:
                parent.conditions.append(Condition(
                    "PartiallyInvalid", True, "UnsupportedValue",
                    "rules answering 500: " + "; ".join(resolved.unsupported),
                    route.meta.generation))
            if not parent.accepted:
                c = parent.conditions[0]
                out.warnings.append(f"HTTPRoute {route.key}: parentRefs[{i}] (Gateway "
                                    f"{g.gateway.key}): not attached ({c.reason}): {c.message}")
            result.parents.append(parent)
            by_gateway.setdefault(g.gateway.key, []).append((route, parent, resolved))
            for name, _ in parent.attached:
                lr = next(x for x in g.listeners if x.listener.name == name)
                lr.attached_routes += 1
    for key, g in out.gateways.items():
        if g.served and g.accepted:
            out.configs[key] = _config(g, by_gateway.get(key, []), files[key])
    return out


__all__ = ["BUILTIN_CLASS", "CONTROLLER_NAME", "ClassResult", "Condition", "GatewayResult",
           "ListenerResult", "ParentResult", "Reconciled", "RouteResult", "covers",
           "host_matches", "intersect", "precedence", "reconcile", "route_hostnames",
           "specificity"]
