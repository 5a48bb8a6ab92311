"""Desired state vs. current state. `up` is `converge` on an empty lab; `apply` and
`delete` converge a running one, changing only the difference.

The orchestrator sequences features and owns nothing kernel-side: it renders intents with
the feature modules, orders them so each namespace is configured in one batch, and hands
them to the gateway.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netlab import names
from netlab.errors import InputError, KernelError
from netlab.features import (
    dns,
    ingress,
    kubeproxy,
    loadbalancer,
    netpol,
    overlay,
    pod_files,
    podnet,
    services,
    underlay,
    workloads,
)
from netlab.intents import Intent, Link, Netns, Process
from netlab.kernel import Kernel, destroy_lab, netns_path, procs, uts_path
from netlab.loader import RawDoc, build, describe, object_key
from netlab.model import Cluster, Manifests, NetworkPolicy
from netlab.nft import Table
from netlab.plan import NodePlan, Plan, PodPlan, make_plan
from netlab.state import LabState, ProcessRecord, save

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)
RESPONDER_SCRIPT = Path(__file__).with_name("responder.py")


def zone_file(lab: str) -> Path:
    return names.lab_dir(lab) / "dns" / "zone.json"


def ingress_dir(lab: str) -> Path:
    return names.lab_dir(lab) / "ingress"


def ingress_nginx_pid(lab: str, plan: Plan) -> int | None:
    """The running nginx master of the controller, verified to live in its pod's network
    namespace (we only ever signal what is ours)."""
    key = f"{ingress.NAMESPACE}/{ingress.CONTROLLER}"
    pod = plan.pods.get(key)
    try:
        pid = int((ingress_dir(lab) / "nginx.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if pod is None:
        return None
    from netlab.kernel import ns as ns_

    inode = ns_.inode(netns_path(pod.netns))
    return pid if inode and pid in procs.pids_in_netns({inode}) else None


@dataclass
class ChangeSummary:
    """What a converge did, by pod key (namespace/name)."""

    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    relabelled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def add_cluster_addons(m: Manifests, cluster: Cluster) -> None:
    """The cluster DNS add-on, unless the Cluster turns it off or the user brings their own
    kube-system/kube-dns Service."""
    docs = []
    if cluster.dns and "kube-system/kube-dns" not in m.services:
        docs += dns.addon_docs(cluster, cluster.nodes[0].name)
    if ingress.served(m, cluster):  # the ingress controller, once there is an Ingress for it
        docs += ingress.addon_docs(cluster, cluster.nodes[0].name)
    if not docs:
        return
    addons = build(docs)
    for key, pod in addons.pods.items():
        m.pods.setdefault(key, pod)
    for key, svc in addons.services.items():
        m.services.setdefault(key, svc)
    for name, ns in addons.namespaces.items():
        m.namespaces.setdefault(name, ns)


def full_plan(lab: str, m: Manifests, cluster: Cluster, previous: Plan | None = None) -> Plan:
    """Pods placed and addressed, then Services (addresses, endpoints, responder ports)."""
    return services.plan_services(m, make_plan(lab, m, cluster, previous), previous)


def render_cluster(plan: Plan) -> list[Intent]:
    out = underlay.render_fabric(plan)
    for node in plan.nodes:
        out += underlay.render_node(plan, node)
        out += podnet.render_node_bridge(plan, node)
        out += overlay.render_node(plan, node)
    out += underlay.render_hosts(plan)
    return order(out)


def node_tables(plan: Plan, policies: list[NetworkPolicy], node: NodePlan) -> list[Table]:
    """Every nftables table of a node: kube-proxy's, flannel's egress NAT, NetworkPolicy."""
    return [*kubeproxy.render_tables(plan, node), netpol.render_node(plan, node, policies)]


def render_rules(plan: Plan, policies: list[NetworkPolicy], previous: Plan | None,
                 old_policies: list[NetworkPolicy], node: NodePlan) -> tuple[str, str]:
    """(the transaction to load into the node, the full ruleset to fall back on)."""
    tables = node_tables(plan, policies, node)
    full = "".join(t.full() for t in tables)
    if previous is None:
        return full, full
    old = node_tables(previous, old_policies, node)
    return "".join(t.diff(o) for t, o in zip(tables, old, strict=True)), full


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
    if role == "host":
        return (2, intent.netns)
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
        if new != current:
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
        m.label_overrides = self.state.label_overrides
        cluster = effective_cluster(m, self.state)
        add_cluster_addons(m, cluster)
        previous = self.state.plan
        plan = full_plan(self.lab, m, cluster, previous)
        summary = ChangeSummary(warnings=list(m.warnings))
        old = previous.pods if previous else {}
        gone = [p for k, p in old.items()
                if k not in plan.pods or plan.pods[k].spec_hash != p.spec_hash]
        new = [p for k, p in plan.pods.items() if k not in old or old[k].spec_hash != p.spec_hash]
        for k, p in plan.pods.items():
            if k in old and old[k].spec_hash == p.spec_hash:
                (summary.relabelled if old[k].labels != p.labels else summary.unchanged).append(k)

        restart = [p for k, p in plan.pods.items()
                   if k in old and old[k].spec_hash == p.spec_hash and old[k].serves != p.serves]
        self.kernel = Kernel(self.lab)
        try:
            if previous is None:
                self.state.docs, self.state.plan = docs, None
                save(self.state)
                intents = render_cluster(plan)
                self.kernel.apply(intents, self._tick("nodes", len(intents)),
                                  spawn=lambda p: self._spawn(plan, p))
            self.remove_pods(previous, gone)
            if previous is not None and gone:
                self.state.plan = _plan_with(plan, old, gone)  # reality until the new pods exist
                save(self.state)
            old_policies = (list(build(self.state.docs).network_policies.values())
                            if previous is not None else [])
            self.write_zone(plan)
            summary.warnings += self.write_ingress(plan, m)
            self.create_pods(plan, new)
            try:
                # Rules first, workloads after: a new pod is isolated before it runs anything.
                self.sync_rules(plan, list(m.network_policies.values()), previous, old_policies)
                self.start_workloads(plan, new)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.remove_pods(plan, new)
                raise
            self.restart_responders(plan, restart)
            self.wait_for_responders(plan, [*new, *restart], hosts=previous is None)
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
            (d / "hosts").write_text(pod_files.hosts(plan.cluster, pod))
            (d / "resolv.conf").write_text(dns.resolv_conf(plan.cluster, pod, plan.internet_ip))
        intents = [i for i in render_pods(plan, pods) if not isinstance(i, Process)]
        try:
            self.kernel.apply(intents, self._tick("pods", len(intents)))
        except BaseException:
            # Undo this step only: the pods that were being created.
            with contextlib.suppress(Exception):
                self.remove_pods(plan, pods)
            raise

    def write_ingress(self, plan: Plan, m: Manifests) -> list[str]:
        """nginx.conf and certificates of the ingress controller; a running nginx is
        validated against the new configuration (`nginx -t`) and reloaded gracefully
        (SIGHUP: old workers finish their requests)."""
        key = f"{ingress.NAMESPACE}/{ingress.CONTROLLER}"
        if key not in plan.pods:
            return []
        d = ingress_dir(self.lab)
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        cfg = ingress.render(plan, m, d)
        for name, data in cfg.files.items():
            (d / name).write_bytes(data)
        for base, hosts in {"default": ("netlab-ingress-default",), **cfg.self_signed}.items():
            if not (d / f"{base}.crt").exists():
                procs.self_signed_certificate(d / f"{base}.crt", d / f"{base}.key", hosts)
        conf = d / "nginx.conf"
        if conf.exists() and conf.read_text() == cfg.conf:
            return cfg.warnings
        new = d / "nginx.conf.new"
        new.write_text(cfg.conf)
        pid = ingress_nginx_pid(self.lab, plan)
        if pid is not None:
            r = procs.run_in(netns_path(plan.pods[key].netns), ["nginx", "-t", "-q", "-c",
                                                                 str(new)])
            if r.returncode != 0:
                return [*cfg.warnings, f"the new nginx configuration does not validate, the "
                                       f"old one stays: {r.stderr.strip()}"]
        os.replace(new, conf)
        if pid is not None:
            procs.reload(pid)
        return cfg.warnings

    def write_zone(self, plan: Plan) -> None:
        """The cluster DNS records; the server reloads them when the file changes."""
        path = zone_file(self.lab)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dns.render_zone(plan), separators=(",", ":")))
        os.replace(tmp, path)

    def wait_for_responders(self, plan: Plan, pods: list[PodPlan], timeout: float = 10.0,
                            hosts: bool = False) -> None:
        """Return when every server just started (responder, DNS) listens on all its ports
        (each logs one line per port), like a pod turning Ready: a probe right after `up`
        or `apply` meets a server. One that died is not waited for."""
        import time

        pending: dict[tuple[str, str], tuple[Path, int]] = {}
        if hosts:  # the internet host's responder and resolver, when the lab is new
            d = names.lab_dir(self.lab) / "hosts" / "internet"
            pending[("host/internet", workloads.RESPONDER)] = (
                d / f"{workloads.RESPONDER}.log", len(underlay.INTERNET_PORTS))
            pending[("host/internet", "dns")] = (d / "dns.log", 2)
        for p in pods:
            d = names.pod_dir(self.lab, p.namespace, p.name)
            if p.serves:
                pending[(p.key, workloads.RESPONDER)] = (
                    d / f"{workloads.RESPONDER}.log", len(p.serves))
            for c in p.containers:
                if c.argv[:1] == ("netlab-dns",):
                    pending[(p.key, c.name)] = (d / f"{c.name}.log", 2)
                if c.argv[:1] == ("netlab-nginx",):  # nginx writes its pid once listening
                    pending[(p.key, c.name)] = (ingress_dir(self.lab) / "nginx.pid", 0)
        records = {(k, r.container): r for k, _ in pending
                   for r in self.state.processes.get(k, [])}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for key, (log, ports) in list(pending.items()):
                try:
                    text = log.read_text()
                except FileNotFoundError:
                    text = ""
                done = text.count("listening on ") + text.count("cannot listen on ")
                rec = records.get(key)
                ready = (ports == 0 and text) or (ports and done >= ports)
                if ready or (rec and not procs.alive(rec.pid, rec.starttime)):
                    del pending[key]
            if pending:
                time.sleep(0.01)

    def start_workloads(self, plan: Plan, pods: list[PodPlan]) -> None:
        for pod in pods:
            for intent in workloads.render_pod(pod):
                assert isinstance(intent, Process)
                self._spawn(plan, intent)

    def _spawn(self, plan: Plan, intent: Process) -> None:
        if intent.pod.startswith("host/"):
            host = intent.pod.split("/", 1)[1]
            d = names.lab_dir(self.lab) / "hosts" / host
            d.mkdir(parents=True, exist_ok=True)
            binds: tuple[tuple[str, str], ...] = ()
            env = {"HOSTNAME": host}
        else:
            pod = plan.pods[intent.pod]
            d = names.pod_dir(self.lab, pod.namespace, pod.name)
            binds = ((str(d / "resolv.conf"), "/etc/resolv.conf"),
                     (str(d / "hosts"), "/etc/hosts"))
            env = {"HOSTNAME": pod.hostname}
        env |= {"NETLAB_LAB": self.lab, "NETLAB_POD": intent.pod, **dict(intent.env)}
        argv = intent.argv
        if intent.builtin:  # stdlib-only script, run isolated from the user's site-packages
            argv = (sys.executable, "-I", "-S", str(RESPONDER_SCRIPT), *argv)
        elif argv[:1] == ("netlab-nginx",):  # the ingress controller's data plane
            argv = ("nginx", "-c", str(ingress_dir(self.lab) / "nginx.conf"), "-g",
                    "daemon off;")
        elif argv[:1] == ("netlab-dns",):  # the cluster DNS add-on's (or internet's) server
            extra = argv[1:] or ("--zone", str(zone_file(self.lab)), *(
                ("--upstream", plan.internet_ip) if plan.cluster.upstream_dns else ()))
            argv = (sys.executable, "-m", "netlab.dns_server", *extra)
        started = procs.spawn(
            netns_path(intent.netns), uts_path(self.lab, intent.netns), argv, env, binds,
            d / f"{intent.container}.log", d / f"{intent.container}.exit")
        self.state.processes.setdefault(intent.pod, []).append(
            ProcessRecord(intent.container, started.pid, started.starttime))

    def restart_responders(self, plan: Plan, pods: list[PodPlan]) -> None:
        """A Service now targets other ports of these pods: restart only their responder."""
        for pod in pods:
            records = self.state.processes.get(pod.key, [])
            doomed = [r for r in records if r.container == workloads.RESPONDER]
            procs.kill_verified([r.started for r in doomed], set())
            self.state.processes[pod.key] = [r for r in records if r not in doomed]
            for intent in workloads.render_responder(pod):
                self._spawn(plan, intent)

    def sync_rules(self, plan: Plan, policies: list[NetworkPolicy], previous: Plan | None,
                   old_policies: list[NetworkPolicy]) -> None:
        """Each node's nftables (Services, egress NAT, NetworkPolicy) in one transaction per
        node (only the difference when the lab is running), all nodes at once; then
        LoadBalancer addresses on the announcing node."""
        from concurrent.futures import ThreadPoolExecutor

        kernel = self.kernel
        assert kernel is not None

        def load(node: NodePlan) -> None:
            script, full = render_rules(plan, policies, previous, old_policies, node)
            if not script:
                return
            try:
                kernel.nft(node.netns, script)
            except KernelError:
                if script == full:
                    raise
                kernel.nft(node.netns, full)  # out of step with the kernel: reload it whole

        stale = kubeproxy.stale_udp_endpoints(previous, plan)

        def load_and_forget(node: NodePlan) -> None:
            load(node)
            kernel.forget_udp_flows(node.netns, stale)  # once no rule sends anything there

        with ThreadPoolExecutor(max_workers=min(8, len(plan.nodes))) as pool:
            list(pool.map(load_and_forget, plan.nodes))
        for node in plan.nodes:
            want = set(loadbalancer.announced(plan, node))
            had = set(loadbalancer.announced(previous, node)) if previous else set()
            kernel.delete_addresses(node.netns, sorted(had - want, key=str))
            kernel.apply(sorted(want - had, key=str))
            kernel.announce(node.netns, names.NODE_UNDERLAY_IFACE,
                            sorted(a.cidr.split("/")[0] for a in want - had))

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
