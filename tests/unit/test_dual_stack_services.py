"""Dual-stack Services, without root: spec.ipFamilyPolicy / ipFamilies / clusterIPs
defaulted and validated as kube-apiserver does it (alloc.go initIPFamilyFields,
ValidateServiceClusterIPsRelatedFields, with their messages), IPv6 ClusterIPs allocated
from the IPv6 service range and kept across applies, endpoints per family (selected pods,
EndpointSlices by addressType, Endpoints objects' IPv6 addresses), the `ip6 kube-proxy`
table (golden), NodePorts only in the families a Service has, EndpointSlices and
`get svc -o json` per family.

Regenerate the golden after an intended change with NETLAB_UPDATE_GOLDEN=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.features import kubeproxy
from netlab.loader import build, read_text
from netlab.plan import Plan
from netlab.views import service_info

GOLDEN = Path(__file__).parent / "golden" / "dualstack-kubeproxy6.txt"

DUAL = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  podCIDR: 10.244.0.0/16,fd00:10:244::/56
  dns: false
"""
SINGLE_SERVICES = DUAL + "  serviceCIDR: 10.96.0.0/16\n"  # dual-stack pods, IPv4 Services
SINGLE = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  dns: false
"""
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


def svc(name: str = "s", spec: str = "", selector: str | None = "{app: web}",
        ports: str = "[{port: 80, targetPort: 8080}]") -> str:
    sel = f"  selector: {selector}\n" if selector is not None else ""
    return (f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
            f"{sel}  ports: {ports}\n{spec}")


def plan_of(text: str, previous: Plan | None = None) -> Plan:
    return compile_lab("nldss", read_text(text, "t.yaml"), previous).plan


def refused(text: str) -> InputError:
    with pytest.raises(InputError) as e:
        plan_of(text)
    assert e.value.exit_code == 2
    return e.value


# --- defaulting: (cluster, spec) -> (ipFamilyPolicy, ipFamilies) ---------------------------

HEADLESS = "  clusterIP: None\n"


@pytest.mark.parametrize(("cluster", "spec", "selector", "expected"), [
    (DUAL, "", "{app: web}", ("SingleStack", ("IPv4",))),
    (DUAL, "  ipFamilyPolicy: PreferDualStack\n", "{app: web}",
     ("PreferDualStack", ("IPv4", "IPv6"))),
    (DUAL, "  ipFamilyPolicy: RequireDualStack\n", "{app: web}",
     ("RequireDualStack", ("IPv4", "IPv6"))),
    (DUAL, "  ipFamilies: [IPv6]\n", "{app: web}", ("SingleStack", ("IPv6",))),
    (DUAL, "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv6]\n", "{app: web}",
     ("PreferDualStack", ("IPv6", "IPv4"))),
    (DUAL, "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n", "{app: web}",
     ("RequireDualStack", ("IPv6", "IPv4"))),
    # families inferred from the addresses asked for
    (DUAL, "  clusterIP: fd00:10:96::99\n", "{app: web}", ("SingleStack", ("IPv6",))),
    (DUAL, "  ipFamilyPolicy: PreferDualStack\n  clusterIPs: [fd00:10:96::99, 10.96.0.99]\n",
     "{app: web}", ("PreferDualStack", ("IPv6", "IPv4"))),
    # PreferDualStack on a cluster with one Service family: silently one family
    (SINGLE_SERVICES, "  ipFamilyPolicy: PreferDualStack\n", "{app: web}",
     ("PreferDualStack", ("IPv4",))),
    (SINGLE, "  ipFamilyPolicy: PreferDualStack\n", "{app: web}",
     ("PreferDualStack", ("IPv4",))),
    # headless: with a selector like any Service; without one RequireDualStack and both
    # families, even on a single-stack cluster
    (DUAL, HEADLESS, "{app: web}", ("SingleStack", ("IPv4",))),
    (DUAL, HEADLESS, None, ("RequireDualStack", ("IPv4", "IPv6"))),
    (SINGLE, HEADLESS, None, ("RequireDualStack", ("IPv4", "IPv6"))),
    (SINGLE, HEADLESS + "  ipFamilyPolicy: SingleStack\n", None, ("SingleStack", ("IPv4",))),
    (SINGLE, HEADLESS + "  ipFamilies: [IPv6]\n", None, ("RequireDualStack", ("IPv6", "IPv4"))),
])
def test_policy_and_families_default_as_kube_apiserver_does(cluster, spec, selector, expected):
    s = plan_of(cluster + PODS + svc(spec=spec, selector=selector)).services["default/s"]
    assert (s.ip_family_policy, s.ip_families) == expected
    if not s.headless:
        assert len(s.cluster_ips) == len(s.ip_families)


def test_external_name_has_no_families():
    text = DUAL + svc(spec="  type: ExternalName\n  externalName: example.com\n",
                      selector=None, ports="[]")
    s = plan_of(text).services["default/s"]
    assert (s.ip_family_policy, s.ip_families, s.cluster_ips) == (None, (), ())
    assert "ipFamilies" not in service_info(s).to_k8s()["spec"]
    e = refused(text.replace("type: ExternalName", "type: ExternalName\n  ipFamilies: [IPv4]"))
    assert str(e).endswith("spec.ipFamilies: Forbidden: may not be set for ExternalName "
                           "services")


# --- validation: the API server's messages, with file, object and field ---------------------

@pytest.mark.parametrize(("cluster", "spec", "field", "message"), [
    (SINGLE, "  ipFamilyPolicy: RequireDualStack\n", "spec.ipFamilyPolicy",
     'Invalid value: "RequireDualStack": this cluster is not configured for dual-stack '
     "services"),
    (SINGLE_SERVICES, "  ipFamilies: [IPv6]\n", "spec.ipFamilies[0]",
     'Invalid value: "IPv6": not configured on this cluster'),
    (SINGLE, "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4, IPv6]\n",
     "spec.ipFamilies[1]", 'Invalid value: "IPv6": not configured on this cluster'),
    (SINGLE, "  clusterIP: fd00:10:96::5\n", "spec.clusterIPs[0]",
     'Invalid value: []string{"fd00:10:96::5"}: IPv6 is not configured on this cluster'),
    (DUAL, "  clusterIPs: [10.96.0.50, fd00:10:96::50]\n", "spec.ipFamilyPolicy",
     "Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when "
     "multiple cluster IPs are specified"),
    (DUAL, "  ipFamilies: [IPv4, IPv6]\n", "spec.ipFamilyPolicy",
     "Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when "
     "multiple IP families are specified"),
    # cluster-independent (the loader)
    (DUAL, "  ipFamilies: [IPv4, IPv4]\n  ipFamilyPolicy: PreferDualStack\n",
     "spec.ipFamilies[1]", 'Duplicate value: "IPv4"'),
    (DUAL, "  ipFamilies: [IPv5]\n", "spec.ipFamilies[0]",
     'Unsupported value: "IPv5": supported values: "IPv4", "IPv6"'),
    (DUAL, "  ipFamilyPolicy: DualStack\n", "spec.ipFamilyPolicy",
     'Unsupported value: "DualStack": supported values: "PreferDualStack", '
     '"RequireDualStack", "SingleStack"'),
    (DUAL, "  clusterIP: 10.96.0.50\n  clusterIPs: [10.96.0.51]\n", "spec.clusterIPs",
     'Invalid value: []string{"10.96.0.51"}: first value must match `clusterIP`'),
    (DUAL, "  clusterIPs: [None, 10.96.0.51]\n  ipFamilyPolicy: PreferDualStack\n",
     "spec.clusterIPs",
     "Invalid value: []string{\"None\", \"10.96.0.51\"}: 'None' must be the first and only "
     "value"),
    (DUAL, "  clusterIPs: [10.96.0.50, 10.96.0.51]\n  ipFamilyPolicy: PreferDualStack\n",
     "spec.clusterIPs", 'Invalid value: []string{"10.96.0.50", "10.96.0.51"}: may specify '
                        "no more than one IP for each IP family"),
    (DUAL, "  clusterIPs: [10.96.0.50, fd00:10:96::5, 10.96.0.52]\n"
           "  ipFamilyPolicy: PreferDualStack\n", "spec.clusterIPs",
     'Invalid value: []string{"10.96.0.50", "fd00:10:96::5", "10.96.0.52"}: may only hold '
     "up to 2 values"),
    (DUAL, "  clusterIPs: [10.96.0.50, fd00:10:96::5]\n  ipFamilies: [IPv4, IPv4x]\n",
     "spec.ipFamilies[1]", 'Unsupported value: "IPv4x"'),
    (DUAL, "  clusterIP: fd00:10:96::5\n  ipFamilies: [IPv4]\n", "spec.clusterIPs[0]",
     'Invalid value: "fd00:10:96::5": expected an IPv4 value as indicated by `ipFamilies[0]`'),
    (DUAL, "  clusterIPs: [10.96.0.50, 10.96.0.51x]\n  ipFamilyPolicy: PreferDualStack\n",
     "spec.clusterIPs[1]", 'Invalid value: "10.96.0.51x": must be a valid IP address'),
    # the address itself: in the family's range, not taken
    (DUAL, "  clusterIP: fd00:10:97::5\n", "spec.clusterIP",
     "fd00:10:97::5 is not inside serviceCIDR fd00:10:96::/112"),
    (DUAL, "  ipFamilyPolicy: PreferDualStack\n  clusterIPs: [10.96.0.50, fd00:10:95::5]\n",
     "spec.clusterIPs[1]", "fd00:10:95::5 is not inside serviceCIDR fd00:10:96::/112"),
])
def test_refused_with_the_api_servers_message(cluster, spec, field, message):
    e = refused(cluster + PODS + svc(spec=spec))
    assert e.file.startswith("t.yaml") and e.obj == "Service default/s", (e.file, e.obj)
    assert e.field == field, str(e)
    assert message in e.detail, str(e)


def test_errors_together_in_the_api_servers_order():
    e = refused(SINGLE + PODS + svc(spec="  ipFamilyPolicy: RequireDualStack\n"
                                         "  ipFamilies: [IPv4, IPv6]\n"))
    assert e.detail == (
        '[spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not '
        'configured for dual-stack services, spec.ipFamilies[1]: Invalid value: "IPv6": not '
        "configured on this cluster]")
    assert str(e).startswith("t.yaml:16: Service default/s: [spec.ipFamilyPolicy")


def test_ipv6_cluster_ip_taken_twice():
    text = DUAL + PODS + svc("a", "  clusterIP: fd00:10:96::7\n") + svc(
        "b", "  clusterIP: fd00:10:96::7\n")
    e = refused(text)
    assert e.detail == "fd00:10:96::7 is already allocated to Service default/a"


# --- allocation: lowest free per family, stable across applies ----------------------------

def test_ipv6_cluster_ips_are_allocated_and_kept():
    first = plan_of(DUAL + PODS + svc("m", "  ipFamilyPolicy: PreferDualStack\n")
                    + svc("z", "  ipFamilies: [IPv6]\n"))
    m, z = first.services["default/m"], first.services["default/z"]
    assert (m.cluster_ip, m.cluster_ip6) == ("10.96.0.2", "fd00:10:96::1")
    assert (z.cluster_ip, z.cluster_ip6, z.cluster_ips) == (None, "fd00:10:96::2",
                                                          ("fd00:10:96::2",))
    # a new Service sorting first: the others keep theirs, it takes the lowest free
    again = Plan.from_json(json.loads(json.dumps(first.to_json())))
    second = plan_of(DUAL + PODS + svc("a", "  ipFamilyPolicy: RequireDualStack\n")
                     + svc("m", "  ipFamilyPolicy: PreferDualStack\n")
                     + svc("z", "  ipFamilies: [IPv6]\n"), again)
    s = second.services
    assert (s["default/m"].cluster_ip6, s["default/z"].cluster_ip6) == (
        "fd00:10:96::1", "fd00:10:96::2")
    assert (s["default/a"].cluster_ip, s["default/a"].cluster_ip6) == (
        "10.96.0.3", "fd00:10:96::3")
    # an unset policy on update is the one the Service had (kube-apiserver keeps it)
    third = plan_of(DUAL + PODS + svc("m"), second)
    assert third.services["default/m"].ip_family_policy == "PreferDualStack"
    assert third.services["default/m"].cluster_ip6 == "fd00:10:96::1"
    # SingleStack releases the secondary address; asking again gets the lowest free
    fourth = plan_of(DUAL + PODS + svc("m", "  ipFamilyPolicy: SingleStack\n"), third)
    assert fourth.services["default/m"].cluster_ips == ("10.96.0.2",)


def test_plan_json_round_trip_and_old_plans():
    plan = plan_of(DUAL + PODS + svc("d", "  ipFamilyPolicy: PreferDualStack\n"))
    back = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert back.services == plan.services
    assert hash(back.services["default/d"]) == hash(plan.services["default/d"])
    old = json.loads(json.dumps(plan_of(SINGLE + PODS + svc()).to_json()))
    for s in old["services"].values():  # a plan written before dual-stack Services
        for k in ("ip_families", "ip_family_policy", "cluster_ip6"):
            s.pop(k)
        for p in s["ports"]:
            p.pop("endpoints6")
            p.pop("not_ready6")
    s = Plan.from_json(old).services["default/s"]
    assert (s.ip_families, s.ip_family_policy, s.cluster_ip6) == (("IPv4",), "SingleStack", None)


# --- endpoints per family ------------------------------------------------------------------

def test_endpoints_per_family():
    plan = plan_of(DUAL + PODS + svc("d", "  ipFamilyPolicy: PreferDualStack\n")
                   + svc("six", "  ipFamilies: [IPv6]\n"))
    web1, web2 = plan.pods["default/web-1"], plan.pods["default/web-2"]
    d, six = plan.services["default/d"].ports[0], plan.services["default/six"].ports[0]
    assert [e.ip for e in d.endpoints] == [web1.ip, web2.ip]
    assert [(e.pod, e.ip, e.node, e.port) for e in d.endpoints6] == [
        ("default/web-1", web1.ip6, "node-1", 8080), ("default/web-2", web2.ip6, "node-2", 8080)]
    assert six.endpoints == () and [e.ip for e in six.endpoints6] == [web1.ip6, web2.ip6]
    assert ("TCP", 8080) in plan.pods["default/web-1"].serves


SELECTORLESS = """---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ext-v6, labels: {kubernetes.io/service-name: ext}}
addressType: IPv6
endpoints: [{addresses: ["2001:db8:113::1"]}]
ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ext-v4, labels: {kubernetes.io/service-name: ext}}
addressType: IPv4
endpoints: [{addresses: [203.0.113.1]}]
ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: old}
subsets:
- addresses: [{ip: 203.0.113.2}, {ip: "2001:db8:113::2"}]
  ports: [{name: http, port: 81}]
"""


def test_selectorless_endpoints_by_address_type_and_family():
    ports = "[{name: http, port: 80}]"
    text = DUAL + PODS + SELECTORLESS + svc(
        "ext", "  ipFamilyPolicy: PreferDualStack\n", None, ports) + svc(
        "old", "  ipFamilyPolicy: RequireDualStack\n", None, ports) + svc(
        "ext4", "", None, ports).replace("name: ext4", "name: ext4, labels: {}")
    plan = plan_of(text)
    ext, old = plan.services["default/ext"].ports[0], plan.services["default/old"].ports[0]
    assert [e.ip for e in ext.endpoints] == ["203.0.113.1"]
    assert [e.ip for e in ext.endpoints6] == ["2001:db8:113::1"]
    assert [(e.ip, e.port) for e in old.endpoints] == [("203.0.113.2", 81)]
    assert [(e.ip, e.port) for e in old.endpoints6] == [("2001:db8:113::2", 81)]
    # a SingleStack IPv4 Service does not use an IPv6 slice (no IPv6 proxier has it)
    single = plan_of(DUAL + PODS + SELECTORLESS + svc("ext", "", None, ports))
    assert single.services["default/ext"].ports[0].endpoints6 == ()
    assert single.services["default/ext"].endpoint_objects == ("EndpointSlice ext-v4",)


def test_ipv6_slice_in_a_single_stack_cluster_warns():
    m = build(read_text(SINGLE + SELECTORLESS, "t.yaml"))
    assert any("EndpointSlice default/ext-v6: addressType IPv6 is not used" in w
               for w in m.warnings), m.warnings
    assert not any("addressType IPv6" in w
                   for w in build(read_text(DUAL + SELECTORLESS, "t.yaml")).warnings)


@pytest.mark.parametrize(("address", "message"), [
    ("10.0.0.1", "'10.0.0.1' must be a valid IPv6 address"),
    ("::1", "may not be in the loopback range (::1/128)"),
    ("fe80::1", "may not be in the link-local range (fe80::/10)"),
    ("::", "may not be unspecified (::)"),
])
def test_ipv6_slice_addresses_are_checked(address, message):
    with pytest.raises(InputError) as e:
        build(read_text(DUAL + SELECTORLESS.replace("2001:db8:113::1", address), "t.yaml"))
    assert "EndpointSlice default/ext-v6: endpoints[0].addresses[0].ip" in str(e.value)
    assert message in str(e.value)


# --- kube-proxy: the ip6 table ---------------------------------------------------------------

LAB = DUAL + PODS + svc("dual", "  ipFamilyPolicy: PreferDualStack\n  type: NodePort\n"
                                "  sessionAffinity: ClientIP\n",
                        ports="[{port: 80, targetPort: 8080, nodePort: 30080}]") + svc(
    "six", "  ipFamilies: [IPv6]\n  type: NodePort\n  externalTrafficPolicy: Local\n",
    ports="[{port: 80, targetPort: 8080, nodePort: 30061}]") + svc(
    "four", "  type: NodePort\n", ports="[{port: 80, targetPort: 8080, nodePort: 30041}]") + svc(
    "empty", "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n",
    selector="{app: nothing}", ports="[{port: 53, protocol: UDP}]") + svc(
    "lb", "  ipFamilyPolicy: PreferDualStack\n  type: LoadBalancer\n"
          "  internalTrafficPolicy: Local\n",
    ports="[{port: 443, targetPort: 8080, nodePort: 30443}]")


def test_ip6_table_golden():
    plan = plan_of(LAB)
    tables = kubeproxy.render_tables(plan, plan.node("node-1"))
    assert [t.ref for t in tables] == ["ip kube-proxy", "ip flannel-ipv4", "ip6 flannel-ipv6",
                                       "ip6 kube-proxy"]
    t6 = tables[-1]
    t6.validate()
    tables[0].validate()
    text = t6.full()
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
    # what kube-proxy's IPv6 proxier writes differently
    # NodePorts on the node's primary IPv6 address (--nodeport-addresses primary)
    assert "ip6 daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports" in text
    assert f"add element ip6 kube-proxy nodeport-ips {{ {plan.node('node-1').underlay_ip6} }}" \
        in text
    assert "type ipv6_addr . inet_proto . inet_service : verdict ;" in text
    web1 = plan.pods["default/web-1"].ip6
    assert f"dnat to [{web1}]:8080" in text
    assert f"__{web1.replace(':', '.')}/8080" in text and f"__{web1}/" not in text
    assert "update @affinity-" in text and "{ ip6 saddr }" in text
    assert "ip6 daddr fd00:10:96::/112 drop" in text
    assert 'reject comment "a Service without endpoints"' in text  # ICMPv6 port unreachable


def test_node_ports_only_in_the_services_families():
    plan = plan_of(LAB)
    v4, _, _, v6 = (t.full() for t in kubeproxy.render_tables(plan, plan.node("node-2")))
    assert "tcp . 30080" in v4 and "tcp . 30080" in v6  # PreferDualStack: both tables
    assert "tcp . 30041" in v4 and "tcp . 30041" not in v6  # SingleStack IPv4: not on IPv6
    assert "tcp . 30061" in v6 and "tcp . 30061" not in v4  # IPv6 only
    assert "30443" in v6 and "172.18.0.200" in v4 and "172.18.0.200" not in v6
    # ETP Local on node-2 for `six`: its local endpoint in IPv6
    web1, web2 = (plan.pods[f"default/web-{i}"].ip6.replace(":", ".") for i in (1, 2))
    (local,) = [line for line in v6.splitlines()
                if line.startswith("add rule ip6 kube-proxy local-") and "/six/" in line]
    assert f"__{web2}/8080" in local and web1 not in local


def test_load_balancer_gets_an_address_per_family():
    # (was IPv4 only; tests/unit/test_dual_stack_lb.py covers the IPv6 pool in detail)
    docs = read_text(LAB, "t.yaml")
    desired = compile_lab("nldss", docs)
    lb = desired.plan.services["default/lb"]
    assert lb.lb_ip == "172.18.0.200" and lb.cluster_ip6 and lb.lb_ip6 == "2001:db8:18::c8"
    assert not any("IPv4 only" in w for w in desired.warnings), desired.warnings
    six_lb = plan_of(DUAL + PODS + svc("x", "  ipFamilies: [IPv6]\n  type: LoadBalancer\n"))
    x = six_lb.services["default/x"]
    assert x.lb_ip is None and x.lb_ip6 == "2001:db8:18::c8" and x.announcer


def test_single_stack_clusters_have_no_ip6_table():
    plan = plan_of(SINGLE + PODS + svc())
    assert [t.ref for t in kubeproxy.render_tables(plan, plan.node("node-1"))] == [
        "ip kube-proxy", "ip flannel-ipv4"]


def test_stale_udp_endpoints_in_both_families():
    text = DUAL + PODS + svc("u", "  ipFamilyPolicy: PreferDualStack\n",
                             ports="[{port: 53, targetPort: 8080, protocol: UDP}]")
    first = plan_of(text)
    second = plan_of(text.replace("name: web-2, labels: {app: web}", "name: web-2"), first)
    web2 = first.pods["default/web-2"]
    assert kubeproxy.stale_udp_endpoints(first, second) == [(web2.ip, 8080), (web2.ip6, 8080)]


# --- views: get svc -o json, endpointslices, endpoints ---------------------------------------

def test_views_per_family():
    plan = plan_of(LAB)
    d = service_info(plan.services["default/dual"], plan)
    spec = d.to_k8s()["spec"]
    assert spec["ipFamilies"] == ["IPv4", "IPv6"] and spec["ipFamilyPolicy"] == "PreferDualStack"
    assert spec["clusterIPs"] == [spec["clusterIP"], plan.services["default/dual"].cluster_ip6]
    slices = d.endpoint_slices()
    assert [sl.address_type for sl in slices] == ["IPv4", "IPv6"]
    assert len({sl.name for sl in slices}) == 2 and all(sl.name.startswith("dual-")
                                                        for sl in slices)
    v6 = slices[1].to_k8s()
    assert v6["addressType"] == "IPv6"
    assert [e["addresses"][0] for e in v6["endpoints"]] == [
        plan.pods["default/web-1"].ip6, plan.pods["default/web-2"].ip6]
    # IPv6 primary: CLUSTER-IP is the IPv6 address; Endpoints hold the primary family
    e = service_info(plan.services["default/empty"], plan)
    assert e.cluster_ip == plan.services["default/empty"].cluster_ip6
    assert e.to_k8s()["spec"]["clusterIPs"][0] == e.cluster_ip
    six = service_info(plan.services["default/six"], plan)
    web1 = plan.pods["default/web-1"].ip6
    assert f"[{web1}]:8080" in six.endpoints
    assert six.endpoints_k8s()["subsets"][0]["addresses"][0]["ip"] == web1
    # single-stack names and documents as before
    four = service_info(plan.services["default/four"], plan)
    assert [sl.address_type for sl in four.endpoint_slices()] == ["IPv4"]
    assert four.to_k8s()["spec"]["ipFamilyPolicy"] == "SingleStack"
