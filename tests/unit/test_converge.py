"""The converger on the in-memory kernel (netlab.kernel.fake): `up` builds exactly the
desired lab, a partial update ends where a fresh build of the same desired lab ends, and a
failure at any step of an update leaves the lab as it was. No root needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.compile import DesiredLab, compile_lab
from netlab.converge import Converger, converge_docs
from netlab.errors import KernelError
from netlab.intents import Netns
from netlab.kernel.fake import FakeKernel
from netlab.loader import RawDoc, as_docs, read_files
from netlab.nft.fake import FakeNft
from netlab.state import LabState

ROOT = Path(__file__).resolve().parents[2]
LAB = "conv"

CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 2}\n"
WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
"""
CLIENT = """
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {role: client}}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: TYPE
  selector: {app: web}
  ports: [{port: 8080, targetPort: TARGET, protocol: PROTO}]
"""
DENY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-client}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]
"""
INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: HOST
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 8080}}}}]
"""


def docs(replicas: int = 2, svc: str | None = "ClusterIP", target: int = 80,
         proto: str = "TCP", policy: bool = False, host: str | None = None) -> list[RawDoc]:
    texts = [CLUSTER, WEB.replace("REPLICAS", str(replicas)), CLIENT]
    if svc:
        texts.append(SERVICE.replace("TYPE", svc).replace("TARGET", str(target))
                     .replace("PROTO", proto))
    if policy:
        texts.append(DENY)
    if host:
        texts.append(INGRESS.replace("HOST", host))
    return as_docs(texts)


# Each step changes one thing a running lab is asked to change.
VERSIONS = {
    "base": docs(),
    "scaled-up": docs(replicas=4),
    "scaled-down": docs(replicas=1),
    "other-target-port": docs(target=8081),
    "udp-service": docs(proto="UDP"),
    "load-balancer": docs(svc="LoadBalancer"),
    "no-service": docs(svc=None),
    "policy": docs(policy=True),
    "ingress": docs(svc="ClusterIP", host="a.example"),
    "ingress-other-host": docs(svc="ClusterIP", host="b.example"),
}
STEPS = [("base", v) for v in VERSIONS if v != "base"] + [
    ("load-balancer", "scaled-down"), ("ingress", "ingress-other-host"),
    ("policy", "base"), ("scaled-up", "no-service")]


def up(d: list[RawDoc]) -> tuple[FakeKernel, LabState, DesiredLab]:
    fake, st = FakeKernel(LAB), LabState(LAB)
    desired = compile_lab(LAB, d)
    Converger(fake, st).converge(None, desired, d)
    return fake, st, desired


def fresh(desired: DesiredLab) -> FakeKernel:
    """A new lab built straight to `desired`."""
    fake = FakeKernel(LAB)
    Converger(fake, LabState(LAB)).converge(None, desired, [])
    return fake


def test_up_builds_exactly_the_desired_lab():
    d = read_files([ROOT / "scenarios" / "quickstart.yaml"])
    fake, st, desired = up(d)
    netns = {i.name for i in desired.network if isinstance(i, Netns)}
    netns |= {i.name for v in desired.pods.values() for i in v if isinstance(i, Netns)}
    assert set(fake.netns) == netns
    assert sorted((p.pod, p.container, p.argv) for p in fake.processes.values()) == sorted(
        (p.pod, p.container, p.argv) for v in desired.processes.values() for p in v)
    assert {k for k in desired.files} <= set(fake.files) | fake.dirs
    for node in desired.plan.nodes:
        want = FakeNft()
        want.apply("".join(t.full() for t in desired.rules[node.netns]))
        assert fake.netns[node.netns].nft.dump() == want.dump()
    assert st.phase == "ready" and st.plan == desired.plan
    assert {r.container for r in st.processes["host/internet"]} == {"dns"}
    assert fake.loads == desired.workloads  # the agent got every workload
    assert desired.serves["host/internet"].ports == ("tcp:80", "tcp:443", "udp:80")
    web = [k for k in desired.serves if k.startswith("default/web-")]
    assert len(web) == 2 and all(desired.serves[k].ports == ("tcp:80",) for k in web)


@pytest.mark.parametrize(("a", "b"), STEPS, ids=[f"{a}->{b}" for a, b in STEPS])
def test_partial_update_ends_where_a_fresh_build_ends(a: str, b: str):
    fake, st, _ = up(VERSIONS[a])
    fake.calls.clear()
    summary = converge_docs(fake, st, VERSIONS[b])
    assert st.plan is not None
    new = compile_lab(LAB, VERSIONS[b], previous=_previous(a))
    assert fake.snapshot() == fresh(new).snapshot()
    # only what changed was touched: no namespace of an unchanged pod was made again
    assert fake.calls.get("create", 0) <= sum(len(new.pods[k]) for k in summary.created) + 8


def _previous(a: str):
    _, st, _ = up(VERSIONS[a])
    return st.plan


def test_a_service_targeting_other_ports_changes_only_what_the_responder_serves():
    fake, st, _ = up(VERSIONS["base"])
    before = dict(fake.processes)
    served = {k: w.serve for k, w in fake.loads.items()}
    summary = converge_docs(fake, st, VERSIONS["other-target-port"])
    assert summary.created == [] and summary.deleted == []
    assert fake.processes == before  # no process restarted
    changed = {k for k, w in fake.loads.items() if w.serve != served.get(k)}
    assert changed and all(k.startswith("default/web-") for k in changed)
    assert all(fake.loads[k].serve.ports == ("tcp:80", "tcp:8081") for k in changed)


def test_load_balancer_address_is_announced_by_one_node():
    fake, st, _ = up(VERSIONS["base"])
    converge_docs(fake, st, VERSIONS["load-balancer"])
    assert st.plan is not None
    lb = next(s for s in st.plan.services.values() if s.name == "web").lb_ip
    assert [ip for _, ip in fake.announced] == [lb]
    holders = [n for n, ns in fake.netns.items() if any(c == f"{lb}/32" for _, c in ns.addresses)]
    assert len(holders) == 1


def test_udp_flows_to_deleted_endpoints_are_forgotten_on_every_node():
    fake, st, _ = up(VERSIONS["udp-service"])
    converge_docs(fake, st, docs(replicas=1, proto="UDP"))
    gone = {ip for _, (ip, _port) in fake.forgotten}
    assert gone and {n for n, _ in fake.forgotten} == {n.netns for n in st.plan.nodes}


def test_a_changed_ingress_reloads_nginx_after_checking_it():
    fake, st, _ = up(VERSIONS["ingress"])
    converge_docs(fake, st, VERSIONS["ingress-other-host"])
    assert fake.calls.get("check_config") == 1 and len(fake.reloads) == 1
    assert b"server_name b.example;" in fake.files["ingress/nginx.conf"]


def _operations(a: str, b: str) -> dict[str, int]:
    fake, st, _ = up(VERSIONS[a])
    fake.calls.clear()
    converge_docs(fake, st, VERSIONS[b])
    return dict(fake.calls)


ROLLBACK = [(a, b) for a, b in STEPS if b in ("scaled-up", "scaled-down", "load-balancer",
                                              "policy", "ingress-other-host", "no-service")]


@pytest.mark.parametrize(("a", "b"), ROLLBACK, ids=[f"{a}->{b}" for a, b in ROLLBACK])
def test_a_failed_update_leaves_the_lab_as_it_was(a: str, b: str):
    """Every call of every kernel operation of the update is made to fail in turn: the update
    either succeeds (nft falls back to a whole reload) or leaves the lab as it was."""
    ops = _operations(a, b)
    assert ops
    for op, count in ops.items():
        for n in range(1, count + 1):
            fake, st, _ = up(VERSIONS[a])
            before, plan = fake.snapshot(), st.plan
            fake.calls.clear()
            fake.fail = {op: n}
            try:
                converge_docs(fake, st, VERSIONS[b])
            except KernelError:
                assert fake.snapshot() == before, f"{op} #{n}"
                assert st.plan == plan
            else:  # nft falls back to a whole reload; sandboxes made ahead are optional
                assert op in ("nft", "prepare_pods"), \
                    f"{op} #{n} failed without the update failing"


@pytest.mark.parametrize("d", [VERSIONS["ingress"],
                               as_docs([CLUSTER.replace("nodes: 2", "nodes: 2, backend: bgp"),
                                        WEB.replace("REPLICAS", "2"), CLIENT])],
                         ids=["ingress", "bgp"])
def test_a_failed_up_leaves_nothing(d: list[RawDoc]):
    """Whichever kernel call fails during `up`, nothing is left (with backend bgp too, whose
    BIRDs start early, before the pods)."""
    ops = FakeKernel(LAB)
    Converger(ops, LabState(LAB)).converge(None, compile_lab(LAB, d), d)
    for op, count in ops.calls.items():
        for n in sorted({1, count}):
            fake = FakeKernel(LAB, fail={op: n})
            if op == "prepare_pods":  # optional: the lab is built all the same
                Converger(fake, LabState(LAB)).converge(None, compile_lab(LAB, d), d)
                assert fake.snapshot()["processes"] == ops.snapshot()["processes"]
                continue
            with pytest.raises(KernelError):
                Converger(fake, LabState(LAB)).converge(None, compile_lab(LAB, d), d)
            snap = fake.snapshot()
            assert snap["netns"] == {} and snap["processes"] == [], f"{op} #{n}"
            assert snap["served"] == [], f"{op} #{n}"
            assert snap["files"] == {} and not fake.dirs, f"{op} #{n}"


def test_sandboxes_are_asked_for_once_the_pod_namespaces_exist():
    """The agent is told which pods' sandboxes it may make ahead, after their namespaces
    and before their interfaces are created (so the two overlap)."""
    d = VERSIONS["ingress"]
    seen: list[tuple[str, int, int]] = []

    class Watching(FakeKernel):
        def prepare_pods(self, desired):
            links = sum(len(n.links) for n in self.netns.values())
            seen.append((",".join(sorted(desired)), len(self.netns), links))
            super().prepare_pods(desired)

    fake = Watching(LAB)
    desired = compile_lab(LAB, d)
    Converger(fake, LabState(LAB)).converge(None, desired, d)
    assert len(seen) == 1
    pods = sorted(k for k in desired.plan.pods)
    assert seen[0][0] == ",".join(pods) and fake.prepared == pods
    assert seen[0][1] == len(fake.netns)  # every namespace was there already
    assert seen[0][2] < sum(len(n.links) for n in fake.netns.values())  # links came after
