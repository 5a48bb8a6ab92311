"""Expectation `http` checks against a real Gateway: each check sends its own request (headers,
a body, through the Gateway named in `via`, from outside and from a pod) and asserts what the
backend received and what came back; a wrong expectation fails naming each difference. The
responder's per-request log lines (`netlab logs`) show the request, also on the mirror."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from manifests import wait_until

pytestmark = pytest.mark.netlab

LAB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-v1}
spec:
  replicas: 1
  selector: {matchLabels: {app: web, version: v1}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec: {containers: [{name: web, image: agnhost, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-v2, labels: {app: web, version: v2}}
spec: {containers: [{name: web, image: agnhost, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: shadow, labels: {app: shadow}}
spec: {containers: [{name: echo, image: agnhost, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox}]}
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
apiVersion: v1
kind: Service
metadata: {name: shadow}
spec: {selector: {app: shadow}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: netlab
  listeners: [{name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [web.example.com]
  rules:
  - matches: [{headers: [{name: x-canary, value: "yes"}]}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: X-Gw, value: "yes"}], remove: [X-Debug]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: X-Version, value: v2}]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 80}}
    backendRefs: [{name: web-v2, port: 80}]
  - backendRefs: [{name: web-v1, port: 80}]
"""

EXPECTATIONS = """
apiVersion: netlab.dev/v1alpha1
kind: Expectation
metadata: {name: gateway-routes}
spec:
  checks:
  - name: canary
    from: external
    http: "http://web.example.com/api?v=2"
    headers: {X-Canary: "yes", X-Debug: "1"}
    via: gateway/default/gw
    expect:
      backend: web-v2
      path: /api?v=2
      host: web.example.com
      headers: {x-canary: "yes", X-Gw: "yes"}
      absentHeaders: [X-Debug]
      responseHeaders: {X-Version: v2}
  - from: client
    http: "http://web.example.com/form"
    data: "name=ada"
    headers: {X-Echo-Set-Header: "X-Echoed:by-the-backend"}
    via: gateway/gw
    expect:
      status: 200
      backend: default/web-v1
      path: /form
      headers: {Content-Type: application/x-www-form-urlencoded, Content-Length: "8"}
      absentHeaders: [X-Gw]
      responseHeaders: {X-Echoed: by-the-backend}
  - {from: external, http: "http://web.example.com/plain", method: delete, answeredBy: {app: web},
     expect: {backend: web-v1, path: /plain}}
---
apiVersion: netlab.dev/v1alpha1
kind: Expectation
metadata: {name: wrong}
spec:
  checks:
  - name: the canary is not v1
    from: external
    http: "http://web.example.com/api"
    headers: {X-Canary: "yes"}
    expect:
      backend: web-v1
      path: /api
      host: other.example.com
      absentHeaders: [X-Gw]
      responseHeaders: {X-Version: v1}
"""


def test_http_expectations_through_a_gateway(netlab_lab, tmp_path):
    lab = netlab_lab(yaml=LAB + "---" + EXPECTATIONS)
    lab.settle(timeout=30)
    outcomes = {(o.expectation, o.title): o for o in lab.test()}
    assert sorted(outcomes) == [
        ("gateway-routes", "canary"),
        ("gateway-routes", "client POST http://web.example.com/form: 200"),
        ("gateway-routes", "external DELETE http://web.example.com/plain: 200"),
        ("wrong", "the canary is not v1")]
    for key, o in outcomes.items():
        if key[0] == "gateway-routes":
            assert o.passed, (o.title, o.evidence, o.hint)
    canary = outcomes[("gateway-routes", "canary")]
    assert canary.evidence.startswith("200 OK, answered by default/web-v2; the backend "
                                      "received GET /api?v=2, Host web.example.com"), canary
    post = outcomes[("gateway-routes", "client POST http://web.example.com/form: 200")]
    assert "answered by default/web-v1-" in post.evidence
    assert "the backend received POST /form" in post.evidence

    wrong = outcomes[("wrong", "the canary is not v1")]
    assert not wrong.passed
    assert wrong.hint.split("; ") == [
        "expected an answer from web-v1, not default/web-v2",
        "expected the backend to receive Host other.example.com, not web.example.com",
        "expected the backend not to receive X-Gw (it had yes)",
        "expected the answer to carry X-Version: v1, not v2"], wrong.hint

    # the responder logs each request it answered, as the conformance echo server does; the
    # mirrored copies of the canary requests reach the shadow pod's log too
    line = "Echoing back request made to /api?v=2 to client ("
    assert line in lab.logs("web-v2"), lab.logs("web-v2")
    assert wait_until(lambda: line in lab.logs("shadow")), lab.logs("shadow")
    assert "/api?v=2" not in lab.logs(next(p.name for p in lab.pods("default")
                                           if p.name.startswith("web-v1-")))

    # `netlab test --lab` reads the same checks from a file: exit 1, the failure's hint
    (tmp_path / "e.yaml").write_text(EXPECTATIONS)
    r = subprocess.run([sys.executable, "-m", "netlab", "test", str(tmp_path / "e.yaml"),
                        "--lab", lab.name, "-o", "json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert [(c["check"], c["passed"]) for c in doc["checks"]] == [
        ("canary", True), ("client POST http://web.example.com/form: 200", True),
        ("external DELETE http://web.example.com/plain: 200", True),
        ("the canary is not v1", False)]
    assert doc["checks"][3]["hint"] == wrong.hint
