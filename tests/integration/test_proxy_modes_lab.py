"""kube-proxy's two modes on a running lab: `iptables-save -t nat` in a node reads like a real
node's (KUBE-SERVICES, KUBE-SVC-<kube-proxy's hash>, KUBE-SEP-, statistic probabilities), a
changed Service is a partial sync, and `apply` of a Cluster with another proxyMode switches a
running lab both ways, the old mode's rules removed as kube-proxy's cleanup does, traffic
answered throughout."""

from __future__ import annotations

import pytest
from manifests import cluster

from netlab.features import kubeproxy_iptables

pytestmark = pytest.mark.netlab

PODS = """---
apiVersion: v1
kind: Pod
metadata: {name: c}
spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
""" + "".join(f"""---
apiVersion: v1
kind: Pod
metadata: {{name: w{i}, labels: {{app: web}}}}
spec: {{nodeName: node-{i % 2 + 1},
       containers: [{{name: c, image: x, ports: [{{containerPort: 80}}]}}]}}
""" for i in range(3)) + """---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
"""


def nat(lab) -> str:
    return lab.exec("node/node-1", ["iptables-save", "-t", "nat"]).stdout


def test_iptables_mode_and_switching_modes(netlab_lab):
    lab = netlab_lab(yaml=cluster(proxy_mode="iptables") + PODS)
    svc = lab.plan.services["default/web"]
    port = svc.ports[0]
    chain = kubeproxy_iptables.service_chain(svc, port)
    assert chain == "KUBE-SVC-" + kubeproxy_iptables.port_proto_hash("default/web:http", "tcp")
    text = nat(lab)
    assert f"-A KUBE-SERVICES -d {svc.cluster_ip}/32 -p tcp -m comment --comment " \
           f'"default/web:http cluster IP" -m tcp --dport 80 -j {chain}' in text
    # kube-proxy writes 0.3333333333; the kernel keeps a 32-bit fraction, which iptables-save
    # prints back as 0.33333333349, as on any real node
    assert "-m statistic --mode random --probability 0.33333333349" in text
    assert "-m statistic --mode random --probability 0.50000000000" in text
    tables = lab.exec("node/node-1", ["nft", "list", "tables"]).stdout
    assert "table ip kube-proxy" not in tables  # one mode at a time
    answered = {lab.probe("c", "svc/web").answered_by for _ in range(30)}
    assert answered == {"default/w0", "default/w1", "default/w2"}
    # a Service changed: only its chains are written again (a partial sync), traffic follows
    lab.apply(manifests=["apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: "
                         "{selector: {app: web}, ports: [{name: http, port: 8080, "
                         "targetPort: 80}]}\n"])
    assert lab.probe("c", "svc/web", 8080).connected
    assert "--dport 8080" in nat(lab) and "--dport 80 -j" not in nat(lab)
    # switch to nftables: kube-proxy's cleanup, the nft table instead
    lab.apply(manifests=[cluster(proxy_mode="nftables")])
    assert "KUBE-" not in nat(lab)
    assert "KUBE-" not in lab.exec("node/node-1", ["iptables-save", "-t", "filter"]).stdout
    assert "table ip kube-proxy" in lab.exec("node/node-1", ["nft", "list", "tables"]).stdout
    assert lab.probe("c", "svc/web", 8080).connected
    # and back
    lab.apply(manifests=[cluster(proxy_mode="iptables")])
    assert chain in nat(lab)
    assert "table ip kube-proxy" not in lab.exec("node/node-1", ["nft", "list", "tables"]).stdout
    assert lab.probe("c", "svc/web", 8080).connected


def test_trace_and_explain_name_kube_proxys_chains(netlab_lab):
    """iptables-nft's rules are nftables rules: the kernel's trace names the KUBE- chains a
    packet went through (KUBE-SERVICES -> KUBE-SVC- -> KUBE-SEP- and its DNAT)."""
    lab = netlab_lab(yaml=cluster(proxy_mode="iptables") + PODS)
    svc = lab.plan.services["default/web"]
    chain = kubeproxy_iptables.service_chain(svc, svc.ports[0])
    r = lab.trace("c", "svc/web")
    assert r.delivered and r.reply, r.verdict
    seen = "\n".join(r.kernel_verdicts)
    # (nft's trace printer sometimes names a rule "unknown rule handle N": its verdict stands)
    assert "ip nat KUBE-SERVICES " in seen and f"(verdict jump {chain})" in seen, seen
    assert "KUBE-SEP-" in seen and "dnat to" in seen
    e = lab.explain("c", "svc/web")
    assert e.agrees and any(f"jump {chain}" in v for v in e.kernel_verdicts)
