"""Service fields with real traffic, in both of kube-proxy's modes (issue 17, "Fields"):
spec.externalIPs (held by one node on the underlay, DNATed from outside and from pods),
spec.loadBalancerSourceRanges (a source inside connects, one outside is dropped before
DNAT, the NodePort stays open), spec.allocateLoadBalancerNodePorts false (no nodePort, the
address works), spec.healthCheckNodePort (each node answers 200 or 503 over HTTP, and the
answers follow the endpoint), NodePorts on the node's primary address only (nftables) or on
every local address (iptables), and spec.trafficDistribution PreferClose over two zones."""

from __future__ import annotations

import json

import pytest
from manifests import wait_until

from netlab import Lab
from netlab.pytest_plugin import shared_lab


def cluster(mode: str) -> str:
    return ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec:\n  dns: false\n"
            f"  proxyMode: {mode}\n  nodes:\n"
            "  - {name: node-1, labels: {topology.kubernetes.io/zone: zone-a}}\n"
            "  - {name: node-2, labels: {topology.kubernetes.io/zone: zone-b}}\n")


def web(name: str, node: str, app: str = "web") -> str:
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {app}}}}}\n"
            f"spec:\n  nodeName: {node}\n  containers:\n  - name: web\n    image: agnhost\n"
            "    ports: [{name: http, containerPort: 8080}]\n")


def client(name: str, node: str) -> str:
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
            f"  nodeName: {node}\n  containers: [{{name: c, image: busybox, "
            f"command: [sleep, '3600']}}]\n")


def service(name: str, spec: str, app: str = "web") -> str:
    return (f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
            f"  selector: {{app: {app}}}\n  ports: [{{port: 80, targetPort: http}}]\n{spec}")


EXTERNAL_IP = "172.18.0.100"
EXTERNAL_HOST = "172.18.0.254"
SERVICES = (service("ext", f"  externalIPs: [{EXTERNAL_IP}]\n")
            + service("fw", "  type: LoadBalancer\n  loadBalancerSourceRanges: "
                            f"[{EXTERNAL_HOST}/32]\n")
            + service("nonp", "  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n")
            + service("np", "  type: NodePort\n")
            + service("close", "  trafficDistribution: PreferClose\n"))
PODS = (web("web-1", "node-1") + web("web-2", "node-2") + client("c1", "node-1")
        + client("c2", "node-2"))


def wait_for_responders(lab: Lab, pods: tuple[str, ...] = ("web-1", "web-2")) -> None:
    for pod in pods:
        assert wait_until(lambda p=pod: lab.probe("c1", p, timeout=0.5).connected), \
            f"{pod}'s responder did not start"


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def lab(request: pytest.FixtureRequest) -> Lab:
    lab = shared_lab(request, yaml=cluster(request.param) + PODS + SERVICES,
                     label=request.param)
    wait_for_responders(lab)
    return lab


def mode_of(lab: Lab) -> str:
    return lab.plan.cluster.proxy_mode


# --- externalIPs ---------------------------------------------------------------------------

def test_external_ip_from_outside_and_from_a_pod(lab: Lab):
    svc = lab.service("ext")
    assert svc.external_ips == (EXTERNAL_IP,) and svc.announced_by in ("node-1", "node-2")
    for src in ("external", "c1", "c2"):
        results = lab.probe_many([(src, EXTERNAL_IP, 80)] * 20)
        assert all(r.connected for r in results), [r.detail for r in results]
        assert {r.answered_by for r in results} == {"default/web-1", "default/web-2"}
    # externalTrafficPolicy Cluster: the outside client is masqueraded, as for a NodePort
    r = lab.probe("external", EXTERNAL_IP, 80)
    assert r.client_ip != EXTERNAL_HOST
    # exactly one node holds it: the one named, whose MAC the outside learns by ARP
    arp = lab.exec("external", ["sh", "-c", f"ip neigh flush all; ping -c1 -W1 {EXTERNAL_IP} "
                                            f">/dev/null; ip neigh show {EXTERNAL_IP}"])
    mac = lab.exec(f"node/{svc.announced_by}", ["cat", "/sys/class/net/eth0/address"])
    assert mac.stdout.strip() in arp.stdout, arp.stdout
    # a port the Service does not have is not DNATed
    assert not lab.probe("external", EXTERNAL_IP, 81, timeout=0.5).connected
    doc = svc.to_k8s()
    assert doc["spec"]["externalIPs"] == [EXTERNAL_IP]


# --- loadBalancerSourceRanges --------------------------------------------------------------

def test_source_ranges_admit_the_range_and_drop_the_rest(lab: Lab):
    svc = lab.service("fw")
    vip = svc.external_ip
    assert vip and svc.to_k8s()["spec"]["loadBalancerSourceRanges"] == [f"{EXTERNAL_HOST}/32"]
    inside = lab.probe_many([("external", vip, 80)] * 10)
    assert all(r.connected for r in inside), [r.detail for r in inside]
    # outside the range: the internet host on the underlay, and a pod (its address is not
    # in the range either): dropped before DNAT, so nothing answers
    for src in ("internet", "c1", "c2"):
        r = lab.probe(src, vip, 80, timeout=1)
        assert r.result == "timeout", (src, r)  # silently: no reset, no answer
    # the Service's NodePort is not subject to the ranges (as kube-proxy says)
    node_port = svc.ports[0].node_port
    assert lab.probe("internet", "node/node-1", node_port, timeout=1).connected
    # the other LoadBalancers have no ranges
    assert lab.probe("internet", lab.service("nonp").external_ip, 80, timeout=1).connected


# --- allocateLoadBalancerNodePorts ---------------------------------------------------------

def test_load_balancer_without_node_ports(lab: Lab):
    svc = lab.service("nonp")
    assert [p.node_port for p in svc.ports] == [None]
    doc = svc.to_k8s()
    assert doc["spec"]["allocateLoadBalancerNodePorts"] is False
    assert "nodePort" not in doc["spec"]["ports"][0]
    assert lab.service("fw").to_k8s()["spec"]["allocateLoadBalancerNodePorts"] is True
    results = lab.probe_many([("external", "svc/nonp")] * 10)
    assert all(r.connected for r in results), [r.detail for r in results]
    from netlab.cli.resources import _ports
    assert _ports(svc) == "80/TCP"


# --- NodePorts on the primary addresses ----------------------------------------------------

def test_node_ports_answer_where_the_mode_says(lab: Lab):
    node_port = lab.service("np").ports[0].node_port
    assert lab.probe("external", "node/node-1", node_port).connected  # the node's address
    gateway = lab.plan.node("node-1").gateway  # cni0's address on node-1
    lb_on_lo = lab.service("nonp")
    held_by = lab.service("nonp").announced_by
    on_gateway = lab.probe("c1", gateway, node_port, timeout=1)
    on_vip = lab.probe("external", lb_on_lo.external_ip, node_port, timeout=1)
    if mode_of(lab) == "nftables":
        # --nodeport-addresses primary: not DNATed there; the node itself answers (nothing
        # listens: refused)
        assert on_gateway.result == "refused", on_gateway
        assert on_vip.result == "refused", (held_by, on_vip)
    else:  # iptables mode's default: every local address
        assert on_gateway.connected, on_gateway
        assert on_vip.connected, on_vip


# --- trafficDistribution -------------------------------------------------------------------

def test_prefer_close_keeps_traffic_in_the_zone(lab: Lab):
    for src, pod in (("c1", "default/web-1"), ("c2", "default/web-2")):
        results = lab.probe_many([(src, "svc/close")] * 20)
        assert all(r.connected for r in results)
        assert {r.answered_by for r in results} == {pod}, (src, results)
    slices = [s.to_k8s() for s in lab.service("close").endpoint_slices()]
    zones = {e["targetRef"]["name"]: e["hints"]["forZones"][0]["name"]
             for s in slices for e in s["endpoints"]}
    assert zones == {"web-1": "zone-a", "web-2": "zone-b"}


@pytest.mark.parametrize("mode", ["nftables", "iptables"])
def test_prefer_close_falls_back_when_the_zone_has_no_endpoint(netlab_lab, mode):
    lab = netlab_lab(yaml=cluster(mode) + web("web-1", "node-1") + client("c1", "node-1")
                     + client("c2", "node-2")
                     + service("close", "  trafficDistribution: PreferClose\n"))
    wait_for_responders(lab, ("web-1",))
    results = lab.probe_many([("c2", "svc/close")] * 10)  # zone-b has no endpoint: all
    assert all(r.connected for r in results) and {r.answered_by for r in results} == \
        {"default/web-1"}
    lab.apply(manifests=[web("web-2", "node-2")])  # now zone-b has one: it stays there
    assert wait_until(lambda: lab.probe("c1", "web-2", timeout=0.5).connected)
    results = lab.probe_many([("c2", "svc/close")] * 20)
    assert {r.answered_by for r in results} == {"default/web-2"}
    results = lab.probe_many([("c1", "svc/close")] * 20)
    assert {r.answered_by for r in results} == {"default/web-1"}


# --- healthCheckNodePort -------------------------------------------------------------------

def health(lab: Lab, node: str, port: int) -> tuple[int, dict]:
    address = lab.plan.node(node).underlay_ip
    r = lab.http(f"http://{address}:{port}/healthz", src="external", timeout=2)
    assert r.error is None, r
    return r.status, json.loads(r.body)


@pytest.mark.parametrize("mode", ["nftables", "iptables"])
def test_health_check_node_port_answers_per_node_and_follows_the_endpoint(netlab_lab, mode):
    lb = service("lb", "  type: LoadBalancer\n  externalTrafficPolicy: Local\n")
    lab = netlab_lab(yaml=cluster(mode) + web("web-1", "node-1") + client("c1", "node-1") + lb)
    svc = lab.service("lb")
    port = svc.health_check_node_port
    assert port and 30000 <= port <= 32767 and port != svc.ports[0].node_port
    assert svc.to_k8s()["spec"]["healthCheckNodePort"] == port
    assert wait_until(lambda: health(lab, "node-1", port)[0] == 200)
    status, body = health(lab, "node-1", port)
    assert body == {"service": {"namespace": "default", "name": "lb"}, "localEndpoints": 1,
                    "serviceProxyHealthy": True}
    status, body = health(lab, "node-2", port)
    assert status == 503 and body["localEndpoints"] == 0
    # the endpoint moves to node-2: the answers follow (the same listening sockets)
    lab.apply(manifests=[web("web-1", "node-2")])
    assert wait_until(lambda: health(lab, "node-2", port)[0] == 200, timeout=10)
    assert health(lab, "node-1", port)[0] == 503
    assert lab.service("lb").health_check_node_port == port  # kept across the apply
    # and the load balancer address went with it (ETP Local: announced where the endpoint is)
    assert wait_until(lambda: lab.probe("c1", "web-1", timeout=0.5).connected)
    r = lab.probe("external", "svc/lb", timeout=1)
    assert r.connected and r.answered_by == "default/web-1"
    # it listens where NodePorts answer: the node's primary address (nftables), every local
    # address (iptables); cni0's address on node-2, from a pod on node-1:
    on_gateway = lab.probe("c1", lab.plan.node("node-2").gateway, port, timeout=1)
    assert on_gateway.result == ("refused" if mode == "nftables" else "connected"), on_gateway
