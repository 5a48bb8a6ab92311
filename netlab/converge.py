"""Desired lab vs. current lab. `up` converges an empty lab; `apply`, `delete` and `label`
converge a running one, changing only the difference. The converger owns no feature: it
diffs two DesiredLabs (netlab.compile) and asks the kernel port for the difference, in
stages declared here, each step leaving an undo behind. When a step fails, the undos run in
reverse and the lab is what it was before (an `up` that fails is removed whole by its caller).

Stages, in order:
  1. network    the fabric, outside hosts and nodes (only when the lab is new)
  2. pods-out   pods that go or change: processes stopped, veth and namespace removed
  3. files      pod files, the DNS zone, nginx's configuration (checked, then reloaded)
  4. pods-in    new pods' namespaces, veths, addresses and routes (CNI mode: before files,
                the namespaces, then the plugins' ADD, then the lab compiled again with the
                addresses their results gave)
  5. rules      each node's nftables, one transaction per node (only the difference); in
                proxyMode iptables also kube-proxy's iptables-restore per family
  6. addresses  LoadBalancer addresses moved between nodes (gratuitous ARP), UDP conntrack
                entries of endpoints that are gone
  7. workloads  the agent is given the lab's workloads: it starts the containers of new pods
                and what changed, stops what went, and serves the built-in responder
  8. ready      wait until what was started listens
Rules load before workloads start: a new pod is isolated before it runs anything.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from netlab.compile import DesiredLab, compile_lab, current, order, pod_dir
from netlab.errors import KernelError
from netlab.features import kubeproxy_iptables
from netlab.intents import Announced, Certificate, Directory, File, Netns
from netlab.kernel.port import KernelPort, Started
from netlab.plan import Plan
from netlab.state import LabState, ProcessRecord

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)
STAGES = ("network", "pods-out", "files", "pods-in", "rules", "addresses", "workloads",
          "ready")


@dataclass
class ChangeSummary:
    """What a converge did, by pod key (namespace/name)."""

    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    relabelled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Converger:
    def __init__(self, port: KernelPort, state: LabState, progress: ProgressFn | None = None,
                 save: Callable[[LabState], None] | None = None,
                 ready_timeout: float = 10.0,
                 recompile: Callable[[dict[str, tuple[str, ...]]], DesiredLab] | None = None
                 ) -> None:
        """`recompile`: CNI mode's second compile, given the addresses the plugins gave the
        new pods (the desired lab's Services, policy, DNS and files need them)."""
        self.recompile = recompile
        self.port = port
        self.state = state
        self.progress = progress
        self.save = save or (lambda _s: None)
        self.ready_timeout = ready_timeout
        self._undo: list[Callable[[], None]] = []

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

    def converge(self, old: DesiredLab | None, new: DesiredLab, docs: list) -> ChangeSummary:
        """Make the lab `new` (from `old`, what it is; None: nothing yet). `docs`: what the
        user applied, recorded with the new plan."""
        summary = ChangeSummary(warnings=list(new.warnings))
        before = old.plan.pods if old else {}
        after = new.plan.pods
        gone = [k for k, p in before.items()
                if k not in after or after[k].spec_hash != p.spec_hash]
        made = [k for k, p in after.items()
                if k not in before or before[k].spec_hash != p.spec_hash]
        for k, p in after.items():
            if k in before and before[k].spec_hash == p.spec_hash:
                (summary.relabelled if before[k].labels != p.labels
                 else summary.unchanged).append(k)
        self._undo = []
        try:
            if old is None:
                self.state.docs, self.state.plan = docs, None
                self.save(self.state)
                self.port.prepare()
                self._network(new)
            if old is not None and gone:
                # the pods leave the state first, then the agent lets go of them: a reader
                # (`get pods`) never sees a pod whose containers are no longer reported, as
                # one that is being created
                self.state.plan = _without(old.plan, gone)  # reality until new pods exist
                self.save(self.state)
                self._remove_pods(old, gone)
            cni = new.plan.cluster.cni
            if cni and made:  # the pods first: their addresses come from the plugins
                self._create_pods(new, made)
                new = self._attach(new, made)
            summary.warnings += self._files(old, new, gone)
            early = self._node_daemons(old, new)
            if not cni:
                self._create_pods(new, made)
            self._rules(old, new)
            self._addresses(old, new)
            started = sorted({*early, *self._workloads(old, new, gone)})
        except BaseException:
            for undo in reversed(self._undo):
                with contextlib.suppress(Exception):
                    undo()
            if old is not None:
                self.state.plan = old.plan
                self.save(self.state)
            raise
        finally:
            self._undo = []
        self._wait_ready(new, started)
        self.state.docs, self.state.plan, self.state.phase = docs, new.plan, "ready"
        # readiness is a pod's, not a name's: a re-created pod is not ready until the agent
        # says so (else a StatefulSet update would step on the old pod's readiness, and the
        # agent, seeing no change to report, would never converge the next step)
        self.state.readiness = {k: v for k, v in self.state.readiness.items() if k not in made}
        self.save(self.state)
        summary.created, summary.deleted = made, gone
        return summary

    # --- 1. network ------------------------------------------------------------------------

    def _network(self, new: DesiredLab) -> None:
        made = [i.name for i in new.network if isinstance(i, Netns)]
        self._undo.append(lambda: self.port.remove_netns(made))
        self.port.create(new.network, self._tick("nodes", len(new.network)))

    # --- 2. and 4. pods ------------------------------------------------------------------------

    def _remove_pods(self, old: DesiredLab, keys: Sequence[str]) -> None:
        def undo() -> None:  # also after a removal that stopped half-way
            self._stop_pods(old, keys)
            self._restore_pods(old, keys)
        self._undo.append(undo)
        self._stop_pods(old, keys)

    def _stop_pods(self, lab: DesiredLab, keys: Sequence[str]) -> None:
        pods = [lab.plan.pods[k] for k in keys]
        self.port.release(keys)  # the agent lets go first: no restart, sockets closed
        recorded = [r.started for k in keys for r in self.state.processes.get(k, [])]
        # a hostNetwork pod's namespace is its node's: only its own processes go, no link
        # and no namespace with it
        own = [p for p in pods if not p.host_network]
        self.port.stop(recorded, [p.netns for p in own])
        attached = [lab.cni[k] for k in keys if k in lab.cni]
        if attached:  # CNI mode: DEL while the namespaces are still there
            c = lab.plan.cluster
            self.port.cni_del(c.cni_config, c.cni_bin_dirs, c.cni_timeout, attached)
        by_node: dict[str, list[tuple[str, int]]] = {}
        for p in own:
            by_node.setdefault(lab.plan.node(p.node).netns, []).append((p.veth, p.veth_index))
        for node_netns, links in by_node.items():
            self.port.delete_links(node_netns, links)
        self.port.remove_netns([p.netns for p in own])
        for p in pods:
            self.state.processes.pop(p.key, None)
            self.port.remove_tree(pod_dir(p))

    def _restore_pods(self, old: DesiredLab, keys: Sequence[str]) -> None:
        """Undo of a removal: the pods as they were, with their files and workloads (in CNI
        mode ADDed again: an IPAM plugin may then give another address than before)."""
        self.port.create(order([i for k in keys for i in old.pods[k]]))
        attached = [old.cni[k] for k in keys if k in old.cni]
        if attached:
            c = old.plan.cluster
            self.port.cni_add(c.cni_config, c.cni_bin_dirs, c.cni_timeout, attached)
        for k in keys:
            for path in old.pod_files(k):
                self._put(old.files[path])
        self._record(self.port.workloads(old.workloads))

    def _create_pods(self, new: DesiredLab, keys: Sequence[str]) -> None:
        if not keys:
            return
        intents = order([i for k in keys for i in new.pods[k]])  # one batch per namespace
        self._undo.append(lambda: self._stop_pods(new, keys))

        def prepare() -> None:
            """Once the namespaces exist, the agent makes the pods' sandboxes and opens their
            responder's sockets while their interfaces, addresses and routes are made here
            (an optimisation: its failure fails nothing, they are then made with the
            containers)."""
            with contextlib.suppress(KernelError):
                self.port.prepare_pods({k: new.workloads[k] for k in keys
                                        if k in new.workloads})
        self.port.create(intents, self._tick("pods", len(intents)), namespaces_made=prepare)

    def _attach(self, new: DesiredLab, keys: Sequence[str]) -> DesiredLab:
        """CNI mode: ADD the new pods (their namespaces exist), then the desired lab again
        with the addresses the plugins gave them."""
        c = new.plan.cluster
        attachments = [new.cni[k] for k in keys if k in new.cni]
        if not attachments:
            return new
        if self.recompile is None:
            raise KernelError("CNI mode needs the converger's recompile step")
        self._undo.append(lambda: self.port.cni_del(c.cni_config, c.cni_bin_dirs,
                                                    c.cni_timeout, attachments))
        found = self.port.cni_add(c.cni_config, c.cni_bin_dirs, c.cni_timeout, attachments)
        return self.recompile(found)

    # --- 3. files ----------------------------------------------------------------------------

    def _put(self, f: File | Directory | Certificate) -> None:
        if isinstance(f, Directory):
            self.port.make_directory(f.path)
        elif isinstance(f, Certificate):
            self.port.make_certificate(f)
        else:
            self.port.write_file(f.path, f.data)

    def _files(self, old: DesiredLab | None, new: DesiredLab, gone: Sequence[str]) -> list[str]:
        """Files that are new or changed are written, files no longer wanted removed. A file
        a running server reads is checked first and the server reloaded; a file that does
        not pass the check is not written (the old one stays, with a warning)."""
        warnings: list[str] = []
        have = dict(old.files) if old else {}
        for k in gone:  # removed with their pods
            for path in old.pod_files(k) if old else []:
                have.pop(path, None)
        for path, f in new.files.items():
            if have.get(path) == f:
                continue
            previous = have.get(path)
            if isinstance(f, File) and f.reload is not None:
                self._undo.append(lambda f=f, previous=previous: self._reload(previous)
                                  if isinstance(previous, File) else
                                  self.port.remove_tree(f.path))
                problem = self._reload(f)
                if problem:
                    warnings.append(problem)
                continue
            self._undo.append(lambda f=f, previous=previous: self._restore(f, previous))
            self._put(f)
        for path in sorted(set(have) - set(new.files)):
            if isinstance(have[path], File):
                previous = have[path]
                self.port.remove_tree(path)
                self._undo.append(lambda p=previous: self._put(p))
        return warnings

    def _restore(self, f: File | Directory | Certificate,
                 previous: File | Directory | Certificate | None) -> None:
        if previous is not None:
            self._put(previous)
        elif isinstance(f, Certificate):
            self.port.remove_tree(f.cert)
            self.port.remove_tree(f.key)
        else:
            self.port.remove_tree(f.path)

    def _reload(self, f: File) -> str | None:
        assert f.reload is not None
        r = f.reload
        pid = self.port.server_pid(r.netns, r.pidfile)
        if pid is None:  # not running (yet): it reads the file when it starts
            self.port.write_file(f.path, f.data)
            return None
        staged = f"{f.path}.new"
        self.port.write_file(staged, f.data)
        try:
            problem = self.port.check_config(
                r.netns, [self.port.path(staged) if a == "{}" else a for a in r.check])
            if problem:
                return (f"the new {f.path.rsplit('/', 1)[-1]} does not pass its check, the "
                        f"old one stays: {problem}")
            self.port.rename(staged, f.path)
        finally:
            self.port.remove_tree(staged)  # after a rename, nothing is left to remove
        self.port.reload(pid)
        return None

    # --- 5. rules ----------------------------------------------------------------------------

    def _rules(self, old: DesiredLab | None, new: DesiredLab) -> None:
        """Each node's tables in one transaction per node, only the difference when the lab
        runs; all nodes at once. A node whose tables are out of step with the kernel (the
        difference does not load) gets them whole."""
        port = self.port

        def load(netns: str) -> None:
            load_nft(netns)
            load_iptables(netns)

        def load_iptables(netns: str) -> None:
            """proxyMode iptables: kube-proxy's rules per family, a partial sync when the
            node had them; switched back to nftables, kube-proxy's cleanup."""
            had = {r.family: r for r in (old.iptables.get(netns, []) if old else [])}
            want = {r.family: r for r in new.iptables.get(netns, [])}
            for family, r in want.items():
                port.iptables_restore(netns, family, kubeproxy_iptables.restore_text(
                    r, had.get(family)))
            for family in had.keys() - want.keys():
                port.iptables_restore(netns, family,
                                      kubeproxy_iptables.cleanup_text(had[family]))

        def load_nft(netns: str) -> None:
            tables = new.rules[netns]
            full = "".join(t.full() for t in tables)
            if old is None:
                port.nft(netns, full)
                return
            had = {t.ref: t for t in old.rules[netns]}
            # a table a feature no longer needs goes; one it needs now comes whole
            script = "".join(t.diff(had[t.ref]) if t.ref in had else t.full() for t in tables)
            script += "".join(_drop(ref) for ref in had.keys() - {t.ref for t in tables})
            if not script:
                return
            try:
                port.nft(netns, script)
            except KernelError:
                port.nft(netns, full)

        nodes = [n.netns for n in new.plan.nodes]
        for netns in nodes:  # undo: the old tables back whole (or none, on a new lab)
            self._undo.append(lambda netns=netns: port.nft(netns, _replace(old, new, netns)))
            self._undo.append(lambda netns=netns: _iptables_back(port, old, new, netns))
        with ThreadPoolExecutor(max_workers=min(8, len(nodes))) as pool:
            list(pool.map(load, nodes))

    # --- 6. addresses --------------------------------------------------------------------------

    def _addresses(self, old: DesiredLab | None, new: DesiredLab) -> None:
        for node in new.plan.nodes:
            want = {a.address: a for a in new.announced.get(node.netns, [])}
            had = {a.address: a for a in old.announced.get(node.netns, [])} if old else {}
            going = sorted(set(had) - set(want), key=str)
            coming = sorted(set(want) - set(had), key=str)
            if going:
                self.port.delete_addresses(node.netns, going)
                self._undo.append(lambda n=node.netns, g=going: self.port.create(g))
            if coming:
                self._undo.append(lambda n=node.netns, c=coming:
                                  self.port.delete_addresses(n, c))
                self.port.create(coming)
                _announce(self.port, node.netns, [want[a] for a in coming])
        for flows in new.forget_udp:  # once no rule sends anything there
            self.port.forget_udp_flows(flows.netns, flows.replies_from)

    # --- 7. processes --------------------------------------------------------------------------

    def _record(self, running: dict[tuple[str, str], Started]) -> None:
        self.state.processes = {}
        for (owner, container), started in sorted(running.items()):
            self.state.processes.setdefault(owner, []).append(
                ProcessRecord(container, started.pid, started.starttime))

    def _workloads(self, old: DesiredLab | None, new: DesiredLab, gone: Sequence[str]
                   ) -> list[tuple[str, str]]:
        """The agent gets the new workloads; returns (owner, container) of the processes it
        started for them (new pods, changed definitions)."""
        before = dict(self.state.processes)

        def undo() -> None:  # the old workloads, but for pods not restored yet
            keep = {} if old is None else {k: w for k, w in old.workloads.items()
                                            if k not in set(gone)}
            self._record(self.port.workloads(keep))
        self._undo.append(undo)
        running = self.port.workloads(new.workloads)
        self._record(running)
        had = {(o, r.container): r.started for o, rs in before.items() for r in rs}
        return sorted(k for k, v in running.items() if had.get(k) != v)

    def _node_daemons(self, old: DesiredLab | None, new: DesiredLab) -> list[tuple[str, str]]:
        """On `up`, the nodes' own daemons (backend bgp's BIRD) start as soon as their
        namespaces and files exist, before the pods are made: BGP waits about a second
        before its first connect (BIRD's minimum connect delay), which then overlaps with
        the rest of `up`. The full set of workloads follows later (these unchanged)."""
        early = {k: w for k, w in new.workloads.items()
                 if k.startswith("node/") and w.processes}
        if old is not None or not early:
            return []
        self._undo.append(lambda: self._record(self.port.workloads({})))
        running = self.port.workloads(early)
        self._record(running)
        return sorted(running)

    # --- 8. ready ------------------------------------------------------------------------------

    def _wait_ready(self, new: DesiredLab, started: list[tuple[str, str]]) -> None:
        """Return when every server just started listens on all its ports, like a pod
        turning Ready: a probe right after `up` or `apply` meets a server. One that died is
        not waited for."""
        pending = {k: new.ready[k] for k in started if k in new.ready}
        records = {(k, r.container): r.started for k, _ in pending
                   for r in self.state.processes.get(k, [])}
        deadline = time.monotonic() + self.ready_timeout
        while pending and time.monotonic() < deadline:
            for key, when in list(pending.items()):
                rec = records.get(key)
                if self.port.ready(when) or (rec and not self.port.alive(rec)):
                    del pending[key]
            if pending:
                time.sleep(0.01)


def converge_docs(port: KernelPort, st: LabState, docs: list, progress: ProgressFn | None = None,
                  save: Callable[[LabState], None] | None = None) -> ChangeSummary:
    """A running lab made what `docs` say (with its `netlab label` changes)."""
    assert st.plan is not None
    old = current(st.plan, st.docs, st.label_overrides)
    # outcomes only of pods the lab has: a Job made again must not inherit its old pods'
    st.pod_outcomes = {k: v for k, v in st.pod_outcomes.items() if k in st.plan.pods}
    previous = st.plan

    def compile_(cni_addresses: dict[str, tuple[str, ...]] | None = None) -> DesiredLab:
        return compile_lab(st.lab, docs, previous=previous, label_overrides=st.label_overrides,
                           readiness=st.readiness, outcomes=st.pod_outcomes,
                           cni_addresses=cni_addresses)
    return Converger(port, st, progress, save, recompile=compile_).converge(old, compile_(),
                                                                            docs)


def _replace(old: DesiredLab | None, new: DesiredLab, netns: str) -> str:
    """A transaction putting a node's tables back as `old` had them (removing them if the
    lab is new)."""
    if old is None:
        return "".join(_drop(t.ref) for t in new.rules[netns])
    had = {t.ref for t in old.rules[netns]}
    return "".join(t.full() for t in old.rules[netns]) + "".join(
        _drop(t.ref) for t in new.rules[netns] if t.ref not in had)


def _iptables_back(port: KernelPort, old: DesiredLab | None, new: DesiredLab,
                   netns: str) -> None:
    """Undo of an iptables load: the new rules cleaned up, the old ones (if any) loaded
    whole again."""
    had = {r.family: r for r in (old.iptables.get(netns, []) if old else [])}
    for r in new.iptables.get(netns, []):
        with contextlib.suppress(KernelError):
            port.iptables_restore(netns, r.family, kubeproxy_iptables.cleanup_text(r))
    for family, r in had.items():
        port.iptables_restore(netns, family, kubeproxy_iptables.restore_text(r))


def _drop(ref: str) -> str:
    """Delete a table whether or not it exists (`add` first so `delete` cannot fail)."""
    return f"add table {ref}\ndelete table {ref}\n"


def _announce(port: KernelPort, netns: str, taken: list[Announced]) -> None:
    by_dev: dict[str, list[str]] = {}
    for a in taken:
        by_dev.setdefault(a.dev, []).append(a.address.cidr.split("/")[0])
    for dev, ips in by_dev.items():
        port.announce(netns, dev, ips)


def _without(plan: Plan, gone: Sequence[str]) -> Plan:
    """The plan with these pods gone and everything else (Services, pending pods) kept."""
    return replace(plan, pods={k: p for k, p in plan.pods.items() if k not in set(gone)})
