"""Service fields kube-proxy and the API server act on, without root (issue 17, "Fields"):
spec.externalIPs, spec.loadBalancerSourceRanges, spec.allocateLoadBalancerNodePorts,
spec.healthCheckNodePort (and each node's health check answer), NodePorts on the node's
primary addresses (nftables mode) or on every local address (iptables mode), and
spec.trafficDistribution. Validation as the API server words it (exit 2); the rules as
kube-proxy writes them in both modes (the iptables text against kube-proxy's own test
vectors); planning, views and the agent's side of the health check server."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from netlab.cli.resources import _external
from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.features import kubeproxy, loadbalancer
from netlab.features import kubeproxy_iptables as kpi
from netlab.features.services import endpoint_hints, topology_endpoints
from netlab.intents import Workload
from netlab.loader import build, read_text
from netlab.model import Cluster
from netlab.nft import FakeNft
from netlab.plan import Endpoint, Plan, ServicePlan, ServicePortPlan
from netlab.runtime.agent import workload_from_json, workload_to_json
from netlab.runtime.responder_hub import ResponderHub, plain_opener
from netlab.runtime.workloads import changes
from netlab.views import service_info

CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  dns: false\n"
ZONES = (CLUSTER + "  nodes:\n  - {name: node-1, labels: {topology.kubernetes.io/zone: a}}\n"
         "  - {name: node-2, labels: {topology.kubernetes.io/zone: b}}\n"
         "  - {name: node-3, labels: {topology.kubernetes.io/zone: a}}\n")
DUAL = CLUSTER + "  podCIDR: 10.244.0.0/16,fd00:10:244::/56\n"


def pod(name: str, node: str, app: str = "web") -> str:
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {app}}}}}"
            f"\nspec: {{nodeName: {node}, containers: [{{name: c, image: x, ports: "
            f"[{{containerPort: 8080}}]}}]}}\n")


PODS = pod("web-1", "node-1") + pod("web-2", "node-2")


def svc(name: str, extra: str = "", app: str = "web",
        ports: str = "[{port: 80, targetPort: 8080}]") -> str:
    return (f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
            f"  selector: {{app: {app}}}\n  ports: {ports}\n{extra}")


def compiled(text: str, previous: Plan | None = None):
    return compile_lab("sf", read_text(text, "t.yaml"), previous)


def plan_of(text: str, previous: Plan | None = None) -> Plan:
    return compiled(text, previous).plan


def refused(text: str) -> str:
    with pytest.raises(InputError) as e:
        plan_of(text)
    assert e.value.exit_code == 2
    return str(e.value)


def nft_text(plan: Plan, node: str = "node-1", family: str = "IPv4") -> str:
    table = kubeproxy.render_node(plan, plan.node(node), family)
    text = table.full()
    FakeNft().apply(text)  # it loads
    return text


def ipt_rules(plan: Plan, node: str = "node-1", family: str = "IPv4") -> kpi.Ruleset:
    return kpi.render_node(plan, plan.node(node), family)


# --- validation, as the API server answers ---------------------------------------------------

@pytest.mark.parametrize(("extra", "message"), [
    ("  externalIPs: [not-an-ip]\n", 'spec.externalIPs[0]: Invalid value: "not-an-ip": must '
                                     "be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
    ("  externalIPs: [172.18.0.100, 0.0.0.0]\n",
     'spec.externalIPs[1]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)'),
    ("  externalIPs: [127.0.0.5]\n", 'Invalid value: "127.0.0.5": may not be in the loopback '
                                     "range (127.0.0.0/8, ::1/128)"),
    ("  externalIPs: [169.254.1.1]\n", "may not be in the link-local range (169.254.0.0/16, "
                                       "fe80::/10)"),
    ("  externalIPs: [224.0.0.5]\n", "may not be in the link-local multicast range "
                                     "(224.0.0.0/24, ff02::/10)"),
    ("  loadBalancerSourceRanges: [10.0.0.0/8]\n",
     "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is "
     "'LoadBalancer'"),
    ("  type: LoadBalancer\n  loadBalancerSourceRanges: [10.0.0.0/8, nope]\n",
     'spec.LoadBalancerSourceRanges[1]: Invalid value: "nope": must be a valid CIDR value, '
     "(e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    ("  type: NodePort\n  allocateLoadBalancerNodePorts: false\n",
     "spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is "
     "'LoadBalancer'"),
    ("  type: LoadBalancer\n  healthCheckNodePort: 30500\n",
     "spec.healthCheckNodePort: Invalid value: 30500: may only be set when `type` is "
     "'LoadBalancer' and `externalTrafficPolicy` is 'Local'"),
    ("  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 70000\n",
     "spec.healthCheckNodePort: Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ("  trafficDistribution: Nearby\n",
     'spec.trafficDistribution: Unsupported value: "Nearby": supported values: '
     '"PreferClose", "PreferSameZone", "PreferSameNode"'),
    ("  externalTrafficPolicy: Local\n", 'spec.externalTrafficPolicy: Invalid value: "Local": '
                                         "may only be set for externally-accessible services"),
])
def test_validation_as_the_api_server_words_it(extra: str, message: str):
    with pytest.raises(InputError) as e:
        build(read_text(CLUSTER + svc("s", extra), "t.yaml"))
    assert e.value.exit_code == 2
    assert message in str(e.value)


def test_source_ranges_annotation_and_padding():
    m = build(read_text(CLUSTER + svc("a", "  type: LoadBalancer\n  loadBalancerSourceRanges: "
                                           "[' 203.0.113.5/25', 10.0.0.0/8]\n"), "t.yaml"))
    assert m.services["default/a"].source_ranges == ("203.0.113.5/25", "10.0.0.0/8")
    annotated = svc("b", "  type: LoadBalancer\n").replace(
        "metadata: {name: b}", "metadata: {name: b, annotations: {service.beta.kubernetes.io/"
                               "load-balancer-source-ranges: '10.1.0.0/16, 10.2.0.0/16'}}")
    m = build(read_text(CLUSTER + annotated, "t.yaml"))
    assert m.services["default/b"].source_ranges == ("10.1.0.0/16", "10.2.0.0/16")
    # kube-proxy reads them as parsed CIDRs: the network, not the address written
    plan = plan_of(CLUSTER + PODS + svc("a", "  type: LoadBalancer\n  loadBalancerSourceRanges: "
                                             "[' 203.0.113.5/25']\n"))
    assert plan.services["default/a"].source_ranges == ("203.0.113.0/25",)


def test_fields_are_modelled_not_warned():
    d = compiled(CLUSTER + PODS + svc("a", "  externalIPs: [172.18.0.100]\n")
                 + svc("b", "  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n"
                            "  loadBalancerSourceRanges: [10.0.0.0/8]\n")
                 + svc("c", "  trafficDistribution: PreferSameZone\n"))
    assert not [w for w in d.warnings if "not modelled" in w], d.warnings
    d = compiled(CLUSTER + PODS + svc("c", "  trafficDistribution: PreferClose\n"))
    assert any('"PreferClose" is deprecated; use "PreferSameZone"' in w for w in d.warnings)


def test_external_ips_of_a_headless_service_are_ignored_with_a_warning():
    d = compiled(CLUSTER + PODS + svc("h", "  clusterIP: None\n  externalIPs: [172.18.0.100]\n"))
    assert d.plan.services["default/h"].external_ips == ()
    assert any("spec.externalIPs is ignored for headless services" in w for w in d.warnings)


# --- externalIPs -----------------------------------------------------------------------------

@pytest.mark.parametrize(("ip", "why"), [
    ("10.1.2.3", "is not an address of the lab's underlay (172.18.0.0/24 for IPv4)"),
    ("172.18.0.2", "is node node-1's address"),
    ("172.18.0.254", "is the external host's address"),
    ("172.18.0.1", "is the underlay's gateway"),
    ("172.18.0.210", "is in the load balancer pool"),
    ("172.18.0.255", "is not an address of the lab's underlay"),
    ("2001:db8:18::64", "is an IPv6 address but the Service has no IPv6 family"),
])
def test_external_ips_must_be_free_underlay_addresses(ip: str, why: str):
    message = refused(CLUSTER + PODS + svc("a", f"  externalIPs: ['{ip}']\n"))
    assert "spec.externalIPs[0]" in message and why in message


def test_external_ips_are_held_by_one_node_and_rendered_in_both_modes():
    plan = plan_of(CLUSTER + PODS + svc("a", "  externalIPs: [172.18.0.100]\n")
                   + svc("b", "  externalIPs: [172.18.0.100, 172.18.0.101]\n",
                         ports="[{port: 443, targetPort: 8080}]"))
    a, b = plan.services["default/a"], plan.services["default/b"]
    holder = dict(a.external_announcers)["172.18.0.100"]
    assert holder in ("node-1", "node-2")
    assert dict(b.external_announcers)["172.18.0.100"] == holder  # one node per address
    held = {n.name: [x.cidr for x in loadbalancer.announced(plan, n)] for n in plan.nodes}
    assert sum(cidrs.count("172.18.0.100/32") for cidrs in held.values()) == 1
    assert "172.18.0.100/32" in held[holder]
    assert service_info(a, plan).announced_by == holder
    # nftables: the external IP in service-ips, to the external chain (masquerading)
    text = nft_text(plan)
    ext = kubeproxy._id("external", a, a.ports[0])
    assert f"add element ip kube-proxy service-ips {{ 172.18.0.100 . tcp . 80 : goto {ext} }}" \
        in text
    assert f"add rule ip kube-proxy {ext} jump mark-for-masquerade" in text
    # iptables: "<spn> external IP" in KUBE-SERVICES
    nat = ipt_rules(plan).tables["nat"]["KUBE-SERVICES"]
    assert (f'-A KUBE-SERVICES -m comment --comment "default/a external IP" -m tcp -p tcp '
            f"-d 172.18.0.100 --dport 80 -j {kpi.external_chain(a, a.ports[0])}") in nat


def test_external_ip_with_local_policy_is_held_where_an_endpoint_is():
    plan = plan_of(CLUSTER + pod("web-2", "node-2") + svc(
        "a", "  externalIPs: [172.18.0.100]\n  externalTrafficPolicy: Local\n"))
    assert plan.services["default/a"].external_announcers == (("172.18.0.100", "node-2"),)
    nobody = plan_of(CLUSTER + svc("a", "  externalIPs: [172.18.0.100]\n"
                                        "  externalTrafficPolicy: Local\n", app="none"))
    assert nobody.services["default/a"].external_announcers == (("172.18.0.100", None),)
    # no endpoints: refused on the external IP too (nftables and iptables)
    text = nft_text(nobody)
    assert "add element ip kube-proxy no-endpoint-services { 172.18.0.100 . tcp . 80 : goto " \
           "reject-chain }" in text
    filt = ipt_rules(nobody).tables["filter"]["KUBE-EXTERNAL-SERVICES"]
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/a has no endpoints" -m tcp '
            "-p tcp -d 172.18.0.100 --dport 80 -j REJECT") in filt


def test_external_ipv6_in_the_ip6_table_held_on_eth0():
    plan = plan_of(DUAL + PODS + svc("a", "  ipFamilyPolicy: PreferDualStack\n"
                                          "  externalIPs: [172.18.0.100, '2001:db8:18::64']\n"))
    a = plan.services["default/a"]
    holder = plan.node(dict(a.external_announcers)["2001:db8:18::64"])
    cidrs = {x.cidr: x for x in loadbalancer.announced(plan, holder)}
    assert cidrs["2001:db8:18::64/128"].dev == "eth0" and cidrs["2001:db8:18::64/128"].deprecated
    v6 = nft_text(plan, family="IPv6")
    assert "2001:db8:18::64 . tcp . 80" in v6 and "172.18.0.100" not in v6
    assert "2001:db8:18::64" not in nft_text(plan)
    assert any("-d 2001:db8:18::64 --dport 80" in r
               for r in ipt_rules(plan, family="IPv6").tables["nat"]["KUBE-SERVICES"])


def test_get_svc_shows_external_ips():
    plan = plan_of(CLUSTER + PODS + svc("a", "  externalIPs: [172.18.0.100]\n")
                   + svc("b", "  type: LoadBalancer\n  externalIPs: [172.18.0.101]\n"))
    a, b = (service_info(plan.services[f"default/{n}"], plan) for n in "ab")
    assert a.to_k8s()["spec"]["externalIPs"] == ["172.18.0.100"]
    assert a.to_k8s()["spec"]["externalTrafficPolicy"] == "Cluster"  # externally accessible
    assert _external(a) == "172.18.0.100"
    assert _external(b) == "172.18.0.200,172.18.0.101"  # kubectl: ingress first, then these


# --- loadBalancerSourceRanges ----------------------------------------------------------------

RANGED = svc("lb", "  type: LoadBalancer\n  loadBalancerSourceRanges: [172.18.0.254/32, "
                   "192.0.2.0/24]\n")


def test_source_ranges_in_nftables_filter_before_dnat():
    plan = plan_of(CLUSTER + PODS + RANGED)
    lb = plan.services["default/lb"]
    fw = kubeproxy._id("firewall", lb, lb.ports[0])
    text = nft_text(plan)
    assert f"add rule ip kube-proxy {fw} ip saddr != {{ 172.18.0.254/32, 192.0.2.0/24 }} drop" \
        in text
    assert f"add element ip kube-proxy firewall-ips {{ 172.18.0.200 . tcp . 80 : goto {fw} }}" \
        in text
    assert ("add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority "
            "-110 ; policy accept ; }") in text
    assert "add rule ip kube-proxy filter-prerouting ct state new jump firewall-check" in text
    assert "add rule ip kube-proxy filter-output ct state new jump firewall-check" in text
    # the NodePort is not filtered (kube-proxy: "nodeports are not subject to
    # loadBalancerSourceRanges")
    assert f"tcp . {lb.ports[0].node_port} : goto {kubeproxy._id('external', lb, lb.ports[0])}" \
        in text


def test_source_ranges_holding_the_node_admit_the_load_balancer_address():
    plan = plan_of(CLUSTER + PODS + svc("lb", "  type: LoadBalancer\n  loadBalancerSourceRanges"
                                              ": [172.18.0.0/30]\n"))
    lb = plan.services["default/lb"]
    fw = kubeproxy._id("firewall", lb, lb.ports[0])
    # node-1 (172.18.0.2) is in 172.18.0.0/30, node-2 (.3) too: both admit the VIP as source
    assert f"{fw} ip saddr != {{ 172.18.0.0/30, 172.18.0.200 }} drop" in nft_text(plan)
    other = plan_of(CLUSTER + PODS + svc("lb", "  type: LoadBalancer\n  loadBalancerSourceRanges"
                                               ": [172.18.0.2/32]\n"))
    assert "{ 172.18.0.2/32, 172.18.0.200 }" in nft_text(other, "node-1")
    assert "{ 172.18.0.2/32 }" in nft_text(other, "node-2")
    rules = ipt_rules(other, "node-1").tables["nat"][kpi.firewall_chain(lb, lb.ports[0])]
    assert any("-s 172.18.0.200 -j KUBE-EXT-" in r for r in rules)
    rules = ipt_rules(other, "node-2").tables["nat"][kpi.firewall_chain(lb, lb.ports[0])]
    assert not any("-s 172.18.0.200 " in r for r in rules)


def test_source_ranges_in_iptables_go_through_kube_fw():
    plan = plan_of(CLUSTER + PODS + RANGED)
    lb = plan.services["default/lb"]
    r = ipt_rules(plan)
    fw, ext = kpi.firewall_chain(lb, lb.ports[0]), kpi.external_chain(lb, lb.ports[0])
    assert (f'-A KUBE-SERVICES -m comment --comment "default/lb loadbalancer IP" -m tcp -p tcp '
            f"-d 172.18.0.200 --dport 80 -j {fw}") in r.tables["nat"]["KUBE-SERVICES"]
    assert r.tables["nat"][fw] == [
        f'-A {fw} -m comment --comment "default/lb loadbalancer IP" -s 172.18.0.254/32 -j {ext}',
        f'-A {fw} -m comment --comment "default/lb loadbalancer IP" -s 192.0.2.0/24 -j {ext}',
        f'-A {fw} -m comment --comment "other traffic to default/lb will be dropped by '
        'KUBE-PROXY-FIREWALL"']
    assert r.tables["filter"]["KUBE-PROXY-FIREWALL"] == [
        f'-A KUBE-PROXY-FIREWALL -m comment --comment "default/lb traffic not accepted by {fw}" '
        "-m tcp -p tcp -d 172.18.0.200 --dport 80 -j DROP"]
    assert fw in r.services["default/lb"]  # rewritten with its Service on a partial sync
    # a family without ranges is not filtered (each proxier takes its own family's ranges)
    dual = plan_of(DUAL + PODS + RANGED.replace("  type: LoadBalancer\n", "  type: LoadBalancer"
                                                "\n  ipFamilyPolicy: PreferDualStack\n"))
    v6 = kubeproxy.render_node(dual, dual.node("node-1"), "IPv6")
    assert [c for c in v6.chains if c.startswith("firewall-")] == ["firewall-check"]
    assert not v6.maps["firewall-ips"][1]
    assert not ipt_rules(dual, family="IPv6").tables["filter"]["KUBE-PROXY-FIREWALL"]


# --- allocateLoadBalancerNodePorts -----------------------------------------------------------

def test_no_node_ports_for_a_load_balancer_that_says_so():
    text = CLUSTER + PODS + svc(
        "lb", "  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n",
        ports="[{name: a, port: 80, targetPort: 8080}, {name: b, port: 81, targetPort: 8080, "
              "nodePort: 30555}]")
    plan = plan_of(text)
    lb = plan.services["default/lb"]
    assert [p.node_port for p in lb.ports] == [None, 30555]  # a given one is kept
    assert lb.lb_ip == "172.18.0.200" and lb.allocate_lb_node_ports is False
    info = service_info(lb, plan)
    assert info.to_k8s()["spec"]["allocateLoadBalancerNodePorts"] is False
    assert [p.get("nodePort") for p in info.to_k8s()["spec"]["ports"]] == [None, 30555]
    assert "tcp . 30555" in nft_text(plan) and "172.18.0.200 . tcp . 80" in nft_text(plan)
    default = plan_of(CLUSTER + PODS + svc("lb", "  type: LoadBalancer\n"))
    assert default.services["default/lb"].allocate_lb_node_ports is True
    assert service_info(default.services["default/lb"]).to_k8s()["spec"][
        "allocateLoadBalancerNodePorts"] is True
    assert "allocateLoadBalancerNodePorts" not in service_info(
        plan_of(CLUSTER + PODS + svc("c")).services["default/c"]).to_k8s()["spec"]


def test_turning_allocation_off_keeps_the_ports_it_had_and_on_allocates():
    on = plan_of(CLUSTER + PODS + svc("lb", "  type: LoadBalancer\n"))
    off = plan_of(CLUSTER + PODS + svc("lb", "  type: LoadBalancer\n"
                                             "  allocateLoadBalancerNodePorts: false\n"), on)
    assert off.services["default/lb"].ports[0].node_port == on.services["default/lb"].ports[0] \
        .node_port  # the API server does not release them
    fresh = plan_of(CLUSTER + PODS + svc("lb", "  type: LoadBalancer\n"
                                               "  allocateLoadBalancerNodePorts: false\n"))
    again = plan_of(CLUSTER + PODS + svc("lb", "  type: LoadBalancer\n"
                                               "  allocateLoadBalancerNodePorts: true\n"), fresh)
    assert again.services["default/lb"].ports[0].node_port == 30000


# --- healthCheckNodePort ---------------------------------------------------------------------

LOCAL = "  type: LoadBalancer\n  externalTrafficPolicy: Local\n"


def test_health_check_node_port_is_allocated_from_the_node_port_range():
    plan = plan_of(CLUSTER + PODS + svc("lb", LOCAL) + svc("np", "  type: NodePort\n"))
    lb = plan.services["default/lb"]
    assert lb.ports[0].node_port == 30000 and lb.health_check_node_port == 30001
    assert plan.services["default/np"].ports[0].node_port == 30002  # one allocator
    assert service_info(lb).to_k8s()["spec"]["healthCheckNodePort"] == 30001
    again = plan_of(CLUSTER + PODS + svc("aaa", "  type: NodePort\n") + svc("lb", LOCAL)
                    + svc("np", "  type: NodePort\n"), plan)
    assert again.services["default/lb"].health_check_node_port == 30001  # stable
    cluster = plan_of(CLUSTER + PODS + svc("lb", "  type: LoadBalancer\n"), plan)
    assert cluster.services["default/lb"].health_check_node_port is None  # Cluster: released


@pytest.mark.parametrize(("extra", "previous", "message"), [
    (LOCAL + "  healthCheckNodePort: 80\n", None,
     "spec.healthCheckNodePort: Internal error occurred: failed to allocate requested "
     "HealthCheck NodePort 80: provided port is not in the valid range. The range of valid "
     "ports is 30000-32767"),
    (LOCAL + "  healthCheckNodePort: 30080\n", None,
     "failed to allocate requested HealthCheck NodePort 30080: provided port is already "
     "allocated"),
    (LOCAL + "  healthCheckNodePort: 30600\n", LOCAL + "  healthCheckNodePort: 30500\n",
     "spec.healthCheckNodePort: Forbidden: field is immutable"),
])
def test_health_check_node_port_refusals(extra: str, previous: str | None, message: str):
    taken = svc("aaa", "  type: NodePort\n", ports="[{port: 80, targetPort: 8080, "
                                                   "nodePort: 30080}]")  # (created first)
    before = plan_of(CLUSTER + PODS + taken + svc("lb", previous)) if previous else None
    with pytest.raises(InputError) as e:
        plan_of(CLUSTER + PODS + taken + svc("lb", extra), before)
    assert e.value.exit_code == 2 and message in str(e.value)


def test_a_port_another_service_holds_is_taken():
    before = plan_of(CLUSTER + PODS + svc("lb", LOCAL))  # nodePort 30000, health 30001
    for extra in (LOCAL + "  healthCheckNodePort: 30001\n",
                  "  type: NodePort\n"):
        ports = "[{port: 80, targetPort: 8080, nodePort: 30001}]" if "NodePort" in extra \
            else "[{port: 80, targetPort: 8080}]"
        with pytest.raises(InputError, match="already allocated"):
            plan_of(CLUSTER + PODS + svc("lb", LOCAL) + svc("zz", extra, ports=ports), before)


def test_a_given_health_check_node_port_is_kept():
    plan = plan_of(CLUSTER + PODS + svc("lb", LOCAL + "  healthCheckNodePort: 30500\n"))
    assert plan.services["default/lb"].health_check_node_port == 30500
    kept = plan_of(CLUSTER + PODS + svc("lb", LOCAL), plan)
    assert kept.services["default/lb"].health_check_node_port == 30500


def test_each_node_answers_its_local_endpoints():
    d = compiled(CLUSTER + pod("web-1", "node-1") + pod("web-1b", "node-1") + svc("lb", LOCAL))
    hc = d.plan.services["default/lb"].health_check_node_port
    one, two = d.workloads["node/node-1"].serve, d.workloads["node/node-2"].serve
    assert one is not None and two is not None
    assert one.ports == (f"tcp:{hc}@172.18.0.2",) and one.netns == d.plan.node("node-1").netns
    reply = dict(one.replies)[one.ports[0]]
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK\r\n") and "Content-Type: application/json" in head
    assert "X-Load-Balancing-Endpoint-Weight: 2" in head
    assert json.loads(body) == {"service": {"namespace": "default", "name": "lb"},
                                "localEndpoints": 2, "serviceProxyHealthy": True}
    assert body.startswith('{\n\t"service": {\n\t\t"namespace": "default",')  # Go's dedent
    assert f"Content-Length: {len(body)}\r\n" in head
    reply2 = dict(two.replies)[two.ports[0]]
    assert reply2.startswith("HTTP/1.1 503 Service Unavailable\r\n")
    assert '"localEndpoints": 0' in reply2
    # iptables mode: on every address, and accepted in filter KUBE-NODEPORTS
    d = compiled(CLUSTER + "  proxyMode: iptables\n" + pod("web-1", "node-1") + svc("lb", LOCAL))
    assert d.workloads["node/node-2"].serve.ports == (f"tcp:{hc}",)
    assert ipt_rules(d.plan).tables["filter"]["KUBE-NODEPORTS"] == [
        f'-A KUBE-NODEPORTS -m comment --comment "default/lb health check node port" -m tcp '
        f"-p tcp --dport {hc} -j ACCEPT"]
    assert "serve tcp:" in d.text() and "(health checks, in the agent)" in d.text()


def test_health_checks_in_both_families_of_a_dual_stack_service():
    d = compiled(DUAL + PODS + svc("lb", LOCAL + "  ipFamilyPolicy: PreferDualStack\n"))
    hc = d.plan.services["default/lb"].health_check_node_port
    serve = d.workloads["node/node-1"].serve
    six = d.plan.node("node-1").underlay_ip6
    assert serve.ports == (f"tcp:{hc}@172.18.0.2", f"tcp6:{hc}@{six}")
    assert all("HTTP/1.1 200 OK" in r for _, r in serve.replies)


def test_health_answers_follow_the_endpoints_in_place():
    first = compiled(CLUSTER + pod("web-1", "node-1") + svc("lb", LOCAL))
    moved = compiled(CLUSTER + pod("web-1", "node-2") + svc("lb", LOCAL), first.plan)
    diff = changes(first.workloads, moved.workloads)
    assert "node/node-1" not in diff.unserve and "node/node-2" not in diff.unserve
    served = {s.pod: s for s in diff.serve}
    assert dict(served["node/node-1"].replies).popitem()[1].startswith("HTTP/1.1 503")
    assert dict(served["node/node-2"].replies).popitem()[1].startswith("HTTP/1.1 200")
    # the agent keeps them across a restart
    w = moved.workloads["node/node-2"]
    assert workload_from_json(json.loads(json.dumps(workload_to_json(w)))) == w
    # a port change re-serves
    other = replace(w.serve, ports=("tcp:30999",), replies=(("tcp:30999", "x"),))
    diff = changes({"o": Workload("o", serve=w.serve)}, {"o": Workload("o", serve=other)})
    assert diff.unserve == ["o"] and diff.serve == [other]


@pytest.fixture
def hub() -> Iterator[ResponderHub]:
    h = ResponderHub(opener=plain_opener)
    stop = threading.Event()
    t = threading.Thread(target=h.serve, args=(stop,), daemon=True)
    t.start()
    yield h
    stop.set()
    h.wake()
    t.join(5)
    h.close()


def _ask(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return out


def test_hub_answers_a_fixed_reply_and_updates_it_in_place(hub: ResponderHub):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = f"tcp:{port}@127.0.0.1"
    assert hub.add("node/n", "n", None, [spec], replies={spec: b"HTTP/1.1 503 X\r\n\r\n"}) == \
        [f"listening on tcp/{port}@127.0.0.1"]
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _ask(port, get) == b"HTTP/1.1 503 X\r\n\r\n"
    assert _ask(port, b"hello\n").startswith(b"HTTP/1.1 400 Bad Request")
    hub.add("node/n", "n", None, [spec], replies={spec: b"HTTP/1.1 200 OK\r\n\r\n"})
    assert _ask(port, get) == b"HTTP/1.1 200 OK\r\n\r\n"  # same socket, new answer
    assert hub.ports("node/n") == [spec]


# --- NodePorts on the primary addresses ------------------------------------------------------

def test_node_ports_on_primary_addresses_in_nftables_and_all_local_in_iptables():
    plan = plan_of(CLUSTER + PODS + svc("np", "  type: NodePort\n"))
    text = nft_text(plan, "node-2")
    assert "add element ip kube-proxy nodeport-ips { 172.18.0.3 }" in text
    assert ("add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport "
            "vmap @service-nodeports") in text
    assert ("add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta "
            "l4proto . th dport vmap @no-endpoint-nodeports") in text
    assert "fib daddr type local" not in text
    nat = ipt_rules(plan).tables["nat"]["KUBE-SERVICES"]
    assert nat[-1].endswith("-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS")


# --- trafficDistribution ---------------------------------------------------------------------

def zoned(extra: str = "  trafficDistribution: PreferClose\n", cluster: str = ZONES) -> Plan:
    return plan_of(cluster + pod("web-1", "node-1") + pod("web-2", "node-2")
                   + pod("web-3", "node-3") + svc("s", extra))


def cluster_endpoints_nft(plan: Plan, node: str) -> set[str]:
    s = plan.services["default/s"]
    chain = kubeproxy.render_node(plan, plan.node(node)).chains[
        kubeproxy._id("service", s, s.ports[0])]
    return {ep.pod for ep in s.ports[0].endpoints
            if kubeproxy._ep_chain(s, s.ports[0], ep) in chain[-1]}


def cluster_endpoints_ipt(plan: Plan, node: str) -> set[str]:
    s = plan.services["default/s"]
    rules = ipt_rules(plan, node).tables["nat"][kpi.service_chain(s, s.ports[0])]
    return {ep.pod for ep in s.ports[0].endpoints
            if any(kpi.endpoint_chain(s, s.ports[0], ep) in r for r in rules)}


@pytest.mark.parametrize("render", [cluster_endpoints_nft, cluster_endpoints_ipt])
def test_prefer_close_keeps_each_node_in_its_zone(render):
    plan = zoned()
    s = plan.services["default/s"]
    assert {ep.pod: ep.zone for ep in s.ports[0].endpoints} == {
        "default/web-1": "a", "default/web-2": "b", "default/web-3": "a"}
    assert render(plan, "node-1") == render(plan, "node-3") == {"default/web-1", "default/web-3"}
    assert render(plan, "node-2") == {"default/web-2"}
    same = zoned("  trafficDistribution: PreferSameZone\n")
    assert render(same, "node-2") == {"default/web-2"}
    # without it, every endpoint everywhere
    assert render(zoned(""), "node-2") == {"default/web-1", "default/web-2", "default/web-3"}


@pytest.mark.parametrize("render", [cluster_endpoints_nft, cluster_endpoints_ipt])
def test_prefer_close_falls_back_when_a_zone_has_none_or_a_node_lacks_a_label(render):
    one_zone = plan_of(ZONES + pod("web-1", "node-1") + pod("web-3", "node-3")
                       + svc("s", "  trafficDistribution: PreferClose\n"))
    assert render(one_zone, "node-2") == {"default/web-1", "default/web-3"}  # zone b: none
    assert render(one_zone, "node-1") == {"default/web-1", "default/web-3"}
    unlabelled = ZONES.replace("{name: node-3, labels: {topology.kubernetes.io/zone: a}}",
                               "{name: node-3}")
    plan = zoned(cluster=unlabelled)  # web-3 has no zone: no hints are usable at all
    assert render(plan, "node-2") == {"default/web-1", "default/web-2", "default/web-3"}


@pytest.mark.parametrize("render", [cluster_endpoints_nft, cluster_endpoints_ipt])
def test_prefer_same_node(render):
    plan = zoned("  trafficDistribution: PreferSameNode\n")
    assert render(plan, "node-1") == {"default/web-1"}
    lone = plan_of(ZONES + pod("web-1", "node-1") + pod("web-3", "node-3")
                   + svc("s", "  trafficDistribution: PreferSameNode\n"))
    assert render(lone, "node-2") == {"default/web-1", "default/web-3"}  # none here: all
    assert render(lone, "node-3") == {"default/web-3"}


def test_topology_leaves_local_policy_alone_and_shows_hints():
    plan = zoned("  trafficDistribution: PreferClose\n  internalTrafficPolicy: Local\n")
    s = plan.services["default/s"]
    local = kubeproxy.render_node(plan, plan.node("node-2")).chains[
        kubeproxy._id("local", s, s.ports[0])]
    assert "web-2" not in local[-1] and kubeproxy._ep_chain(
        s, s.ports[0], s.ports[0].endpoints[1]) in local[-1]
    web1 = s.ports[0].endpoints[0]
    assert endpoint_hints(s, web1) == (("a",), ())
    slices = service_info(s, plan).endpoint_slices()
    eps = slices[0].to_k8s()["endpoints"]
    assert eps[0]["zone"] == "a" and eps[0]["hints"] == {"forZones": [{"name": "a"}]}
    assert service_info(s).to_k8s()["spec"]["trafficDistribution"] == "PreferClose"
    node = zoned("  trafficDistribution: PreferSameNode\n")
    eps = service_info(node.services["default/s"], node).endpoint_slices()[0].to_k8s()
    assert eps["endpoints"][1]["hints"] == {"forZones": [{"name": "b"}],
                                            "forNodes": [{"name": "node-2"}]}


def test_no_hints_for_endpoints_without_a_selector():
    s = zoned().services["default/s"]
    manual = replace(s, selector=None)
    eps = s.ports[0].endpoints
    assert topology_endpoints(manual, eps, "node-2", "b") == eps
    assert topology_endpoints(s, eps, "node-2", "b") == (eps[1],)
    assert topology_endpoints(s, eps, "node-2", None) == eps  # this node has no zone
    assert topology_endpoints(s, (), "node-2", "b") == ()
    assert Endpoint("x", "10.0.0.1", "n", 80).zone is None


# --- kube-proxy's own test vectors (iptables) --------------------------------------------------

# TestTracePacket's ruleset (proxier_test.go: TestOverallIPTablesRules' Services): svc2 with
# externalIP 192.168.99.22 and healthCheckNodePort 30000, svc4 with externalIP 192.168.99.33,
# svc5 with loadBalancerSourceRanges 203.0.113.0/25; minus the built-in chains' jumps and the
# KUBE-FIREWALL chain (kubelet's, localhost NodePorts), which netlab does not render.
OVERALL = """
    *filter
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXTERNAL-SERVICES - [0:0]
    :KUBE-FORWARD - [0:0]
    :KUBE-PROXY-FIREWALL - [0:0]
    -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
    -A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
    -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
    -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
    -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
    -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
    COMMIT
    *nat
    :KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]
    :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
    :KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
    :KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
    :KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-NODEPORTS - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
    :KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
    :KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
    :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
    :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
    :KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
    :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
    :KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
    :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
    :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
    -A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK
    -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
    -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS
    -A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ
    -A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
    -A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
    -A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
    -A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
    -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
    -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
    -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
    -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
    -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
    -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
    -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
    -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
    -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
    -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
    -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
    -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
    -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
    COMMIT
"""  # noqa: E501


def _vector(ns: str, name: str, ip: str, endpoints: tuple[tuple[str, str | None], ...] = (),
            node_port: int | None = None, **kw):
    eps = tuple(Endpoint(None, a, n, 80) for a, n in endpoints)
    return ServicePlan(ns, name, kw.pop("type", "ClusterIP"), ip,
                       (ServicePortPlan("p80", "TCP", 80, 80, node_port, eps),), **kw)


def _parse(text: str) -> dict[str, dict[str, list[str]]]:
    tables: dict[str, dict[str, list[str]]] = {}
    t: dict[str, list[str]] = {}
    for line in textwrap.dedent(text).strip().splitlines():
        if line.startswith("*"):
            t = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            t.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            t.setdefault(line.split()[1], []).append(line)
    return tables


def test_overall_rules_with_the_fields_as_kube_proxy_writes_them():
    node = "test-node"
    services = (
        _vector("ns1", "svc1", "172.30.0.41", (("10.180.0.1", None),)),
        _vector("ns2", "svc2", "172.30.0.42", (("10.180.0.2", None),), node_port=3001,
                type="LoadBalancer", lb_ip="1.2.3.4", external_traffic_policy="Local",
                external_ips=("192.168.99.22",), health_check_node_port=30000),
        _vector("ns3", "svc3", "172.30.0.43", (("10.180.0.3", None),), node_port=3003,
                type="NodePort"),
        _vector("ns4", "svc4", "172.30.0.44", (("10.180.0.4", None), ("10.180.0.5", node)),
                type="NodePort", external_ips=("192.168.99.33",)),
        _vector("ns5", "svc5", "172.30.0.45", (("10.180.0.3", None),), node_port=3002,
                type="LoadBalancer", lb_ip="5.6.7.8", source_ranges=("203.0.113.0/25",)),
        _vector("ns6", "svc6", "172.30.0.46"))
    plan = Plan("t", Cluster(pod_cidr="10.0.0.0/8"), [], {}, "",
                services={s.key: s for s in services})
    text = kpi.restore_text(kpi.render_node(plan, node), jumps=False)
    assert _parse(text) == _parse(OVERALL)
