"""network-policy-api's ClusterNetworkPolicy conformance cases against the kernel: every
case of tests/unit/data/cluster_netpol/conformance.yaml (the 24 tests of the profile)
replayed on one real lab — its policies applied, changed step by step as the Go test
changes them, and each of its probes sent as real traffic — in each family. The engine is
held to the same cases in tests/unit/test_cluster_netpol.py, so kernel == expected ==
engine on every case.

The upstream topology: five namespaces, a StatefulSet of two pods in each, the
forbidden-forrest one host-networked (its pods are their nodes' addresses, serving the
suite's host network ports). SCTP probes are counted and left out: this kernel has no
SCTP module (NOTES-kernel.md); the engine's unit test covers them."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import yaml
from cnp_conformance import Replay, cases, conformance

from netlab.pytest_plugin import shared_lab

pytestmark = pytest.mark.netlab

CASES = cases()
PORTS = conformance()["host_network_ports"]


def topology() -> str:
    docs: list[dict] = [{"apiVersion": "netlab.dev/v1alpha1", "kind": "Cluster", "spec": {
        "nodes": 2, "podCIDR": "10.244.0.0/16,fd00:10:244::/56",
        "serviceCIDR": "10.96.0.0/16,fd00:10:96::/112"}}]
    docs += [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": ns, "labels": labels}}
             for ns, labels in conformance()["namespaces"].items()]
    for sts in conformance()["statefulsets"]:
        spec: dict = {}
        if sts.get("hostNetwork"):  # the suite's host network ports, TCP and UDP
            spec["hostNetwork"] = True
            ports = [{"containerPort": p, "protocol": proto} for p in PORTS
                     for proto in ("TCP", "UDP")]
        else:  # named web and dns, unnamed 8080/TCP and 5353/UDP, as upstream's servers
            ports = [{"name": "web", "containerPort": 80},
                     {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                     {"containerPort": 8080}, {"containerPort": 5353, "protocol": "UDP"}]
        spec["containers"] = [{"name": "server", "image": "agnhost", "ports": ports}]
        docs.append({"apiVersion": "apps/v1", "kind": "StatefulSet",
                     "metadata": {"name": sts["name"], "namespace": sts["namespace"]},
                     "spec": {"serviceName": sts["name"], "replicas": sts["replicas"],
                              # all pods at once (upstream waits for them all anyway)
                              "podManagementPolicy": "Parallel",
                              "selector": {"matchLabels": sts["labels"]},
                              "template": {"metadata": {"labels": sts["labels"]},
                                           "spec": spec}}})
    return yaml.safe_dump_all(docs)


class Applied:
    """What the lab has of the case's objects, so each step applies only its changes."""

    def __init__(self, lab) -> None:
        self.lab = lab
        self.objects: dict[str, dict] = {}
        self.namespaces: dict[str, dict[str, str]] = {}

    def sync(self, replay: Replay) -> None:
        gone = [doc for key, doc in self.objects.items() if key not in replay.objects]
        if gone:
            self.lab.delete(manifests=gone)
        changed = [doc for key, doc in replay.objects.items() if self.objects.get(key) != doc]
        changed += [{"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": labels}}
                    for ns, labels in replay.namespaces.items()
                    if self.namespaces.get(ns) != labels]
        if changed:
            self.lab.apply(manifests=changed)
        self.objects = copy.deepcopy(replay.objects)
        self.namespaces = copy.deepcopy(replay.namespaces)


@pytest.fixture(scope="module")
def applied(request: pytest.FixtureRequest) -> Iterator[Applied]:
    yield Applied(shared_lab(request, yaml=topology(), label="cnp-conformance"))


@pytest.mark.parametrize("family", ["IPv4", "IPv6"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_kernel_agrees_with_conformance(applied: Applied, case: dict, family: str) -> None:
    lab = applied.lab
    replay = Replay(case["manifests"], family, lambda key: lab.address_of(key, family))
    wrong, sent, sctp = [], 0, 0
    dirty = True
    for step in case["steps"]:
        batch = []
        for item in step["do"]:
            if isinstance(item, dict):
                if batch:  # probes before a change see the state before it
                    wrong += _send(lab, step["run"], batch, family)
                    sent += len(batch)
                    batch = []
                (op, arg), = item.items()
                replay.change(op, arg)
                dirty = True
                continue
            p = replay.probe(item)
            if p.protocol == "SCTP":
                sctp += 1
                continue
            if dirty:
                applied.sync(replay)
                dirty = False
            batch.append((item, p))
        if batch:
            if dirty:
                applied.sync(replay)
                dirty = False
            wrong += _send(lab, step["run"], batch, family)
            sent += len(batch)
    assert sent > 0 or sctp > 0
    assert not wrong, "\n".join(wrong)


def _send(lab, run: str, batch: list, family: str) -> list[str]:
    results = lab.probe_many([(p.src, p.dst, p.port, p.protocol, family) for _, p in batch],
                             timeout=2.0)
    wrong = []
    for (line, p), r in zip(batch, results, strict=True):
        if r.result == "refused":  # a port nobody serves: the topology is wrong, not policy
            wrong.append(f"{run}: {line} ({family}): refused: nothing listens on {r.address}")
        elif r.connected != p.allow:
            wrong.append(f"{run}: {line} ({family}): the kernel "
                         f"{'allowed' if r.connected else 'denied'} it ({r.result} {r.detail})")
    return wrong


def test_every_probe_but_sctp_is_sent() -> None:
    """The probes the kernel test sends: every PokeServer of the profile but SCTP's."""
    probes = [Replay.probe(i) for c in CASES for s in c["steps"] for i in s["do"]
              if isinstance(i, str)]
    assert len(probes) == 301
    assert sum(p.protocol != "SCTP" for p in probes) > 200
