"""Services with real traffic: ClusterIP, spreading, affinity, NodePort and LoadBalancer
from outside, traffic policies and the client address, hairpin, no endpoints, egress NAT,
and changes on a running lab; each in both of kube-proxy's modes (nftables, iptables)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from manifests import cluster

from netlab import Lab


def web(name: str, node: str, app: str = "web", port: int = 8080) -> str:
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {app}}}}}\n"
            f"spec:\n  nodeName: {node}\n  containers:\n  - name: web\n    image: agnhost\n"
            f"    ports: [{{name: http, containerPort: {port}}}]\n")


def client(name: str, node: str) -> str:
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
            f"  nodeName: {node}\n  containers: [{{name: c, image: busybox, "
            f"command: [sleep, '3600']}}]\n")


def service(name: str, spec: str, app: str = "web") -> str:
    return (f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
            f"  selector: {{app: {app}}}\n{spec}")


PODS = (web("web-1", "node-1") + web("web-2", "node-2", port=9090)
        + client("c1", "node-1") + client("c2", "node-2"))


@pytest.fixture(params=["nftables", "iptables"])
def mode(request: pytest.FixtureRequest) -> str:
    """kube-proxy's mode the lab runs: every Service test holds in both."""
    return request.param
PORTS = "  ports: [{port: 80, targetPort: http}]\n"


def wait_for_responders(lab: Lab) -> None:
    """The responders are processes: give them the moment they need to listen."""
    deadline = time.monotonic() + 5
    for pod in ("web-1", "web-2"):
        while not lab.probe("c1", pod, timeout=0.5).connected:
            assert time.monotonic() < deadline, f"{pod}'s responder did not start"
            time.sleep(0.05)


@pytest.fixture
def web_lab(netlab_lab, mode: str) -> Lab:
    lab = netlab_lab(yaml=cluster(proxy_mode=mode) + PODS + service("web", PORTS)
                     + service("web-np", "  type: NodePort\n  ports: [{port: 80, targetPort: "
                               "http, nodePort: 30080}]\n")
                     + service("web-local", "  type: NodePort\n  externalTrafficPolicy: Local\n"
                               "  ports: [{port: 80, targetPort: http, nodePort: 30081}]\n")
                     + service("web-lb", "  type: LoadBalancer\n" + PORTS)
                     + service("sticky", "  sessionAffinity: ClientIP\n" + PORTS)
                     + service("nobody", "  ports: [{port: 80}]\n", app="nobody"))
    wait_for_responders(lab)
    return lab


def test_cluster_ip_from_every_node_spreads_over_endpoints(web_lab):
    pods = {p.key: p for p in web_lab.pods()}
    for src in ("c1", "c2"):
        results = web_lab.probe_many([(src, "svc/web")] * 50)
        assert all(r.connected for r in results), [r.detail for r in results if not r.connected]
        seen = Counter(r.answered_by for r in results)
        assert set(seen) == {"default/web-1", "default/web-2"}, seen
        # pod-to-Service traffic is not source-NATed: the endpoint sees the pod
        assert {r.client_ip for r in results} == {pods[f"default/{src}"].ip}


def test_client_ip_affinity(web_lab):
    results = [web_lab.probe("c1", "svc/sticky") for _ in range(20)]  # one after another
    assert all(r.connected for r in results)
    assert len({r.answered_by for r in results}) == 1


def test_named_target_port_per_pod(web_lab):
    svc = web_lab.service("web")
    assert sorted(svc.endpoints) == sorted([f"{web_lab.pod('web-1').ip}:8080",
                                            f"{web_lab.pod('web-2').ip}:9090"])


def test_node_port_from_outside(web_lab):
    nodes = {n.name: n for n in web_lab.nodes()}
    for node in ("node-1", "node-2"):
        results = web_lab.probe_many([("external", f"node/{node}", 30080)] * 20)
        assert all(r.connected for r in results)
        remote = [r for r in results if r.answered_by != f"default/web-{node[-1]}"]
        # externalTrafficPolicy Cluster: the client address is replaced by the node's
        assert all(r.client_ip != "172.18.0.254" for r in results)
        assert remote, "Cluster policy never sent traffic to the other node"
    assert nodes["node-1"].internal_ip == "172.18.0.2"


def test_external_traffic_policy_local_keeps_the_client(web_lab):
    for node, pod in (("node-1", "default/web-1"), ("node-2", "default/web-2")):
        results = web_lab.probe_many([("external", f"node/{node}", 30081)] * 10)
        assert all(r.connected for r in results)
        assert {r.answered_by for r in results} == {pod}  # only the local endpoint
        assert {r.client_ip for r in results} == {"172.18.0.254"}  # the real client


def test_load_balancer_from_outside(web_lab):
    svc = web_lab.service("web-lb")
    assert svc.external_ip == "172.18.0.200" and svc.announced_by in ("node-1", "node-2")
    r = web_lab.probe("external", "svc/web-lb")
    assert r.connected and r.address == "172.18.0.200"
    # exactly one node answers ARP for it
    arp = web_lab.exec("external", ["sh", "-c", "ip neigh flush all; ping -c1 -W1 172.18.0.200 "
                                                ">/dev/null; ip neigh show 172.18.0.200"])
    announcer = web_lab.exec(f"node/{svc.announced_by}", ["cat", "/sys/class/net/eth0/address"])
    assert announcer.stdout.strip() in arp.stdout, arp.stdout
    assert svc.to_k8s()["status"]["loadBalancer"]["ingress"][0]["ip"] == "172.18.0.200"


def test_service_without_endpoints_is_refused_quickly(web_lab):
    r = web_lab.probe("c1", "svc/nobody")
    assert r.result == "refused" and r.seconds < 0.5
    assert "no pod in namespace default has labels app=nobody" in \
        web_lab.service("nobody").why_no_endpoints()


def test_hairpin(web_lab):
    r = web_lab.probe_many([("web-1", "svc/web")] * 20)
    assert all(x.connected for x in r)
    itself = [x for x in r if x.answered_by == "default/web-1"]
    assert itself, "web-1 never reached itself through its Service"
    # hairpin traffic is masqueraded to the bridge address, or the reply would bypass NAT
    assert {x.client_ip for x in itself} == {"10.244.0.1"}


def test_egress_to_the_internet_is_masqueraded(web_lab):
    r = web_lab.probe("c2", "internet")
    assert r.connected and r.answered_by == "internet"
    assert r.client_ip == "172.18.0.3"  # node-2's address
    direct = web_lab.probe("c2", "web-1")
    assert direct.client_ip == web_lab.pod("c2").ip  # pod to pod: no NAT


def test_load_balancer_address_follows_its_endpoint(netlab_lab, mode):
    """ETP Local: only a node with an endpoint announces the address. When the endpoint moves,
    the new announcer sends gratuitous ARP (as MetalLB does), so a client that cached the old
    node's MAC follows at once; without it, the old node (no local endpoint) drops the traffic
    until the client's ARP entry expires."""
    lb = service("lb", "  type: LoadBalancer\n  externalTrafficPolicy: Local\n" + PORTS)
    lab = netlab_lab(yaml=cluster(proxy_mode=mode) + web("web-1", "node-1") + lb)
    assert lab.service("lb").announced_by == "node-1"
    deadline = time.monotonic() + 5
    while not lab.probe("external", "svc/lb", timeout=0.5).connected:
        assert time.monotonic() < deadline
    lab.apply(manifests=[web("web-1", "node-2")])  # re-created on the other node
    assert lab.service("lb").announced_by == "node-2"
    deadline = time.monotonic() + 5
    while not lab.probe("web-1", "web-1", timeout=0.5).connected:  # its responder listens
        assert time.monotonic() < deadline
    r = lab.probe("external", "svc/lb", timeout=1)
    assert r.connected and r.answered_by == "default/web-1", r
    mac2 = lab.exec("node/node-2", ["cat", "/sys/class/net/eth0/address"]).stdout.strip()
    assert mac2 in lab.exec("external", ["ip", "neigh", "show", "172.18.0.200"]).stdout


UDP_FROM_FIXED_PORT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 40000))  # one source port, as a long-lived UDP client keeps
s.settimeout(1)
s.sendto(b"netlab-probe\\n", (sys.argv[1], 53))
try:
    print(s.recv(4096).decode())
except TimeoutError:
    print("no answer")
"""


def test_udp_flows_to_a_deleted_endpoint_are_forgotten(netlab_lab, mode):
    """A UDP client that keeps its source port must reach the new endpoint once the old one
    is deleted: its conntrack entry (DNAT to the old pod) is cleared, as kube-proxy does."""
    def dns_pod(name: str) -> str:
        return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: u}}}}"
                "\nspec:\n  nodeName: node-2\n  containers: [{name: d, ports: [{containerPort: "
                "53, protocol: UDP}]}]\n")

    lab = netlab_lab(yaml=cluster(proxy_mode=mode) + client("c", "node-1") + dns_pod("u1")
                     + service("u", "  ports: [{port: 53, protocol: UDP}]\n", app="u"))
    vip = lab.service("u").cluster_ip

    def ask() -> str:
        return lab.exec("c", ["python3", "-c", UDP_FROM_FIXED_PORT, vip]).stdout

    deadline = time.monotonic() + 5
    while "u1" not in ask():
        assert time.monotonic() < deadline
    lab.apply(manifests=[dns_pod("u2")])  # a second endpoint (with another address) first,
    lab.delete(manifests=[dns_pod("u1")])  # then the first goes
    deadline = time.monotonic() + 5
    while not lab.probe("c", "u2", 53, "udp", timeout=0.5).connected:  # u2 listens
        assert time.monotonic() < deadline
    assert "u2" in ask()


def test_udp_and_internal_traffic_policy_local(netlab_lab, mode):
    lab = netlab_lab(yaml=cluster(proxy_mode=mode) + client("c1", "node-1")
                     + client("c2", "node-2") + """---
apiVersion: v1
kind: Pod
metadata: {name: dns-1, labels: {app: dns}}
spec:
  nodeName: node-2
  containers: [{name: d, ports: [{containerPort: 53, protocol: UDP}]}]
---
apiVersion: v1
kind: Service
metadata: {name: dns}
spec:
  selector: {app: dns}
  ports: [{port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: dns-local}
spec:
  internalTrafficPolicy: Local
  selector: {app: dns}
  ports: [{port: 53, protocol: UDP}]
""")
    deadline = time.monotonic() + 5
    while not lab.probe("c2", "svc/dns", timeout=0.5).connected:
        assert time.monotonic() < deadline
    r = lab.probe("c1", "svc/dns")
    assert r.connected and r.protocol == "udp" and r.answered_by == "default/dns-1"
    assert lab.probe("c2", "svc/dns-local").connected  # local endpoint
    assert lab.probe("c1", "svc/dns-local", timeout=0.5).result == "timeout"  # none on node-1


def test_apply_changed_selector_moves_traffic(web_lab):
    before = web_lab.probe_many([("c1", "svc/web")] * 10)
    assert {r.answered_by for r in before} <= {"default/web-1", "default/web-2"}
    t0 = time.monotonic()
    web_lab.apply(manifests=[web("other", "node-2", app="other", port=7070)
                             + service("web", PORTS, app="other")])
    elapsed = time.monotonic() - t0
    deadline = time.monotonic() + 5
    while not web_lab.probe("c1", "other", timeout=0.5).connected:
        assert time.monotonic() < deadline
    after = web_lab.probe_many([("c1", "svc/web")] * 10)
    assert {r.answered_by for r in after} == {"default/other"}
    assert web_lab.service("web").endpoints == [f"{web_lab.pod('other').ip}:7070"]
    assert elapsed < 5
    # the other Services did not move
    assert web_lab.probe("external", "node/node-1", 30080).connected


def test_get_svc_json_is_kubectl_shaped(web_lab):
    items = {s.name: s.to_k8s() for s in web_lab.services()}
    assert items["web-np"]["spec"]["ports"][0]["nodePort"] == 30080
    assert items["web"]["spec"]["clusterIP"].startswith("10.96.")
    ep = web_lab.service("web").endpoints_k8s()
    assert ep["kind"] == "Endpoints" and len(ep["subsets"]) == 2  # two port numbers


def _http(lab: Lab, src: str, address: str, port: int, path: str) -> str:
    """An HTTP/1.1 request from inside a pod, with a plain socket."""
    import socket

    from netlab.kernel import netns_path, ns

    with ns.entered(str(netns_path(lab.plan.pods[f"default/{src}"].netns))):
        sock = socket.create_connection((address, port), timeout=2)
    with sock:  # read to the end: the responder keeps an HTTP/1.1 connection open otherwise
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: web\r\nUser-Agent: test\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data.decode()


def test_responder_speaks_http(web_lab):
    svc = web_lab.service("web")
    reply = _http(web_lab, "c1", svc.cluster_ip, 80, "/hostname")
    assert reply.startswith("HTTP/1.1 200 OK")
    assert reply.rstrip().splitlines()[-1] in ("web-1", "web-2")
    reply = _http(web_lab, "c1", web_lab.pod("web-1").ip, 8080, "/")
    assert '"pod": "default/web-1"' in reply and f'"client": "{web_lab.pod("c1").ip}:' in reply
    assert "X-Netlab-Pod: default/web-1" in reply


def test_a_kept_alive_connection_through_a_service_stays_with_its_endpoint(web_lab):
    """HTTP/1.1 keep-alive through the ClusterIP: the requests of one connection go to one
    pod (kube-proxy balances connections, not requests), each answered on it."""
    import socket

    from netlab.kernel import netns_path, ns

    with ns.entered(str(netns_path(web_lab.plan.pods["default/c1"].netns))):
        sock = socket.create_connection((web_lab.service("web").cluster_ip, 80), timeout=5)
    answered = []
    with sock, sock.makefile("rb") as f:
        for _ in range(5):
            sock.sendall(b"GET /hostname HTTP/1.1\r\nHost: web\r\n\r\n")
            assert f.readline() == b"HTTP/1.1 200 OK\r\n"
            headers = {}
            while (line := f.readline().rstrip(b"\r\n")):
                k, _, v = line.decode().partition(":")
                headers[k.lower()] = v.strip()
            assert headers["connection"] == "keep-alive"
            answered.append(f.read(int(headers["content-length"])).decode().strip())
    assert len(set(answered)) == 1 and answered[0] in ("web-1", "web-2"), answered


def test_responder_can_be_turned_off(netlab_lab, mode):
    lab = netlab_lab(yaml=cluster(proxy_mode=mode) + client("c1", "node-1") + """---
apiVersion: v1
kind: Pod
metadata: {name: quiet, annotations: {netlab.dev/responder: "off"}}
spec:
  nodeName: node-2
  containers: [{name: c, ports: [{containerPort: 80}]}]
""")
    time.sleep(0.3)
    assert lab.plan.pods["default/quiet"].serves == ()
    r = lab.probe("c1", "quiet", port=80)
    assert r.result == "refused"  # the kernel answers with a reset: nothing listens


def test_sctp_where_the_kernel_has_it(netlab_lab, mode):
    import socket

    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
    except OSError as e:
        pytest.skip(f"this kernel has no SCTP ({e.strerror})")
    lab = netlab_lab(yaml=cluster(proxy_mode=mode) + client("c1", "node-1") + """---
apiVersion: v1
kind: Pod
metadata: {name: s}
spec:
  nodeName: node-2
  containers: [{name: c, ports: [{containerPort: 9999, protocol: SCTP}]}]
""")
    time.sleep(0.5)
    r = lab.probe("c1", "s")
    assert r.connected and r.protocol == "sctp" and r.answered_by == "default/s"
