"""What a kube-proxy or network-policy developer checks, with a real lab per test."""

from __future__ import annotations

from collections import Counter

import pytest

LAB = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: shop, labels: {app: frontend}}
spec:
  containers: [{name: web, image: web, command: [sleep, infinity]}]
"""

LOCKDOWN = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
      podSelector: {matchLabels: {k8s-app: kube-dns}}
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
"""


@pytest.mark.netlab
def test_service_spreads_over_its_endpoints(netlab_lab):
    lab = netlab_lab(yaml=LAB)
    results = lab.probe_many([("shop/frontend", "svc/shop/api")] * 60)
    assert all(r.connected for r in results)
    answered = Counter(r.answered_by for r in results)
    assert len(answered) == 3, answered  # every replica answered at least once
    assert {r.client_ip for r in results} == {lab.pod("shop/frontend").ip}  # no SNAT


@pytest.mark.netlab
def test_policy_blocks_the_api_but_lets_dns_through(netlab_lab):
    lab = netlab_lab(yaml=LAB + "---\n" + LOCKDOWN)
    # Names still resolve: the cluster DNS (kube-system pods labelled k8s-app: kube-dns)
    # is reached on port 53 through the kube-dns Service...
    answer = lab.dns("api", "shop/frontend")
    assert answer.rcode == "NOERROR"
    assert answer.addresses == [lab.service("shop/api").cluster_ip]
    # ...and nothing else leaves the frontend: not the api Service, not the internet
    assert not lab.probe("shop/frontend", "svc/shop/api", timeout=0.5).connected
    assert not lab.probe("shop/frontend", "internet", timeout=0.5).connected
    # other pods are not affected, and the whole matrix agrees with the semantics
    api = next(p for p in lab.pods("shop") if p.labels.get("app") == "api")
    assert lab.probe(api.key, "svc/shop/api").connected
    report = lab.check(timeout=0.5)
    assert report.ok, report.mismatches
