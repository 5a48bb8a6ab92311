"""Gateway API controller decisions (netlab.gateway.controller), pure: class and Gateway
serving, listener and route status reasons, hostname intersection, rule precedence,
ReferenceGrants, weights, certificates, and the data plane of conformance cases checked by
routing requests through it as dataplane.py defines (no root, no kernel)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from netlab.gateway import api
from netlab.gateway import controller as ctl
from netlab.gateway import dataplane as dp
from netlab.model import Secret
from netlab.plan import Endpoint, ServicePlan, ServicePortPlan

INFRA = "gateway-conformance-infra"
CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def service(key: str, *ips: str, port: int = 8080, target: int = 3000,
            families: tuple[str, ...] = ("IPv4",)) -> ServicePlan:
    ns, name = key.split("/")
    v4 = tuple(Endpoint(f"{ns}/{name}-{i}", ip, "node-1", target)
               for i, ip in enumerate(ips) if ":" not in ip)
    v6 = tuple(Endpoint(f"{ns}/{name}-{i}", ip, "node-1", target)
               for i, ip in enumerate(ips) if ":" in ip)
    return ServicePlan(ns, name, "ClusterIP", "10.96.0.10",
                       (ServicePortPlan("http", "TCP", port, target, None, v4, (), v6),),
                       ip_families=families)


INFRA_SERVICES = {s.key: s for s in (
    service(f"{INFRA}/infra-backend-v1", "10.244.1.1"),
    service(f"{INFRA}/infra-backend-v2", "10.244.1.2"),
    service(f"{INFRA}/infra-backend-v3", "10.244.1.3"),
)}


def objects(text: str) -> list[api.Object]:
    return [api.parse(d, "t.yaml", None, []) for d in yaml.safe_load_all(text) if d]


def reconcile(text: str, *, services: dict[str, ServicePlan] | None = None,
              namespaces: dict[str, dict[str, str]] | None = None,
              secrets: Iterable[Secret] = (), addresses: dict[str, tuple[str, ...]] | None = None,
              families: tuple[str, ...] | None = None) -> ctl.Reconciled:
    objs = objects(text)
    gws = [o for o in objs if isinstance(o, api.Gateway)]
    return ctl.reconcile(
        [o for o in objs if isinstance(o, api.GatewayClass)], gws,
        [o for o in objs if isinstance(o, api.HTTPRoute)],
        [o for o in objs if isinstance(o, api.ReferenceGrant)],
        services=INFRA_SERVICES if services is None else services,
        namespaces=namespaces or {},
        secrets={f"{s.namespace}/{s.name}": s for s in secrets},
        addresses=({g.key: ("172.18.255.1",) for g in gws} if addresses is None
                   else addresses), families=families)


def condition(conds: list[ctl.Condition], kind: str) -> tuple[bool, str]:
    c = next(c for c in conds if c.type == kind)
    return c.status, c.reason


def parent(r: ctl.Reconciled, route: str, i: int = 0) -> ctl.ParentResult:
    return r.routes[route].parents[i]


def listener(r: ctl.Reconciled, gw: str, name: str) -> ctl.ListenerResult:
    return next(lr for lr in r.gateways[gw].listeners if lr.listener.name == name)


# --- a request router: dataplane.py's semantics, to check conformance expectations ----------


def _vhost(server: dp.Server, host: str) -> dp.VirtualHost | None:
    host = host.split(":")[0]
    best = None
    for vh in server.hosts:
        if ctl.host_matches(vh.hostname, host) and (
                best is None or ctl.specificity(vh.hostname) > ctl.specificity(best.hostname)):
            best = vh
    return best


def _path_ok(m: dp.Match, path: str) -> bool:
    path = path.split("?")[0]
    if m.path_type == "Exact":
        return path == m.path
    if m.path_type == "RegularExpression":
        return re.match(m.path, path) is not None
    prefix = m.path.rstrip("/")
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def _matches(m: dp.Match, method: str, path: str, headers: dict[str, str]) -> bool:
    query = dict(p.split("=", 1) for p in path.partition("?")[2].split("&") if "=" in p)
    lower = {k.lower(): v for k, v in headers.items()}
    return (_path_ok(m, path) and (m.method is None or m.method == method)
            and all(lower.get(n.lower()) == v if t == "Exact"
                    else re.match(v, lower.get(n.lower(), "")) for t, n, v in m.headers)
            and all(query.get(n) == v for _, n, v in m.query))


def request(cfg: dp.GatewayConfig, host: str, path: str, port: int = 80, method: str = "GET",
            headers: dict[str, str] | None = None) -> str | int:
    """Where a request goes: the backend's upstream ("ns-name-port"), or a status code."""
    server = next(s for s in cfg.servers if s.port == port)
    vh = _vhost(server, host)
    if vh is None:
        return 404
    rule = next((r for r in vh.rules if _matches(r.match, method, path, headers or {})), None)
    if rule is None:
        return 404
    if rule.error:
        return rule.error
    if rule.redirect:
        return rule.redirect.status_code
    live = [b for b in rule.backends if b.weight > 0]
    if not live:
        return 500
    b = live[0]
    return b.error or b.upstream


# --- GatewayClass and Gateway serving --------------------------------------------------------

GW = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: {ns}}}
spec:
  gatewayClassName: {cls}
  listeners:
  - name: http
    port: 80
    protocol: HTTP
"""


def test_builtin_class_serves_and_has_no_status_object():
    r = reconcile(GW.format(ns="a", cls="netlab"))
    assert r.classes["netlab"].served and r.classes["netlab"].builtin
    assert r.gateways["a/gw"].served
    status = r.to_status()
    assert "GatewayClass netlab" not in status
    assert status["Gateway a/gw"]["conditions"][0] == {
        "type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
        "observedGeneration": 1}
    assert status["Gateway a/gw"]["addresses"] == [{"type": "IPAddress",
                                                    "value": "172.18.255.1"}]


def test_user_class_of_ours_is_accepted_and_others_are_left_alone():
    r = reconcile("""\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: mine, generation: 2}
spec: {controllerName: netlab.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: theirs}
spec: {controllerName: example.com/other}
---
""" + GW.format(ns="a", cls="mine") + "---\n" + GW.format(ns="b", cls="theirs"))
    status = r.to_status()
    assert status["GatewayClass mine"]["conditions"][0]["reason"] == "Accepted"
    assert status["GatewayClass mine"]["conditions"][0]["observedGeneration"] == 2
    assert "GatewayClass theirs" not in status and "Gateway b/gw" not in status
    assert not r.gateways["b/gw"].served
    assert "example.com/other" in (r.gateways["b/gw"].why or "")
    assert any(w.startswith("GatewayClass theirs:") for w in r.warnings)
    assert any(w.startswith("Gateway b/gw:") and "not served" in w for w in r.warnings)


def test_user_class_named_netlab_overrides_the_builtin():
    r = reconcile("""\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: netlab}
spec: {controllerName: example.com/other}
---
""" + GW.format(ns="a", cls="netlab"))
    assert not r.gateways["a/gw"].served
    assert "a/gw" not in r.configs


def test_missing_class_is_not_served_with_advice():
    r = reconcile(GW.format(ns="a", cls="nope"))
    g = r.gateways["a/gw"]
    assert not g.served and "no GatewayClass" in (g.why or "")
    assert any("gatewayClassName: netlab" in w for w in r.warnings)
    assert r.to_status() == {}


def test_gateway_without_address_is_accepted_not_programmed():
    r = reconcile(GW.format(ns="a", cls="netlab"), addresses={})
    g = r.gateways["a/gw"]
    assert condition(g.conditions, "Accepted") == (True, "Accepted")
    assert condition(g.conditions, "Programmed") == (False, "AddressNotAssigned")
    assert "a/gw" in r.configs  # the proxy is configured before the address comes


def test_spec_addresses_is_unsupported():
    r = reconcile(GW.format(ns="a", cls="netlab") + "  addresses: [{value: 10.1.1.1}]\n")
    g = r.gateways["a/gw"]
    assert condition(g.conditions, "Accepted") == (False, "UnsupportedAddress")
    assert condition(g.conditions, "Programmed") == (False, "Invalid")
    assert "a/gw" not in r.configs
    assert any("remove spec.addresses" in w for w in r.warnings)


LISTENERS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: a}}
spec:
  gatewayClassName: netlab
  listeners:
{listeners}
"""


def gw_with(*listeners: str) -> str:
    return LISTENERS.format(listeners="\n".join("  - " + li for li in listeners))


def test_unsupported_protocol_listeners():
    r = reconcile(gw_with("{name: tcp, port: 9000, protocol: TCP}"))
    g = r.gateways["a/gw"]
    lr = listener(r, "a/gw", "tcp")
    assert condition(lr.conditions, "Accepted") == (False, "UnsupportedProtocol")
    assert lr.supported_kinds == []
    assert condition(g.conditions, "Accepted") == (False, "ListenersNotValid")
    r = reconcile(gw_with("{name: tcp, port: 9000, protocol: TCP}",
                          "{name: http, port: 80, protocol: HTTP}"))
    g = r.gateways["a/gw"]
    assert condition(g.conditions, "Accepted") == (True, "ListenersNotValid")
    assert condition(listener(r, "a/gw", "http").conditions, "Accepted") == (True, "Accepted")
    assert [s.port for s in r.configs["a/gw"].servers] == [80]


def test_invalid_route_kinds():
    r = reconcile(gw_with("{name: http, port: 80, protocol: HTTP, allowedRoutes: "
                          "{kinds: [{kind: InvalidRoute}, {kind: HTTPRoute}]}}",
                          "{name: only, port: 81, protocol: HTTP, allowedRoutes: "
                          "{kinds: [{kind: InvalidRoute}]}}"))
    both, only = listener(r, "a/gw", "http"), listener(r, "a/gw", "only")
    assert condition(both.conditions, "ResolvedRefs") == (False, "InvalidRouteKinds")
    assert both.supported_kinds == [(api.GROUP, "HTTPRoute")]
    assert condition(only.conditions, "ResolvedRefs") == (False, "InvalidRouteKinds")
    assert only.supported_kinds == []
    assert only.to_json()["supportedKinds"] == []


def test_http_and_https_on_one_port_conflict():
    r = reconcile(gw_with("{name: a, port: 80, protocol: HTTP}",
                          "{name: b, port: 80, protocol: HTTPS, tls: "
                          "{certificateRefs: [{name: tls}]}}",
                          "{name: c, port: 8080, protocol: HTTP}"),
                  secrets=[Secret("a", "tls", "kubernetes.io/tls",
                                  {"tls.crt": CERT, "tls.key": KEY})])
    for name in ("a", "b"):
        lr = listener(r, "a/gw", name)
        assert condition(lr.conditions, "Conflicted") == (True, "ProtocolConflict")
        assert condition(lr.conditions, "Accepted") == (False, "PortUnavailable")
        assert condition(lr.conditions, "Programmed") == (False, "Invalid")
    c = listener(r, "a/gw", "c")
    assert condition(c.conditions, "Conflicted") == (False, "NoConflicts")
    assert condition(c.conditions, "Programmed") == (True, "Programmed")
    assert [s.port for s in r.configs["a/gw"].servers] == [8080]


# --- HTTPS certificates ----------------------------------------------------------------------

HTTPS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: {INFRA}}}
spec:
  gatewayClassName: netlab
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: secure.example.com
    tls:
      certificateRefs: [{ref}]
  - name: fallback
    port: 443
    protocol: HTTPS
    tls:
      certificateRefs: [{{name: default-cert}}]
"""
GOOD = {"tls.crt": CERT, "tls.key": KEY}


def https(ref: str, *extra: str) -> str:
    return "---\n".join([HTTPS.format(INFRA=INFRA, ref=ref), *extra])


def secrets(*more: Secret) -> list[Secret]:
    return [Secret(INFRA, "default-cert", "kubernetes.io/tls", GOOD), *more]


def test_https_listener_certificates_become_files_and_sni_certificates():
    r = reconcile(https("{name: cert}"), secrets=secrets(
        Secret(INFRA, "cert", "kubernetes.io/tls", {"tls.crt": CERT + b"#", "tls.key": KEY})))
    cfg = r.configs[f"{INFRA}/gw"]
    (server,) = cfg.servers
    assert server.protocol == "HTTPS" and server.port == 443
    default, secure = server.certificates
    assert default.hostnames == ()  # the catch-all listener's certificate is the default
    assert secure.hostnames == ("secure.example.com",)
    assert cfg.files[secure.cert] == CERT + b"#" and cfg.files[secure.key] == KEY
    assert cfg.files[default.cert] == CERT
    assert condition(listener(r, f"{INFRA}/gw", "https").conditions, "ResolvedRefs") == \
        (True, "ResolvedRefs")


@pytest.mark.parametrize(("ref", "extra", "secret", "reason"), [
    ("{name: missing}", (), None, "InvalidCertificateRef"),
    ("{name: cert, group: wrong.group.company.io}", (), GOOD, "InvalidCertificateRef"),
    ("{name: cert, kind: WrongKind}", (), GOOD, "InvalidCertificateRef"),
    ("{name: cert}", (), {"tls.crt": b"Hello world\n", "tls.key": b"Hello world\n"},
     "InvalidCertificateRef"),
    ("{name: cert}", (), {"tls.crt": CERT}, "InvalidCertificateRef"),
    ("{name: cert, namespace: web}", (), GOOD, "RefNotPermitted"),
    # a grant for another kind of referrer, or in the wrong namespace, does not permit it
    ("{name: cert, namespace: web}", ("""\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: web}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: INFRA}]
  to: [{group: "", kind: Secret}]
""".replace("INFRA", INFRA),), GOOD, "RefNotPermitted"),
    ("{name: cert, namespace: web}", ("""\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: INFRA}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: INFRA}]
  to: [{group: "", kind: Secret}]
""".replace("INFRA", INFRA),), GOOD, "RefNotPermitted"),
    ("{name: cert, namespace: web}", ("""\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: web}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: INFRA}]
  to: [{group: "", kind: Secret, name: other}]
""".replace("INFRA", INFRA),), GOOD, "RefNotPermitted"),
])
def test_invalid_certificate_refs(ref: str, extra: tuple[str, ...], secret: dict | None,
                                  reason: str):
    ns = "web" if "namespace: web" in ref else INFRA
    more = [Secret(ns, "cert", "kubernetes.io/tls", secret)] if secret is not None else []
    r = reconcile(https(ref, *extra), secrets=secrets(*more))
    lr = listener(r, f"{INFRA}/gw", "https")
    assert condition(lr.conditions, "ResolvedRefs") == (False, reason)
    assert condition(lr.conditions, "Programmed") == (False, "Invalid")
    assert condition(lr.conditions, "Accepted") == (True, "Accepted")
    g = r.gateways[f"{INFRA}/gw"]
    assert condition(g.conditions, "Accepted") == (True, "ListenersNotValid")
    (server,) = r.configs[f"{INFRA}/gw"].servers
    assert [c.hostnames for c in server.certificates] == [()]  # only the valid listener
    assert [v.hostname for v in server.hosts] == [None]
    assert any(f"listener https: {reason}" in w for w in r.warnings)


def test_cross_namespace_certificate_with_grant():
    grant = """\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: web}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: INFRA}]
  to: [{group: "", kind: Secret, name: cert}]
""".replace("INFRA", INFRA)
    r = reconcile(https("{name: cert, namespace: web}", grant),
                  secrets=secrets(Secret("web", "cert", "kubernetes.io/tls", GOOD)))
    lr = listener(r, f"{INFRA}/gw", "https")
    assert condition(lr.conditions, "ResolvedRefs") == (True, "ResolvedRefs")
    assert lr.certificate == ("secret-web-cert.crt", "secret-web-cert.key")


def test_https_without_tls_has_no_certificate():
    r = reconcile(gw_with("{name: s, port: 443, protocol: HTTPS}"))
    lr = listener(r, "a/gw", "s")
    assert condition(lr.conditions, "ResolvedRefs") == (False, "InvalidCertificateRef")
    assert r.configs["a/gw"].servers == ()


# --- hostnames ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("listener_h", "route_h", "expected"), [
    (None, "foo.com", "foo.com"),
    (None, "*.foo.com", "*.foo.com"),
    ("foo.com", "foo.com", "foo.com"),
    ("foo.com", "bar.com", False),
    ("very.specific.com", "*.specific.com", "very.specific.com"),
    ("*.wildcard.io", "foo.wildcard.io", "foo.wildcard.io"),
    ("*.wildcard.io", "foo.bar.wildcard.io", "foo.bar.wildcard.io"),
    ("*.wildcard.io", "wildcard.io", False),  # a wildcard never matches its apex
    ("*.example.com", "*.foo.example.com", "*.foo.example.com"),
    ("*.foo.example.com", "*.example.com", "*.foo.example.com"),
    ("abc.foo.example.com", "*.example.com", "abc.foo.example.com"),
    ("*.anotherwildcard.io", "*.anotherwildcard.io", "*.anotherwildcard.io"),
    ("*.example.com", "*.example.net", False),
    ("*.example.com", "example.com", False),
    ("*.bar.com", "foo.com", False),
])
def test_hostname_intersection(listener_h: str | None, route_h: str, expected: Any):
    assert ctl.intersect(listener_h, route_h) == expected


def test_route_hostnames_through_a_listener():
    assert ctl.route_hostnames(None, ()) == (None,)
    assert ctl.route_hostnames("*.a.com", ()) == ("*.a.com",)
    assert ctl.route_hostnames("*.a.com", ("x.a.com", "b.com", "*.a.com")) == ("x.a.com",
                                                                               "*.a.com")
    assert ctl.route_hostnames("x.a.com", ("b.com",)) == ()


def conformance(name: str) -> str:
    return CONFORMANCE[name].replace('"{GATEWAY_CLASS_NAME}"', "netlab")


CONFORMANCE = {
    # conformance/tests/httproute-hostname-intersection.yaml (comments left out)
    "hostname-intersection": """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: httproute-hostname-intersection
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  listeners:
  - {name: listener-1, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}},
     hostname: very.specific.com}
  - {name: listener-2, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}},
     hostname: "*.wildcard.io"}
  - {name: listener-3, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}},
     hostname: "*.anotherwildcard.io"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: specific-host-matches-listener-specific-host,
           namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: httproute-hostname-intersection, namespace: gateway-conformance-infra}]
  hostnames: [non.matching.com, "*.nonmatchingwildcard.io", very.specific.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /s1}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: specific-host-matches-listener-wildcard-host,
           namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: httproute-hostname-intersection, namespace: gateway-conformance-infra}]
  hostnames: [non.matching.com, wildcard.io, foo.wildcard.io, bar.wildcard.io,
              foo.bar.wildcard.io]
  rules:
  - matches: [{path: {type: PathPrefix, value: /s2}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wildcard-host-matches-listener-specific-host,
           namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: httproute-hostname-intersection, namespace: gateway-conformance-infra}]
  hostnames: [non.matching.com, "*.specific.com"]
  rules:
  - matches: [{path: {type: PathPrefix, value: /s3}}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wildcard-host-matches-listener-wildcard-host,
           namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: httproute-hostname-intersection, namespace: gateway-conformance-infra}]
  hostnames: ["*.anotherwildcard.io"]
  rules:
  - matches: [{path: {type: PathPrefix, value: /s4}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: no-intersecting-hosts, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: httproute-hostname-intersection, namespace: gateway-conformance-infra}]
  hostnames: [specific.but.wrong.com, wildcard.io]
  rules:
  - matches: [{path: {type: PathPrefix, value: /s5}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
""",
    # conformance/tests/httproute-listener-hostname-matching.yaml
    "listener-hostname-matching": """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: httproute-listener-hostname-matching, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  listeners:
  - {name: listener-1, port: 80, protocol: HTTP, hostname: bar.com}
  - {name: listener-2, port: 80, protocol: HTTP, hostname: foo.bar.com}
  - {name: listener-3, port: 80, protocol: HTTP, hostname: "*.bar.com"}
  - {name: listener-4, port: 80, protocol: HTTP, hostname: "*.foo.com"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend-v1, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: httproute-listener-hostname-matching, sectionName: listener-1}]
  rules: [{backendRefs: [{name: infra-backend-v1, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend-v2, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: httproute-listener-hostname-matching, sectionName: listener-2}]
  rules: [{backendRefs: [{name: infra-backend-v2, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend-v3, namespace: gateway-conformance-infra}
spec:
  parentRefs:
  - {name: httproute-listener-hostname-matching, sectionName: listener-3}
  - {name: httproute-listener-hostname-matching, sectionName: listener-4}
  rules: [{backendRefs: [{name: infra-backend-v3, port: 8080}]}]
""",
    # conformance/tests/gateway-http-listener-isolation-with-hostname-intersection.yaml
    "listener-isolation": """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: iso, namespace: gateway-conformance-infra}
spec:
  gatewayClassName: "{GATEWAY_CLASS_NAME}"
  listeners:
  - {name: empty-hostname, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - {name: wildcard-example-com, port: 80, protocol: HTTP, hostname: "*.example.com",
     allowedRoutes: {namespaces: {from: All}}}
  - {name: wildcard-foo-example-com, port: 80, protocol: HTTP, hostname: "*.foo.example.com",
     allowedRoutes: {namespaces: {from: All}}}
  - {name: abc-foo-example-com, port: 80, protocol: HTTP, hostname: abc.foo.example.com,
     allowedRoutes: {namespaces: {from: All}}}
""" + "".join(f"""\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: attaches-to-{s}, namespace: gateway-conformance-infra}}
spec:
  parentRefs: [{{name: iso, sectionName: {s}}}]
  hostnames: [bar.com, "*.example.com", "*.foo.example.com", abc.foo.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /{s}}}}}]
    backendRefs: [{{name: infra-backend-v1, port: 8080}}]
""" for s in ("empty-hostname", "wildcard-example-com", "wildcard-foo-example-com",
              "abc-foo-example-com")),
}
V1, V2, V3 = (f"{INFRA}-infra-backend-v{i}-8080" for i in (1, 2, 3))


def test_conformance_hostname_intersection():
    r = reconcile(conformance("hostname-intersection"))
    gw = f"{INFRA}/httproute-hostname-intersection"
    for name in ("specific-host-matches-listener-specific-host",
                 "specific-host-matches-listener-wildcard-host",
                 "wildcard-host-matches-listener-specific-host",
                 "wildcard-host-matches-listener-wildcard-host"):
        p = parent(r, f"{INFRA}/{name}")
        assert condition(p.conditions, "Accepted") == (True, "Accepted"), name
        assert condition(p.conditions, "ResolvedRefs") == (True, "ResolvedRefs"), name
    p = parent(r, f"{INFRA}/no-intersecting-hosts")
    assert condition(p.conditions, "Accepted") == (False, "NoMatchingListenerHostname")
    assert [listener(r, gw, f"listener-{i}").attached_routes for i in (1, 2, 3)] == [2, 1, 1]
    cfg = r.configs[gw]
    cases = [("very.specific.com", "/s1", V1), ("very.specific.com:1234", "/s1", V1),
             ("non.matching.com", "/s1", 404), ("foo.nonmatchingwildcard.io", "/s1", 404),
             ("foo.wildcard.io", "/s1", 404), ("very.specific.com", "/non-matching-prefix", 404),
             ("foo.wildcard.io", "/s2", V2), ("bar.wildcard.io", "/s2", V2),
             ("foo.bar.wildcard.io", "/s2", V2), ("non.matching.com", "/s2", 404),
             ("wildcard.io", "/s2", 404), ("very.specific.com", "/s2", 404),
             ("very.specific.com", "/s3", V3), ("foo.specific.com", "/s3", 404),
             ("foo.wildcard.io", "/s3", 404),
             ("foo.anotherwildcard.io", "/s4", V1), ("foo.bar.anotherwildcard.io", "/s4", V1),
             ("anotherwildcard.io", "/s4", 404), ("foo.wildcard.io", "/s4", 404),
             ("very.specific.com", "/s4", 404),
             ("specific.but.wrong.com", "/s5", 404), ("wildcard.io", "/s5", 404)]
    got = [(h, p, request(cfg, h, p)) for h, p, _ in cases]
    assert got == cases


def test_conformance_listener_hostname_matching():
    r = reconcile(conformance("listener-hostname-matching"))
    cfg = r.configs[f"{INFRA}/httproute-listener-hostname-matching"]
    cases = [("bar.com", V1), ("foo.bar.com", V2), ("baz.bar.com", V3), ("boo.bar.com", V3),
             ("multiple.prefixes.bar.com", V3), ("multiple.prefixes.foo.com", V3),
             ("foo.com", 404), ("no.matching.host", 404)]
    assert [(h, request(cfg, h, "/")) for h, _ in cases] == cases
    assert len(r.routes[f"{INFRA}/backend-v3"].parents) == 2


def test_conformance_listener_isolation():
    r = reconcile(conformance("listener-isolation"))
    cfg = r.configs[f"{INFRA}/iso"]
    paths = ("empty-hostname", "wildcard-example-com", "wildcard-foo-example-com",
             "abc-foo-example-com")
    # each host reaches only the routes of the listener that owns it
    owner = {"bar.com": "empty-hostname", "bar.example.com": "wildcard-example-com",
             "bar.foo.example.com": "wildcard-foo-example-com",
             "abc.foo.example.com": "abc-foo-example-com"}
    for host, own in owner.items():
        for p in paths:
            expected = V1 if p == own else 404
            assert request(cfg, host, f"/{p}") == expected, (host, p)


def test_a_listener_hostname_without_routes_still_isolates():
    r = reconcile(gw_with("{name: any, port: 80, protocol: HTTP}",
                          "{name: foo, port: 80, protocol: HTTP, hostname: foo.com}") + """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: a}
spec:
  parentRefs: [{name: gw, sectionName: any}]
  rules: [{backendRefs: [{name: s, port: 8080}]}]
""", services={"a/s": service("a/s", "10.244.0.9")})
    cfg = r.configs["a/gw"]
    assert request(cfg, "other.com", "/") == "a-s-8080"
    assert request(cfg, "foo.com", "/") == 404
    assert [v.hostname for v in cfg.servers[0].hosts] == ["foo.com", None]


# --- route attachment reasons ------------------------------------------------------------------

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: {ns}}}
spec:
  parentRefs: [{parent}]
  rules: [{{backendRefs: [{{name: s, port: 8080}}]}}]
"""
SVC = {"a/s": service("a/s", "10.244.0.9"), "b/s": service("b/s", "10.244.0.8")}


def attach(listeners: tuple[str, ...], parent_ref: str, ns: str = "a",
           namespaces: dict[str, dict[str, str]] | None = None) -> ctl.Reconciled:
    text = gw_with(*listeners) + "---\n" + ROUTE.format(ns=ns, parent=parent_ref)
    return reconcile(text, services=SVC, namespaces=namespaces)


HTTP80 = "{name: http, port: 80, protocol: HTTP}"


@pytest.mark.parametrize(("listeners", "ref", "ns", "reason"), [
    ((HTTP80,), "{name: gw, sectionName: nope}", "a", "NoMatchingParent"),
    ((HTTP80,), "{name: gw, port: 81}", "a", "NoMatchingParent"),
    ((HTTP80, "{name: other, port: 81, protocol: HTTP}"),
     "{name: gw, sectionName: http, port: 81}", "a", "NoMatchingParent"),
    ((HTTP80,), "{name: gw, namespace: a}", "b", "NotAllowedByListeners"),
    (("{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector, "
      "selector: {matchLabels: {team: x}}}}}",), "{name: gw, namespace: a}", "b",
     "NotAllowedByListeners"),
    (("{name: http, port: 80, protocol: HTTP, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}",),
     "{name: gw}", "a", "NotAllowedByListeners"),
    (("{name: tcp, port: 80, protocol: TCP}", "{name: h, port: 81, protocol: HTTP}"),
     "{name: gw, sectionName: tcp}", "a", "NotAllowedByListeners"),
    (("{name: http, port: 80, protocol: HTTP, hostname: foo.com}",), "{name: gw}", "a",
     None),  # a route without hostnames takes the listener's
])
def test_route_attachment_reasons(listeners: tuple[str, ...], ref: str, ns: str,
                                  reason: str | None):
    r = attach(listeners, ref, ns, namespaces={"b": {"team": "y"}})
    p = parent(r, f"{ns}/r")
    if reason is None:
        assert condition(p.conditions, "Accepted") == (True, "Accepted")
        return
    assert condition(p.conditions, "Accepted") == (False, reason)
    assert all(lr.attached_routes == 0 for lr in r.gateways["a/gw"].listeners)
    assert any(w.startswith(f"HTTPRoute {ns}/r: parentRefs[0]") and reason in w
               for w in r.warnings)
    assert all(not v.rules for s in r.configs["a/gw"].servers for v in s.hosts)


def test_namespace_selector_and_all_allow_other_namespaces():
    sel = ("{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector, "
           "selector: {matchLabels: {team: x}}}}}")
    r = attach((sel,), "{name: gw, namespace: a}", "b", namespaces={"b": {"team": "x"}})
    assert parent(r, "b/r").accepted
    r = attach(("{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: "
                "{from: All}}}",), "{name: gw, namespace: a}", "b")
    assert parent(r, "b/r").accepted
    assert listener(r, "a/gw", "http").attached_routes == 1
    assert request(r.configs["a/gw"], "x", "/") == "b-s-8080"


def test_route_to_unaccepted_gateway_and_to_foreign_parents():
    r = reconcile(GW.format(ns="a", cls="netlab") + "  addresses: [{value: 10.1.1.1}]\n---\n"
                  + ROUTE.format(ns="a", parent="{name: gw}"), services=SVC)
    assert condition(parent(r, "a/r").conditions, "Accepted") == (False, "NoMatchingParent")
    # parents that are not our Gateways get no status entry, only a warning
    r = reconcile(GW.format(ns="a", cls="theirs") + "---\n"
                  + ROUTE.format(ns="a", parent="{name: gw}") + "---\n"
                  + ROUTE.format(ns="b", parent="{name: s, kind: Service, group: ''}")
                  + "---\n" + ROUTE.format(ns="c", parent="{name: missing}"), services=SVC)
    assert r.routes["a/r"].parents == [] and r.routes["b/r"].parents == []
    assert "HTTPRoute a/r" not in r.to_status()
    assert any("Service s is not a Gateway" in w for w in r.warnings)
    assert any("Gateway c/missing not found" in w for w in r.warnings)


# --- backendRefs and ReferenceGrants ---------------------------------------------------------

ROUTE_TO = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: a}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs:
    - {ref}
    - {{name: s, port: 8080, weight: 3}}
"""
GRANT = """\
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: g, namespace: {ns}}}
spec:
  from: [{{group: gateway.networking.k8s.io, kind: {kind}, namespace: a}}]
  to: [{{group: "", kind: Service{name}}}]
"""


def backends(ref: str, *extra: str) -> tuple[ctl.Reconciled, tuple[dp.Backend, ...]]:
    r = reconcile(gw_with(HTTP80) + "---\n" + ROUTE_TO.format(ref=ref) + "".join(extra),
                  services=SVC)
    (rule,) = r.configs["a/gw"].servers[0].hosts[0].rules
    return r, rule.backends


@pytest.mark.parametrize(("ref", "grant", "reason"), [
    ("{name: nope, port: 8080, weight: 2}", "", "BackendNotFound"),
    ("{name: s, port: 9999, weight: 2}", "", "BackendNotFound"),
    ("{name: b, kind: Bucket, group: example.com, weight: 2}", "", "InvalidKind"),
    ("{name: s, port: 8080, kind: Service, group: example.com, weight: 2}", "", "InvalidKind"),
    ("{name: s, namespace: b, port: 8080, weight: 2}", "", "RefNotPermitted"),
    ("{name: s, namespace: b, port: 8080, weight: 2}",
     GRANT.format(ns="b", kind="Gateway", name=""), "RefNotPermitted"),
    ("{name: s, namespace: b, port: 8080, weight: 2}",
     GRANT.format(ns="a", kind="HTTPRoute", name=""), "RefNotPermitted"),
    ("{name: s, namespace: b, port: 8080, weight: 2}",
     GRANT.format(ns="b", kind="HTTPRoute", name=", name: other"), "RefNotPermitted"),
])
def test_invalid_backend_refs_answer_500_for_their_share(ref: str, grant: str, reason: str):
    r, (bad, good) = backends(ref, grant)
    p = parent(r, "a/r")
    assert condition(p.conditions, "Accepted") == (True, "Accepted")
    assert condition(p.conditions, "ResolvedRefs") == (False, reason)
    assert bad.error == 500 and bad.weight == 2 and bad.servers == ()
    assert good.error is None and good.weight == 3 and good.servers == ("10.244.0.9:3000",)
    assert any(reason in w and "500" in w for w in r.warnings)


@pytest.mark.parametrize("name", ["", ", name: s"])
def test_cross_namespace_backend_with_grant(name: str):
    r, (other, own) = backends("{name: s, namespace: b, port: 8080, weight: 2}",
                               GRANT.format(ns="b", kind="HTTPRoute", name=name))
    assert condition(parent(r, "a/r").conditions, "ResolvedRefs") == (True, "ResolvedRefs")
    assert other.servers == ("10.244.0.8:3000",) and other.error is None
    assert other.upstream != own.upstream
    assert other.ref == "Service b/s:8080"


def test_upstreams_are_shared_for_one_service_port_and_weights_kept():
    r = reconcile(gw_with(HTTP80) + """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: a}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {value: /one}}]
    backendRefs: [{name: s, port: 8080, weight: 0}, {name: t, port: 8080, weight: 1000000}]
  - matches: [{path: {value: /two}}]
    backendRefs: [{name: s, port: 8080}]
""", services={**SVC, "a/t": service("a/t", "10.244.0.7", "10.244.0.6")})
    one, two = r.configs["a/gw"].servers[0].hosts[0].rules
    assert [(b.upstream, b.weight) for b in one.backends] == [("a-s-8080", 0),
                                                              ("a-t-8080", 1000000)]
    assert one.backends[1].servers == ("10.244.0.6:3000", "10.244.0.7:3000")
    assert two.backends[0].upstream == "a-s-8080" and two.backends[0].weight == 1


def test_endpoints_of_the_primary_family_and_ipv6_brackets():
    svc = service("a/s", "10.244.0.9", "fd00:10:244::9", families=("IPv6", "IPv4"))
    r = reconcile(gw_with(HTTP80) + "---\n" + ROUTE.format(ns="a", parent="{name: gw}"),
                  services={"a/s": svc})
    (rule,) = r.configs["a/gw"].servers[0].hosts[0].rules
    assert rule.backends[0].servers == ("[fd00:10:244::9]:3000",)
    r = reconcile(gw_with(HTTP80) + "---\n" + ROUTE.format(ns="a", parent="{name: gw}"),
                  services={"a/s": svc}, families=("IPv4",))
    (rule,) = r.configs["a/gw"].servers[0].hosts[0].rules
    assert rule.backends[0].servers == ("10.244.0.9:3000",)


def test_service_without_ready_endpoints_is_resolved_but_warned():
    r = reconcile(gw_with(HTTP80) + "---\n" + ROUTE.format(ns="a", parent="{name: gw}"),
                  services={"a/s": service("a/s")})
    assert condition(parent(r, "a/r").conditions, "ResolvedRefs") == (True, "ResolvedRefs")
    (rule,) = r.configs["a/gw"].servers[0].hosts[0].rules
    assert rule.backends[0].servers == () and rule.backends[0].error is None
    assert any("no ready endpoints" in w and "503" in w for w in r.warnings)


# --- filters ------------------------------------------------------------------------------------


def test_filters_become_rule_fields():
    r = reconcile(gw_with(HTTP80) + """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: a}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {value: /a}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X, value: "1"}]}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {remove: [Server]}}
    - {type: URLRewrite, urlRewrite: {hostname: b.example}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: t, port: 8080}, percent: 50}}
    backendRefs:
    - name: s
      port: 8080
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: B,
                 value: "2"}]}}]
  - matches: [{path: {value: /r}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 308}}]
  - matches: [{path: {value: /none}}]
""", services={**SVC, "a/t": service("a/t", "10.244.0.7")})
    rules = {r_.match.path: r_ for r_ in r.configs["a/gw"].servers[0].hosts[0].rules}
    a = rules["/a"]
    assert a.request_headers == dp.HeaderModifier(set=(("X", "1"),))
    assert a.response_headers == dp.HeaderModifier(remove=("Server",))
    assert a.rewrite == dp.Rewrite("b.example")
    assert a.mirrors[0].percent == 50 and a.mirrors[0].backend.servers == ("10.244.0.7:3000",)
    assert a.backends[0].request_headers == dp.HeaderModifier(add=(("B", "2"),))
    assert rules["/r"].redirect == dp.Redirect("https", status_code=308)
    assert request(r.configs["a/gw"], "x", "/r") == 308
    assert rules["/none"].backends == () and request(r.configs["a/gw"], "x", "/none") == 500


def test_unsupported_filters_answer_500_and_mark_the_route():
    r = reconcile(gw_with(HTTP80) + """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: a}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {value: /ext}}]
    filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: Auth, name: x}}]
    backendRefs: [{name: s, port: 8080}]
  - matches: [{path: {value: /ok}}]
    backendRefs: [{name: s, port: 8080}]
""", services=SVC)
    p = parent(r, "a/r")
    assert condition(p.conditions, "Accepted") == (True, "Accepted")
    assert condition(p.conditions, "PartiallyInvalid") == (True, "UnsupportedValue")
    cfg = r.configs["a/gw"]
    assert request(cfg, "x", "/ext") == 500 and request(cfg, "x", "/ok") == "a-s-8080"
    # with no rule left, the route is not accepted
    r = reconcile(gw_with(HTTP80) + """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: a}
spec:
  parentRefs: [{name: gw}]
  rules:
  - filters: [{type: CORS, cors: {allowOrigins: ["*"]}}]
""", services=SVC)
    assert condition(parent(r, "a/r").conditions, "Accepted") == (False, "UnsupportedValue")
    assert listener(r, "a/gw", "http").attached_routes == 0


# --- precedence ---------------------------------------------------------------------------------


def test_conformance_path_match_order():
    rules = [("Exact", "/match", "v1"), ("Exact", "/match/exact", "v2"),
             ("Exact", "/match/exact/one", "v3"), ("PathPrefix", "/match/", "v3"),
             ("PathPrefix", "/match/prefix/", "v1"), ("PathPrefix", "/match/prefix/one", "v2")]
    text = gw_with(HTTP80).replace("namespace: a", f"namespace: {INFRA}") + """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: path-matching-order, namespace: INFRA}
spec:
  parentRefs: [{name: gw}]
  rules:
""".replace("INFRA", INFRA) + "".join(f"  - matches: [{{path: {{type: {t}, value: {p}}}}}]\n"
                      f"    backendRefs: [{{name: infra-backend-{b}, port: 8080}}]\n"
                      for t, p, b in rules)
    cfg = reconcile(text).configs[f"{INFRA}/gw"]
    cases = [("/match/exact/one", V3), ("/match/exact", V2), ("/match", V1),
             ("/match/prefix/one/any", V2), ("/match/prefix/any", V1), ("/match/any", V3)]
    assert [(p, request(cfg, "x", p)) for p, _ in cases] == cases


def test_precedence_order_across_routes():
    def route(name: str, created: str | None, *matches: str) -> str:
        ts = f", creationTimestamp: '{created}'" if created else ""
        return (f"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                f"metadata: {{name: {name}, namespace: a{ts}}}\nspec:\n"
                f"  parentRefs: [{{name: gw}}]\n  rules:\n"
                + "".join(f"  - matches: [{m}]\n    backendRefs: [{{name: s, port: 8080}}]\n"
                          for m in matches))

    text = gw_with(HTTP80) + route(
        "young", "2024-06-01T00:00:00Z",
        "{path: {value: /a}}",
        "{path: {value: /a}, method: GET}",
        "{path: {value: /a}, headers: [{name: h1, value: x}, {name: h2, value: x}]}",
        "{path: {value: /a}, headers: [{name: h1, value: x}]}",
        "{path: {value: /a}, queryParams: [{name: q, value: x}]}",
        "{path: {type: RegularExpression, value: '^/r.*'}}",
        "{path: {type: Exact, value: /a}}",
        "{path: {value: /a/longer}}") + route(
        "old", "2024-01-01T00:00:00Z", "{path: {value: /a}}") + route(
        "b-none", None, "{path: {value: /a}}") + route(
        "a-none", None, "{path: {value: /a}}")
    r = reconcile(text, services=SVC)
    order = [(x.route, x.index, x.match.path_type, x.match.path)
             for x in r.configs["a/gw"].servers[0].hosts[0].rules]
    assert order == [
        ("a/young", 6, "Exact", "/a"),
        ("a/young", 5, "RegularExpression", "^/r.*"),
        ("a/young", 7, "PathPrefix", "/a/longer"),
        ("a/young", 1, "PathPrefix", "/a"),  # method
        ("a/young", 2, "PathPrefix", "/a"),  # two headers
        ("a/young", 3, "PathPrefix", "/a"),  # one header
        ("a/young", 4, "PathPrefix", "/a"),  # a query parameter
        ("a/old", 0, "PathPrefix", "/a"),  # the oldest route first
        ("a/young", 0, "PathPrefix", "/a"),
        ("a/a-none", 0, "PathPrefix", "/a"),  # no timestamp: after, by ns/name
        ("a/b-none", 0, "PathPrefix", "/a"),
    ]


def test_match_order_within_a_rule_and_one_rule_per_match():
    r = reconcile(gw_with(HTTP80) + """\
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: a}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {value: /x}}, {path: {value: /y}}]
    backendRefs: [{name: s, port: 8080}]
""", services=SVC)
    rules = r.configs["a/gw"].servers[0].hosts[0].rules
    assert [(x.index, x.match.path) for x in rules] == [(0, "/x"), (0, "/y")]


# --- status JSON ----------------------------------------------------------------------------


def test_status_json_shapes():
    r = attach((HTTP80,), "{name: gw, sectionName: http}")
    status = r.to_status()
    gw = status["Gateway a/gw"]
    assert [c["type"] for c in gw["conditions"]] == ["Accepted", "Programmed"]
    (li,) = gw["listeners"]
    assert li["name"] == "http" and li["attachedRoutes"] == 1
    assert li["supportedKinds"] == [{"group": api.GROUP, "kind": "HTTPRoute"}]
    assert [c["type"] for c in li["conditions"]] == ["Accepted", "Programmed", "ResolvedRefs",
                                                     "Conflicted"]
    (p,) = status["HTTPRoute a/r"]["parents"]
    assert p["parentRef"] == {"group": api.GROUP, "kind": "Gateway", "name": "gw",
                              "sectionName": "http"}
    assert p["controllerName"] == ctl.CONTROLLER_NAME
    assert [(c["type"], c["status"], c["reason"]) for c in p["conditions"]] == [
        ("Accepted", "True", "Accepted"), ("ResolvedRefs", "True", "ResolvedRefs")]
    assert all("lastTransitionTime" not in c for c in p["conditions"])


def test_an_infrastructure_parameters_ref_is_invalid_parameters():
    """conformance GatewayInvalidParametersRef: netlab's controller takes no parameters, so
    any spec.infrastructure.parametersRef leaves the Gateway Accepted False
    InvalidParameters (and not programmed)."""
    from netlab.gateway.api import parse as parse_api
    from netlab.gateway.controller import reconcile

    gw = parse_api({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": "g", "namespace": "ns"},
                    "spec": {"gatewayClassName": "netlab",
                             "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
                             "infrastructure": {"parametersRef": {
                                 "group": "invalid.io", "kind": "InvalidParameters",
                                 "name": "invalid"}}}}, "g.yaml")
    assert gw.parameters_ref == "invalid.io/InvalidParameters invalid"
    out = reconcile([], [gw], [], [], services={}, namespaces={}, secrets={},
                    addresses={"ns/g": ("172.18.0.200",)})
    status = out.to_status()["Gateway ns/g"]
    conds = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conds["Accepted"] == ("False", "InvalidParameters")
    assert conds["Programmed"][0] == "False"
    assert "ns/g" not in out.configs
