"""Messages for people: a Pending pod named as a target (exec, label, ping, logs, probe) says
it is Pending and why (exit status 2), and `Lab.http` without an ingress controller names
each Ingress's class and how it was chosen."""

from __future__ import annotations

import pytest

from netlab import targets
from netlab.errors import InputError, PodNotFoundError
from netlab.loader import build, read_text
from netlab.model import Cluster
from netlab.plan import make_plan
from netlab.views import no_controller_message

PENDING = """apiVersion: v1
kind: Pod
metadata: {name: nowhere}
spec:
  nodeSelector: {disk: ssd}
  containers: [{name: c, image: busybox, command: [sleep, infinity]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: c, image: busybox, command: [sleep, infinity]}]
"""


def test_a_pending_pod_target_says_pending_and_why():
    plan = make_plan("lab", build(read_text(PENDING, "p.yaml")), Cluster())
    assert "default/nowhere" in plan.pending
    for ref in ("nowhere", "default/nowhere", "pod/nowhere"):
        with pytest.raises(targets.PodPendingError) as e:
            targets.pod(plan, ref)
        assert isinstance(e.value, InputError) and isinstance(e.value, PodNotFoundError)
        assert e.value.exit_code == 2
        assert str(e.value).startswith("pod default/nowhere is Pending: 0/2 nodes are "
                                       "available: 2 node(s) didn't match Pod's node")
    # a bare name of a Pending pod is that pod, not a DNS name
    t = targets.parse("nowhere", plan)
    assert t.kind == "pod"
    with pytest.raises(targets.PodPendingError):
        targets.address(plan, t)
    with pytest.raises(targets.PodPendingError):
        targets.netns(plan, t)
    with pytest.raises(targets.PodPendingError):
        targets.destination(plan, t, False, 80, None)
    with pytest.raises(PodNotFoundError) as e:  # no such pod at all: as before
        targets.pod(plan, "ghost")
    assert not isinstance(e.value, InputError) and "no pod 'ghost'" in str(e.value)


ING = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: NAME, ANNOT}
spec:
  CLASS
  rules:
  - host: HOST
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
"""


def ingress(name: str, host: str, cls: str = "", annot: str = "") -> str:
    return "---\n" + ING.replace("NAME", name).replace("HOST", host).replace(
        "  CLASS\n", f"  ingressClassName: {cls}\n" if cls else "").replace(
        ", ANNOT", f", annotations: {{kubernetes.io/ingress.class: {annot}}}" if annot else "")


CLASS = """---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: traefik, annotations: {ingressclass.kubernetes.io/is-default-class: "true"}}
spec: {controller: traefik.io/ingress-controller}
"""


def test_no_controller_names_the_ingress_class_and_how_it_was_chosen():
    m = build(read_text(ingress("a", "a.example", cls="traefik")
                        + ingress("b", "b.example", annot="haproxy")
                        + ingress("c", "c.example") + CLASS, "i.yaml"))
    cluster = Cluster()
    msg = no_controller_message(m, cluster, "a.example")
    assert msg.startswith("the lab has no ingress controller: no Ingress is of a class it "
                          f"serves ({cluster.ingress_class!r}")
    assert "Ingress default/a (class 'traefik' from spec.ingressClassName): " \
           "ingressClassName 'traefik': IngressClass traefik is for controller " \
           "traefik.io/ingress-controller" in msg
    assert "default/b" not in msg  # only the Ingresses for the URL's host
    msg = no_controller_message(m, cluster, "b.example")
    assert "Ingress default/b (class 'haproxy' from the annotation " \
           "kubernetes.io/ingress.class): annotation kubernetes.io/ingress.class" in msg
    msg = no_controller_message(m, cluster, "c.example")
    assert "Ingress default/c (class 'traefik', the default IngressClass): no " \
           "ingressClassName: it gets the default IngressClass traefik" in msg
    every = no_controller_message(m, cluster, "other.example")  # no rule for it: all of them
    assert all(f"default/{n}" in every for n in "abc")
    assert no_controller_message(build([]), cluster).endswith("and the lab has no Ingress")
