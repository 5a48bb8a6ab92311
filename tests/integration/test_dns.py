"""Cluster DNS with real resolvers inside pods (glibc's getent, dig): Service, headless,
ExternalName, pod and reverse records, NXDOMAIN, live updates, TCP for large answers, and
a NetworkPolicy that lets DNS through."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from manifests import cluster, pod

from netlab import Lab
from netlab.pytest_plugin import shared_lab

LAB = cluster() + """---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: sql, port: 5432}]
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec:
  hostname: db-0
  subdomain: db
  containers: [{name: db, ports: [{containerPort: 5432}]}]
---
apiVersion: v1
kind: Service
metadata: {name: search}
spec:
  type: ExternalName
  externalName: www.example.com
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  clusterIP: None
  selector: {app: nothing}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: custom}
spec:
  dnsPolicy: None
  dnsConfig:
    nameservers: [10.96.0.10]
    searches: [other.svc.cluster.local]
    options: [{name: ndots, value: "2"}, {name: edns0}]
  containers: [{name: c, command: [sleep, infinity]}]
""" + pod("client", "node-1") + pod("far", "node-2", namespace="other")


@pytest.fixture(scope="module")
def lab(request):
    return shared_lab(request, yaml=LAB, label="dns")


def sh(lab: Lab, pod: str, command: str) -> str:
    r = lab.exec(pod, ["sh", "-c", command])
    return r.stdout.strip()


def test_short_name_namespace_and_fqdn(lab):
    ip = lab.service("web").cluster_ip
    assert sh(lab, "client", "getent hosts web").split()[0] == ip
    assert sh(lab, "other/far", "getent hosts web.default").split()[0] == ip
    assert sh(lab, "other/far", "getent hosts web.default.svc.cluster.local").split()[0] == ip
    assert sh(lab, "other/far", "getent hosts web") == ""  # not in its namespace


def test_srv_for_named_ports(lab):
    out = sh(lab, "client", "dig +short SRV _http._tcp.web.default.svc.cluster.local")
    assert out == "0 100 80 web.default.svc.cluster.local."


def test_headless_endpoints_and_hostnames(lab):
    web = sorted(p.ip for p in lab.pods("default") if p.labels.get("app") == "web")
    out = sh(lab, "client", "dig +short web-headless.default.svc.cluster.local")
    assert sorted(out.split()) == web
    srv = sh(lab, "client", "dig +short SRV _http._tcp.web-headless.default.svc.cluster.local")
    targets = sorted(line.split()[3] for line in srv.splitlines())
    assert targets == sorted(f"{ip.replace('.', '-')}.web-headless.default.svc.cluster.local."
                             for ip in web)
    db = lab.pod("db-0").ip
    assert sh(lab, "client", "dig +short db-0.db.default.svc.cluster.local") == db
    assert sh(lab, "client", "dig +short SRV _sql._tcp.db.default.svc.cluster.local") == \
        "0 100 5432 db-0.db.default.svc.cluster.local."
    assert sh(lab, "client", "dig +short -x " + db) == "db-0.db.default.svc.cluster.local."


def test_external_name_pod_records_version(lab):
    out = sh(lab, "client", "dig search.default.svc.cluster.local")
    assert "CNAME\twww.example.com." in out
    ip = lab.pod("client").ip
    assert sh(lab, "client", f"dig +short {ip.replace('.', '-')}.default.pod.cluster.local") == ip
    assert sh(lab, "client", "dig +short TXT dns-version.cluster.local") == '"1.1.0"'


def test_nxdomain_reverse_and_case(lab):
    for name in ("nope.default.svc.cluster.local", "empty.default.svc.cluster.local"):
        assert "status: NXDOMAIN" in sh(lab, "client", f"dig {name}")
    ip = lab.service("web").cluster_ip
    assert sh(lab, "client", f"dig +short -x {ip}") == "web.default.svc.cluster.local."
    assert sh(lab, "client", "dig +short WEB.Default.SVC.cluster.LOCAL") == ip


def test_outside_names_are_forwarded(lab):
    assert sh(lab, "client", "dig +short www.example.com") == "203.0.113.1"
    t0 = time.monotonic()
    assert "status: NXDOMAIN" in sh(lab, "client", "dig not-there.example")
    assert time.monotonic() - t0 < 2


def test_resolv_conf_and_dns_config(lab):
    conf = sh(lab, "client", "cat /etc/resolv.conf")
    assert conf.splitlines() == ["search default.svc.cluster.local svc.cluster.local "
                                 "cluster.local", "nameserver 10.96.0.10", "options ndots:5"]
    custom = sh(lab, "custom", "cat /etc/resolv.conf")
    assert custom.splitlines() == ["search other.svc.cluster.local", "nameserver 10.96.0.10",
                                   "options ndots:2 edns0"]
    # the host's files are untouched
    assert "10.96.0.10" not in Path("/etc/resolv.conf").read_text()


def test_new_service_resolves_within_a_second(lab):
    text = ("apiVersion: v1\nkind: Service\nmetadata: {name: late}\nspec:\n"
            "  selector: {app: web}\n  ports: [{port: 81}]\n")
    lab.apply(manifests=[text])
    try:
        t0 = time.monotonic()
        ip = lab.service("late").cluster_ip
        while lab.dns("late").addresses != [ip]:
            assert time.monotonic() - t0 < 1.0, "a new Service did not resolve within a second"
            time.sleep(0.05)
    finally:
        lab.delete(manifests=[text])
    t0 = time.monotonic()
    while lab.dns("late").rcode != "NXDOMAIN":  # and it goes as quickly
        assert time.monotonic() - t0 < 1.0
        time.sleep(0.05)


def test_large_answer_falls_back_to_tcp(netlab_lab):
    many = cluster() + """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: big}
spec:
  replicas: 40
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}, annotations: {netlab.dev/responder: "off"}}
    spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Service
metadata: {name: big}
spec:
  clusterIP: None
  selector: {app: big}
  ports: [{port: 80}]
""" + pod("client", "node-1")
    lab = netlab_lab(yaml=many)
    answer = lab.dns("big", "client")
    assert answer.tcp and len(answer.addresses) == 40
    udp = sh(lab, "client", "dig +noedns +ignore big.default.svc.cluster.local")
    assert " tc " in udp.split("flags:")[1].split(";")[0] + " "  # truncated over UDP
    assert len(sh(lab, "client", "getent ahostsv4 big | awk '{print $1}' | sort -u").split()) \
        == 40  # glibc retries over TCP by itself


def test_policy_lets_dns_through(netlab_lab):
    lab = netlab_lab(yaml=cluster() + pod("client", "node-1", labels="{app: client}") + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-dns}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {}
      podSelector: {matchLabels: {k8s-app: kube-dns}}
    ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
""")
    assert sh(lab, "client", "getent hosts kube-dns.kube-system").split()[0] == "10.96.0.10"
    assert lab.dns("www.example.com", "client").addresses == ["203.0.113.1"]
    assert not lab.probe("client", "internet", timeout=0.5).connected  # everything else: no


def test_cli_dns(lab):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "netlab", "dns", "web", "--lab", lab.name],
                       capture_output=True, text=True)
    assert r.returncode == 0 and lab.service("web").cluster_ip in r.stdout
    r = subprocess.run([sys.executable, "-m", "netlab", "dns", "nope", "--lab", lab.name],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "NXDOMAIN" in r.stdout
    r = lab.probe("client", "web")
    assert r.connected and r.address == lab.service("web").cluster_ip


def test_without_upstream_outside_names_are_refused_quickly(netlab_lab):
    lab = netlab_lab(yaml=cluster().replace("  backend: vxlan\n", "  backend: vxlan\n"
                                            "  upstreamDNS: false\n") + pod("client", "node-1"))
    t0 = time.monotonic()
    answer = lab.dns("www.example.com.", "client")
    assert answer.rcode == "REFUSED" and time.monotonic() - t0 < 0.5
    assert lab.dns("kube-dns.kube-system", "client").addresses == ["10.96.0.10"]
