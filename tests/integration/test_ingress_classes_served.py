"""IngressClass with real HTTP from `external`: the lab's ingress-nginx serves the Ingresses
of a class whose controller is k8s.io/ingress-nginx, and leaves the others (another
controller's class, the legacy annotation naming another class) to 404, reported."""

from __future__ import annotations

from manifests import cluster

APP = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, ports: [{name: web, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: web}]
"""

CLASSES = """---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: public}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: other}
spec: {controller: example.com/other}
"""


def ingress(name: str, cls: str | None = None, legacy: str | None = None) -> str:
    meta = f"{{name: {name}, annotations: {{kubernetes.io/ingress.class: {legacy}}}}}" \
        if legacy else f"{{name: {name}}}"
    spec = f"  ingressClassName: {cls}\n" if cls else ""
    return f"""---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {meta}
spec:
{spec}  rules:
  - host: {name}.example.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"""


def test_only_the_class_of_ingress_nginx_is_served(netlab_lab):
    lab = netlab_lab(yaml=cluster() + APP + CLASSES + ingress("pub", "public")
                     + ingress("oth", "other") + ingress("leg", legacy="traefik"))
    r = lab.http("http://pub.example.com/")
    assert r.status == 200, (r.status, r.body, r.error)
    assert r.answered_by and r.answered_by.startswith("default/web-")
    for name in ("oth", "leg"):  # nginx has no server for them: its default server's 404
        r = lab.http(f"http://{name}.example.com/")
        assert r.status == 404 and "default backend - 404" in r.body, (name, r.status, r.body)
    infos = {i.name: i for i in lab.ingresses()}
    assert infos["pub"].address and not infos["pub"].problems
    assert infos["oth"].address is None
    assert "IngressClass other is for controller example.com/other" in infos["oth"].problems[0]
    assert infos["leg"].address is None
    assert "kubernetes.io/ingress.class: 'traefik' is not a class this lab serves" in \
        infos["leg"].problems[0]
    classes = {c.name: c for c in lab.ingress_classes()}
    assert classes["public"].served and not classes["other"].served

    # the Ingress moved to the served class is served after apply (nginx reloaded)
    lab.apply(manifests=[ingress("oth", "public")])
    r = lab.http("http://oth.example.com/")
    assert r.status == 200, (r.status, r.body, r.error)
    assert not {i.name: i for i in lab.ingresses()}["oth"].problems
