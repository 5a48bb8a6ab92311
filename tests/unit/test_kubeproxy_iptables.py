"""kube-proxy's iptables mode (netlab.features.kubeproxy_iptables), without root.

The test vectors are kube-proxy's own (kubernetes/kubernetes pkg/proxy/iptables/
proxier_test.go): chain names of its known Services (ns1/svc1:p80 -> KUBE-SVC-XPGD46QRK7WJZT7O
...), and the iptables-restore input its tests expect from TestOverallIPTablesRules,
TestInternalTrafficPolicyE2E, TestTerminatingEndpointsTrafficPolicyLocal and
TestSyncProxyRulesRepeated, edited only where netlab does not model a feature (see
`as_netlab_renders`). Then the structure per feature on a compiled lab, partial syncs, the
cleanup, golden files of a reference lab, and (root only, in a throwaway network namespace)
iptables-restore itself.

Regenerate the goldens after an intended change with NETLAB_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from netlab.compile import compile_lab
from netlab.features import kubeproxy_iptables as kpi
from netlab.loader import read_text
from netlab.model import Cluster
from netlab.plan import Endpoint, Plan, ServicePlan, ServicePortPlan

GOLDEN = Path(__file__).parent / "golden"

# --- kube-proxy's test vectors ----------------------------------------------------------------

# (servicePortName, protocol, KUBE-SVC- hash) from proxier_test.go
PORT_VECTORS = [
    ("ns1/svc1:p80", "tcp", "XPGD46QRK7WJZT7O"),
    ("ns2/svc2:p80", "tcp", "GNZBNJ2PO5MGZ6GT"),
    ("ns3/svc3:p80", "tcp", "X27LE4BHSL4DOUIK"),
    ("ns4/svc4:p80", "tcp", "4SW47YFZTEDKD3PK"),
    ("ns5/svc5:p80", "tcp", "NUKIZ6OKUXPJNT4C"),
    ("ns2/svc2:p8080", "tcp", "2VJB64SDSIJUP5T6"),
    ("ns1/svc1", "tcp", "AQI2S6QIMU7PVVRP"),  # an unnamed port: no ":" after the name
]
# (servicePortName, protocol, endpoint, KUBE-SEP- hash) from proxier_test.go
ENDPOINT_VECTORS = [
    ("ns1/svc1:p80", "tcp", "10.180.0.1:80", "SXIVWICOYRO3J4NJ"),
    ("ns2/svc2:p80", "tcp", "10.180.0.2:80", "RS4RBKLTHTF2IUXJ"),
    ("ns3/svc3:p80", "tcp", "10.180.0.3:80", "OYPFS5VJICHGATKP"),
    ("ns4/svc4:p80", "tcp", "10.180.0.4:80", "UKSFD7AGPMPPLUHC"),
    ("ns4/svc4:p80", "tcp", "10.180.0.5:80", "C6EBXVWJJZMIWKLZ"),
    ("ns5/svc5:p80", "tcp", "10.180.0.3:80", "I77PXRDZVX7PMWMN"),
    ("ns1/svc1:p80", "tcp", "10.0.1.1:80", "SNQ3ZNILQDEJNDQO"),
    ("ns1/svc1:p80", "tcp", "10.180.2.1:80", "ZX7GRIZKSNUQ3LAJ"),
    ("ns2/svc2:p8080", "tcp", "10.0.2.1:8080", "UHEGFW77JX3KXTOV"),
    ("ns3/svc3:p80", "tcp", "10.0.3.1:80", "BSWRHOQ77KEXZLNL"),
    ("ns3/svc3:p80", "tcp", "10.0.3.2:80", "DKCFIS26GWF2WLWC"),
    ("ns3/svc3:p80", "tcp", "10.0.3.3:80", "JVVZVJ7BSEPPRNBS"),
    ("ns4/svc4:p80", "tcp", "10.0.4.1:80", "AYCN5HPXMIRJNJXU"),
    ("ns1/svc1", "tcp", "10.0.1.1:80", "3JOIVZTXZZRGORX4"),
    ("ns1/svc1", "tcp", "10.0.1.2:80", "IO5XOSKPAXIFQXAJ"),
    ("ns1/svc1", "tcp", "10.0.1.3:80", "XGJFVO3L2O5SRFNT"),
    ("ns1/svc1", "tcp", "10.0.1.5:80", "EQCHZ7S2PJ72OHAY"),
]

NODE = "test-node"  # proxier_test.go's node; endpoints with NodeName set to it are local
POD_CIDR = "10.0.0.0/8"  # NewFakeProxier's NewDetectLocalByCIDR


def vector_service(ns: str, name: str, ip: str, endpoints: tuple[tuple[str, str | None], ...] = (),
                   port_name: str | None = "p80", port: int = 80, node_port: int | None = None,
                   **kw) -> ServicePlan:
    """A Service as proxier_test.go's makeTestService builds it (TCP, targetPort = port);
    endpoints are (address, node name or None)."""
    eps = tuple(Endpoint(None, addr, node, port) for addr, node in endpoints)
    return ServicePlan(ns, name, kw.pop("type", "ClusterIP"), ip,
                       (ServicePortPlan(port_name, "TCP", port, port, node_port, eps),), **kw)


def vector_plan(*services: ServicePlan) -> Plan:
    return Plan("t", Cluster(pod_cidr=POD_CIDR), [], {}, "",
                services={s.key: s for s in services})


def as_netlab_renders(expected: str) -> str:
    """kube-proxy's expected restore input, minus what its fake proxier has and netlab does not
    model: localhost NodePorts (the KUBE-FIREWALL chain and its rule, `-d 127.0.0.0/8` nfacct
    NodePort rules; without them kube-proxy writes `! -d 127.0.0.0/8` before KUBE-NODEPORTS),
    nfacct counters; and plus `--random-fully`, which the fake iptables does not claim to
    support and a real one does."""
    out = []
    for line in textwrap.dedent(expected).strip().splitlines():
        if "KUBE-FIREWALL " in line or "localhost_nps_accepted_pkts" in line:
            continue
        line = line.replace(" -m nfacct --nfacct-name ct_state_invalid_dropped_pkts", "")
        line = line.replace("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
                            "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS")
        if line.endswith("-j MASQUERADE"):
            line += " --random-fully"
        out.append(line)
    return "\n".join(out) + "\n"


def parse(text: str) -> dict[str, dict]:
    """restore input -> per table: declared chains, rules per chain (in order), deleted
    chains, jump insertions. Order across chains is not kept (kube-proxy's tests sort it)."""
    tables: dict[str, dict] = {}
    t: dict = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            t = tables.setdefault(line[1:], {"chains": set(), "rules": {}, "deleted": set(),
                                             "jumps": []})
        elif line.startswith(":"):
            t["chains"].add(line[1:].split()[0])
        elif line.startswith("-A "):
            t["rules"].setdefault(line.split()[1], []).append(line)
        elif line.startswith("-X "):
            t["deleted"].add(line.split()[1])
        elif line.startswith(("-I ", "-D ")):
            t["jumps"].append(line)
    return tables


def rendered(plan: Plan, old: Plan | None = None, node: str = NODE) -> dict[str, dict]:
    new = kpi.render_node(plan, node)
    before = kpi.render_node(old, node) if old is not None else None
    return parse(kpi.restore_text(new, before, jumps=False))


@pytest.mark.parametrize(("name", "proto", "hash16"), PORT_VECTORS)
def test_port_chain_names_are_kube_proxys(name: str, proto: str, hash16: str):
    assert kpi.port_proto_hash(name, proto) == hash16
    ns, _, rest = name.partition("/")
    svc_name, _, port_name = rest.partition(":")
    svc = vector_service(ns, svc_name, "172.30.0.41", port_name=port_name or None)
    port = svc.ports[0]
    assert kpi.service_port_name(svc, port) == name
    assert kpi.service_chain(svc, port) == "KUBE-SVC-" + hash16
    assert kpi.local_chain(svc, port) == "KUBE-SVL-" + hash16
    assert kpi.external_chain(svc, port) == "KUBE-EXT-" + hash16
    assert kpi.firewall_chain(svc, port) == "KUBE-FW-" + hash16


@pytest.mark.parametrize(("name", "proto", "endpoint", "hash16"), ENDPOINT_VECTORS)
def test_endpoint_chain_names_are_kube_proxys(name: str, proto: str, endpoint: str,
                                              hash16: str):
    assert kpi.endpoint_hash(name, proto, endpoint) == hash16
    ns, _, rest = name.partition("/")
    svc_name, _, port_name = rest.partition(":")
    ip, _, port = endpoint.rpartition(":")
    svc = vector_service(ns, svc_name, "172.30.0.41", ((ip, None),), port_name=port_name or None,
                         port=int(port))
    assert kpi.endpoint_chain(svc, svc.ports[0], svc.ports[0].endpoints[0]) == \
        "KUBE-SEP-" + hash16


def test_names_take_the_protocol_in_lower_case_and_ipv6_endpoints_in_brackets():
    svc = vector_service("ns1", "svc1", "fd00::1", (("fd00:10::5", None),))
    udp = replace(svc, ports=(replace(svc.ports[0], protocol="UDP"),))
    assert kpi.service_chain(udp, udp.ports[0]) == \
        "KUBE-SVC-" + kpi.port_proto_hash("ns1/svc1:p80", "udp")
    ep = svc.ports[0].endpoints[0]
    assert kpi.endpoint_string(ep) == "[fd00:10::5]:80"  # net.JoinHostPort
    assert kpi.endpoint_chain(svc, svc.ports[0], ep) == \
        "KUBE-SEP-" + kpi.endpoint_hash("ns1/svc1:p80", "tcp", "[fd00:10::5]:80")


@pytest.mark.parametrize(("n", "text"), [(1, "1.0000000000"), (2, "0.5000000000"),
                                         (3, "0.3333333333"), (4, "0.2500000000"),
                                         (6, "0.1666666667"), (7, "0.1428571429")])
def test_probability_is_go_percent_0_10f(n: int, text: str):
    assert kpi.probability(n) == text


@pytest.mark.parametrize("count", [2, 3, 4])
def test_statistic_rules_for_n_endpoints(count: int):
    eps = tuple((f"10.0.1.{i}", None) for i in range(1, count + 1))
    plan = vector_plan(vector_service("ns1", "svc1", "172.30.1.1", eps, port_name=None))
    rules = kpi.render_node(plan, NODE).tables["nat"]["KUBE-SVC-AQI2S6QIMU7PVVRP"][1:]
    assert [r.split(" -j ")[0].partition("--probability ")[2] or "last" for r in rules] == \
        [kpi.probability(count - i) for i in range(count - 1)] + ["last"]
    if count == 3:  # TestInternalTrafficPolicyE2E, "internalTrafficPolicy is cluster"
        assert rules == [
            '-A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m '
            'statistic --mode random --probability 0.3333333333 -j KUBE-SEP-3JOIVZTXZZRGORX4',
            '-A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m '
            'statistic --mode random --probability 0.5000000000 -j KUBE-SEP-IO5XOSKPAXIFQXAJ',
            '-A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.3:80" '
            '-j KUBE-SEP-XGJFVO3L2O5SRFNT']


def test_endpoints_in_kube_proxys_order():
    """The endpoints map is sorted by "ip:port" string, whatever order the slice had."""
    plan = vector_plan(vector_service("ns1", "svc1", "172.30.1.1",
                                      (("10.0.1.3", None), ("10.0.1.1", None),
                                       ("10.0.1.2", None), ("10.0.1.1", None))))
    rules = kpi.render_node(plan, NODE).tables["nat"][kpi.service_chain(
        plan.services["ns1/svc1"], plan.services["ns1/svc1"].ports[0])]
    assert [r.split('"')[1] for r in rules[1:]] == [
        "ns1/svc1:p80 -> 10.0.1.1:80", "ns1/svc1:p80 -> 10.0.1.2:80",
        "ns1/svc1:p80 -> 10.0.1.3:80"]


# TestInternalTrafficPolicyE2E (proxier_test.go): Service ns1/svc1, unnamed port 80, ClusterIP
# 172.30.1.1, endpoints 10.0.1.1 on this node, 10.0.1.2 and 10.0.1.3 elsewhere
ITP_CLUSTER = """
    *filter
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXTERNAL-SERVICES - [0:0]
    :KUBE-FIREWALL - [0:0]
    :KUBE-FORWARD - [0:0]
    :KUBE-PROXY-FIREWALL - [0:0]
    -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
    -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    COMMIT
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]
    :KUBE-SEP-IO5XOSKPAXIFQXAJ - [0:0]
    :KUBE-SEP-XGJFVO3L2O5SRFNT - [0:0]
    :KUBE-SVC-AQI2S6QIMU7PVVRP - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j KUBE-SVC-AQI2S6QIMU7PVVRP
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -s 10.0.1.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
    -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -s 10.0.1.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80
    -A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -s 10.0.1.3 -j KUBE-MARK-MASQ
    -A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.3:80
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-3JOIVZTXZZRGORX4
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-IO5XOSKPAXIFQXAJ
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.3:80" -j KUBE-SEP-XGJFVO3L2O5SRFNT
    COMMIT
"""  # noqa: E501
ITP_LOCAL = """
    *filter
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXTERNAL-SERVICES - [0:0]
    :KUBE-FIREWALL - [0:0]
    :KUBE-FORWARD - [0:0]
    :KUBE-PROXY-FIREWALL - [0:0]
    -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
    -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    COMMIT
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]
    :KUBE-SVL-AQI2S6QIMU7PVVRP - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j KUBE-SVL-AQI2S6QIMU7PVVRP
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -s 10.0.1.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
    -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -j KUBE-SEP-3JOIVZTXZZRGORX4
    COMMIT
"""  # noqa: E501
ITP_LOCAL_NONE_HERE = """
    *filter
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXTERNAL-SERVICES - [0:0]
    :KUBE-FIREWALL - [0:0]
    :KUBE-FORWARD - [0:0]
    :KUBE-PROXY-FIREWALL - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1 has no local endpoints" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j DROP
    -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
    -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    COMMIT
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    COMMIT
"""  # noqa: E501


@pytest.mark.parametrize(("policy", "nodes", "expected"), [
    ("Cluster", (NODE, "host1", "host2"), ITP_CLUSTER),
    ("Local", (NODE, "host1", "host2"), ITP_LOCAL),
    ("Local", ("host0", "host1", "host2"), ITP_LOCAL_NONE_HERE),
])
def test_internal_traffic_policy_as_kube_proxy_writes_it(policy, nodes, expected):
    eps = tuple((f"10.0.1.{i}", n) for i, n in enumerate(nodes, 1))
    plan = vector_plan(vector_service("ns1", "svc1", "172.30.1.1", eps, port_name=None,
                                      internal_traffic_policy=policy))
    assert rendered(plan) == parse(as_netlab_renders(expected))


# TestTerminatingEndpointsTrafficPolicyLocal, "ready endpoints exist": a LoadBalancer 1.2.3.4
# with externalTrafficPolicy Local and ClientIP affinity (10800 s); ready endpoints 10.0.1.1
# and 10.0.1.2 here, 10.0.1.5 on host-1 (the test's terminating ones are not in a Plan), its
# healthCheckNodePort 30000.
ETP_LOCAL_AFFINITY = """
    *filter
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXTERNAL-SERVICES - [0:0]
    :KUBE-FIREWALL - [0:0]
    :KUBE-FORWARD - [0:0]
    :KUBE-PROXY-FIREWALL - [0:0]
    -A KUBE-NODEPORTS -m comment --comment "ns1/svc1 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
    -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
    -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    COMMIT
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXT-AQI2S6QIMU7PVVRP - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]
    :KUBE-SEP-EQCHZ7S2PJ72OHAY - [0:0]
    :KUBE-SEP-IO5XOSKPAXIFQXAJ - [0:0]
    :KUBE-SVC-AQI2S6QIMU7PVVRP - [0:0]
    :KUBE-SVL-AQI2S6QIMU7PVVRP - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j KUBE-SVC-AQI2S6QIMU7PVVRP
    -A KUBE-SERVICES -m comment --comment "ns1/svc1 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-AQI2S6QIMU7PVVRP
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-EXT-AQI2S6QIMU7PVVRP -m comment --comment "pod traffic for ns1/svc1 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-AQI2S6QIMU7PVVRP
    -A KUBE-EXT-AQI2S6QIMU7PVVRP -m comment --comment "masquerade LOCAL traffic for ns1/svc1 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
    -A KUBE-EXT-AQI2S6QIMU7PVVRP -m comment --comment "route LOCAL traffic for ns1/svc1 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-AQI2S6QIMU7PVVRP
    -A KUBE-EXT-AQI2S6QIMU7PVVRP -j KUBE-SVL-AQI2S6QIMU7PVVRP
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -s 10.0.1.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m recent --name KUBE-SEP-3JOIVZTXZZRGORX4 --set -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
    -A KUBE-SEP-EQCHZ7S2PJ72OHAY -m comment --comment ns1/svc1 -s 10.0.1.5 -j KUBE-MARK-MASQ
    -A KUBE-SEP-EQCHZ7S2PJ72OHAY -m comment --comment ns1/svc1 -m recent --name KUBE-SEP-EQCHZ7S2PJ72OHAY --set -m tcp -p tcp -j DNAT --to-destination 10.0.1.5:80
    -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -s 10.0.1.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m recent --name KUBE-SEP-IO5XOSKPAXIFQXAJ --set -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m recent --name KUBE-SEP-3JOIVZTXZZRGORX4 --rcheck --seconds 10800 --reap -j KUBE-SEP-3JOIVZTXZZRGORX4
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m recent --name KUBE-SEP-IO5XOSKPAXIFQXAJ --rcheck --seconds 10800 --reap -j KUBE-SEP-IO5XOSKPAXIFQXAJ
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.5:80" -m recent --name KUBE-SEP-EQCHZ7S2PJ72OHAY --rcheck --seconds 10800 --reap -j KUBE-SEP-EQCHZ7S2PJ72OHAY
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-3JOIVZTXZZRGORX4
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-IO5XOSKPAXIFQXAJ
    -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.5:80" -j KUBE-SEP-EQCHZ7S2PJ72OHAY
    -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m recent --name KUBE-SEP-3JOIVZTXZZRGORX4 --rcheck --seconds 10800 --reap -j KUBE-SEP-3JOIVZTXZZRGORX4
    -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m recent --name KUBE-SEP-IO5XOSKPAXIFQXAJ --rcheck --seconds 10800 --reap -j KUBE-SEP-IO5XOSKPAXIFQXAJ
    -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-3JOIVZTXZZRGORX4
    -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -j KUBE-SEP-IO5XOSKPAXIFQXAJ
    COMMIT
"""  # noqa: E501


def test_external_traffic_policy_local_with_affinity_as_kube_proxy_writes_it():
    plan = vector_plan(vector_service(
        "ns1", "svc1", "172.30.1.1", (("10.0.1.1", NODE), ("10.0.1.2", NODE),
                                      ("10.0.1.5", "host-1")),
        port_name=None, type="LoadBalancer", lb_ip="1.2.3.4", external_traffic_policy="Local",
        affinity_timeout=10800, health_check_node_port=30000))
    assert rendered(plan) == parse(as_netlab_renders(ETP_LOCAL_AFFINITY))


# TestOverallIPTablesRules, with svc2's externalIP 192.168.99.22 and healthCheckNodePort,
# svc4's externalIP 192.168.99.33 (so it has no KUBE-EXT- chain: no NodePort, no external
# address) and svc5's loadBalancerSourceRanges (so its loadbalancer IP rule goes to KUBE-EXT-,
# not to a KUBE-FW- chain, and KUBE-PROXY-FIREWALL stays empty) taken out of its Services and
# of the expected text; test_service_fields.py has them, against kube-proxy's text.
OVERALL = """
    *filter
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXTERNAL-SERVICES - [0:0]
    :KUBE-FIREWALL - [0:0]
    :KUBE-FORWARD - [0:0]
    :KUBE-PROXY-FIREWALL - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
    -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
    -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
    -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
    -A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    COMMIT
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
    :KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
    :KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
    :KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
    :KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
    :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
    :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
    :KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
    :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
    :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
    :KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
    :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
    :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
    -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3001 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3003 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-X27LE4BHSL4DOUIK
    -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
    -A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3002 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-NUKIZ6OKUXPJNT4C
    -A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
    -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
    -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
    -A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
    -A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
    -A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
    -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
    -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
    -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
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
    -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN
    -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
    COMMIT
"""  # noqa: E501


def overall_plan() -> Plan:
    return vector_plan(
        vector_service("ns1", "svc1", "172.30.0.41", (("10.180.0.1", None),)),
        vector_service("ns2", "svc2", "172.30.0.42", (("10.180.0.2", None),), node_port=3001,
                       type="LoadBalancer", lb_ip="1.2.3.4", external_traffic_policy="Local"),
        vector_service("ns3", "svc3", "172.30.0.43", (("10.180.0.3", None),), node_port=3003,
                       type="NodePort"),
        vector_service("ns4", "svc4", "172.30.0.44", (("10.180.0.4", None), ("10.180.0.5", NODE)),
                       type="NodePort"),
        vector_service("ns5", "svc5", "172.30.0.45", (("10.180.0.3", None),), node_port=3002,
                       type="LoadBalancer", lb_ip="5.6.7.8", affinity_timeout=10800),
        vector_service("ns6", "svc6", "172.30.0.46"))


def test_overall_rules_as_kube_proxy_writes_them():
    assert rendered(overall_plan()) == parse(as_netlab_renders(OVERALL))


def test_restore_text_orders_chains_and_rules_as_kube_proxy_does():
    """Declarations: the top-level chains first in kube-proxy's order, then each Service's
    own (EXT, SVC, SVL, SEPs); KUBE-SERVICES ends with the KUBE-NODEPORTS rule."""
    text = kpi.restore_text(kpi.render_node(overall_plan(), NODE))
    filt, nat = text.split("COMMIT\n")[:2]
    assert [ln for ln in filt.splitlines() if ln.startswith(":")] == [
        f":{c} - [0:0]" for c in kpi.FILTER_CHAINS]
    declared = [ln[1:].split()[0] for ln in nat.splitlines() if ln.startswith(":")]
    assert declared[:4] == list(kpi.NAT_CHAINS)
    assert declared[4:8] == ["KUBE-SVC-XPGD46QRK7WJZT7O", "KUBE-SEP-SXIVWICOYRO3J4NJ",
                             "KUBE-EXT-GNZBNJ2PO5MGZ6GT", "KUBE-SVC-GNZBNJ2PO5MGZ6GT"]
    services = [ln for ln in nat.splitlines() if ln.startswith("-A KUBE-SERVICES")]
    assert "NOTE: this must be the last rule in this chain" in services[-1]
    assert text.startswith("*filter\n") and text.endswith("COMMIT\n")


# TestSyncProxyRulesRepeated: the nat table kube-proxy writes on each partial sync
REPEATED_NAT = [
    # add ns3/svc3: only its chains are written
    """
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-BSWRHOQ77KEXZLNL - [0:0]
    :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p8080 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 8080 -j KUBE-SVC-2VJB64SDSIJUP5T6
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -A KUBE-SEP-BSWRHOQ77KEXZLNL -m comment --comment ns3/svc3:p80 -s 10.0.3.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-BSWRHOQ77KEXZLNL -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.1:80
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.1:80" -j KUBE-SEP-BSWRHOQ77KEXZLNL
    COMMIT
    """,  # noqa: E501
    # delete ns2/svc2: its chains are flushed and deleted
    """
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-UHEGFW77JX3KXTOV - [0:0]
    :KUBE-SVC-2VJB64SDSIJUP5T6 - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -X KUBE-SEP-UHEGFW77JX3KXTOV
    -X KUBE-SVC-2VJB64SDSIJUP5T6
    COMMIT
    """,  # noqa: E501
    # add ns4/svc4 without endpoints: nothing in nat (a REJECT in filter)
    """
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    COMMIT
    """,  # noqa: E501
    # ns4/svc4 gets an endpoint
    """
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-AYCN5HPXMIRJNJXU - [0:0]
    :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -A KUBE-SEP-AYCN5HPXMIRJNJXU -m comment --comment ns4/svc4:p80 -s 10.0.4.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-AYCN5HPXMIRJNJXU -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.4.1:80
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.0.4.1:80" -j KUBE-SEP-AYCN5HPXMIRJNJXU
    COMMIT
    """,  # noqa: E501
    # ns3/svc3's endpoint changes address: its SVC and SEP chains are rewritten, the old SEP
    # chain deleted
    """
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-BSWRHOQ77KEXZLNL - [0:0]
    :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
    :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -j KUBE-SEP-DKCFIS26GWF2WLWC
    -X KUBE-SEP-BSWRHOQ77KEXZLNL
    COMMIT
    """,  # noqa: E501
    # ns3/svc3 gets a second endpoint
    """
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
    :KUBE-SEP-JVVZVJ7BSEPPRNBS - [0:0]
    :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
    -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -s 10.0.3.3 -j KUBE-MARK-MASQ
    -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.3:80
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-DKCFIS26GWF2WLWC
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.3:80" -j KUBE-SEP-JVVZVJ7BSEPPRNBS
    COMMIT
    """,  # noqa: E501
    # a sync without changes: no Service chain is written
    """
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    COMMIT
    """,  # noqa: E501
]


def test_partial_syncs_write_what_kube_proxy_writes():
    """TestSyncProxyRulesRepeated's steps, each a partial sync over the previous ruleset."""
    svc1 = vector_service("ns1", "svc1", "172.30.0.41", (("10.0.1.1", None),))
    svc2 = vector_service("ns2", "svc2", "172.30.0.42", (("10.0.2.1", None),),
                          port_name="p8080", port=8080)
    svc3 = vector_service("ns3", "svc3", "172.30.0.43", (("10.0.3.1", None),))
    svc4 = vector_service("ns4", "svc4", "172.30.0.44")
    steps = [
        [svc1, svc2],
        [svc1, svc2, svc3],
        [svc1, svc3],
        [svc1, svc3, svc4],
        [svc1, svc3, vector_service("ns4", "svc4", "172.30.0.44", (("10.0.4.1", None),))],
        [svc1, vector_service("ns3", "svc3", "172.30.0.43", (("10.0.3.2", None),)),
         vector_service("ns4", "svc4", "172.30.0.44", (("10.0.4.1", None),))],
        [svc1, vector_service("ns3", "svc3", "172.30.0.43",
                              (("10.0.3.2", None), ("10.0.3.3", None))),
         vector_service("ns4", "svc4", "172.30.0.44", (("10.0.4.1", None),))],
    ]
    steps.append(steps[-1])
    plans = [vector_plan(*s) for s in steps]
    first = rendered(plans[0])
    assert set(first["nat"]["chains"]) >= {"KUBE-SVC-XPGD46QRK7WJZT7O", "KUBE-SEP-SNQ3ZNILQDEJNDQO",
                                           "KUBE-SVC-2VJB64SDSIJUP5T6", "KUBE-SEP-UHEGFW77JX3KXTOV"}
    for old, new, expected in zip(plans[:-1], plans[1:], REPEATED_NAT, strict=True):
        got = rendered(new, old)
        assert got["nat"] == parse(as_netlab_renders(expected))["nat"]
        # the filter table is always written in full
        assert got["filter"] == rendered(new)["filter"]
    filt = rendered(plans[3], plans[2])["filter"]
    assert filt["rules"]["KUBE-SERVICES"] == [
        '-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 has no endpoints" -m tcp -p tcp '
        "-d 172.30.0.44 --dport 80 -j REJECT"]


# --- a compiled lab ---------------------------------------------------------------------------

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  podCIDR: 10.244.0.0/16,fd00:10:244::/56
  dns: false
"""


def pod(name: str, node: str, app: str) -> str:
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {app}}}}}\n"
            f"spec: {{nodeName: {node}, containers: [{{name: c, image: x, ports: "
            f"[{{name: http, containerPort: 8080}}]}}]}}\n")


def service(name: str, spec: str) -> str:
    return f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n{spec}"


PODS = (pod("web-1", "node-1", "web") + pod("web-2", "node-2", "web")
        + pod("web-3", "node-1", "web") + pod("api-1", "node-2", "api"))
SERVICES = {
    # ClusterIP, three endpoints, dual-stack
    "web": "  selector: {app: web}\n  ipFamilyPolicy: PreferDualStack\n"
           "  ports: [{name: http, port: 80, targetPort: http}]\n",
    # NodePort, externalTrafficPolicy Local
    "web-local": "  type: NodePort\n  externalTrafficPolicy: Local\n  selector: {app: web}\n"
                 "  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]\n",
    # LoadBalancer (announced by one node, rules on every node), dual-stack
    "api-lb": "  type: LoadBalancer\n  ipFamilyPolicy: PreferDualStack\n  selector: {app: api}\n"
              "  ports: [{name: https, port: 443, targetPort: 8080, nodePort: 30443}]\n",
    # ClientIP affinity
    "sticky": "  selector: {app: web}\n  sessionAffinity: ClientIP\n"
              "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n"
              "  ports: [{port: 8080}]\n",
    # internalTrafficPolicy Local (its endpoint is on node-2)
    "api-local": "  internalTrafficPolicy: Local\n  selector: {app: api}\n"
                 "  ports: [{port: 81, targetPort: 8080}]\n",
    # no endpoints, NodePort, UDP, dual-stack
    "nobody": "  type: NodePort\n  selector: {app: nobody}\n  ipFamilyPolicy: PreferDualStack\n"
              "  ports: [{port: 53, protocol: UDP, nodePort: 30053}]\n",
}
LAB = CLUSTER + PODS + "".join(service(n, s) for n, s in SERVICES.items())


def plan_of(text: str = LAB, previous: Plan | None = None) -> Plan:
    return compile_lab("nlipt", read_text(text, "t.yaml"), previous).plan


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_of()


def chains_of(plan: Plan, key: str, node: str, family: str = "IPv4") -> dict[str, list[str]]:
    ruleset = kpi.render_node(plan, plan.node(node), family)
    return ruleset.service_chains(key)


def test_cluster_ip(plan: Plan):
    svc = plan.services["default/web"]
    port = svc.ports[0]
    ruleset = kpi.render_node(plan, plan.node("node-1"))
    nat = ruleset.tables["nat"]
    assert (f'-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp '
            f"-d {svc.cluster_ip} --dport 80 -j {kpi.service_chain(svc, port)}"
            ) in nat["KUBE-SERVICES"]
    rules = nat[kpi.service_chain(svc, port)]
    assert rules[0].endswith(f"-d {svc.cluster_ip} --dport 80 ! -s 10.244.0.0/16 "
                             "-j KUBE-MARK-MASQ")  # off-cluster sources masqueraded
    assert [r.count("--probability") for r in rules[1:]] == [1, 1, 0]
    for ep in port.endpoints:
        sep = nat[kpi.endpoint_chain(svc, port, ep)]
        assert sep == [f"-A {kpi.endpoint_chain(svc, port, ep)} -m comment --comment "
                       f"default/web:http -s {ep.ip} -j KUBE-MARK-MASQ",  # hairpin
                       f"-A {kpi.endpoint_chain(svc, port, ep)} -m comment --comment "
                       f"default/web:http -m tcp -p tcp -j DNAT --to-destination {ep.ip}:8080"]
    # the same on every node: no Local policy
    assert chains_of(plan, "default/web", "node-1") == chains_of(plan, "default/web", "node-2")


def test_node_port_external_traffic_policy_local(plan: Plan):
    svc = plan.services["default/web-local"]
    port = svc.ports[0]
    ext, svc_chain, svl = (kpi.external_chain(svc, port), kpi.service_chain(svc, port),
                           kpi.local_chain(svc, port))
    one = kpi.render_node(plan, plan.node("node-1"))
    assert (f"-A KUBE-NODEPORTS -m comment --comment default/web-local -m tcp -p tcp "
            f"--dport 30080 -j {ext}") in one.tables["nat"]["KUBE-NODEPORTS"]
    assert one.tables["nat"][ext] == [
        f'-A {ext} -m comment --comment "pod traffic for default/web-local external '
        f'destinations" -s 10.244.0.0/16 -j {svc_chain}',
        f'-A {ext} -m comment --comment "masquerade LOCAL traffic for default/web-local '
        'external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
        f'-A {ext} -m comment --comment "route LOCAL traffic for default/web-local external '
        f'destinations" -m addrtype --src-type LOCAL -j {svc_chain}',
        f"-A {ext} -j {svl}"]  # outside clients keep their address, local endpoints only
    local = [ep for ep in port.endpoints if ep.node == "node-1"]
    assert len(local) == 2
    assert [r.rsplit(" ", 1)[1] for r in one.tables["nat"][svl]] == [
        kpi.endpoint_chain(svc, port, ep) for ep in sorted(local, key=kpi.endpoint_string)]
    assert not any("KUBE-MARK-MASQ" in r for r in one.tables["nat"][svl])
    # node-2 has one local endpoint: KUBE-SVL- has it alone, no statistic
    two = kpi.render_node(plan, plan.node("node-2")).tables["nat"][svl]
    assert len(two) == 1 and "statistic" not in two[0]


def test_external_traffic_policy_local_without_local_endpoints():
    text = CLUSTER + pod("web-2", "node-2", "web") + service("web-local",
                                                             SERVICES["web-local"])
    plan = plan_of(text)
    svc = plan.services["default/web-local"]
    ruleset = kpi.render_node(plan, plan.node("node-1"))
    ext = kpi.external_chain(svc, svc.ports[0])
    assert all("KUBE-SVL-" not in r for r in ruleset.tables["nat"][ext])  # no fall-through
    assert kpi.local_chain(svc, svc.ports[0]) not in ruleset.tables["nat"]
    assert ruleset.tables["filter"]["KUBE-EXTERNAL-SERVICES"] == [
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web-local has no local '
        'endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP']


def test_load_balancer(plan: Plan):
    svc = plan.services["default/api-lb"]
    port = svc.ports[0]
    assert svc.lb_ip and svc.announcer
    ext = kpi.external_chain(svc, port)
    for node in ("node-1", "node-2"):  # every node's kube-proxy has the rules
        nat = kpi.render_node(plan, plan.node(node)).tables["nat"]
        assert (f'-A KUBE-SERVICES -m comment --comment "default/api-lb:https loadbalancer IP" '
                f"-m tcp -p tcp -d {svc.lb_ip} --dport 443 -j {ext}") in nat["KUBE-SERVICES"]
        assert nat[ext] == [
            f'-A {ext} -m comment --comment "masquerade traffic for default/api-lb:https '
            'external destinations" -j KUBE-MARK-MASQ',
            f"-A {ext} -j {kpi.service_chain(svc, port)}"]
        # KUBE-FW- only with loadBalancerSourceRanges (test_service_fields.py), none here
        assert not any(c.startswith("KUBE-FW-") for c in nat)


def test_internal_traffic_policy_local(plan: Plan):
    svc = plan.services["default/api-local"]
    port = svc.ports[0]
    svl = kpi.local_chain(svc, port)
    one = kpi.render_node(plan, plan.node("node-1"))
    assert one.tables["filter"]["KUBE-SERVICES"][0] == (
        '-A KUBE-SERVICES -m comment --comment "default/api-local has no local endpoints" '
        f"-m tcp -p tcp -d {svc.cluster_ip} --dport 81 -j DROP")
    assert "default/api-local" not in one.services
    two = kpi.render_node(plan, plan.node("node-2"))
    assert (f'-A KUBE-SERVICES -m comment --comment "default/api-local cluster IP" -m tcp -p tcp '
            f"-d {svc.cluster_ip} --dport 81 -j {svl}") in two.tables["nat"]["KUBE-SERVICES"]
    assert list(two.service_chains("default/api-local")) == [
        svl, kpi.endpoint_chain(svc, port, port.endpoints[0])]  # no KUBE-SVC- needed
    assert two.tables["nat"][svl][0].endswith("! -s 10.244.0.0/16 -j KUBE-MARK-MASQ")


def test_client_ip_affinity(plan: Plan):
    svc = plan.services["default/sticky"]
    port = svc.ports[0]
    nat = kpi.render_node(plan, plan.node("node-1")).tables["nat"]
    rules = nat[kpi.service_chain(svc, port)]
    eps = sorted(port.endpoints, key=kpi.endpoint_string)
    for rule, ep in zip(rules[1:4], eps, strict=True):
        sep = kpi.endpoint_chain(svc, port, ep)
        assert rule.endswith(f"-m recent --name {sep} --rcheck --seconds 60 --reap -j {sep}")
    assert all("recent" not in r for r in rules[4:])
    for ep in eps:
        sep = kpi.endpoint_chain(svc, port, ep)
        assert nat[sep][1] == (f"-A {sep} -m comment --comment default/sticky -m recent --name "
                               f"{sep} --set -m tcp -p tcp -j DNAT --to-destination {ep.ip}:8080")


def test_no_endpoints_reject(plan: Plan):
    svc = plan.services["default/nobody"]
    ruleset = kpi.render_node(plan, plan.node("node-1"))
    filt = ruleset.tables["filter"]
    assert ('-A KUBE-SERVICES -m comment --comment "default/nobody has no endpoints" -m udp -p udp '
            f"-d {svc.cluster_ip} --dport 53 -j REJECT") in filt["KUBE-SERVICES"]
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/nobody has no endpoints" '
            "-m addrtype --dst-type LOCAL -m udp -p udp --dport 30053 -j REJECT"
            ) in filt["KUBE-EXTERNAL-SERVICES"]
    assert "default/nobody" not in ruleset.services
    assert not any("default/nobody" in r for r in ruleset.rules("nat"))


def test_top_level_chains_and_masquerade(plan: Plan):
    ruleset = kpi.render_node(plan, plan.node("node-1"))
    nat = ruleset.tables["nat"]
    assert nat["KUBE-POSTROUTING"] == [
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully"]
    assert nat["KUBE-MARK-MASQ"] == ["-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"]
    assert nat["KUBE-SERVICES"][-1] == (
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be '
        'the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 '
        "-j KUBE-NODEPORTS")
    assert ruleset.tables["filter"]["KUBE-FORWARD"][1] == (
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
        "-m mark --mark 0x4000/0x4000 -j ACCEPT")
    assert ruleset.tables["filter"]["KUBE-NODEPORTS"] == []
    assert ruleset.tables["filter"]["KUBE-PROXY-FIREWALL"] == []


def test_jumps_from_the_built_in_chains(plan: Plan):
    text = kpi.restore_text(kpi.render_node(plan, plan.node("node-1")))
    inserts = [ln for ln in text.splitlines() if ln.startswith("-I ")]
    assert inserts[-3:] == [
        '-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING']
    # each inserted first, in iptablesJumpChains' order: INPUT ends up as a real node's
    chain_input = [ln.split(" -j ")[1] for ln in reversed(inserts) if ln.startswith("-I INPUT")]
    assert chain_input == ["KUBE-PROXY-FIREWALL", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES"]
    # a partial sync does not insert them again
    ruleset = kpi.render_node(plan, plan.node("node-1"))
    assert "-I " not in kpi.restore_text(ruleset, ruleset)


def test_ipv6_rules(plan: Plan):
    svc = plan.services["default/web"]
    port = svc.ports[0]
    ruleset = kpi.render_node(plan, plan.node("node-1"), "IPv6")
    nat = ruleset.tables["nat"]
    assert ruleset.family == "IPv6"
    assert nat["KUBE-SERVICES"][-1].endswith(
        "-m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS")
    chain = kpi.service_chain(svc, port)
    assert nat[chain][0] == (f'-A {chain} -m comment --comment "default/web:http cluster IP" '
                             f"-m tcp -p tcp -d {svc.cluster_ip6} --dport 80 "
                             "! -s fd00:10:244::/56 -j KUBE-MARK-MASQ")
    for ep in port.endpoints6:
        sep = "KUBE-SEP-" + kpi.endpoint_hash("default/web:http", "tcp", f"[{ep.ip}]:8080")
        assert nat[sep] == [
            f"-A {sep} -m comment --comment default/web:http -s {ep.ip} -j KUBE-MARK-MASQ",
            f"-A {sep} -m comment --comment default/web:http -m tcp -p tcp -j DNAT "
            f"--to-destination [{ep.ip}]:8080"]
        assert any(f'"default/web:http -> [{ep.ip}]:8080"' in r for r in nat[chain])
    lb = plan.services["default/api-lb"]
    assert any(f"-d {lb.lb_ip6} --dport 443" in r for r in nat["KUBE-SERVICES"])
    assert not any(lb.lb_ip in r for r in ruleset.rules("nat"))
    # single-stack IPv4 Services are not in the ip6tables rules
    for key in ("default/sticky", "default/web-local", "default/api-local"):
        assert key not in ruleset.services
        assert not any(key + " " in r or key + ":" in r for t in kpi.TABLES
                       for r in ruleset.rules(t))
    assert any("-d " + plan.services["default/nobody"].cluster_ip6 in r
               for r in ruleset.tables["filter"]["KUBE-SERVICES"])


def test_large_cluster_mode_drops_endpoint_comments():
    eps = tuple((f"10.1.{i // 250}.{i % 250 + 1}", None) for i in range(1001))
    plan = vector_plan(vector_service("ns1", "svc1", "172.30.1.1", eps))
    nat = kpi.render_node(plan, NODE).tables["nat"]
    svc_rules = nat["KUBE-SVC-XPGD46QRK7WJZT7O"]
    assert "cluster IP" in svc_rules[0]  # the Service's own rules keep theirs
    assert all("comment" not in r for r in svc_rules[1:])
    seps = [c for c in nat if c.startswith("KUBE-SEP-")]
    assert len(seps) == 1001 and all("comment" not in r for r in nat[seps[0]])


# --- syncing and cleaning up ------------------------------------------------------------------

def test_partial_sync_rewrites_only_the_changed_service(plan: Plan):
    changed = LAB.replace("timeoutSeconds: 60", "timeoutSeconds: 120")
    after = plan_of(changed, plan)
    old = kpi.render_node(plan, plan.node("node-1"))
    new = kpi.render_node(after, after.node("node-1"))
    assert kpi.changed_services(new, old) == ["default/sticky"]
    text = kpi.restore_text(new, old)
    nat = parse(text)["nat"]
    sticky = set(new.services["default/sticky"])
    assert nat["chains"] == set(kpi.NAT_CHAINS) | sticky
    assert set(nat["rules"]) <= set(kpi.NAT_CHAINS) | sticky
    assert all("--seconds 120" in r for r in nat["rules"][kpi.service_chain(
        after.services["default/sticky"], after.services["default/sticky"].ports[0])][1:4])
    assert not nat["deleted"] and not nat["jumps"]
    assert parse(text)["filter"] == parse(kpi.restore_text(new, jumps=False))["filter"]
    # a Service deleted: its chains are flushed and deleted, nothing else is written
    gone = plan_of(LAB.replace(service("sticky", SERVICES["sticky"]), ""), plan)
    newer = kpi.render_node(gone, gone.node("node-1"))
    nat = parse(kpi.restore_text(newer, old))["nat"]
    assert nat["deleted"] == sticky and nat["chains"] == set(kpi.NAT_CHAINS) | sticky
    assert set(nat["rules"]) <= set(kpi.NAT_CHAINS)
    # nothing changed: the top-level chains only
    assert parse(kpi.restore_text(old, old))["nat"]["chains"] == set(kpi.NAT_CHAINS)
    with pytest.raises(ValueError, match="IPv6"):
        kpi.restore_text(kpi.render_node(plan, plan.node("node-1"), "IPv6"), old)


def test_cleanup_from_the_ruleset(plan: Plan):
    ruleset = kpi.render_node(plan, plan.node("node-1"))
    tables = parse(kpi.cleanup_text(ruleset))
    for table in kpi.TABLES:
        assert tables[table]["chains"] == tables[table]["deleted"] == set(
            ruleset.tables[table])
        assert tables[table]["jumps"] == [f"-D {c} {r}" for t, c, r in kpi.JUMPS if t == table]
        assert not tables[table]["rules"]


SAVED = """# Generated by iptables-save v1.8.9 (nf_tables)
*mangle
:PREROUTING ACCEPT [0:0]
:KUBE-PROXY-CANARY - [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-SERVICES - [0:0]
:MINE - [0:0]
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -j MINE
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -o eth0 -j MASQUERADE
-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
COMMIT
"""  # noqa: E501


def test_cleanup_from_iptables_save_output():
    """CleanupLeftovers hunts kube-proxy's chains in iptables-save output: only those, and
    only the built-in chains' rules that jump to one of them, go."""
    assert kpi.cleanup_text(SAVED) == textwrap.dedent("""\
        *filter
        :KUBE-EXTERNAL-SERVICES - [0:0]
        :KUBE-FORWARD - [0:0]
        :KUBE-SERVICES - [0:0]
        -D INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
        -D FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
        -X KUBE-EXTERNAL-SERVICES
        -X KUBE-FORWARD
        -X KUBE-SERVICES
        COMMIT
        *nat
        :KUBE-SERVICES - [0:0]
        :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
        :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
        -D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
        -X KUBE-SERVICES
        -X KUBE-SVC-XPGD46QRK7WJZT7O
        -X KUBE-SEP-SXIVWICOYRO3J4NJ
        COMMIT
        """)
    assert kpi.cleanup_text("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n") == ""


# --- golden files -----------------------------------------------------------------------------

def sections(text: str) -> dict[str, str]:
    """restore input -> {table: its `*table ... COMMIT` section}."""
    out = {}
    for part in text.split("COMMIT\n")[:-1]:
        out[part.split("\n", 1)[0][1:]] = part + "COMMIT\n"
    return out


GOLDENS = {
    "iptables-filter-node-1.txt": ("node-1", "IPv4", "filter"),
    "iptables-nat-node-1.txt": ("node-1", "IPv4", "nat"),
    "iptables-nat-node-2.txt": ("node-2", "IPv4", "nat"),
    "ip6tables-node-1.txt": ("node-1", "IPv6", None),
}


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden(plan: Plan, name: str):
    node, family, table = GOLDENS[name]
    text = kpi.restore_text(kpi.render_node(plan, plan.node(node), family))
    if table:
        text = sections(text)[table]
    path = GOLDEN / name
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_rendering_is_deterministic(plan: Plan):
    again = plan_of()
    for node in ("node-1", "node-2"):
        for family in ("IPv4", "IPv6"):
            assert kpi.render_node(plan, plan.node(node), family) == \
                kpi.render_node(again, again.node(node), family)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None
                    or shutil.which("iptables-restore") is None
                    or shutil.which("ip6tables-restore") is None,
                    reason="needs root, unshare and iptables-restore")
def test_iptables_restore_accepts_it(plan: Plan, tmp_path: Path):
    """The real tools, in a throwaway network namespace (never the host's): --test of the full
    sync of each family; then, still in that namespace, a full sync loaded, a partial sync
    over it giving what a full sync gives, and the cleanup leaving no KUBE- chain."""
    node = plan.node("node-1")
    v4, v6 = (kpi.render_node(plan, node, f) for f in ("IPv4", "IPv6"))
    after = plan_of(LAB.replace(service("sticky", SERVICES["sticky"]), "").replace(
        pod("web-3", "node-1", "web"), ""), plan)
    v4b = kpi.render_node(after, after.node("node-1"))
    files = {"full4": kpi.restore_text(v4), "full6": kpi.restore_text(v6),
             "partial": kpi.restore_text(v4b, v4), "cleanup": kpi.cleanup_text(v4b),
             "full4b": kpi.restore_text(v4b, jumps=False)}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    flags = " ".join(kpi.RESTORE_FLAGS)
    script = f"""set -e
cd {tmp_path}
iptables-restore --test {flags} < full4
ip6tables-restore --test {flags} < full6
iptables-restore {flags} < full4
iptables-restore {flags} < partial
iptables-save | grep -v '^#' > after-partial
iptables-restore {flags} < full4b
iptables-save | grep -v '^#' > after-full
iptables-restore {flags} < cleanup
iptables-save | grep -v '^#' > after-cleanup
"""
    r = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True)
    if r.returncode and "Operation not permitted" in r.stderr:
        pytest.skip("no permission for a network namespace")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "after-partial").read_text() == (tmp_path / "after-full").read_text()
    assert "KUBE-SEP-" in (tmp_path / "after-full").read_text()
    assert "KUBE" not in (tmp_path / "after-cleanup").read_text()
