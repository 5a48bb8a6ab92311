"""Gateway API objects: parsing, the CRD defaults, and every schema / CEL validation
netlab.gateway.api implements (no root, no kernel)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from netlab.errors import InputError
from netlab.gateway import api
from netlab.gateway.dataplane import HeaderModifier, Match, PathModifier, Redirect, Rewrite

# The Kubernetes website's Gateway API example (concepts/services-networking/gateway)
K8S_DOCS_EXAMPLE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: example-class
spec:
  controllerName: example.com/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: example-gateway
spec:
  gatewayClassName: example-class
  listeners:
  - name: http
    protocol: HTTP
    port: 80
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: example-httproute
spec:
  parentRefs:
  - name: example-gateway
  hostnames:
  - "www.example.com"
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /login
    backendRefs:
    - name: example-svc
      port: 8080
"""

# Shapes of conformance/tests manifests (httproute-reference-grant, gateway-secret-*)
CONFORMANCE_SHAPES = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway-secret-reference-grant
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: "netlab"
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchLabels:
            gateway-conformance: backend
    tls:
      certificateRefs:
      - group: ""
        kind: Secret
        name: certificate
        namespace: gateway-conformance-web-backend
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: reference-grant
  namespace: gateway-conformance-app-backend
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    namespace: gateway-conformance-infra
  to:
  - group: ""
    kind: Service
    name: app-backend-v1
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: request-header-modifier
  namespace: gateway-conformance-infra
  creationTimestamp: "2024-01-01T00:00:00Z"
  generation: 3
spec:
  parentRefs:
  - name: same-namespace
    sectionName: http
    port: 80
  rules:
  - matches:
    - path:
        type: Exact
        value: /set
      method: GET
      headers:
      - name: version
        value: two
      - name: color
        type: RegularExpression
        value: "^(red|blue)$"
      queryParams:
      - name: animal
        value: whale
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - name: X-Header-Set
          value: set-overwrites-values
        add:
        - name: X-Header-Add
          value: add-appends-values
        remove: ["X-Header-Remove"]
    - type: RequestMirror
      requestMirror:
        backendRef:
          name: infra-backend-v2
          port: 8080
        fraction:
          numerator: 1
          denominator: 3
    backendRefs:
    - name: infra-backend-v1
      port: 8080
      weight: 0
      filters:
      - type: ResponseHeaderModifier
        responseHeaderModifier:
          remove: [x-a]
  - matches:
    - path:
        type: PathPrefix
        value: /prefix/one
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: one.example.org
        path:
          type: ReplacePrefixMatch
          replacePrefixMatch: /one
  - filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        port: 8443
        statusCode: 301
        path:
          type: ReplaceFullPath
          replaceFullPath: /full
"""


def docs(text: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(text))


def parse(doc: dict[str, Any], warnings: list[str] | None = None) -> api.Object:
    return api.parse(doc, "gw.yaml", 7, warnings)


# --- valid manifests and defaults --------------------------------------------------------------


def test_kubernetes_docs_example_parses_with_defaults():
    cls, gw, route = (parse(d) for d in docs(K8S_DOCS_EXAMPLE))
    assert isinstance(cls, api.GatewayClass) and cls.key == "example-class"
    assert cls.controller_name == "example.com/gateway-controller"
    assert isinstance(gw, api.Gateway) and gw.key == "default/example-gateway"
    li = gw.listeners[0]
    assert (li.name, li.port, li.protocol, li.hostname) == ("http", 80, "HTTP", None)
    assert (li.namespaces_from, li.kinds, li.tls) == ("Same", (), None)  # allowedRoutes default
    assert isinstance(route, api.HTTPRoute) and route.key == "default/example-httproute"
    assert route.parent_refs == (api.ParentRef("example-gateway", None, api.GROUP, "Gateway"),)
    assert route.hostnames == ("www.example.com",)
    (rule,) = route.rules
    assert rule.matches == (Match("PathPrefix", "/login"),)
    assert rule.backend_refs == (api.BackendRef("example-svc", None, "", "Service", 8080, 1),)
    assert route.meta.generation == 1 and route.meta.creation_timestamp is None
    assert route.source is not None and route.source.file == "gw.yaml"


def test_conformance_shapes_parse_every_field():
    warnings: list[str] = []
    gw, grant, route = (parse(d, warnings) for d in docs(CONFORMANCE_SHAPES))
    assert isinstance(gw, api.Gateway)
    li = gw.listeners[0]
    assert li.namespaces_from == "Selector"
    assert li.namespace_selector is not None
    assert li.namespace_selector.matches({"gateway-conformance": "backend"})
    assert li.tls == api.ListenerTLS("Terminate", (api.SecretRef(
        "certificate", "gateway-conformance-web-backend", "", "Secret"),))
    assert isinstance(grant, api.ReferenceGrant)
    assert grant.from_ == ((api.GROUP, "HTTPRoute", "gateway-conformance-infra"),)
    assert grant.to == (("", "Service", "app-backend-v1"),)
    assert grant.permits(api.GROUP, "HTTPRoute", "gateway-conformance-infra", "", "Service",
                         "app-backend-v1")
    assert not grant.permits(api.GROUP, "HTTPRoute", "gateway-conformance-infra", "", "Service",
                             "app-backend-v2")
    assert isinstance(route, api.HTTPRoute)
    assert route.meta.generation == 3
    assert route.meta.creation_timestamp == "2024-01-01T00:00:00Z"
    assert route.parent_refs[0].section_name == "http" and route.parent_refs[0].port == 80
    r0, r1, r2 = route.rules
    assert r0.matches == (Match("Exact", "/set", "GET",
                                (("Exact", "version", "two"),
                                 ("RegularExpression", "color", "^(red|blue)$")),
                                (("Exact", "animal", "whale"),)),)
    header, mirror = r0.filters
    assert header.headers == HeaderModifier((("X-Header-Set", "set-overwrites-values"),),
                                            (("X-Header-Add", "add-appends-values"),),
                                            ("X-Header-Remove",))
    assert mirror.mirror == api.BackendRef("infra-backend-v2", None, "", "Service", 8080)
    assert mirror.mirror_percent == 33  # 1/3 rounded down, with a warning
    assert any("1/3 is mirrored as 33%" in w for w in warnings)
    (b,) = r0.backend_refs
    assert b.weight == 0
    assert b.filters[0].headers == HeaderModifier(remove=("x-a",))
    assert r1.filters[0].rewrite == Rewrite("one.example.org",
                                            PathModifier("ReplacePrefixMatch", "/one"))
    assert r2.matches == (Match(),)  # rule without matches: PathPrefix /
    assert r2.filters[0].redirect == Redirect("https", None, 8443,
                                              PathModifier("ReplaceFullPath", "/full"), 301)


def test_defaults_of_redirect_parent_backend_and_match():
    route = parse(docs("""\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: r, namespace: apps}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{}, {path: {value: /x}}, {path: {type: Exact}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org}}]
""")[0])
    assert isinstance(route, api.HTTPRoute)
    assert route.parent_refs[0].to_json() == {"group": api.GROUP, "kind": "Gateway",
                                               "name": "gw"}
    rule = route.rules[0]
    assert rule.matches == (Match(), Match("PathPrefix", "/x"), Match("Exact", "/"))
    assert rule.filters[0].redirect == Redirect(hostname="example.org", status_code=302)


def test_route_without_rules_gets_the_default_rule():
    route = parse({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                   "metadata": {"name": "r"}, "spec": {"parentRefs": [{"name": "g"}]}})
    assert isinstance(route, api.HTTPRoute)
    assert route.rules == (api.RouteRule((Match(),)),)


def test_unmodelled_fields_are_warnings_not_errors():
    warnings: list[str] = []
    parse(docs("""\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: g, namespace: n}
spec:
  gatewayClassName: netlab
  infrastructure: {labels: {a: b}}
  listeners: [{name: http, port: 80, protocol: HTTP}]
""")[0], warnings)
    route = docs(K8S_DOCS_EXAMPLE)[2]
    route["spec"]["rules"][0]["timeouts"] = {"request": "10s"}
    route["spec"]["rules"][0]["sessionPersistence"] = {"type": "Cookie"}
    route["spec"]["rules"][0]["retry"] = {"attempts": 2}
    parse(route, warnings)
    assert any("spec.infrastructure.labels is not modelled" in w for w in warnings)
    for field in ("timeouts", "sessionPersistence", "retry"):
        assert any(f"spec.rules[0].{field} is not modelled" in w for w in warnings), field


def test_kinds_and_api_versions():
    assert api.KINDS["HTTPRoute"] == ("gateway.networking.k8s.io/v1",
                                      "gateway.networking.k8s.io/v1beta1")
    assert "gateway.networking.k8s.io/v1beta1" in api.KINDS["ReferenceGrant"]
    assert "gateway.networking.k8s.io/v1" in api.KINDS["ReferenceGrant"]
    doc = docs(K8S_DOCS_EXAMPLE)[0]
    doc["apiVersion"] = "gateway.networking.k8s.io/v1alpha2"
    with pytest.raises(InputError) as e:
        parse(doc)
    assert e.value.field == "apiVersion" and "GatewayClass example-class" in str(e.value)


# --- validation errors -----------------------------------------------------------------------

GATEWAY = docs(K8S_DOCS_EXAMPLE)[1]
ROUTE = docs(K8S_DOCS_EXAMPLE)[2]


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `doc` with `path` ("spec.rules[0].x") set to value (None deletes)."""
    out = copy.deepcopy(doc)
    parts = path.replace("]", "").replace("[", ".").split(".")
    cur: Any = out
    for p in parts[:-1]:
        cur = cur[int(p)] if p.isdigit() else cur.setdefault(p, {})
    last = parts[-1]
    if value is None:
        del cur[last]
    elif last.isdigit():
        cur[int(last)] = value
    else:
        cur[last] = value
    return out


def _listener(**kw: Any) -> dict[str, Any]:
    return {"name": "l", "port": 443, "protocol": "HTTPS",
            "tls": {"certificateRefs": [{"name": "c"}]}, **kw}


GATEWAY_ERRORS = [
    ("spec.listeners", [], "spec.listeners", "at least 1 items"),
    ("spec.listeners", [{"name": f"l{i}", "port": 80 + i, "protocol": "HTTP"}
                        for i in range(65)], "spec.listeners", "at most 64 items"),
    ("spec.listeners[0].port", 0, "spec.listeners[0].port", "greater than or equal to 1"),
    ("spec.listeners[0].port", 65536, "spec.listeners[0].port", "less than or equal to 65535"),
    ("spec.listeners[0].name", "Bad_Name", "spec.listeners[0].name", "should match"),
    ("spec.listeners[0].hostname", "Foo.example.com", "spec.listeners[0].hostname",
     "should match"),
    ("spec.listeners[0].hostname", "foo.*.com", "spec.listeners[0].hostname", "should match"),
    ("spec.listeners[0].protocol", "HT TP", "spec.listeners[0].protocol", "should match"),
    ("spec.listeners", [{"name": "a", "port": 80, "protocol": "HTTP"},
                        {"name": "a", "port": 81, "protocol": "HTTP"}],
     "spec.listeners", api.MSG_LISTENER_NAMES),
    ("spec.listeners", [{"name": "a", "port": 80, "protocol": "HTTP"},
                        {"name": "b", "port": 80, "protocol": "HTTP"}],
     "spec.listeners", api.MSG_LISTENER_COMBINATION),
    ("spec.listeners[0].tls", {"certificateRefs": [{"name": "c"}]}, "spec.listeners[0].tls",
     api.MSG_TLS_FORBIDDEN),
    ("spec.listeners[0]", _listener(tls={"mode": "Passthrough"}),
     "spec.listeners[0].tls.mode", api.MSG_TLS_HTTPS_MODE),
    ("spec.listeners[0]", {"name": "t", "port": 443, "protocol": "TLS"},
     "spec.listeners[0].tls", api.MSG_TLS_MODE_TLS),
    ("spec.listeners[0]", {"name": "t", "port": 53, "protocol": "UDP", "hostname": "a.b"},
     "spec.listeners[0].hostname", api.MSG_HOSTNAME_TCP_UDP),
    ("spec.listeners[0]", _listener(tls={"mode": "Terminate"}), "spec.listeners[0].tls",
     api.MSG_CERT_REFS),
    ("spec.listeners[0]", _listener(tls={"mode": "Bogus"}), "spec.listeners[0].tls.mode",
     'Unsupported value: "Bogus"'),
    ("spec.listeners[0]", _listener(tls={"certificateRefs": [{"name": "c", "kind": "9x"}]}),
     "spec.listeners[0].tls.certificateRefs[0].kind", "should match"),
    ("spec.listeners[0].allowedRoutes", {"namespaces": {"from": "None"}},
     "spec.listeners[0].allowedRoutes.namespaces.from", 'Unsupported value: "None"'),
    ("spec.listeners[0].allowedRoutes", {"kinds": [{"kind": "HTTPRoute"}] * 9},
     "spec.listeners[0].allowedRoutes.kinds", "at most 8 items"),
    ("spec.addresses", [{"value": "10.0.0.1"}, {"value": "10.0.0.1"}], "spec.addresses",
     "IPAddress values must be unique"),
    ("spec.addresses", [{"type": "IPAddress", "value": "not-an-ip"}], "spec.addresses[0].value",
     "not an IP address"),
    ("spec.addresses", [{"type": "Hostname", "value": "UPPER"}], "spec.addresses[0].value",
     "Hostname value must be empty"),
    ("spec.gatewayClassName", None, "spec.gatewayClassName", "is required"),
    ("metadata.name", "Bad", "metadata.name", "DNS-1123 subdomain"),
]


@pytest.mark.parametrize(("path", "value", "field", "message"), GATEWAY_ERRORS,
                         ids=[f"{e[0]}:{e[3][:30]}" for e in GATEWAY_ERRORS])
def test_gateway_validation(path: str, value: Any, field: str, message: str):
    with pytest.raises(InputError) as e:
        parse(_set(GATEWAY, path, value))
    assert e.value.field == field, str(e.value)
    assert message in str(e.value)
    assert e.value.file == "gw.yaml" and e.value.obj is not None
    assert e.value.obj.startswith("Gateway ")
    assert e.value.exit_code == 2


def _rule(**kw: Any) -> dict[str, Any]:
    return {"backendRefs": [{"name": "s", "port": 80}], **kw}


def _filter(kind: str, **payload: Any) -> dict[str, Any]:
    return {"type": kind, **payload}


REDIRECT = {"requestRedirect": {"statusCode": 301}}
PREFIX_REWRITE = {"urlRewrite": {"path": {"type": "ReplacePrefixMatch",
                                          "replacePrefixMatch": "/x"}}}
ROUTE_ERRORS = [
    ("spec.hostnames", ["*.example.com", "bad host"], "spec.hostnames[1]", "should match"),
    ("spec.hostnames", [f"h{i}.example.com" for i in range(17)], "spec.hostnames",
     "at most 16 items"),
    ("spec.parentRefs", [{"name": f"g{i}", "sectionName": "s"} for i in range(33)],
     "spec.parentRefs", "at most 32 items"),
    ("spec.parentRefs", [{"name": "g"}, {"name": "g", "sectionName": "a"}], "spec.parentRefs",
     api.MSG_SECTION_REQUIRED),
    ("spec.parentRefs", [{"name": "g", "sectionName": "a"}, {"name": "g", "sectionName": "a"}],
     "spec.parentRefs", api.MSG_SECTION_UNIQUE),
    ("spec.parentRefs[0].port", 70000, "spec.parentRefs[0].port", "less than or equal"),
    ("spec.parentRefs[0].namespace", "Bad", "spec.parentRefs[0].namespace", "should match"),
    ("spec.rules", [], "spec.rules", "at least 1 items"),
    ("spec.rules", [_rule()] * 17, "spec.rules", "at most 16 items"),
    ("spec.rules[0].matches", [{}] * 65, "spec.rules[0].matches", "at most 64 items"),
    ("spec.rules", [{"matches": [{}] * 60}] * 3, "spec.rules", api.MSG_TOTAL_MATCHES),
    ("spec.rules[0].matches", [{"path": {"value": "foo"}}], "spec.rules[0].matches[0].path",
     "must be an absolute path and start with '/'"),
    ("spec.rules[0].matches", [{"path": {"value": "/a//b"}}], "spec.rules[0].matches[0].path",
     "must not contain '//'"),
    ("spec.rules[0].matches", [{"path": {"value": "/a/../b"}}],
     "spec.rules[0].matches[0].path", "must not contain '/../'"),
    ("spec.rules[0].matches", [{"path": {"value": "/a%2fb"}}], "spec.rules[0].matches[0].path",
     "must not contain '%2f'"),
    ("spec.rules[0].matches", [{"path": {"type": "Exact", "value": "/a#b"}}],
     "spec.rules[0].matches[0].path", "must not contain '#'"),
    ("spec.rules[0].matches", [{"path": {"value": "/a/."}}], "spec.rules[0].matches[0].path",
     "must not end with '/.'"),
    ("spec.rules[0].matches", [{"path": {"value": "/a b"}}], "spec.rules[0].matches[0].path",
     "must only contain valid characters"),
    ("spec.rules[0].matches", [{"path": {"type": "Glob", "value": "/a"}}],
     "spec.rules[0].matches[0].path.type", 'Unsupported value: "Glob"'),
    ("spec.rules[0].matches", [{"path": {"value": "/" + "a" * 1024}}],
     "spec.rules[0].matches[0].path.value", "Too long"),
    ("spec.rules[0].matches", [{"method": "FETCH"}], "spec.rules[0].matches[0].method",
     'Unsupported value: "FETCH"'),
    ("spec.rules[0].matches", [{"headers": [{"name": "a:b", "value": "x"}]}],
     "spec.rules[0].matches[0].headers[0].name", "should match"),
    ("spec.rules[0].matches", [{"headers": [{"name": "a", "value": ""}]}],
     "spec.rules[0].matches[0].headers[0].value", "at least 1 chars"),
    ("spec.rules[0].matches", [{"headers": [{"name": "a", "value": "1"},
                                            {"name": "a", "value": "2"}]}],
     "spec.rules[0].matches[0].headers[1].name", "Duplicate value"),
    ("spec.rules[0].matches", [{"headers": [{"name": f"h{i}", "value": "v"}
                                            for i in range(17)]}],
     "spec.rules[0].matches[0].headers", "at most 16 items"),
    ("spec.rules[0].matches", [{"queryParams": [{"name": "q", "value": "v",
                                                 "type": "Prefix"}]}],
     "spec.rules[0].matches[0].queryParams[0].type", 'Unsupported value: "Prefix"'),
    ("spec.rules[0].backendRefs", [{"name": "s"}], "spec.rules[0].backendRefs[0]",
     api.MSG_SERVICE_PORT),
    ("spec.rules[0].backendRefs", [{"name": "s", "port": 80, "weight": 1000001}],
     "spec.rules[0].backendRefs[0].weight", "less than or equal to 1000000"),
    ("spec.rules[0].backendRefs", [{"name": "s", "port": 80, "weight": -1}],
     "spec.rules[0].backendRefs[0].weight", "greater than or equal to 0"),
    ("spec.rules[0].backendRefs", [{"name": "s", "port": 80}] * 17,
     "spec.rules[0].backendRefs", "at most 16 items"),
    ("spec.rules[0].filters", [_filter("RequestRedirect", **REDIRECT)], "spec.rules[0]",
     api.MSG_REDIRECT_WITH_BACKENDS),
    ("spec.rules[0]", {"filters": [_filter("RequestRedirect", **REDIRECT),
                                   _filter("URLRewrite", urlRewrite={})]},
     "spec.rules[0].filters", api.MSG_REDIRECT_AND_REWRITE),
    ("spec.rules[0].filters", [_filter("RequestHeaderModifier",
                                       requestHeaderModifier={"remove": ["a"]})] * 2,
     "spec.rules[0].filters", "RequestHeaderModifier filter cannot be repeated"),
    ("spec.rules[0].filters", [_filter("RequestHeaderModifier")], "spec.rules[0].filters[0]",
     "filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type"),
    ("spec.rules[0].filters", [_filter("RequestHeaderModifier", requestHeaderModifier={},
                                       urlRewrite={})],
     "spec.rules[0].filters[0]", "filter.urlRewrite must be nil if the filter.type is not "
                                 "URLRewrite"),
    ("spec.rules[0].filters", [_filter("ExternalAuth")], "spec.rules[0].filters[0].type",
     'Unsupported value: "ExternalAuth"'),
    ("spec.rules[0].filters", [_filter("RequestHeaderModifier", requestHeaderModifier={
        "set": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]})],
     "spec.rules[0].filters[0].requestHeaderModifier.set[1].name", "Duplicate value"),
    ("spec.rules[0].filters", [_filter("RequestHeaderModifier", requestHeaderModifier={
        "remove": ["a", "a"]})],
     "spec.rules[0].filters[0].requestHeaderModifier.remove[1]", 'Duplicate value: "a"'),
    ("spec.rules[0]", {"filters": [_filter("RequestRedirect",
                                           requestRedirect={"statusCode": 304})]},
     "spec.rules[0].filters[0].requestRedirect.statusCode", "Unsupported value: 304"),
    ("spec.rules[0]", {"filters": [_filter("RequestRedirect",
                                           requestRedirect={"scheme": "ftp"})]},
     "spec.rules[0].filters[0].requestRedirect.scheme", 'Unsupported value: "ftp"'),
    ("spec.rules[0]", {"filters": [_filter("RequestRedirect",
                                           requestRedirect={"hostname": "*.wild.com"})]},
     "spec.rules[0].filters[0].requestRedirect.hostname", "should match"),
    ("spec.rules[0]", {"filters": [_filter("RequestRedirect",
                                           requestRedirect={"port": 0})]},
     "spec.rules[0].filters[0].requestRedirect.port", "greater than or equal to 1"),
    ("spec.rules[0]", {"filters": [_filter("URLRewrite", urlRewrite={
        "path": {"type": "ReplaceFullPath"}})]},
     "spec.rules[0].filters[0].urlRewrite.path",
     "replaceFullPath must be specified when type is set to 'ReplaceFullPath'"),
    ("spec.rules[0]", {"filters": [_filter("URLRewrite", urlRewrite={
        "path": {"type": "ReplaceFullPath", "replacePrefixMatch": "/x"}})]},
     "spec.rules[0].filters[0].urlRewrite.path",
     "replaceFullPath must be specified"),
    ("spec.rules[0]", {"filters": [_filter("URLRewrite", urlRewrite={
        "path": {"type": "ReplacePrefixMatch", "replaceFullPath": "/x"}})]},
     "spec.rules[0].filters[0].urlRewrite.path",
     "type must be 'ReplaceFullPath' when replaceFullPath is set"),
    ("spec.rules[0]", {"filters": [_filter("URLRewrite", urlRewrite={
        "path": {"type": "ReplacePrefixMatch"}})]},
     "spec.rules[0].filters[0].urlRewrite.path",
     "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'"),
    ("spec.rules[0]", {"matches": [{"path": {"type": "Exact", "value": "/a"}}],
                       "filters": [_filter("URLRewrite", **PREFIX_REWRITE)]},
     "spec.rules[0]", "When using URLRewrite filter with path.replacePrefixMatch, exactly one "
                      "PathPrefix match must be specified"),
    ("spec.rules[0]", {"matches": [{}, {}], "filters": [_filter("RequestRedirect", requestRedirect={
        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/x"}})]},
     "spec.rules[0]", "When using RequestRedirect filter with path.replacePrefixMatch"),
    ("spec.rules[0]", {"matches": [{}, {}], "backendRefs": [{
        "name": "s", "port": 80, "filters": [_filter("URLRewrite", **PREFIX_REWRITE)]}]},
     "spec.rules[0]", "Within backendRefs, When using URLRewrite filter"),
    ("spec.rules[0].filters", [_filter("RequestMirror", requestMirror={
        "backendRef": {"name": "m", "port": 80}, "percent": 10,
        "fraction": {"numerator": 1}})],
     "spec.rules[0].filters[0].requestMirror", "Only one of percent or fraction"),
    ("spec.rules[0].filters", [_filter("RequestMirror", requestMirror={
        "backendRef": {"name": "m", "port": 80}, "fraction": {"numerator": 5,
                                                              "denominator": 4}})],
     "spec.rules[0].filters[0].requestMirror.fraction",
     "numerator must be less than or equal to denominator"),
    ("spec.rules[0].filters", [_filter("RequestMirror", requestMirror={
        "backendRef": {"name": "m", "port": 80}, "percent": 101})],
     "spec.rules[0].filters[0].requestMirror.percent", "less than or equal to 100"),
    ("spec.rules[0].filters", [_filter("RequestMirror", requestMirror={
        "backendRef": {"name": "m"}})],
     "spec.rules[0].filters[0].requestMirror.backendRef", api.MSG_SERVICE_PORT),
]


@pytest.mark.parametrize(("path", "value", "field", "message"), ROUTE_ERRORS,
                         ids=[f"{e[0]}:{e[3][:30]}" for e in ROUTE_ERRORS])
def test_route_validation(path: str, value: Any, field: str, message: str):
    with pytest.raises(InputError) as e:
        parse(_set(ROUTE, path, value))
    assert e.value.field == field, str(e.value)
    assert message in str(e.value)
    assert e.value.obj == "HTTPRoute default/example-httproute"
    assert e.value.file == "gw.yaml" and e.value.line == 7


def test_backend_ref_of_another_kind_needs_no_port():
    route = parse(_set(ROUTE, "spec.rules[0].backendRefs",
                       [{"group": "example.com", "kind": "Bucket", "name": "b"}]))
    assert isinstance(route, api.HTTPRoute)
    assert route.rules[0].backend_refs[0] == api.BackendRef("b", None, "example.com", "Bucket")


def test_regular_expression_paths_are_not_held_to_path_rules():
    route = parse(_set(ROUTE, "spec.rules[0].matches",
                       [{"path": {"type": "RegularExpression", "value": "^/a//b.*$"}}]))
    assert isinstance(route, api.HTTPRoute)
    assert route.rules[0].matches[0] == Match("RegularExpression", "^/a//b.*$")


def test_replace_prefix_match_with_the_default_match_is_valid():
    # the CEL rules run after defaulting: no matches means one PathPrefix / match
    route = parse(_set(ROUTE, "spec.rules[0]", {"filters": [_filter("URLRewrite",
                                                                    **PREFIX_REWRITE)]}))
    assert isinstance(route, api.HTTPRoute)


GRANT = docs(CONFORMANCE_SHAPES)[1]
CLASS = docs(K8S_DOCS_EXAMPLE)[0]
OTHER_ERRORS = [
    (GRANT, "spec.from", [], "spec.from", "at least 1 items"),
    (GRANT, "spec.to", None, "spec.to", "is required"),
    (GRANT, "spec.to", [{"group": "", "kind": "Service"}] * 17, "spec.to", "at most 16 items"),
    (GRANT, "spec.from[0].namespace", "Bad_ns", "spec.from[0].namespace", "should match"),
    (GRANT, "spec.from[0].group", None, "spec.from[0].group", "is required"),
    (GRANT, "spec.to[0].kind", "", "spec.to[0].kind", "at least 1 chars"),
    (CLASS, "spec.controllerName", "no-slash", "spec.controllerName", "should match"),
    (CLASS, "spec.description", "x" * 65, "spec.description", "Too long"),
]


@pytest.mark.parametrize(("doc", "path", "value", "field", "message"), OTHER_ERRORS,
                         ids=[f"{e[0]['kind']}:{e[1]}:{e[4][:20]}" for e in OTHER_ERRORS])
def test_grant_and_class_validation(doc: dict[str, Any], path: str, value: Any, field: str,
                                    message: str):
    with pytest.raises(InputError) as e:
        parse(_set(doc, path, value))
    assert e.value.field == field, str(e.value)
    assert message in str(e.value)


def test_grant_to_without_name_allows_every_object_of_the_kind():
    grant = parse(_set(GRANT, "spec.to", [{"group": "", "kind": "Secret"}]))
    assert isinstance(grant, api.ReferenceGrant)
    assert grant.to == (("", "Secret", None),)
    assert grant.permits(api.GROUP, "HTTPRoute", "gateway-conformance-infra", "", "Secret", "x")
    assert not grant.permits(api.GROUP, "Gateway", "gateway-conformance-infra", "", "Secret",
                             "x")


def test_gateway_class_is_cluster_scoped():
    warnings: list[str] = []
    cls = parse(_set(CLASS, "metadata.namespace", "x"), warnings)
    assert isinstance(cls, api.GatewayClass) and cls.meta.namespace is None
    assert any("cluster-scoped" in w for w in warnings)


def test_wrong_kind_is_refused():
    with pytest.raises(InputError, match="kind 'TCPRoute'"):
        parse({"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TCPRoute"})
