"""Ingress with real HTTP(S) from `external`, through the lab's nginx controller."""

from __future__ import annotations

import threading

import pytest
from manifests import cluster, wait_until

from netlab import Lab
from netlab.pytest_plugin import shared_lab


def app(name: str, replicas: int = 1) -> str:
    return f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, ports: [{{name: web, containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: web}}]
"""


INGRESSES = """---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: minimal-ingress
  annotations: {nginx.ingress.kubernetes.io/rewrite-target: /}
spec:
  ingressClassName: nginx
  rules:
  - http:
      paths:
      - {path: /testpath, pathType: Prefix, backend: {service: {name: test, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: hosts}
spec:
  tls:
  - hosts: [foo.example.com]
  - hosts: [bar.example.com]
    secretName: missing-secret
  rules:
  - host: foo.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: foo, port: {name: http}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: bar, port: {number: 80}}}}
      - {path: /api/v2, pathType: Prefix, backend: {service: {name: foo, port: {number: 80}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: bar, port: {number: 80}}}}
  - host: bar.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: bar, port: {number: 80}}}}
  - host: "*.wild.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: bar, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fallback}
spec:
  defaultBackend: {service: {name: test, port: {number: 80}}}
  rules:
  - host: broken.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: nothere, port: {number: 80}}}}
      - {path: /p, pathType: Prefix, backend: {service: {name: foo, port: {name: nope}}}}
"""


@pytest.fixture(scope="module")
def lab(request):
    return shared_lab(request, yaml=cluster() + app("test") + app("foo", 2) + app("bar")
                      + INGRESSES, label="ingress")


def by(lab: Lab, url: str) -> str | None:
    r = lab.http(url)
    assert r.status == 200, (url, r.status, r.body, r.error)
    return r.answered_by.split("/")[1].rsplit("-", 2)[0] if r.answered_by else None


def test_minimal_ingress_with_rewrite(lab):
    r = lab.http("http://any.host/testpath/hostname")  # rewritten to /hostname
    assert r.status == 200 and r.body.startswith("test-")
    r = lab.http("http://any.host/testpath")
    assert r.status == 200 and r.seen_headers.get("host") == "any.host"
    info = {i.name: i for i in lab.ingresses()}["minimal-ingress"]
    assert info.address == lab.service("ingress-nginx/ingress-nginx-controller").external_ip


def test_client_address_reaches_the_pod(lab):
    r = lab.http("http://any.host/testpath/")
    assert r.seen_headers["x-forwarded-for"] == "172.18.0.254"
    assert r.seen_headers["x-real-ip"] == "172.18.0.254"
    assert r.seen_client == lab.pod("ingress-nginx/ingress-nginx-controller").ip  # the proxy


def test_hosts_prefix_exact_and_longest_path(lab):
    assert by(lab, "http://foo.example.com/") == "foo"
    assert by(lab, "http://bar.example.com/") == "bar"
    assert by(lab, "http://foo.example.com/api") == "bar"
    assert by(lab, "http://foo.example.com/api/x") == "bar"
    assert by(lab, "http://foo.example.com/apix") == "foo"  # Prefix is element-wise
    assert by(lab, "http://foo.example.com/api/v2/y") == "foo"  # the longest path wins
    assert by(lab, "http://foo.example.com/exact") == "bar"
    assert by(lab, "http://foo.example.com/exact/more") == "foo"  # Exact is exact
    assert by(lab, "http://a.wild.example.com/") == "bar"


def test_default_backend_and_404(lab):
    assert by(lab, "http://unknown.example.com/anything") == "test"  # the defaultBackend
    r = lab.http("http://broken.example.com/")  # backend Service missing: reported, 503
    assert r.status == 503
    problems = {i.name: i for i in lab.ingresses()}["fallback"].problems
    assert any("backend Service 'nothere' not found" in p for p in problems)
    assert any("has no port 'nope'" in p for p in problems)


def test_404_without_default_backend(netlab_lab):
    lab = netlab_lab(yaml=cluster() + app("foo") + """---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: only}
spec:
  rules:
  - host: foo.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: foo, port: {number: 80}}}}
""")
    assert lab.http("http://foo.example.com/").status == 200
    r = lab.http("http://other.example.com/")
    assert r.status == 404 and "default backend - 404" in r.body


def test_tls_with_sni(lab):
    foo = lab.http("https://foo.example.com/")
    assert foo.status == 200 and foo.certificate_names == ["foo.example.com"]
    bar = lab.http("https://bar.example.com/")  # its Secret is missing: self-signed for it
    assert bar.status == 200 and bar.certificate_names == ["bar.example.com"]
    assert foo.answered_by.startswith("default/foo") and bar.answered_by.startswith("default/bar")
    assert any("missing-secret not found" in p
               for p in {i.name: i for i in lab.ingresses()}["hosts"].problems)


def test_policy_admits_only_the_ingress_controller(lab):
    policy = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-from-ingress}
spec:
  podSelector: {matchLabels: {app: bar}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}
      podSelector: {matchLabels: {app.kubernetes.io/name: ingress-nginx}}
"""
    lab.apply(manifests=[policy])
    try:
        assert by(lab, "http://bar.example.com/") == "bar"
        foo_pod = next(p for p in lab.pods("default") if p.labels.get("app") == "foo")
        assert not lab.probe(foo_pod.key, "svc/bar", timeout=0.5).connected
    finally:
        lab.delete(manifests=[policy])


def test_rule_update_without_failed_requests(lab):
    failures: list = []
    done = threading.Event()
    count = [0]

    def hammer() -> None:
        while not done.is_set():
            r = lab.http("http://foo.example.com/api/x", timeout=3)
            count[0] += 1
            if r.status != 200:
                failures.append((r.status, r.error))

    t = threading.Thread(target=hammer)
    t.start()
    try:
        changed = INGRESSES.replace("{path: /api, pathType: Prefix, backend: {service: "
                                    "{name: bar", "{path: /api, pathType: Prefix, backend: "
                                                  "{service: {name: test")
        lab.apply(manifests=[changed])
        # the new rule serves (old workers may finish a request or two)
        assert wait_until(lambda: by(lab, "http://foo.example.com/api/x") == "test", 2)
        lab.apply(manifests=[INGRESSES])
    finally:
        done.set()
        t.join()
    assert count[0] > 10 and not failures, (count[0], failures[:5])
