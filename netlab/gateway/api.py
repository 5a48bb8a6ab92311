"""Gateway API objects as written (gateway.networking.k8s.io v1, standard channel): parsed,
defaulted and validated as the CRDs do (pure).

`parse(doc, file, line, warnings)` turns one manifest into a `GatewayClass`, `Gateway`,
`HTTPRoute` or `ReferenceGrant`, or raises netlab.errors.InputError (exit 2) naming the
file, the object and the field. What is checked is what the API server checks with the
CRDs of config/crd/standard: the OpenAPI schema (enums, lengths, patterns, item counts,
ranges) and the CEL rules (x-kubernetes-validations), with the CRDs' own messages where
they have one. The CRD defaults are applied (path match PathPrefix "/", header and query
match type Exact, backendRef weight 1 / group "" / kind Service, parentRef group
gateway.networking.k8s.io / kind Gateway, allowedRoutes from Same, tls mode Terminate,
redirect statusCode 302). Valid fields netlab does not model (timeouts, retry,
sessionPersistence, infrastructure, ...) are warned about, never silently dropped.

Matches and filter payloads are kept as the dataplane's types (netlab.gateway.dataplane):
they carry exactly the API's fields, so the controller passes them on unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from netlab.errors import InputError
from netlab.fields import Fields, Where, label_selector, schema_int
from netlab.gateway.dataplane import (
    HeaderModifier,
    Match,
    PathModifier,
    Redirect,
    Rewrite,
)
from netlab.model import LabelSelector, Source

GROUP = "gateway.networking.k8s.io"
_V1, _V1BETA1 = f"{GROUP}/v1", f"{GROUP}/v1beta1"
# kind -> the apiVersions it is read in (the first is the storage version)
KINDS: dict[str, tuple[str, ...]] = {
    "GatewayClass": (_V1, _V1BETA1),
    "Gateway": (_V1, _V1BETA1),
    "HTTPRoute": (_V1, _V1BETA1),
    "ReferenceGrant": (_V1BETA1, _V1),
}

# Patterns of apis/v1/shared_types.go and gateway_types.go (kubebuilder markers)
_DNS = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
HOSTNAME = re.compile(rf"(\*\.)?{_DNS}")
PRECISE_HOSTNAME = re.compile(_DNS)
GROUP_RE = re.compile(rf"|{_DNS}")
KIND_RE = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
NAMESPACE_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SECTION_NAME = PRECISE_HOSTNAME
CONTROLLER_RE = re.compile(rf"{_DNS}/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+")
PROTOCOL_RE = re.compile(rf"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?|{_DNS}/[A-Za-z0-9]+")
ADDRESS_TYPE = re.compile(rf"Hostname|IPAddress|NamedAddress|{CONTROLLER_RE.pattern}")
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
PATH_CHARS = re.compile(r"(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+")

PROTOCOLS_CORE = ("HTTP", "HTTPS", "TLS", "TCP", "UDP")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
FILTER_TYPES = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror",
                "RequestRedirect", "URLRewrite", "ExtensionRef", "CORS")
# HTTPRouteFilter.type -> its own field (the CEL rules: only that one, and it is required)
FILTER_FIELDS = {"RequestHeaderModifier": "requestHeaderModifier",
                 "ResponseHeaderModifier": "responseHeaderModifier",
                 "RequestMirror": "requestMirror", "RequestRedirect": "requestRedirect",
                 "URLRewrite": "urlRewrite", "ExtensionRef": "extensionRef", "CORS": "cors"}
REDIRECT_CODES = (301, 302, 303, 307, 308)
WEIGHT_MAX = 1_000_000
MAX_LISTENERS, MAX_RULES, MAX_MATCHES, MAX_MATCHES_TOTAL = 64, 16, 64, 128
MAX_PARENT_REFS, MAX_HOSTNAMES, MAX_FILTERS, MAX_BACKEND_REFS = 32, 16, 16, 16

_META_IGNORED = ("uid", "resourceVersion", "managedFields", "selfLink", "finalizers",
                 "ownerReferences", "deletionTimestamp", "deletionGracePeriodSeconds",
                 "generateName")

# The CRDs' CEL messages, word for word
MSG_REDIRECT_AND_REWRITE = ("May specify either httpRouteFilterRequestRedirect or "
                            "httpRouteFilterRequestRewrite, but not both")
MSG_REDIRECT_WITH_BACKENDS = "RequestRedirect filter must not be used together with backendRefs"
MSG_SERVICE_PORT = "Must have port for Service reference"
MSG_LISTENER_NAMES = "Listener name must be unique within the Gateway"
MSG_LISTENER_COMBINATION = ("Combination of port, protocol and hostname must be unique for "
                            "each listener")
MSG_TLS_FORBIDDEN = "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"
MSG_TLS_HTTPS_MODE = "tls mode must be Terminate for protocol HTTPS"
MSG_TLS_MODE_TLS = "tls mode must be set for protocol TLS"
MSG_HOSTNAME_TCP_UDP = "hostname must not be specified for protocols ['TCP', 'UDP']"
MSG_CERT_REFS = "certificateRefs or options must be specified when mode is Terminate"
MSG_SECTION_REQUIRED = ("sectionName must be specified when parentRefs includes 2 or more "
                        "references to the same parent")
MSG_SECTION_UNIQUE = ("sectionName must be unique when parentRefs includes 2 or more "
                      "references to the same parent")
MSG_TOTAL_MATCHES = ("While 16 rules and 64 matches per rule are allowed, the total number "
                     "of matches across all rules in a route must be less than 128")


# --- the model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    """The metadata a controller reads."""

    name: str
    namespace: str | None  # None for the cluster-scoped GatewayClass
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    generation: int = 1
    creation_timestamp: str | None = None  # RFC 3339 as written (route precedence)


@dataclass(frozen=True)
class GatewayClass:
    meta: Meta
    controller_name: str
    description: str | None = None
    parameters_ref: str | None = None  # "group/kind ns/name", not modelled
    source: Source | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return self.meta.name


@dataclass(frozen=True)
class SecretRef:
    """SecretObjectReference (a listener's certificateRef)."""

    name: str
    namespace: str | None = None  # None: the referrer's own
    group: str = ""
    kind: str = "Secret"


@dataclass(frozen=True)
class ListenerTLS:
    mode: str = "Terminate"  # Terminate | Passthrough
    certificate_refs: tuple[SecretRef, ...] = ()
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    protocol: str
    hostname: str | None = None
    tls: ListenerTLS | None = None
    namespaces_from: str = "Same"  # All | Selector | Same
    namespace_selector: LabelSelector | None = None  # with Selector
    kinds: tuple[tuple[str, str], ...] = ()  # (group, kind); () : the protocol's defaults


@dataclass(frozen=True)
class Gateway:
    meta: Meta
    class_name: str
    listeners: tuple[Listener, ...]
    addresses: tuple[tuple[str, str], ...] = ()  # spec.addresses (type, value)
    source: Source | None = field(default=None, compare=False)
    # spec.infrastructure.parametersRef as "group/kind name" (netlab's controller has none)
    parameters_ref: str | None = None

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"


@dataclass(frozen=True)
class ParentRef:
    name: str
    namespace: str | None = None  # None: the route's own
    group: str = GROUP
    kind: str = "Gateway"
    section_name: str | None = None
    port: int | None = None

    def to_json(self) -> dict[str, Any]:
        """As the API shows it in status.parents[].parentRef (defaults filled in)."""
        out: dict[str, Any] = {"group": self.group, "kind": self.kind, "name": self.name}
        if self.namespace is not None:
            out["namespace"] = self.namespace
        if self.section_name is not None:
            out["sectionName"] = self.section_name
        if self.port is not None:
            out["port"] = self.port
        return out


@dataclass(frozen=True)
class BackendRef:
    """BackendObjectReference (+ weight and filters for an HTTPBackendRef)."""

    name: str
    namespace: str | None = None
    group: str = ""
    kind: str = "Service"
    port: int | None = None
    weight: int = 1
    filters: tuple[Filter, ...] = ()

    def __str__(self) -> str:
        what = self.kind if not self.group else f"{self.kind}.{self.group}"
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{what} {ns}{self.name}" + (f":{self.port}" if self.port is not None else "")


@dataclass(frozen=True)
class Filter:
    """One HTTPRouteFilter: `type` and the payload of that type."""

    type: str
    headers: HeaderModifier | None = None  # Request/ResponseHeaderModifier
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    mirror: BackendRef | None = None
    mirror_percent: int = 100  # percent, or a fraction rounded down to a percent
    extension_ref: str | None = None  # "group/kind name"


@dataclass(frozen=True)
class RouteRule:
    matches: tuple[Match, ...]
    filters: tuple[Filter, ...] = ()
    backend_refs: tuple[BackendRef, ...] = ()
    name: str | None = None


@dataclass(frozen=True)
class HTTPRoute:
    meta: Meta
    parent_refs: tuple[ParentRef, ...]
    hostnames: tuple[str, ...]
    rules: tuple[RouteRule, ...]
    source: Source | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"


@dataclass(frozen=True)
class ReferenceGrant:
    meta: Meta
    from_: tuple[tuple[str, str, str], ...]  # (group, kind, namespace)
    to: tuple[tuple[str, str, str | None], ...]  # (group, kind, name or None: all)
    source: Source | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"

    def permits(self, from_group: str, from_kind: str, from_ns: str, to_group: str,
                to_kind: str, to_name: str) -> bool:
        """Whether this grant (in the target's namespace) lets `from_kind` objects of
        `from_ns` refer to `to_kind` `to_name`."""
        return (any(f == (from_group, from_kind, from_ns) for f in self.from_)
                and any((g, k) == (to_group, to_kind) and (n is None or n == to_name)
                        for g, k, n in self.to))


Object = GatewayClass | Gateway | HTTPRoute | ReferenceGrant


# --- field helpers ---------------------------------------------------------------------------


def _quote(values: tuple[Any, ...] | list[Any]) -> str:
    return ", ".join(f'"{v}"' for v in values)


def _enum(f: Fields, key: str, values: tuple[str, ...], default: str | None = None) -> str:
    if default is not None and not f.has(key):
        f.ignore(key)
        return default
    value = f.str(key)
    if value not in values:
        raise f.error(key, f'Unsupported value: "{value}": supported values: {_quote(values)}')
    return value


_int = schema_int


def _check(f: Fields, key: str, value: str, *, lo: int = 0, hi: int | None = None,
           pattern: re.Pattern[str] | None = None, path: str | None = None) -> str:
    """A string's MinLength, MaxLength and Pattern, refused with the API server's words."""
    where = path if path is not None else f._p(key)
    if len(value) < lo:
        raise f.where.error(where, f'Invalid value: "{value}": should be at least {lo} chars '
                                   "long")
    if hi is not None and len(value) > hi:
        raise f.where.error(where, f"Too long: may not be more than {hi} bytes")
    if pattern is not None and not pattern.fullmatch(value):
        raise f.where.error(where, f'Invalid value: "{value}": should match '
                                   f"'^{pattern.pattern}$'")
    return value


def _string(f: Fields, key: str, default: Any = ..., **check: Any) -> Any:
    if default is not ... and not f.has(key):
        f.ignore(key)
        return default
    return _check(f, key, f.str(key), **check)


def _items(f: Fields, key: str, hi: int, lo: int = 0, required: bool = False) -> list[Fields]:
    present = f.has(key)
    items = f.items(key, required)
    if (present or required) and len(items) < lo:
        raise f.error(key, f"Invalid value: {len(items)}: should have at least {lo} items")
    if len(items) > hi:
        raise f.error(key, f"Too many: {len(items)}: must have at most {hi} items")
    return items


def _strings(f: Fields, key: str, hi: int, **check: Any) -> tuple[str, ...]:
    values = f.str_list(key)
    if len(values) > hi:
        raise f.error(key, f"Too many: {len(values)}: must have at most {hi} items")
    for i, v in enumerate(values):
        _check(f, key, v, path=f"{f._p(key)}[{i}]", **check)
    return values


def _unmodelled(f: Fields, key: str, what: str = "") -> None:
    """A valid field netlab does not model: read, warned about."""
    if f.has(key):
        f.where.warnings.append(f"{f.where.obj}: {f._p(key)} is not modelled by netlab and is "
                                f"ignored{what}")
    f.ignore(key)


def _hostname(f: Fields, key: str, precise: bool = False, path: str | None = None,
              value: str | None = None) -> str:
    value = f.str(key) if value is None else value
    return _check(f, key, value, lo=1, hi=253, path=path,
                  pattern=PRECISE_HOSTNAME if precise else HOSTNAME)


def _group(f: Fields, key: str, default: str) -> str:
    return _string(f, key, default, hi=253, pattern=GROUP_RE)


def _kind(f: Fields, key: str, default: Any = ...) -> str:
    return _string(f, key, default, lo=1, hi=63, pattern=KIND_RE)


def _object_name(f: Fields, key: str) -> str:
    return _string(f, key, lo=1, hi=253)


def _namespace(f: Fields, key: str) -> str | None:
    return _string(f, key, None, lo=1, hi=63, pattern=NAMESPACE_RE)


def _section_name(f: Fields, key: str, default: Any = ...) -> Any:
    return _string(f, key, default, lo=1, hi=253, pattern=SECTION_NAME)


# --- metadata ---------------------------------------------------------------------------------


def _meta(top: Fields, kind: str, namespaced: bool) -> Meta:
    meta = top.sub("metadata", required=True)
    assert meta is not None
    name = meta.name("name", f"{kind} name", "subdomain")
    namespace = None
    if namespaced:
        namespace = meta.name("namespace", "namespace") if meta.has("namespace") else "default"
    elif meta.has("namespace"):
        meta.where.warnings.append(f"{meta.where.obj}: metadata.namespace is ignored: {kind} "
                                   "is cluster-scoped")
    meta.ignore("namespace", *_META_IGNORED)
    labels = meta.labels("labels")
    annotations = meta.annotations("annotations")
    generation = meta.int("generation", 1, lo=1)
    created = meta.str("creationTimestamp", None)
    meta.done()
    return Meta(name, namespace, labels, annotations, generation, created)


# --- GatewayClass -----------------------------------------------------------------------------


def _gateway_class(spec: Fields, meta: Meta, source: Source) -> GatewayClass:
    controller = _string(spec, "controllerName", lo=1, hi=253, pattern=CONTROLLER_RE)
    description = _string(spec, "description", None, hi=64)
    params = None
    if (p := spec.sub("parametersRef")) is not None:
        group = _group(p, "group", ...)
        kind = _kind(p, "kind")
        name = _string(p, "name", lo=1, hi=253)
        ns = _namespace(p, "namespace")
        p.done()
        params = f"{group}/{kind} {ns + '/' if ns else ''}{name}"
        spec.where.warnings.append(f"{spec.where.obj}: spec.parametersRef is not modelled by "
                                   "netlab and is ignored")
    spec.done()
    return GatewayClass(meta, controller, description, params, source)


# --- Gateway ----------------------------------------------------------------------------------


def _secret_ref(f: Fields) -> SecretRef:
    ref = SecretRef(_object_name(f, "name"), _namespace(f, "namespace"), _group(f, "group", ""),
                    _kind(f, "kind", "Secret"))
    f.done()
    return ref


def _listener_tls(f: Fields) -> ListenerTLS:
    mode = _enum(f, "mode", ("Terminate", "Passthrough"), "Terminate")
    refs = tuple(_secret_ref(r) for r in _items(f, "certificateRefs", 64))
    options = f.str_map("options")
    if len(options) > 16:
        raise f.error("options", f"Too many: {len(options)}: must have at most 16 items")
    if mode == "Terminate" and not refs and not options:
        raise f.error("", MSG_CERT_REFS)
    if options:
        f.where.warnings.append(f"{f.where.obj}: {f._p('options')} are implementation-specific "
                                "and not modelled by netlab: ignored")
    _unmodelled(f, "frontendValidation")
    f.done()
    return ListenerTLS(mode, refs, tuple(sorted(options.items())))


def _allowed_routes(f: Fields | None) -> tuple[str, LabelSelector | None,
                                                tuple[tuple[str, str], ...]]:
    if f is None:
        return "Same", None, ()
    from_, selector = "Same", None
    if (ns := f.sub("namespaces")) is not None:
        from_ = _enum(ns, "from", ("All", "Selector", "Same"), "Same")
        sel = ns.sub("selector")
        selector = label_selector(sel) if sel is not None else None
        if from_ == "Selector" and selector is None:
            f.where.warnings.append(f"{f.where.obj}: {ns.path}: from is Selector but no "
                                    "selector is set: no namespace's routes may attach")
        ns.done()
    kinds = []
    for k in _items(f, "kinds", 8):
        kinds.append((_group(k, "group", GROUP), _kind(k, "kind")))
        k.done()
    f.done()
    return from_, selector, tuple(kinds)


def _listener(f: Fields) -> Listener:
    name = _section_name(f, "name")
    hostname = _hostname(f, "hostname") if f.has("hostname") else None
    f.ignore("hostname")
    port = _int(f, "port", 1, 65535)
    protocol = _string(f, "protocol", lo=1, hi=255, pattern=PROTOCOL_RE)
    tls_f = f.sub("tls")
    tls = _listener_tls(tls_f) if tls_f is not None else None
    from_, selector, kinds = _allowed_routes(f.sub("allowedRoutes"))
    # the Gateway's listener CEL rules, checked here to name the listener
    if protocol in ("HTTP", "TCP", "UDP") and tls is not None:
        raise f.error("tls", MSG_TLS_FORBIDDEN)
    if protocol == "HTTPS" and tls is not None and tls.mode != "Terminate":
        raise f.error("tls.mode", MSG_TLS_HTTPS_MODE)
    if protocol == "TLS" and (tls_f is None or not tls_f.has("mode")):
        raise f.error("tls", MSG_TLS_MODE_TLS)
    if protocol in ("TCP", "UDP") and hostname is not None:
        raise f.error("hostname", MSG_HOSTNAME_TCP_UDP)
    f.done()
    return Listener(name, port, protocol, hostname, tls, from_, selector, kinds)


def _addresses(spec: Fields) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for a in _items(spec, "addresses", 16):
        kind = _string(a, "type", "IPAddress", lo=1, hi=253, pattern=ADDRESS_TYPE)
        value = _string(a, "value", "", hi=253)
        if kind == "Hostname" and value and not HOSTNAME.fullmatch(value):
            raise a.error("value", "Hostname value must be empty or contain only valid "
                                   f"characters (matching ^{HOSTNAME.pattern}$)")
        if kind == "IPAddress" and value:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise a.error("value", f'Invalid value: "{value}": not an IP address') from None
        if value and (kind, value) in out and kind in ("IPAddress", "Hostname"):
            raise spec.error("addresses", f"{kind} values must be unique")
        a.done()
        out.append((kind, value))
    return tuple(out)


def _gateway(spec: Fields, meta: Meta, source: Source) -> Gateway:
    class_name = _object_name(spec, "gatewayClassName")
    items = _items(spec, "listeners", MAX_LISTENERS, lo=1, required=True)
    listeners = tuple(_listener(lf) for lf in items)
    names = [li.name for li in listeners]
    for i, li in enumerate(listeners):
        if li.name in names[:i]:
            raise spec.error("listeners", f"{MSG_LISTENER_NAMES} (name {li.name!r} repeats)")
        if any((o.port, o.protocol, o.hostname) == (li.port, li.protocol, li.hostname)
               for o in listeners[:i]):
            raise spec.error("listeners", f"{MSG_LISTENER_COMBINATION} (listener {li.name!r})")
    addresses = _addresses(spec)
    parameters = None
    if (infra := spec.sub("infrastructure")) is not None:
        if (ref := infra.sub("parametersRef")) is not None:  # LocalParametersReference
            parameters = (f"{_group(ref, 'group', ...)}/{_kind(ref, 'kind')} "
                          f"{_string(ref, 'name', lo=1, hi=253)}")
            ref.done()
        for key in ("labels", "annotations"):
            _unmodelled(infra, key)
        infra.done()
    for key in ("allowedListeners", "tls", "defaultScope"):
        _unmodelled(spec, key)
    spec.done()
    return Gateway(meta, class_name, listeners, addresses, source, parameters)


# --- HTTPRoute --------------------------------------------------------------------------------


def _parent_ref(f: Fields) -> ParentRef:
    ref = ParentRef(_object_name(f, "name"), _namespace(f, "namespace"), _group(f, "group", GROUP),
                    _kind(f, "kind", "Gateway"), _section_name(f, "sectionName", None),
                    _int(f, "port", 1, 65535) if f.has("port") else None)
    f.ignore("port")
    f.done()
    return ref


def _parent_refs(spec: Fields) -> tuple[ParentRef, ...]:
    refs = tuple(_parent_ref(p) for p in _items(spec, "parentRefs", MAX_PARENT_REFS))
    for i, a in enumerate(refs):
        for b in refs[:i]:
            if (a.group, a.kind, a.name, a.namespace) != (b.group, b.kind, b.name, b.namespace):
                continue
            if (a.section_name is None) != (b.section_name is None):
                raise spec.error("parentRefs", MSG_SECTION_REQUIRED)
            if a.section_name == b.section_name:
                raise spec.error("parentRefs", MSG_SECTION_UNIQUE)
    return refs


def _path_match(f: Fields | None) -> tuple[str, str]:
    if f is None:
        return "PathPrefix", "/"
    kind = _enum(f, "type", ("Exact", "PathPrefix", "RegularExpression"), "PathPrefix")
    value = _string(f, "value", "/", hi=1024)
    f.done()
    if kind != "RegularExpression":
        for bad, msg in ((not value.startswith("/"), "value must be an absolute path and start "
                                                     "with '/'"),
                         ("//" in value, "must not contain '//'"),
                         ("/./" in value, "must not contain '/./'"),
                         ("/../" in value, "must not contain '/../'"),
                         ("%2f" in value, "must not contain '%2f'"),
                         ("%2F" in value, "must not contain '%2F'"),
                         ("#" in value, "must not contain '#'"),
                         (value.endswith("/.."), "must not end with '/..'"),
                         (value.endswith("/."), "must not end with '/.'"),
                         (not PATH_CHARS.fullmatch(value),
                          f"must only contain valid characters (matching ^{PATH_CHARS.pattern}$)")):
            if bad:
                raise f.error("", f"{msg} when type one of ['Exact', 'PathPrefix']")
    return kind, value


def _name_matches(f: Fields, key: str, max_value: int) -> tuple[tuple[str, str, str], ...]:
    out: list[tuple[str, str, str]] = []
    for h in _items(f, key, 16):
        kind = _enum(h, "type", ("Exact", "RegularExpression"), "Exact")
        name = _string(h, "name", lo=1, hi=256, pattern=HEADER_NAME)
        value = _string(h, "value", lo=1, hi=max_value)
        h.done()
        # listType=map, listMapKey=name: the API server refuses a repeated name
        if any(n == name for _, n, _ in out):
            raise h.error("name", f'Duplicate value: map[string]interface {{}}{{"name":"{name}"}}')
        out.append((kind, name, value))
    return tuple(out)


def _match(f: Fields) -> Match:
    path_type, path = _path_match(f.sub("path"))
    headers = _name_matches(f, "headers", 4096)
    query = _name_matches(f, "queryParams", 1024)
    method = _enum(f, "method", METHODS) if f.has("method") else None
    f.ignore("method")
    f.done()
    return Match(path_type, path, method, headers, query)  # type: ignore[arg-type]


def _header_modifier(f: Fields) -> HeaderModifier:
    def pairs(key: str) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        for h in _items(f, key, 16):
            name = _string(h, "name", lo=1, hi=256, pattern=HEADER_NAME)
            value = _string(h, "value", lo=1, hi=4096)
            h.done()
            if any(n == name for n, _ in out):
                raise h.error("name", f'Duplicate value: map[string]interface {{}}{{"name":'
                                      f'"{name}"}}')
            out.append((name, value))
        return tuple(out)

    set_, add = pairs("set"), pairs("add")
    remove = f.str_list("remove")
    if len(remove) > 16:
        raise f.error("remove", f"Too many: {len(remove)}: must have at most 16 items")
    for i, r in enumerate(remove):
        if r in remove[:i]:
            raise f.where.error(f"{f._p('remove')}[{i}]", f'Duplicate value: "{r}"')
    f.done()
    return HeaderModifier(set_, add, remove)


def _path_modifier(f: Fields) -> PathModifier:
    kind = _enum(f, "type", ("ReplaceFullPath", "ReplacePrefixMatch"))
    full = _string(f, "replaceFullPath", None, hi=1024)
    prefix = _string(f, "replacePrefixMatch", None, hi=1024)
    if kind == "ReplaceFullPath" and full is None:
        raise f.error("", "replaceFullPath must be specified when type is set to "
                          "'ReplaceFullPath'")
    if full is not None and kind != "ReplaceFullPath":
        raise f.error("", "type must be 'ReplaceFullPath' when replaceFullPath is set")
    if kind == "ReplacePrefixMatch" and prefix is None:
        raise f.error("", "replacePrefixMatch must be specified when type is set to "
                          "'ReplacePrefixMatch'")
    if prefix is not None and kind != "ReplacePrefixMatch":
        raise f.error("", "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set")
    f.done()
    return PathModifier(kind, full if kind == "ReplaceFullPath" else prefix)  # type: ignore


def _redirect(f: Fields) -> Redirect:
    scheme = _enum(f, "scheme", ("http", "https")) if f.has("scheme") else None
    f.ignore("scheme")
    hostname = _hostname(f, "hostname", precise=True) if f.has("hostname") else None
    f.ignore("hostname")
    path = _path_modifier(p) if (p := f.sub("path")) is not None else None
    port = _int(f, "port", 1, 65535) if f.has("port") else None
    f.ignore("port")
    code = f.raw("statusCode", 302)
    if code not in REDIRECT_CODES or isinstance(code, bool):
        raise f.error("statusCode", f"Unsupported value: {code}: supported values: "
                                    f"{', '.join(map(str, REDIRECT_CODES))}")
    f.done()
    return Redirect(scheme, hostname, port, path, code)


def _rewrite(f: Fields) -> Rewrite:
    hostname = _hostname(f, "hostname", precise=True) if f.has("hostname") else None
    f.ignore("hostname")
    path = _path_modifier(p) if (p := f.sub("path")) is not None else None
    f.done()
    return Rewrite(hostname, path)


def _backend_object(f: Fields, weight: int = 1, filters: tuple[Filter, ...] = ()) -> BackendRef:
    group = _group(f, "group", "")
    kind = _kind(f, "kind", "Service")
    name = _object_name(f, "name")
    ns = _namespace(f, "namespace")
    port = _int(f, "port", 1, 65535) if f.has("port") else None
    f.ignore("port")
    if group == "" and kind == "Service" and port is None:
        raise f.error("", MSG_SERVICE_PORT)
    return BackendRef(name, ns, group, kind, port, weight, filters)


def _mirror(f: Fields) -> tuple[BackendRef, int]:
    b = f.sub("backendRef", required=True)
    assert b is not None
    ref = _backend_object(b)
    b.done()
    if f.has("percent") and f.has("fraction"):
        raise f.error("", "Only one of percent or fraction may be specified in "
                          "HTTPRequestMirrorFilter")
    percent = 100
    if f.has("percent"):
        percent = _int(f, "percent", 0, 100)
    elif (fr := f.sub("fraction")) is not None:
        num = _int(fr, "numerator", 0, 2**31 - 1)
        den = _int(fr, "denominator", 1, 2**31 - 1, default=100)
        if num > den:
            raise fr.error("", "numerator must be less than or equal to denominator")
        fr.done()
        percent = num * 100 // den
        if num * 100 % den:
            f.where.warnings.append(f"{f.where.obj}: {fr.path}: {num}/{den} is mirrored as "
                                    f"{percent}% (netlab mirrors whole percents)")
    f.done()
    return ref, percent


def _filter(f: Fields) -> Filter:
    kind = _enum(f, "type", FILTER_TYPES)
    own = FILTER_FIELDS[kind]
    for other in FILTER_FIELDS.values():
        if other != own and f.has(other):
            raise f.error("", f"filter.{other} must be nil if the filter.type is not "
                              f"{next(t for t, k in FILTER_FIELDS.items() if k == other)}")
    if not f.has(own):
        raise f.error("", f"filter.{own} must be specified for {kind} filter.type")
    sub = f.sub(own)
    assert sub is not None
    out: Filter
    if kind in ("RequestHeaderModifier", "ResponseHeaderModifier"):
        out = Filter(kind, headers=_header_modifier(sub))
    elif kind == "RequestRedirect":
        out = Filter(kind, redirect=_redirect(sub))
    elif kind == "URLRewrite":
        out = Filter(kind, rewrite=_rewrite(sub))
    elif kind == "RequestMirror":
        ref, percent = _mirror(sub)
        out = Filter(kind, mirror=ref, mirror_percent=percent)
    elif kind == "ExtensionRef":
        group, k, name = _group(sub, "group", ...), _kind(sub, "kind"), _object_name(sub, "name")
        sub.done()
        out = Filter(kind, extension_ref=f"{group}/{k} {name}")
    else:  # CORS: read as written, not modelled (the controller answers 500 for the rule)
        sub.ignore(*sub.data)
        out = Filter(kind)
    f.done()
    return out


def _filters(f: Fields, key: str) -> tuple[Filter, ...]:
    filters = tuple(_filter(x) for x in _items(f, key, MAX_FILTERS))
    types = [x.type for x in filters]
    if "RequestRedirect" in types and "URLRewrite" in types:
        raise f.error(key, MSG_REDIRECT_AND_REWRITE)
    for t in ("CORS", "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect",
              "URLRewrite"):
        if types.count(t) > 1:
            raise f.error(key, f"{t} filter cannot be repeated")
    return filters


def _http_backend_ref(f: Fields) -> BackendRef:
    weight = _int(f, "weight", 0, WEIGHT_MAX, default=1)
    filters = _filters(f, "filters")
    ref = _backend_object(f, weight, filters)
    f.done()
    return ref


def _replace_prefix(filters: tuple[Filter, ...], kind: str) -> bool:
    """Whether exactly one of `filters` of `kind` replaces the prefix match (exists_one)."""
    mods = [x.redirect.path if x.redirect else x.rewrite.path if x.rewrite else None
            for x in filters if x.type == kind]
    return sum(1 for m in mods if m is not None and m.type == "ReplacePrefixMatch") == 1


def _rule(f: Fields) -> RouteRule:
    name = _section_name(f, "name", None)
    if f.has("matches"):
        matches = tuple(_match(m) for m in _items(f, "matches", MAX_MATCHES))
    else:  # the CRD's default: one match, PathPrefix /
        f.ignore("matches")
        matches = (Match(),)
    filters = _filters(f, "filters")
    backends = tuple(_http_backend_ref(b) for b in _items(f, "backendRefs", MAX_BACKEND_REFS))
    if backends and any(x.type == "RequestRedirect" for x in filters):
        raise f.error("", MSG_REDIRECT_WITH_BACKENDS)
    one_prefix = len(matches) == 1 and matches[0].path_type == "PathPrefix"
    for kind, words in (("RequestRedirect", "RequestRedirect filter"),
                        ("URLRewrite", "URLRewrite filter")):
        if _replace_prefix(filters, kind) and not one_prefix:
            raise f.error("", f"When using {words} with path.replacePrefixMatch, exactly one "
                              "PathPrefix match must be specified")
        if sum(1 for b in backends if _replace_prefix(b.filters, kind)) == 1 and not one_prefix:
            which = "when" if kind == "RequestRedirect" else "When"
            raise f.error("", f"Within backendRefs, {which} using {words} with "
                              "path.replacePrefixMatch, exactly one PathPrefix match must be "
                              "specified")
    for key in ("timeouts", "retry", "sessionPersistence"):
        _unmodelled(f, key)
    f.done()
    return RouteRule(matches, filters, backends, name)


def _http_route(spec: Fields, meta: Meta, source: Source) -> HTTPRoute:
    parents = _parent_refs(spec)
    hostnames = tuple(_hostname(spec, "hostnames", path=f"spec.hostnames[{i}]", value=h)
                      for i, h in enumerate(spec.str_list("hostnames")))
    if len(hostnames) > MAX_HOSTNAMES:
        raise spec.error("hostnames", f"Too many: {len(hostnames)}: must have at most "
                                      f"{MAX_HOSTNAMES} items")
    if spec.has("rules"):
        rules = tuple(_rule(r) for r in _items(spec, "rules", MAX_RULES, lo=1))
    else:  # the CRD's default: one rule matching every request, no backends
        spec.ignore("rules")
        rules = (RouteRule((Match(),)),)
    if sum(len(r.matches) for r in rules) > MAX_MATCHES_TOTAL:
        raise spec.error("rules", MSG_TOTAL_MATCHES)
    _unmodelled(spec, "useDefaultGateways")
    spec.done()
    return HTTPRoute(meta, parents, hostnames, rules, source)


# --- ReferenceGrant ---------------------------------------------------------------------------


def _reference_grant(spec: Fields, meta: Meta, source: Source) -> ReferenceGrant:
    from_ = []
    for f in _items(spec, "from", 16, lo=1, required=True):
        group = _string(f, "group", hi=253, pattern=GROUP_RE)  # required, may be ""
        from_.append((group, _kind(f, "kind"),
                      _string(f, "namespace", lo=1, hi=63, pattern=NAMESPACE_RE)))
        f.done()
    to = []
    for t in _items(spec, "to", 16, lo=1, required=True):
        group = _string(t, "group", hi=253, pattern=GROUP_RE)
        to.append((group, _kind(t, "kind"),
                   _string(t, "name", None, lo=1, hi=253)))
        t.done()
    spec.done()
    return ReferenceGrant(meta, tuple(from_), tuple(to), source)


# --- parse ------------------------------------------------------------------------------------


_PARSERS = {"GatewayClass": _gateway_class, "Gateway": _gateway, "HTTPRoute": _http_route,
            "ReferenceGrant": _reference_grant}


def parse(doc: dict[str, Any], file: str, line: int | None = None,
          warnings: list[str] | None = None) -> Object:
    """One Gateway API manifest as the model, defaulted and validated as the CRDs do, or an
    InputError (exit 2) naming the file, the object and the field. Valid fields netlab does
    not model are warned about in `warnings` when given."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind not in KINDS:
        raise InputError(f"kind {kind!r} is not one of {', '.join(KINDS)}", file=file,
                         line=line)
    meta_raw = doc.get("metadata")
    raw_name = meta_raw.get("name") if isinstance(meta_raw, dict) else None
    raw_ns = meta_raw.get("namespace") if isinstance(meta_raw, dict) else None
    obj = kind if not isinstance(raw_name, str) else (
        f"{kind} {raw_name}" if kind == "GatewayClass"
        else f"{kind} {raw_ns if isinstance(raw_ns, str) else 'default'}/{raw_name}")
    seen: list[str] = []
    where = Where(file, line, obj, seen)
    top = Fields(doc, "", where)
    api = top.str("apiVersion")
    if api not in KINDS[kind]:
        raise top.error("apiVersion", f"{api!r} is not served for {kind}: use "
                                      f"{' or '.join(KINDS[kind])}")
    top.ignore("kind", "status")
    meta = _meta(top, kind, namespaced=kind != "GatewayClass")
    spec = top.sub("spec", required=True)
    assert spec is not None
    result = _PARSERS[kind](spec, meta, Source(file, line))
    top.done()
    if warnings is not None:
        warnings.extend(seen)
    return result


__all__ = ["GROUP", "KINDS", "BackendRef", "Filter", "Gateway", "GatewayClass", "HTTPRoute",
           "Listener", "ListenerTLS", "Meta", "ParentRef", "ReferenceGrant", "RouteRule",
           "SecretRef", "parse"]
