"""Gateway API in a lab, pure: which Gateways get a data plane, its pod and Service, the
files compiled for it, and `get`'s view of the objects."""

from __future__ import annotations

from netlab.compile import compile_lab
from netlab.features import gateway
from netlab.gateway.api import parse
from netlab.loader import read_text
from netlab.views.gateways import gateway_api_infos

LAB = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {containers: [{name: c, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: netlab
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: alt, port: 8080, protocol: HTTP, hostname: "*.example.com"}
  - {name: tcp, port: 9000, protocol: TCP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/other}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: theirs, namespace: default}
spec:
  gatewayClassName: other
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"""


def test_a_served_gateway_gets_a_data_plane_behind_a_load_balancer():
    desired = compile_lab("g", read_text(LAB))
    plan = desired.plan
    assert [g.key for g in gateway.served(desired.manifests)] == ["default/gw"]
    pod = plan.pods["netlab-gateway/default-gw"]
    assert "netlab-gateway/default-theirs" not in plan.pods  # another controller's
    svc = plan.services["netlab-gateway/default-gw"]
    assert svc.type == "LoadBalancer" and svc.external_traffic_policy == "Local"
    assert sorted(p.port for p in svc.ports) == [80, 8080]  # TCP listeners: not served
    assert svc.lb_ip
    conf = desired.files["gateway/default-gw/nginx.conf"]
    assert conf.reload is not None and conf.reload.netns == pod.netns
    assert b"proxy_pass http://default-web-80" in conf.data
    assert f"server {plan.pods['default/web'].ip}:8080".encode() in conf.data
    status = gateway.reconciled(plan, desired.manifests).to_status()
    assert status["Gateway default/gw"]["addresses"] == [{"type": "IPAddress",
                                                          "value": svc.lb_ip}]


def _gateway(name: str, namespace: str = "team-a"):
    return parse({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                  "metadata": {"name": name, "namespace": namespace},
                  "spec": {"gatewayClassName": "netlab",
                           "listeners": [{"name": "h", "port": 80, "protocol": "HTTP"}]}},
                 "g.yaml")


def test_pod_names_are_dns_labels():
    assert gateway.pod_name(_gateway("web")) == "team-a-web"
    a, b = gateway.pod_name(_gateway("g" * 60)), gateway.pod_name(_gateway("g" * 61))
    assert len(a) <= 63 and len(b) <= 63 and a != b  # shortened with a hash, still unique
    assert a.startswith("team-a-ggg") and not a.endswith("-")


def test_get_shows_the_builtin_class_and_the_controllers_status():
    docs = read_text(LAB)
    desired = compile_lab("g", docs)
    result = gateway.reconciled(desired.plan, desired.manifests)
    classes = {c.name: c for c in gateway_api_infos("GatewayClass", desired.manifests, docs,
                                                    result, 0.0)}
    assert classes["netlab"].condition("Accepted") == "True"
    assert not classes["other"].served
    gws = {g.name: g for g in gateway_api_infos("Gateway", desired.manifests, docs, result,
                                                0.0, "default")}
    assert gws["gw"].condition("Programmed") == "True" and gws["gw"].addresses
    assert gws["gw"].to_k8s()["status"]["listeners"][2]["conditions"][0]["reason"] == \
        "UnsupportedProtocol"
    assert not gws["theirs"].served and gws["theirs"].problems
    (route,) = gateway_api_infos("HTTPRoute", desired.manifests, docs, result, 0.0)
    assert route.parents == "gw Accepted=True ResolvedRefs=True"


def test_hints_say_what_the_controller_says_about_a_host():
    from netlab.views.gateways import gateway_hints

    broken = LAB.replace("rules: [{backendRefs: [{name: web, port: 80}]}]",
                         "hostnames: [shop.example.com]\n"
                         "  rules: [{backendRefs: [{name: nothing, port: 80}]}]")
    desired = compile_lab("g", read_text(broken))
    result = gateway.reconciled(desired.plan, desired.manifests)
    hints = gateway_hints(result, "default/gw", "shop.example.com")
    assert any(h.startswith("HTTPRoute default/web: ResolvedRefs False (BackendNotFound)")
               for h in hints), hints
    assert any("listener tcp: Accepted False (UnsupportedProtocol)" in h for h in hints), hints
    (other,) = [h for h in gateway_hints(result, "default/gw", "blog.example.com")
                if h.startswith("no HTTPRoute")]
    assert other == ("no HTTPRoute attached to Gateway default/gw is for host "
                     "'blog.example.com' (attached: default/web)")
    assert gateway_hints(result, "default/theirs", "x")[0].startswith(
        "Gateway default/theirs is not served: gatewayClassName 'other'")
