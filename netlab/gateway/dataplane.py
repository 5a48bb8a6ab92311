"""One Gateway's data plane as the controller resolved it: listening ports, virtual hosts,
route rules in the spec's precedence order, backends with their endpoints. Nothing here
depends on the proxy; netlab.gateway.nginx renders it.

Semantics carried by this structure (gateway-api v1 HTTPRoute and Gateway docs):
- A `Server` is one port of the Gateway (listeners sharing a port are merged; they differ
  by hostname). A request is matched to the `VirtualHost` whose hostname matches its Host
  most specifically (exact, then the longest wildcard suffix `*.example.com`, which matches
  one or more labels but not `example.com` itself, then None = any host); no match: 404.
- Within a virtual host, `rules` are already in precedence order (see controller.py): the
  first whose `match` matches the request wins; none matches: 404.
- A rule's request goes through its filters, then to one backend chosen by weight (weight 0
  never; all weights 0, or no backends and no redirect: 500). A backend with `error` set
  (an invalid backendRef) answers that status for its share of requests; one with no
  servers (no ready endpoints) answers 503.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PathType = Literal["Exact", "PathPrefix", "RegularExpression"]
MatchType = Literal["Exact", "RegularExpression"]
PathModifierType = Literal["ReplaceFullPath", "ReplacePrefixMatch"]


@dataclass(frozen=True)
class Match:
    """One HTTPRouteMatch; every part present must match (AND)."""

    path_type: PathType = "PathPrefix"
    path: str = "/"
    method: str | None = None
    headers: tuple[tuple[MatchType, str, str], ...] = ()  # (type, name, value); names as written
    query: tuple[tuple[MatchType, str, str], ...] = ()  # (type, name, value)


@dataclass(frozen=True)
class HeaderModifier:
    """HTTPHeaderFilter: set replaces (or adds), add appends (a second value joined with
    ','), remove drops; header names are case-insensitive."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathModifier:
    type: PathModifierType
    value: str  # replaceFullPath or replacePrefixMatch


@dataclass(frozen=True)
class Redirect:
    """HTTPRequestRedirectFilter: None keeps the request's own value (the port: the
    scheme's well-known port is left out of Location, as the spec asks)."""

    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    path: PathModifier | None = None
    status_code: int = 302


@dataclass(frozen=True)
class Rewrite:
    """HTTPURLRewriteFilter."""

    hostname: str | None = None
    path: PathModifier | None = None


@dataclass(frozen=True)
class Backend:
    """One backendRef (or a mirror's): `upstream` is a name unique in the GatewayConfig
    (the same Service port used twice shares one)."""

    upstream: str
    weight: int = 1
    servers: tuple[str, ...] = ()  # "10.244.1.5:8080", "[fd00:10:244:1::5]:8080"
    error: int | None = None  # 500 for an invalid backendRef (not found, not permitted, ...)
    request_headers: HeaderModifier | None = None  # the backendRef's own filters
    response_headers: HeaderModifier | None = None
    ref: str = ""  # "Service ns/name:port" as written, for messages


@dataclass(frozen=True)
class Mirror:
    backend: Backend
    percent: int = 100


@dataclass(frozen=True)
class Rule:
    """One match of one HTTPRoute rule (a rule with n matches gives n Rules; with none,
    one Rule matching every request, PathPrefix /)."""

    route: str  # "ns/name" of the HTTPRoute
    index: int  # the rule's index in spec.rules
    match: Match
    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    mirrors: tuple[Mirror, ...] = ()
    backends: tuple[Backend, ...] = ()
    error: int | None = None  # the whole rule answers this (e.g. 500: unsupported filter)


@dataclass(frozen=True)
class VirtualHost:
    hostname: str | None  # "foo.example.com", "*.example.com", or None (any host)
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Certificate:
    """A certificate a TLS listener presents for `hostnames` (SNI); files are named in
    GatewayConfig.files."""

    hostnames: tuple[str, ...]  # the listener's hostname, or () for the port's default
    cert: str
    key: str


@dataclass(frozen=True)
class Server:
    port: int
    protocol: Literal["HTTP", "HTTPS"]
    hosts: tuple[VirtualHost, ...]
    certificates: tuple[Certificate, ...] = ()  # HTTPS: by SNI; the first is the default


@dataclass
class GatewayConfig:
    gateway: str  # "ns/name"
    servers: tuple[Server, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)  # certificates and keys by name
