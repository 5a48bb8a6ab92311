"""Dual-stack LoadBalancer addresses, without root, as MetalLB's L2 mode gives them: the
Cluster's loadBalancerPool takes an IPv6 range beside the IPv4 one (default ::c8-::fa of
the underlay's IPv6 range), a LoadBalancer Service with an IPv6 family gets an address from
it (kept across applies), announced by the same node as its IPv4 one but on eth0 as a /128
(Linux answers neighbour solicitations only for addresses on the receiving interface);
kube-proxy's ip6 table maps it like the IPv4 one; `get svc -o json` lists both; a probe
from outside with family IPv6 goes to it."""

from __future__ import annotations

import pytest

from netlab import names, targets
from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.features import kubeproxy, loadbalancer
from netlab.intents import Address
from netlab.loader import build, read_text
from netlab.plan import Plan
from netlab.views import service_info

CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  dns: false\n"
DUAL = CLUSTER + "  podCIDR: 10.244.0.0/16,fd00:10:244::/56\n"
PODS = """---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
"""


def svc(name: str, extra: str = "  ipFamilyPolicy: PreferDualStack\n") -> str:
    return (f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
            f"  type: LoadBalancer\n  selector: {{app: web}}\n"
            f"  ports: [{{port: 80, targetPort: 8080}}]\n{extra}")


def cluster(text: str):
    return build(read_text(text, "c.yaml")).cluster


def plan_of(text: str, previous: Plan | None = None) -> Plan:
    return compile_lab("nldlbu", read_text(text, "t.yaml"), previous).plan


def refused(text: str) -> str:
    with pytest.raises(InputError) as e:
        build(read_text(text, "c.yaml"))
    assert e.value.exit_code == 2
    return str(e.value)


# --- the pool -------------------------------------------------------------------------------

def test_pool_defaults_and_parsing():
    c = cluster(DUAL)
    assert (c.load_balancer_pool, c.load_balancer_pool6) == (
        "172.18.0.200-172.18.0.250", "2001:db8:18::c8-2001:db8:18::fa")
    c = cluster(DUAL + '  loadBalancerPool: "172.18.0.10-172.18.0.20,'
                       '2001:db8:18::100-2001:db8:18:0:0:0:0:1ff"\n')
    assert (c.load_balancer_pool, c.load_balancer_pool6) == (
        "172.18.0.10-172.18.0.20", "2001:db8:18::100-2001:db8:18::1ff")
    only6 = cluster(DUAL + '  loadBalancerPool: "2001:db8:18::10-2001:db8:18::20"\n')
    assert (only6.load_balancer_pool, only6.load_balancer_pool6) == (
        "172.18.0.200-172.18.0.250", "2001:db8:18::10-2001:db8:18::20")
    other = cluster(DUAL + "  underlayCIDR: 172.18.0.0/24,2001:db8:99::/64\n")
    assert other.load_balancer_pool6 == "2001:db8:99::c8-2001:db8:99::fa"  # follows it
    single = cluster(CLUSTER)
    assert single.load_balancer_pool == "172.18.0.200-172.18.0.250"
    assert single.lb_range6() is None


@pytest.mark.parametrize(("pool", "expected"), [
    ("172.18.0.200-172.18.0.250,2001:db8:19::1-2001:db8:19::9",
     "2001:db8:19::1-2001:db8:19::9 must be a range inside underlayCIDR 2001:db8:18::/64"),
    ("172.18.0.200-172.18.0.250,2001:db8:18::fa-2001:db8:18::c8", "must be a range inside"),
    ("172.18.0.200-2001:db8:18::fa", "is not an address range"),
    ("2001:db8:18::1-2001:db8:18::2,2001:db8:18::5-2001:db8:18::6", "has two IPv6 ranges"),
    ("172.18.0.200-172.18.0.250,bogus", "'bogus' is not an address range"),
])
def test_pool_refusals(pool: str, expected: str):
    assert expected in refused(DUAL + f'  loadBalancerPool: "{pool}"\n')


def test_an_ipv6_range_needs_a_dual_stack_cluster():
    assert "is an IPv6 range but podCIDR has none" in refused(
        CLUSTER + '  loadBalancerPool: "172.18.0.200-172.18.0.250,2001:db8:18::1-2001:db8:18::2"\n')


# --- allocation -----------------------------------------------------------------------------

def test_addresses_in_both_families_stable_across_applies():
    first = plan_of(DUAL + PODS + svc("a") + svc("b"))
    a, b = first.services["default/a"], first.services["default/b"]
    assert (a.lb_ip, a.lb_ip6) == ("172.18.0.200", "2001:db8:18::c8")
    assert (b.lb_ip, b.lb_ip6) == ("172.18.0.201", "2001:db8:18::c9")
    assert a.lb_ips == ("172.18.0.200", "2001:db8:18::c8")
    # `a` goes and comes back after `b`: `b` keeps its addresses, `a` takes the free ones
    second = plan_of(DUAL + PODS + svc("b"), first)
    third = plan_of(DUAL + PODS + svc("b") + svc("c"), second)
    assert third.services["default/b"].lb_ip6 == "2001:db8:18::c9"
    assert third.services["default/c"].lb_ip6 == "2001:db8:18::c8"
    # through the state file (JSON) too, and a plan from before lb_ip6 reads as ""
    data = third.to_json()
    again = Plan.from_json(data)
    assert again.services["default/b"].lb_ip6 == "2001:db8:18::c9"
    del data["services"]["default/b"]["lb_ip6"]
    assert Plan.from_json(data).services["default/b"].lb_ip6 == ""


def test_families_of_the_service_decide():
    plan = plan_of(DUAL + PODS + svc("v4", "") + svc("v6", "  ipFamilies: [IPv6]\n")
                   + svc("pinned", "  ipFamilyPolicy: RequireDualStack\n"
                                   "  loadBalancerIP: 2001:db8:18::f0\n"))
    v4, v6, pinned = (plan.services[f"default/{n}"] for n in ("v4", "v6", "pinned"))
    assert (v4.lb_ip, v4.lb_ip6) == ("172.18.0.201", "")  # SingleStack IPv4
    assert v6.lb_ip is None and v6.lb_ip6 == "2001:db8:18::c8" and v6.announcer
    assert (pinned.lb_ip, pinned.lb_ip6) == ("172.18.0.200", "2001:db8:18::f0")
    with pytest.raises(InputError, match="2001:db8:18::1 is not in the load balancer pool"):
        plan_of(DUAL + PODS + svc("x", "  ipFamilyPolicy: PreferDualStack\n"
                                       "  loadBalancerIP: 2001:db8:18::1\n"))
    with pytest.raises(InputError, match="no IPv6 family"):
        plan_of(DUAL + PODS + svc("x", "  loadBalancerIP: 2001:db8:18::c8\n"))
    desired = compile_lab("nldlbu", read_text(DUAL + PODS + svc("a"), "t.yaml"))
    assert not any("IPv4 only" in w for w in desired.warnings)


def test_single_stack_has_no_ipv6_address():
    plan = plan_of(CLUSTER + PODS + svc("a", ""))
    a = plan.services["default/a"]
    assert (a.lb_ip, a.lb_ip6, a.lb_ips) == ("172.18.0.200", "", ("172.18.0.200",))


# --- announcement, kube-proxy, views, probes -------------------------------------------------

def test_the_announcing_node_holds_the_ipv6_address_on_eth0():
    plan = plan_of(DUAL + PODS + svc("a"))
    a = plan.services["default/a"]
    node = plan.node(a.announcer)
    got = loadbalancer.announced(plan, node)
    assert got == [Address(node.netns, "lo", names.INDEX_NODE_LB, "172.18.0.200/32"),
                   Address(node.netns, "eth0", names.INDEX_NODE_ETH0, "2001:db8:18::c8/128",
                           deprecated=True)]
    other = next(n for n in plan.nodes if n.name != a.announcer)
    assert loadbalancer.announced(plan, other) == []
    desired = compile_lab("nldlbu", read_text(DUAL + PODS + svc("a"), "t.yaml"))
    assert desired.to_json()["loadBalancerAddresses"][a.announcer] == [
        "172.18.0.200/32", "2001:db8:18::c8/128"]
    text = desired.text()
    assert "addr add 172.18.0.200/32 dev lo (LoadBalancer; gratuitous ARP on eth0)" in text
    assert ("addr add 2001:db8:18::c8/128 dev eth0 (LoadBalancer; unsolicited neighbour "
            "advertisement on eth0)") in text


def test_etp_local_announcer_has_a_local_endpoint_in_either_family():
    one = PODS.split("---\n")[1]  # only web-1, on node-1
    plan = plan_of(DUAL + "---\n" + one + svc("a", "  ipFamilies: [IPv6]\n"
                                                   "  externalTrafficPolicy: Local\n"))
    assert plan.services["default/a"].announcer == "node-1"


def test_ip6_kube_proxy_maps_the_ipv6_address():
    plan = plan_of(DUAL + PODS + svc("a") + svc("loc", "  ipFamilyPolicy: PreferDualStack\n"
                                                         "  externalTrafficPolicy: Local\n"))
    v4, _, _, v6 = (t.full() for t in kubeproxy.render_tables(plan, plan.node("node-1")))
    a = plan.services["default/a"]
    ext = kubeproxy._id("external", a, a.ports[0])
    assert (f"add element ip6 kube-proxy service-ips {{ 2001:db8:18::c8 . tcp . 80 : "
            f"goto {ext} }}") in v6
    assert "2001:db8:18::c8" not in v4 and "172.18.0.200" not in v6
    # ETP Local: the same external chain as in IPv4 (client address kept, local endpoints)
    loc = plan.services["default/loc"]
    ext_loc = kubeproxy._id("external", loc, loc.ports[0])
    assert f"2001:db8:18::c9 . tcp . 80 : goto {ext_loc}" in v6
    rules = [line.split(ext_loc + " ")[1] for line in v6.splitlines()
             if line.startswith(f"add rule ip6 kube-proxy {ext_loc} ")]
    assert rules == [f"ip6 saddr {plan.cluster.pod_cidr6} goto "
                     f"{kubeproxy._id('service', loc, loc.ports[0])}",  # pods short-circuit
                     "fib saddr type local jump mark-for-masquerade",
                     f"fib saddr type local goto {kubeproxy._id('service', loc, loc.ports[0])}",
                     f"goto {kubeproxy._id('local', loc, loc.ports[0])}"]
    # no endpoints: the IPv6 address rejects like the IPv4 one
    empty = plan_of(DUAL + svc("a"))
    _, _, _, v6e = (t.full() for t in kubeproxy.render_tables(empty, empty.node("node-1")))
    assert "no-endpoint-services { 2001:db8:18::c8 . tcp . 80 : goto reject-chain }" in v6e


def test_get_svc_lists_both_addresses():
    plan = plan_of(DUAL + PODS + svc("a") + svc("v6", "  ipFamilies: [IPv6]\n"))
    info = service_info(plan.services["default/a"], plan)
    assert info.external_ip == "172.18.0.200"  # EXTERNAL-IP: the primary family's
    assert info.to_k8s()["status"]["loadBalancer"]["ingress"] == [
        {"ip": "172.18.0.200", "ipMode": "VIP"}, {"ip": "2001:db8:18::c8", "ipMode": "VIP"}]
    six = service_info(plan.services["default/v6"], plan)
    assert six.external_ip == "2001:db8:18::c9"
    assert six.to_k8s()["status"]["loadBalancer"]["ingress"] == [
        {"ip": "2001:db8:18::c9", "ipMode": "VIP"}]


def test_probe_from_outside_in_ipv6_goes_to_the_ipv6_address():
    plan = plan_of(DUAL + PODS + svc("a") + svc("v4", ""))
    a = targets.parse("svc/a", plan)
    assert targets.destination(plan, a, True, None, None, "IPv6") == (
        "2001:db8:18::c8", 80, "tcp")
    assert targets.destination(plan, a, True, None, None) == ("172.18.0.200", 80, "tcp")
    assert targets.destination(plan, a, True, None, None, "IPv4") == ("172.18.0.200", 80, "tcp")
    assert targets.destination(plan, a, False, None, None, "IPv6")[0].startswith("fd00:10:96::")
    with pytest.raises(InputError, match="has no IPv6 LoadBalancer address"):
        targets.destination(plan, targets.parse("svc/v4", plan), True, None, None, "IPv6")
