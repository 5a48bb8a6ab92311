"""Services planned and rendered into nftables, without root: allocation, endpoints, the
golden ruleset of every kind of Service, and partial updates.

Regenerate goldens after an intended change with NETLAB_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netlab.compile import plan_lab as full_plan
from netlab.errors import InputError
from netlab.features.kubeproxy import render_tables, stale_udp_endpoints
from netlab.loader import build, load, read_text
from netlab.model import Cluster

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"


def scenario(extra: str = ""):
    m = load([HERE / "services_scenario.yaml"])
    if extra:
        m = build(read_text((HERE / "services_scenario.yaml").read_text() + extra, "t.yaml"))
    return m


def planned(m, previous=None):
    return full_plan("golden", m, m.cluster or Cluster(), previous)


def test_addresses_and_endpoints():
    plan = planned(scenario())
    s = plan.services
    # lowest free first, by name; .1 is the `kubernetes` Service's, .10 the cluster DNS's
    assert [s[k].cluster_ip for k in ("default/dns", "default/nobody", "default/web")] == \
        ["10.96.0.2", "10.96.0.3", "10.96.0.4"]
    assert s["default/headless"].cluster_ip is None
    assert s["default/search"].cluster_ip is None
    assert s["default/web-np"].ports[0].node_port == 30080
    assert s["default/web-lb"].ports[0].node_port == 30000  # lowest free
    assert s["default/web-lb"].lb_ip == "172.18.0.200"
    # named targetPort resolves per pod: two pods, one name, two numbers
    eps = {(e.pod, e.port) for e in s["default/web"].ports[0].endpoints}
    assert eps == {("default/web-1", 8080), ("default/web-2", 9090)}
    assert s["default/nobody"].ports[0].endpoints == ()
    # ETP Local: announced by a node with a local endpoint
    assert s["default/web-lb"].announcer in ("node-1", "node-2")
    # the responder answers on declared ports and numeric targetPorts
    assert plan.pods["default/dns-1"].serves == (("UDP", 53),)


def test_allocations_are_stable_across_changes():
    first = planned(scenario())
    extra = "---\napiVersion: v1\nkind: Service\nmetadata: {name: aaa}\nspec:\n" \
            "  type: NodePort\n  selector: {app: web}\n  ports: [{port: 1}]\n"
    second = planned(scenario(extra), previous=first)
    for key, svc in first.services.items():
        assert second.services[key].cluster_ip == svc.cluster_ip
        assert [p.node_port for p in second.services[key].ports] == \
            [p.node_port for p in svc.ports]
        assert second.services[key].lb_ip == svc.lb_ip
    new = second.services["default/aaa"]
    assert new.cluster_ip not in {s.cluster_ip for s in first.services.values()}
    assert new.ports[0].node_port == 30002  # web-lb (ETP Local) has 30001 for health checks
    assert first.services["default/web-lb"].health_check_node_port == 30001
    assert second.services["default/web-lb"].health_check_node_port == 30001


@pytest.mark.parametrize(("spec", "message"), [
    ("  clusterIP: 10.200.0.1\n  ports: [{port: 80}]\n", "is not inside serviceCIDR"),
    ("  clusterIP: 10.96.0.1\n  ports: [{port: 80}]\n", "is already allocated"),
    ("  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n",
     "nodePort 30080 is already allocated"),
    ("  type: LoadBalancer\n  loadBalancerIP: 10.0.0.1\n  ports: [{port: 80}]\n",
     "is not in the load balancer pool"),
])
def test_allocation_errors(spec: str, message: str):
    extra = f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: bad}}\nspec:\n{spec}"
    with pytest.raises(InputError, match=message):
        planned(scenario(extra))


@pytest.mark.parametrize("node", ["node-1", "node-2"])
def test_golden_ruleset(node: str):
    plan = planned(scenario())
    text = "".join(t.full() for t in render_tables(plan, plan.node(node)))
    path = GOLDEN / f"services-{node}.nft"
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_ruleset_is_kube_proxy_shaped():
    plan = planned(scenario())
    text = "".join(t.full() for t in render_tables(plan, plan.node("node-1")))
    assert "add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : " \
           "verdict ; }" in text
    assert "numgen random mod 2 vmap" in text
    assert "{ 10.96.0.3 . tcp . 80 : goto reject-chain }" in text  # nobody: no endpoints
    assert "timeout 60s" in text and "update @affinity-" in text
    # ITP Local on node-1, where the DNS pod is not: dropped, not sent across
    assert 'drop comment "default/dns has no local endpoints"' in text
    assert "headless" not in text and "search" not in text


def test_partial_update_touches_only_what_changed():
    m = scenario()
    first = planned(m)
    node = first.node("node-1")
    old = render_tables(first, node)
    assert all(t.diff(o) == "" for t, o in zip(render_tables(first, node), old, strict=True))
    text = (HERE / "services_scenario.yaml").read_text().replace(
        "metadata: {name: nobody}\nspec:\n  selector: {app: nobody}",
        "metadata: {name: nobody}\nspec:\n  selector: {app: dns}")
    second = planned(build(read_text(text, "t.yaml")), previous=first)
    diff = "".join(t.diff(o) for t, o in zip(render_tables(second, node), old, strict=True))
    lines = diff.splitlines()
    assert all("nobody" in line or "no-endpoint-services" in line or "service-ips" in line
               for line in lines), diff
    assert "delete element ip kube-proxy no-endpoint-services { 10.96.0.3 . tcp . 80 }" in lines
    assert not any("web" in line for line in lines)


def test_stale_udp_endpoints_are_those_a_udp_port_no_longer_uses():
    m = scenario()
    first = planned(m)
    dns_ep = (first.pods["default/dns-1"].ip, 53)
    assert stale_udp_endpoints(None, first) == []  # a new lab has nothing to forget
    assert stale_udp_endpoints(first, first) == []
    text = (HERE / "services_scenario.yaml").read_text().replace(
        "metadata: {name: dns-1, labels: {app: dns}}", "metadata: {name: dns-1, labels: {}}")
    second = planned(build(read_text(text, "t.yaml")), previous=first)
    assert stale_udp_endpoints(first, second) == [dns_ep]  # relabelled out of the Service
    # the web pods change too in a TCP-only way: TCP flows break and re-DNAT by themselves
    text = (HERE / "services_scenario.yaml").read_text().replace("app: web}", "app: gone}")
    third = planned(build(read_text(text, "t.yaml")), previous=first)
    assert stale_udp_endpoints(first, third) == []
