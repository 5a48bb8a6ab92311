"""Gateway API with real requests: a Gateway's nginx data plane behind its LoadBalancer
address, an HTTPRoute's header match and weighted split, requests routed to the Gateway
whose listener matches the URL's host, status as the controller writes it, `get`, and a
graceful reload under a request loop (no request fails while routes change)."""

from __future__ import annotations

import collections
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.netlab

LAB = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-v1}
spec:
  replicas: 2
  selector: {matchLabels: {app: web, version: v1}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec: {containers: [{name: c, image: agnhost, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-v2, labels: {app: web, version: v2}}
spec: {containers: [{name: c, image: agnhost, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-v1}
spec: {selector: {app: web, version: v1}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-v2}
spec: {selector: {app: web, version: v2}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: netlab
  listeners: [{name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}]
"""

ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [web.example.com]
  rules:
  - matches: [{headers: [{name: x-canary, value: "yes"}]}]
    backendRefs: [{name: web-v2, port: 80}]
  - backendRefs: [{name: web-v1, port: 80, weight: %d}, {name: web-v2, port: 80, weight: %d}]
"""


def _versions(lab, n: int, headers: dict | None = None) -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for _ in range(n):
        r = lab.http("http://web.example.com/", headers=headers)
        out["v2" if r.answered_by == "default/web-v2" else
            "v1" if (r.answered_by or "").startswith("default/web-v1-") else
            f"{r.status} {r.error or ''}"] += 1
    return out


def test_canary_weights_status_and_reload(netlab_lab):
    lab = netlab_lab(yaml=LAB + "---" + ROUTE % (90, 10))
    # the header match: every canary request to v2
    assert _versions(lab, 20, {"x-canary": "yes"}) == {"v2": 20}
    # the 90/10 split, measured
    split = _versions(lab, 300)
    assert set(split) == {"v1", "v2"} and 0.04 <= split["v2"] / 300 <= 0.18, split
    # a host no listener or route has: 404 from the Gateway
    assert lab.http("http://other.example.com/").status == 404
    r = lab.http("http://web.example.com/", to="gateway/default/gw")
    assert r.status == 200
    status = lab.gateway_api_status()
    gw = status["Gateway/default/gw"]
    assert {c["type"]: c["status"] for c in gw["conditions"]} == {"Accepted": "True",
                                                                 "Programmed": "True"}
    svc = next(s for s in lab.services("netlab-gateway"))
    assert tuple(a["value"] for a in gw["addresses"]) == svc.lb_ips
    assert gw["listeners"][0]["attachedRoutes"] == 1
    (parent,) = status["HTTPRoute/default/web"]["parents"]
    assert [(c["type"], c["reason"]) for c in parent["conditions"]][:2] == [
        ("Accepted", "Accepted"), ("ResolvedRefs", "ResolvedRefs")]
    # `get`: the CRD's printer columns
    (info,) = lab.gateway_api_objects("Gateway", "default")
    assert info.condition("Programmed") == "True" and info.addresses == svc.lb_ips[0]
    # graceful reload under a request loop: weights move to 0/100, no request fails
    failures: list = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            r = lab.http("http://web.example.com/")
            if r.status != 200:
                failures.append((r.status, r.error))

    t = threading.Thread(target=loop)
    t.start()
    try:
        lab.apply(manifests=[ROUTE % (0, 100)])
    finally:
        stop.set()
        t.join()
    assert not failures, failures
    assert _versions(lab, 30) == {"v2": 30}  # weight 0: never


def test_a_broken_backend_answers_500_and_is_reported(netlab_lab):
    lab = netlab_lab(yaml=LAB + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [web.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /missing}}]
    backendRefs: [{name: nothing-here, port: 80}]
  - backendRefs: [{name: web-v1, port: 80}]
""")
    assert lab.http("http://web.example.com/missing/x").status == 500
    assert lab.http("http://web.example.com/").status == 200  # the rest of the route works
    (parent,) = lab.gateway_api_status()["HTTPRoute/default/web"]["parents"]
    resolved = next(c for c in parent["conditions"] if c["type"] == "ResolvedRefs")
    assert (resolved["status"], resolved["reason"]) == ("False", "BackendNotFound")
    (route,) = lab.gateway_api_objects("HTTPRoute", "default")
    assert "ResolvedRefs=False(BackendNotFound)" in route.parents
    # the hint `netlab http` and Expectations give for a failed request
    hints = lab.http_hints("http://web.example.com/missing/x")
    assert any(h.startswith("HTTPRoute default/web: ResolvedRefs False (BackendNotFound)")
               for h in hints), hints


HTTPS = Path(__file__).parents[2] / "scenarios" / "gateway-https"


def test_https_listeners_present_their_certificate_by_sni(netlab_lab):
    """Two HTTPS listeners on 443, a certificate each (Secrets in the Gateway's namespace):
    the one presented follows the SNI, verifies against itself as CA for its host and fails
    for the other; HTTP on 80 redirects to HTTPS."""
    lab = netlab_lab(HTTPS / "lab.yaml")
    for host, other in (("shop.example.com", "blog.example.com"),
                        ("blog.example.com", "shop.example.com")):
        r = lab.http(f"https://{host}/")
        assert r.status == 200 and r.certificate_names == [host], r
        assert r.answered_by == f"default/{host.split('.')[0]}", r
        assert r.seen_headers.get("x-forwarded-proto") == "https"
        ok = lab.http(f"https://{host}/", cacert=str(HTTPS / "certs" / f"{host}.crt"))
        assert ok.status == 200 and not ok.error, ok
        bad = lab.http(f"https://{host}/", cacert=str(HTTPS / "certs" / f"{other}.crt"))
        assert bad.status is None and "certificate verification failed" in (bad.error or "")
    r = lab.http("http://shop.example.com/cart?item=7")
    assert r.status in (301, 302) and r.headers.get("Location", "").startswith(
        "https://shop.example.com/cart?item=7"), r
