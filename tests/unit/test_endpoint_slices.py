"""Endpoints and EndpointSlice objects: loading and validation, Services without a selector
planned from them (port names, readiness, addresses outside the cluster), the kube-proxy
rules that DNAT to those addresses, and the EndpointSlices the lab publishes."""

from __future__ import annotations

import pytest

from netlab.compile import plan_lab
from netlab.errors import InputError
from netlab.features.kubeproxy import render_node
from netlab.loader import build, read_text
from netlab.model import Cluster
from netlab.plan import Endpoint, Plan
from netlab.views import service_info

BASE = """\
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: pg, labels: {app: pg}}
spec:
  nodeName: node-2
  containers: [{name: pg}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  ports: [{name: http, port: 5432, targetPort: 80}]
"""

SLICE = """\
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
- addresses: [203.0.113.1]
"""

ENDPOINTS = """\
---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses: [{ip: 10.244.2.2}]
  notReadyAddresses: [{ip: 198.51.100.7}]
  ports: [{name: http, port: 8080}]
"""


def load(text: str):
    return build(read_text(text, "t.yaml"))


def planned(text: str) -> Plan:
    m = load(text)
    return plan_lab("t", m, m.cluster or Cluster())


def error_of(text: str) -> InputError:
    with pytest.raises(InputError) as e:
        load(text)
    assert e.value.exit_code == 2
    return e.value


# --- loading --------------------------------------------------------------------------------


def test_endpoints_and_slices_are_loaded_not_skipped():
    m = load(BASE + SLICE + ENDPOINTS)
    assert not any("not modelled" in w for w in m.warnings), m.warnings
    s = m.endpoint_slices["default/db-1"]
    assert (s.kind, s.service, s.address_type) == ("EndpointSlice", "db", "IPv4")
    (g,) = s.groups
    assert [(a.ip, a.ready) for a in g.addresses] == [("203.0.113.1", True)]
    assert [(p.name, p.port, p.protocol) for p in g.ports] == [("http", 80, "TCP")]
    e = m.endpoints["default/db"]
    assert e.service == "db"
    assert [(a.ip, a.ready) for a in e.groups[0].addresses] == [("10.244.2.2", True),
                                                                 ("198.51.100.7", False)]


def test_slice_conditions_node_and_target_ref():
    m = load(BASE + SLICE.replace("- addresses: [203.0.113.1]",
                                  "- addresses: [10.0.0.5]\n"
                                  "  conditions: {ready: false, serving: true, "
                                  "terminating: true}\n"
                                  "  nodeName: node-1\n"
                                  "  targetRef: {kind: Pod, namespace: default, name: x}\n"
                                  "  zone: a"))
    (a,) = m.endpoint_slices["default/db-1"].groups[0].addresses
    assert (a.ready, a.serving, a.terminating) == (False, True, True)
    assert a.node_name == "node-1" and a.target_ref == ("Pod", "default", "x")


@pytest.mark.parametrize(("text", "expected"), [
    (SLICE.replace("203.0.113.1", "300.1.1.1"),
     "EndpointSlice default/db-1: endpoints[0].addresses[0].ip: '300.1.1.1' must be a valid IP"),
    (SLICE.replace("203.0.113.1", "127.0.0.1"), "may not be in the loopback range"),
    (SLICE.replace("203.0.113.1", "169.254.1.1"), "may not be in the link-local range"),
    (SLICE.replace("203.0.113.1", "0.0.0.0"), "may not be unspecified"),
    (SLICE.replace("port: 80", "port: 0"), "ports[0].port: 0 is out of range 1-65535"),
    (SLICE.replace("port: 80", "port: 70000"), "70000 is out of range 1-65535"),
    (SLICE.replace("addressType: IPv4", "addressType: IPv5"), "addressType: 'IPv5' is not one"),
    (SLICE.replace("addressType: IPv4\n", ""), "addressType: is required"),
    (SLICE.replace("[203.0.113.1]", "[]"), "endpoints[0].addresses: must contain at least 1"),
    (SLICE.replace("protocol: TCP", "protocol: ICMP"), "protocol: 'ICMP' is not one of"),
    (SLICE.replace("ports: [{name: http, port: 80, protocol: TCP}]",
                   "ports: [{name: http, port: 80}, {name: http, port: 81}]"),
     "ports[1].name: Duplicate value: 'http'"),
    (SLICE.replace("name: http", "name: Http_1"), "is not a valid port name"),
    (ENDPOINTS.replace("10.244.2.2", "10.244.2"), "subsets[0].addresses[0].ip"),
    (ENDPOINTS.replace("[{name: http, port: 8080}]", "[{port: 8080}, {port: 8081}]"),
     "subsets[0].ports[0].name: is required when there is more than one port"),
    (ENDPOINTS.replace("- addresses: [{ip: 10.244.2.2}]\n  notReadyAddresses: "
                       "[{ip: 198.51.100.7}]\n", "- addresses: []\n"),
     "subsets[0]: must specify `addresses` or `notReadyAddresses`"),
    (ENDPOINTS.replace("{ip: 10.244.2.2}", "{ip: 10.244.2.2, nodeName: Node_1}"),
     "nodeName: 'Node_1' is not a valid node name"),
])
def test_validation_errors_name_file_object_field(text: str, expected: str):
    e = error_of(BASE + text)
    assert str(e).startswith("t.yaml:"), str(e)
    assert expected in str(e), str(e)


def test_slice_without_service_label_or_not_ipv4_warns_and_is_not_used():
    m = load(BASE + SLICE.replace("  labels: {kubernetes.io/service-name: db}\n", ""))
    assert any("no label kubernetes.io/service-name" in w and "no Service uses it" in w
               for w in m.warnings), m.warnings
    m6 = load(BASE + SLICE.replace("IPv4", "IPv6").replace("203.0.113.1", "2001:db8::1"))
    assert any("addressType IPv6 is not used" in w for w in m6.warnings)
    for text in (SLICE.replace("  labels: {kubernetes.io/service-name: db}\n", ""),
                 SLICE.replace("IPv4", "FQDN").replace("203.0.113.1", "db.example")):
        assert planned(BASE + text).services["default/db"].ports[0].endpoints == ()


def test_objects_for_a_service_with_a_selector_or_no_service_warn():
    with_selector = BASE.replace("spec:\n  ports: [{name: http",
                                 "spec:\n  selector: {app: pg}\n  ports: [{name: http")
    m = load(with_selector + SLICE)
    assert any("has a selector" in w and "ignored" in w for w in m.warnings), m.warnings
    eps = planned(with_selector + SLICE).services["default/db"].ports[0].endpoints
    assert [e.pod for e in eps] == ["default/pg"]  # the selected pod, not the slice
    m = load(BASE + SLICE.replace("service-name: db", "service-name: nothere"))
    assert any("there is no Service default/nothere" in w for w in m.warnings)


# --- planning -------------------------------------------------------------------------------


def test_selectorless_service_from_a_slice_to_the_internet_host():
    plan = planned(BASE + SLICE)
    svc = plan.services["default/db"]
    assert svc.cluster_ip and svc.endpoint_objects == ("EndpointSlice db-1",)
    assert svc.ports[0].endpoints == (Endpoint(None, "203.0.113.1", None, 80),)
    assert plan.internet_ip == "203.0.113.1"


def test_selectorless_service_from_endpoints_pod_address_is_the_pod():
    pg = planned(BASE).pods["default/pg"]
    plan = planned(BASE + ENDPOINTS.replace("10.244.2.2", pg.ip))
    port = plan.services["default/db"].ports[0]
    assert port.endpoints == (Endpoint("default/pg", pg.ip, "node-2", 8080),)
    assert port.not_ready == (Endpoint(None, "198.51.100.7", None, 8080),)  # notReadyAddresses
    # the pod's responder answers on the port the Endpoints object aims at
    assert ("TCP", 8080) in plan.pods["default/pg"].serves


def test_port_names_must_match_as_kube_proxy_matches_them():
    plan = planned(BASE.replace("name: http, port: 5432", "name: postgres, port: 5432") + SLICE)
    svc = service_info(plan.services["default/db"], plan)
    assert svc.ports[0].endpoints == ()
    assert "a port is matched by its name" in (svc.why_no_endpoints() or "")
    # an unnamed Service port matches an unnamed slice port; the protocol must match too
    unnamed = BASE.replace("{name: http, port: 5432, targetPort: 80}", "{port: 5432}")
    assert planned(unnamed + SLICE.replace("name: http, ", "")).services[
        "default/db"].ports[0].endpoints[0].ip == "203.0.113.1"
    assert planned(BASE + SLICE.replace("TCP", "UDP")).services[
        "default/db"].ports[0].endpoints == ()


def test_not_ready_excluded_slices_merged_and_terminating_fallback():
    two = SLICE.replace("- addresses: [203.0.113.1]",
                        "- addresses: [203.0.113.1]\n- addresses: [172.18.0.9]\n"
                        "  conditions: {ready: false}")
    second = (SLICE.replace("db-1", "db-2").replace("203.0.113.1", "198.51.100.1"))
    port = planned(BASE + two + second).services["default/db"].ports[0]
    assert sorted(e.ip for e in port.endpoints) == ["198.51.100.1", "203.0.113.1"]
    assert {e.ip for e in port.not_ready} == {"172.18.0.9"}
    # the Endpoints object's port is named http too, on 8080: it is merged (another ip:port)
    both = planned(BASE + SLICE + ENDPOINTS).services["default/db"]
    assert {(e.ip, e.port) for e in both.ports[0].endpoints} == {("203.0.113.1", 80),
                                                                  ("10.244.2.2", 8080)}
    assert both.endpoint_objects == ("Endpoints db", "EndpointSlice db-1")
    # no ready endpoint at all: kube-proxy falls back to those serving while terminating
    term = SLICE.replace("- addresses: [203.0.113.1]",
                         "- addresses: [203.0.113.1]\n"
                         "  conditions: {ready: false, serving: true, terminating: true}")
    assert planned(BASE + term).services["default/db"].ports[0].endpoints[0].ip == \
        "203.0.113.1"
    skip = ENDPOINTS.replace("metadata: {name: db}", "metadata: {name: db, labels: "
                             "{endpointslice.kubernetes.io/skip-mirror: 'true'}}")
    assert planned(BASE + skip).services["default/db"].ports[0].endpoints == ()


def test_no_selector_and_no_objects_rejects_and_says_why():
    plan = planned(BASE)
    svc = plan.services["default/db"]
    assert svc.ports[0].endpoints == ()
    assert service_info(svc, plan).why_no_endpoints() == \
        "Service default/db has no selector and no Endpoints/EndpointSlice objects"
    table = render_node(plan, plan.nodes[0])
    assert f"{svc.cluster_ip} . tcp . 5432" in table.maps["no-endpoint-services"][1]
    not_ready = planned(BASE + SLICE.replace("- addresses: [203.0.113.1]",
                                             "- addresses: [203.0.113.1]\n"
                                             "  conditions: {ready: false}"))
    why = service_info(not_ready.services["default/db"], not_ready).why_no_endpoints()
    assert why and "no ready endpoints" in why and "203.0.113.1" in why


# --- kube-proxy rules -------------------------------------------------------------------------


def test_rules_dnat_the_cluster_ip_to_the_outside_address():
    plan = planned(BASE + SLICE)
    svc = plan.services["default/db"]
    table = render_node(plan, plan.nodes[0])
    verdict = table.maps["service-ips"][1][f"{svc.cluster_ip} . tcp . 5432"]
    chain = verdict.removeprefix("goto ")
    ep_chain = next(r for r in table.chains[chain] if r.startswith("goto ")).removeprefix("goto ")
    assert ep_chain.endswith("__203.0.113.1/80")
    assert table.chains[ep_chain][-1] == "meta l4proto tcp dnat to 203.0.113.1:80"
    assert f"{svc.cluster_ip} . tcp . 5432" not in table.maps["no-endpoint-services"][1]


def test_outside_endpoint_is_local_to_no_node():
    local = BASE.replace("spec:\n  ports: [{name: http",
                         "spec:\n  internalTrafficPolicy: Local\n  ports: [{name: http")
    plan = planned(local + SLICE)
    for node in plan.nodes:
        chains = render_node(plan, node).chains
        local_chain = next(c for c in chains if c.startswith("local-"))
        assert chains[local_chain][0].startswith("drop"), chains[local_chain]
    # a nodeName in the slice makes it local to that node, as kube-proxy reads it
    named = planned(local + SLICE.replace("- addresses: [203.0.113.1]",
                                          "- addresses: [203.0.113.1]\n  nodeName: node-1"))
    chains = render_node(named, named.node("node-1")).chains
    local_chain = next(c for c in chains if c.startswith("local-"))
    assert chains[local_chain] == [next(r for r in chains[local_chain])]
    assert chains[local_chain][0].startswith("goto endpoint-")


def test_plan_state_round_trip_keeps_an_endpoint_without_pod():
    plan = planned(BASE + SLICE)
    again = Plan.from_json(plan.to_json())
    assert again.services["default/db"] == plan.services["default/db"]
    assert again.services["default/db"].endpoint_objects == ("EndpointSlice db-1",)
    assert hash(again.services["default/db"]) == hash(plan.services["default/db"])


def test_users_of_endpoints_cope_without_a_pod():
    from pathlib import Path

    from netlab.features import dns, ingress
    from netlab.graph import _id, render_dot
    from netlab.trace import destinations

    plan = planned(BASE + SLICE)
    svc = plan.services["default/db"]
    assert f"{_id('svc', 'default/db')} -> {_id('internet')}" in render_dot(plan)
    by_ip = {plan.internet_ip: "host/internet:eth0"}
    assert destinations(plan, svc.cluster_ip, 5432, by_ip) == {"host/internet:eth0"}
    # headless: the addresses themselves in DNS, as for any Service without a selector
    headless = planned(BASE.replace("spec:\n  ports:", "spec:\n  clusterIP: None\n  ports:")
                       + SLICE)
    zone = dns.render_zone(headless)
    assert zone["a"]["db.default.svc.cluster.local"] == ["203.0.113.1"]
    ingress.render(plan, load(BASE + SLICE), Path("/"))  # upstreams are ip:port: no pod needed


# --- the EndpointSlices the lab publishes ------------------------------------------------------


def test_published_slices_shape():
    plan = planned(BASE + SLICE + """\
---
apiVersion: v1
kind: Service
metadata: {name: pg}
spec:
  selector: {app: pg}
  ports: [{name: sql, port: 5432}]
""")
    pg = service_info(plan.services["default/pg"], plan).endpoint_slices()
    assert len(pg) == 1
    doc = pg[0].to_k8s()
    assert doc["apiVersion"] == "discovery.k8s.io/v1" and doc["kind"] == "EndpointSlice"
    assert doc["metadata"]["name"].startswith("pg-") and len(doc["metadata"]["name"]) == 8
    assert doc["metadata"]["labels"] == {
        "kubernetes.io/service-name": "pg",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert doc["addressType"] == "IPv4"
    assert doc["endpoints"] == [{
        "addresses": [plan.pods["default/pg"].ip],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "nodeName": "node-2", "targetRef": {"kind": "Pod", "namespace": "default",
                                            "name": "pg"}}]
    assert doc["ports"] == [{"name": "sql", "port": 5432, "protocol": "TCP"}]
    (db,) = service_info(plan.services["default/db"], plan).endpoint_slices()
    d = db.to_k8s()
    assert d["endpoints"] == [{"addresses": ["203.0.113.1"], "conditions": {
        "ready": True, "serving": True, "terminating": False}}]  # no pod, no node
    assert d["metadata"]["annotations"] == {"netlab.dev/merged-from": "EndpointSlice db-1"}
    # a Service without a selector and without objects has none; ExternalName neither
    assert service_info(planned(BASE).services["default/db"]).endpoint_slices() == []


def test_get_endpointslices_kind():
    from netlab.cli.resources import kind

    k = kind("endpointslices")
    assert kind("endpointslice") is k and kind("endpointslice.discovery.k8s.io") is k
    assert [c.header for c in k.columns] == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS"]
    plan = planned(BASE + SLICE)
    (sl,) = service_info(plan.services["default/db"], plan).endpoint_slices()
    cells = [c.cell(sl) for c in k.columns]
    assert cells[1:] == ["IPv4", "80", "203.0.113.1"]
