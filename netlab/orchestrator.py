"""Desired state vs. current state. `up` is `converge` on an empty lab; `apply` and
`delete` converge a running one, changing only the difference.

The orchestrator sequences features and owns nothing kernel-side: it renders intents with
the feature modules, orders them so each namespace is configured in one batch, and hands
them to the gateway.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from netlab import names
from netlab.errors import InputError
from netlab.features import overlay, pod_files, podnet, underlay, workloads
from netlab.intents import Intent, Link, Netns, Process
from netlab.kernel import Kernel, destroy_lab, netns_path, procs, uts_path
from netlab.loader import RawDoc, build, describe, object_key
from netlab.model import Cluster, Manifests
from netlab.plan import Plan, PodPlan, make_plan
from netlab.state import LabState, ProcessRecord, save

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class ChangeSummary:
    """What a converge did, by pod key (namespace/name)."""

    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    relabelled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def render_cluster(plan: Plan) -> list[Intent]:
    out = underlay.render_fabric(plan)
    for node in plan.nodes:
        out += underlay.render_node(plan, node)
        out += podnet.render_node_bridge(plan, node)
        out += overlay.render_node(plan, node)
    return order(out)


def render_pods(plan: Plan, pods: Sequence[PodPlan]) -> list[Intent]:
    out: list[Intent] = []
    for pod in pods:
        out += podnet.render_pod_netns(pod)
        out += podnet.render_pod_veth(plan, pod)
        out += podnet.render_pod_inside(plan, pod)
        out += workloads.render_pod(pod)
    return order(out)


def render_all(plan: Plan) -> list[Intent]:
    return render_cluster(plan) + render_pods(plan, list(plan.pods.values()))


def _stage(intent: Intent) -> tuple[int, str]:
    """Sort key: namespaces first, then each namespace's links and addresses together, in
    dependency order (fabric makes node eth0s; nodes make pod eth0s), processes last."""
    if isinstance(intent, Netns):
        return (0, "")
    if isinstance(intent, Process):
        return (5, "")
    role = intent.netns[len(names.NETNS_PREFIX):].split(".", 2)[1]
    if role == "fabric":
        return (1, intent.netns)
    if role == "node":
        makes_pod = isinstance(intent, Link) and intent.peer is not None
        return (3 if makes_pod else 2, intent.netns)
    return (4, intent.netns)


def order(intents: list[Intent]) -> list[Intent]:
    return sorted(intents, key=_stage)  # stable: keeps each feature's order within a stage


def effective_cluster(m: Manifests, state: LabState) -> Cluster:
    if state.plan is None:
        return m.cluster or Cluster()
    current = state.plan.cluster
    if m.cluster is not None:
        new = m.cluster
        same = (new.nodes, new.pod_cidr, new.node_cidr_mask, new.service_cidr, new.underlay_cidr,
                new.backend, new.mtu, new.cluster_dns, new.cluster_domain) == (
            current.nodes, current.pod_cidr, current.node_cidr_mask, current.service_cidr,
            current.underlay_cidr, current.backend, current.mtu, current.cluster_dns,
            current.cluster_domain)
        if not same:
            raise InputError("the Cluster of a running lab cannot change (nodes, CIDRs, backend "
                             f"and MTU are fixed at `up`): run `netlab down {state.lab}` and "
                             "`netlab up` again", file=str(new.source) if new.source else None,
                             obj="Cluster")
    return current


def merge_docs(current: list[RawDoc], incoming: list[RawDoc]) -> list[RawDoc]:
    """kubectl apply: objects in `incoming` replace those with the same kind/ns/name."""
    keys = {object_key(d) for d in incoming if d.kind}
    return [d for d in current if not d.kind or object_key(d) not in keys] + incoming


def remove_docs(current: list[RawDoc], doomed: list[RawDoc]) -> tuple[list[RawDoc], list[str]]:
    keys = {object_key(d) for d in doomed if d.kind}
    present = {object_key(d) for d in current if d.kind}
    missing = [describe(k) for k in keys - present if k[0] != "Cluster"]
    kept = [d for d in current if not d.kind or object_key(d) not in keys or d.kind == "Cluster"]
    return kept, missing


class Converger:
    def __init__(self, state: LabState, progress: ProgressFn | None = None) -> None:
        self.state = state
        self.lab = state.lab
        self.progress = progress
        self.kernel: Kernel | None = None

    def _tick(self, stage: str, total: int) -> Callable[[int], None]:
        done = 0
        if self.progress:
            self.progress(stage, 0, total)

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if self.progress:
                self.progress(stage, min(done, total), total)
        return advance

    def converge(self, docs: list[RawDoc], built: Manifests | None = None) -> ChangeSummary:
        """Make the lab what `docs` say (`built`: the same docs already loaded)."""
        m = built or build(docs)
        cluster = effective_cluster(m, self.state)
        previous = self.state.plan
        plan = make_plan(self.lab, m, cluster, previous)
        summary = ChangeSummary(warnings=list(m.warnings))
        old = previous.pods if previous else {}
        gone = [p for k, p in old.items()
                if k not in plan.pods or plan.pods[k].spec_hash != p.spec_hash]
        new = [p for k, p in plan.pods.items() if k not in old or old[k].spec_hash != p.spec_hash]
        for k, p in plan.pods.items():
            if k in old and old[k].spec_hash == p.spec_hash:
                (summary.relabelled if old[k].labels != p.labels else summary.unchanged).append(k)

        self.kernel = Kernel(self.lab)
        try:
            if previous is None:
                self.state.docs, self.state.plan = docs, None
                save(self.state)
                intents = render_cluster(plan)
                self.kernel.apply(intents, self._tick("nodes", len(intents)))
            self.remove_pods(previous, gone)
            if previous is not None:
                self.state.plan = _plan_with(plan, old, gone)  # reality until the new pods exist
                save(self.state)
            self.create_pods(plan, new)
        finally:
            self.kernel.close()
        self.state.docs, self.state.plan, self.state.phase = docs, plan, "ready"
        save(self.state)
        summary.created = [p.key for p in new]
        summary.deleted = [p.key for p in gone]
        return summary

    def create_pods(self, plan: Plan, pods: list[PodPlan]) -> None:
        if not pods:
            return
        assert self.kernel is not None
        for pod in pods:
            d = names.pod_dir(self.lab, pod.namespace, pod.name)
            d.mkdir(parents=True, exist_ok=True)
            (d / "hosts").write_text(pod_files.hosts(pod))
            (d / "resolv.conf").write_text(pod_files.resolv_conf(plan.cluster, pod))
        intents = render_pods(plan, pods)
        try:
            self.kernel.apply(intents, self._tick("pods", len(intents)),
                              spawn=lambda p: self._spawn(plan, p))
        except BaseException:
            # Undo this step only: the pods that were being created.
            with contextlib.suppress(Exception):
                self.remove_pods(plan, pods)
            raise

    def _spawn(self, plan: Plan, intent: Process) -> None:
        pod = plan.pods[intent.pod]
        d = names.pod_dir(self.lab, pod.namespace, pod.name)
        env = {"HOSTNAME": pod.hostname, "NETLAB_LAB": self.lab, "NETLAB_POD": pod.key,
               **dict(intent.env)}
        started = procs.spawn(
            netns_path(pod.netns), uts_path(self.lab, pod.netns), intent.argv, env,
            ((str(d / "resolv.conf"), "/etc/resolv.conf"), (str(d / "hosts"), "/etc/hosts")),
            d / f"{intent.container}.log", d / f"{intent.container}.exit")
        self.state.processes.setdefault(pod.key, []).append(
            ProcessRecord(intent.container, started.pid, started.starttime))

    def remove_pods(self, plan: Plan | None, pods: list[PodPlan]) -> None:
        if not pods or plan is None:
            return
        assert self.kernel is not None
        from netlab.kernel import ns

        recorded = [r.started for p in pods for r in self.state.processes.get(p.key, [])]
        inodes = {i for i in (ns.inode(netns_path(p.netns)) for p in pods) if i}
        procs.kill_verified(recorded, inodes)
        by_node: dict[str, list[tuple[str, int]]] = {}
        for p in pods:
            by_node.setdefault(plan.node(p.node).netns, []).append((p.veth, p.veth_index))
        for node_netns, links in by_node.items():
            self.kernel.delete_links(node_netns, links)
        self.kernel.remove_netns([p.netns for p in pods])
        for p in pods:
            self.state.processes.pop(p.key, None)
            d = names.pod_dir(self.lab, p.namespace, p.name)
            for f in sorted(d.glob("*")) if d.exists() else []:
                f.unlink()
            with contextlib.suppress(OSError):
                os.rmdir(d)


def _plan_with(plan: Plan, old: dict[str, PodPlan], gone: list[PodPlan]) -> Plan:
    gone_keys = {p.key for p in gone}
    kept = {k: p for k, p in old.items() if k not in gone_keys}
    return Plan(plan.lab, plan.cluster, plan.nodes, kept, plan.underlay_gateway, plan.namespaces)


def create_lab(state: LabState, docs: list[RawDoc], progress: ProgressFn | None = None,
               built: Manifests | None = None) -> ChangeSummary:
    """Bring a lab up from nothing; on any failure (or Ctrl-C) remove all of it."""
    try:
        return Converger(state, progress).converge(docs, built)
    except BaseException:
        destroy_lab(state.lab, state.recorded())
        raise
