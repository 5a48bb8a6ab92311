"""hostNetwork and hostPort, as the API server, kube-scheduler and kubelet treat them:
hostNetwork pods take their node's namespace, addresses and hostname (no slot of the pod
CIDR, no veth), hostPort defaults to containerPort with hostNetwork, two pods wanting the
same hostPort never share a node (Pending with the scheduler's NodePorts reason, or refused
when pinned), hostPorts are DNATed on the node in each family, and a hostNetwork pod's DNS
is the node's unless it asks for ClusterFirstWithHostNet."""

from __future__ import annotations

import pytest

from netlab.compile import compile_lab
from netlab.errors import InputError
from netlab.features import hostport
from netlab.loader import build, read_text
from netlab.policy.engine import engine_for

CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 2\n"


def pod(name: str, spec: str, labels: str = "{}") -> str:
    return f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {labels}}}\n" \
           f"spec: {spec}\n"


HOSTNET = pod("agent", "{nodeName: node-2, hostNetwork: true, containers: [{name: c, "
                       "image: x, ports: [{containerPort: 9100}]}]}", "{app: agent}")
WEB = pod("web", "{nodeName: node-2, containers: [{name: c, image: x, ports: "
                 "[{containerPort: 80, hostPort: 8080}]}]}", "{app: web}")
OTHER = pod("other", "{nodeName: node-2, containers: [{name: c, image: x, command: "
                     "[sleep, '1']}]}")


def compiled(text: str):
    return compile_lab("t", read_text(text, "t.yaml"))


def test_host_network_defaults_host_ports_and_validates():
    m = build(read_text(CLUSTER + HOSTNET + WEB, "t.yaml"))
    assert m.pods["default/agent"].spec.host_ports == (("TCP", "", 9100, 9100),)
    assert m.pods["default/web"].spec.host_ports == (("TCP", "", 8080, 80),)
    with pytest.raises(InputError, match=r"containers\[0\].ports\[0\].hostPort: Invalid value: "
                                         "8080: must match `containerPort` when `hostNetwork`"):
        build(read_text(pod("x", "{hostNetwork: true, containers: [{name: c, image: x, "
                                 "ports: [{containerPort: 80, hostPort: 8080}]}]}"), "t.yaml"))
    with pytest.raises(InputError, match="hostIP: 'nowhere' is not a valid IP address"):
        build(read_text(pod("x", "{containers: [{name: c, image: x, ports: [{containerPort: "
                                 "80, hostPort: 80, hostIP: nowhere}]}]}"), "t.yaml"))


def test_a_host_network_pod_is_its_node():
    d = compiled(CLUSTER + HOSTNET + OTHER)
    agent, other, n2 = d.plan.pods["default/agent"], d.plan.pods["default/other"], \
        d.plan.nodes[1]
    assert (agent.ip, agent.netns, agent.veth, agent.hostname) == (
        n2.underlay_ip, n2.netns, "", "node-2")
    assert other.ip == "10.244.1.2"  # the hostNetwork pod took no slot of the pod CIDR
    assert d.pods["default/agent"] == []  # no namespace, veth or address of its own
    serve = d.workloads["default/agent"].serve  # its responder listens on the node's ports
    assert serve is not None and serve.netns == n2.netns
    # kubelet: ClusterFirst means the node's resolver for a hostNetwork pod
    conf = d.files["pods/default.agent/resolv.conf"].data.decode()
    assert conf == "nameserver 203.0.113.1\n"
    net_first = compiled(CLUSTER + HOSTNET.replace("hostNetwork: true", "hostNetwork: true, "
                                                   "dnsPolicy: ClusterFirstWithHostNet"))
    assert "nameserver 10.96.0.10" in net_first.files["pods/default.agent/resolv.conf"]\
        .data.decode()


def test_no_policy_selects_a_host_network_pod():
    policy = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
    d = compiled(CLUSTER + HOSTNET + WEB + policy)
    rules = "".join(t.full() for t in d.rules[d.plan.nodes[1].netns]
                    if t.name != "kube-proxy")  # (whose nodeport-ips hold the node's address)
    assert "ingress-default/web" in rules and "ingress-default/agent" not in rules
    assert d.plan.nodes[1].underlay_ip not in rules
    assert "default/agent" not in engine_for(d.plan, d.manifests.network_policies.values()).pods


def test_two_pods_never_share_a_host_port_on_a_node():
    one = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  nodes: 1\n"
    spec = "{containers: [{name: c, image: x, ports: [{containerPort: 80, hostPort: 8080}]}]}"
    d = compiled(one + pod("a", spec) + pod("b", spec)
                 + pod("c", spec.replace("hostPort: 8080", "hostPort: 8080, protocol: UDP")))
    assert {k for k in d.plan.pods if k.startswith("default/")} == {
        "default/a", "default/c"}  # UDP 8080 is another port
    assert d.plan.pending["default/b"].reason == (
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod "
        "ports.")
    # spread over two nodes, both fit
    assert {"default/a", "default/b"} <= set(compiled(CLUSTER + pod("a", spec)
                                                      + pod("b", spec)).plan.pods)
    pinned = spec.replace("{containers", "{nodeName: node-1, containers")
    with pytest.raises(InputError, match="node node-1 has no free ports for the pod's "
                                         r"hostPorts \(8080/TCP\).*\(NodePorts\)"):
        compiled(CLUSTER + pod("a", pinned) + pod("b", pinned))
    # a hostIP takes the port on that address only; a wildcard takes it on every address
    on_ip = spec.replace("hostPort: 8080", "hostPort: 8080, hostIP: 172.18.0.2")
    both = compiled(one + pod("a", on_ip) + pod("b", on_ip.replace("172.18.0.2",
                                                                  "172.18.0.9")))
    assert {"default/a", "default/b"} <= set(both.plan.pods)
    assert "default/b" in compiled(one + pod("a", on_ip) + pod("b", spec)).plan.pending


def test_host_ports_are_dnated_on_the_node_in_each_family():
    d = compiled(CLUSTER + "  podCIDR: 10.244.0.0/16,fd00:10:244::/56\n" + WEB + HOSTNET
                 + pod("v6", "{nodeName: node-2, containers: [{name: c, image: x, ports: "
                             "[{containerPort: 53, protocol: UDP, hostPort: 5353, hostIP: "
                             "'2001:db8:18::3'}]}]}"))
    node1, node2 = d.plan.nodes
    assert hostport.render_tables(d.plan, node1) == []  # nothing asks for a hostPort there
    v4, v6 = hostport.render_tables(d.plan, node2)
    web, v6pod = d.plan.pods["default/web"], d.plan.pods["default/v6"]
    assert v4.ref == "ip netlab-hostport" and v6.ref == "ip6 netlab-hostport"
    assert v4.chains["hostports"] == [
        f'tcp dport 8080 dnat to {web.ip}:80 comment "default/web 8080/TCP"']
    assert v6.chains["hostports"] == [
        f'ip6 daddr 2001:db8:18::3 udp dport 5353 dnat to [{v6pod.ip6}]:53 '
        'comment "default/v6 5353/UDP"',
        f'tcp dport 8080 dnat to [{web.ip6}]:80 comment "default/web 8080/TCP"']
    assert v4.chains["prerouting"] == ["fib daddr type local jump hostports"]
    assert (f"ip saddr {web.ip} ip daddr {web.ip} tcp dport 80 ct status dnat masquerade "
            'comment "default/web 8080/TCP"') in v4.chains["postrouting"]
    text = "".join(t.full() for t in d.rules[node2.netns])
    assert "table ip netlab-hostport" in text and "9100" not in v4.chains["hostports"][0]
