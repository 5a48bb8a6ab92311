"""The Python API. The CLI is a thin face over it; tests (ours and other people's) use it
directly.

    from netlab import Lab

    with Lab.up("scenarios/quickstart.yaml", name="demo") as lab:   # torn down on exit
        a, b = lab.pod("pod-a"), lab.pod("pod-b")
        assert lab.ping("pod-a", "pod-b").ok
        print(lab.exec("pod-a", ["hostname"]).stdout)               # pod-a

`Lab` is a facade: what a lab should be comes from netlab.compile, making it so from
netlab.converge, target references are parsed by netlab.targets, results are the types of
netlab.views, `check`/`explain` live in netlab.check and the packet walk in netlab.trace.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netlab import check as check_mod
from netlab import dns_client, http_client, names, state, targets
from netlab import probe as probe_mod
from netlab import trace as trace_mod
from netlab.capture import Capture, CapturePoint, interface_label
from netlab.check import CheckReport, Explanation
from netlab.compile import (
    DesiredLab,
    compile_lab,
    current,
    manifests,
    merge_docs,
    pod_binds,
    remove_docs,
)
from netlab.converge import ChangeSummary, Converger, ProgressFn, converge_docs
from netlab.dns_client import DnsAnswer
from netlab.errors import (
    InputError,
    LabExistsError,
    LabNotFoundError,
    NotRootError,
    PodNotFoundError,
)
from netlab.http_client import HttpResult
from netlab.kernel import (
    all_labs,
    commands,
    destroy_lab,
    lab_netns,
    make_lab_dir,
    netns_path,
    procs,
    uts_path,
)
from netlab.loader import RawDoc, as_docs, build, object_key, read_files
from netlab.model import Manifests, NetworkPolicy
from netlab.plan import ContainerPlan, Plan, PodPlan, ServicePlan
from netlab.policy.engine import PolicyEngine, engine_for
from netlab.probe import ProbeResult
from netlab.runtime.client import LabPort, agent_process
from netlab.trace import TraceResult
from netlab.views import (
    BgpSession,
    ContainerStatus,
    ExecResult,
    IngressClassInfo,
    IngressInfo,
    JobInfo,
    LabStatus,
    NamespaceInfo,
    NodeInfo,
    PingResult,
    PodInfo,
    ServiceInfo,
    WorkloadInfo,
    ingress_class_infos,
    ingress_infos,
    job_infos,
    namespace_infos,
    node_infos,
    service_info,
    workload_infos,
)

if TYPE_CHECKING:
    from netlab.expectations import Outcome

Manifest = str | dict | Path

__all__ = ["ContainerStatus", "ExecResult", "Explanation", "IngressInfo", "Lab", "LabStatus",
           "NamespaceInfo", "NodeInfo", "PingResult", "PodInfo", "ServiceInfo", "down",
           "down_all", "plan_up", "require_root"]


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRootError("netlab needs root to create network namespaces: run it with sudo "
                           "(e.g. `sudo netlab up -f scenarios/quickstart.yaml`)")


def _default_name(docs: Sequence[RawDoc], files: Sequence[Any]) -> str:
    for d in docs:
        if d.kind == "Cluster":
            name = (d.doc.get("metadata") or {}).get("name")
            if name:
                return names.check_lab_name(str(name))
    for f in files:
        if isinstance(f, str | Path) and Path(f).exists():
            stem = re.sub(r"[^a-z0-9-]+", "-", Path(f).stem.lower()).strip("-")[:40].strip("-")
            if stem:
                return stem
    return "lab"


class Lab:
    """A running lab. Get one with `Lab.up(...)` (creates; as a context manager it is torn
    down on exit) or `Lab.open(name)` (attaches to a running lab; never torn down by exit)."""

    def __init__(self, name: str, *, owned: bool = False) -> None:
        self.name = names.check_lab_name(name)
        self.owned = owned
        self.warnings: list[str] = []
        self._cache: tuple[tuple[int, int, int], state.LabState] | None = None
        self._status_cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._built: tuple[state.LabState, Manifests] | None = None

    # --- life cycle -------------------------------------------------------------------

    @classmethod
    def up(cls, *files: str | Path, manifests: Iterable[Manifest] = (), name: str | None = None,
           progress: ProgressFn | None = None) -> Lab:
        """Create a lab from files (a directory means its *.yaml) and/or manifests (YAML
        text or dicts). Raises InputError before anything is created if the input is bad;
        removes everything it made if creation fails."""
        docs = read_files(files) + as_docs(manifests)
        lab_name, desired = plan_up(docs, files, name)  # validates before touching anything
        require_root()
        if lab_name in all_labs():
            raise LabExistsError(f"lab {lab_name!r} is already up: use `netlab apply --lab "
                                 f"{lab_name}` to change it, or `netlab down {lab_name}` first")
        st = state.LabState(lab_name)
        make_lab_dir(lab_name)  # before state.locked's first file: a tmpfs of its own
        with state.locked(lab_name):
            summary = _create(st, desired, docs, progress)
        lab = cls(lab_name, owned=True)
        lab.warnings = summary.warnings
        return lab

    @classmethod
    def open(cls, name: str | None = None) -> Lab:
        """Attach to a running lab; without a name, to the only one."""
        if name is None:
            labs = all_labs()
            if not labs:
                raise LabNotFoundError("no lab is up: start one with `netlab up -f FILE`")
            if len(labs) > 1:
                raise LabNotFoundError(f"{len(labs)} labs are up ({', '.join(labs)}): "
                                       "choose one with --lab NAME")
            name = labs[0]
        if not state.exists(name):
            if name in all_labs():
                raise LabNotFoundError(f"lab {name!r} has namespaces but no state (its `up` "
                                       f"was interrupted): remove it with `netlab down {name}`")
            raise LabNotFoundError(f"no lab named {name!r} is up (`netlab status` lists labs)")
        return cls(name)

    @staticmethod
    def list() -> list[LabStatus]:
        out = []
        for lab in all_labs():
            netns = len(lab_netns(lab))
            try:
                st = state.load(lab)
            except LabNotFoundError:
                out.append(LabStatus(lab, "broken", namespaces=netns))
                continue
            plan = st.plan
            phase = "broken" if plan and not netns else st.phase  # namespaces gone under it
            agent = agent_process(lab)
            out.append(LabStatus(lab, phase, plan.cluster.backend if plan else None,
                                 len(plan.nodes) if plan else 0,
                                 len(plan.pods) if plan else 0, netns,
                                 agent_pid=agent.pid if agent else None))
        return out

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.down()

    def down(self) -> None:
        """Remove every namespace, device and process of this lab."""
        down(self.name)

    # --- changing a running lab -----------------------------------------------------------

    def _documents(self) -> Manifests:
        """The lab's documents, loaded once per state (check asks for its NetworkPolicies
        and its cluster policies, views for workloads and Expectations)."""
        st = self._state()
        if self._built is None or self._built[0] is not st:
            self._built = (st, build(st.docs))
        return self._built[1]

    def _state(self, fresh: bool = False) -> state.LabState:
        """The lab's state; reads are cached until the state file is replaced (a `check`
        resolves thousands of probe targets against one state). Writers take it fresh."""
        try:
            st = state.state_file(self.name).stat()
        except FileNotFoundError:
            return state.load(self.name)  # raises the helpful LabNotFoundError
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if fresh or self._cache is None or self._cache[0] != key:
            self._cache = (key, state.load(self.name))
            if fresh:
                loaded, self._cache = self._cache[1], None
                return loaded
        return self._cache[1]

    @property
    def plan(self) -> Plan:
        st = self._state()
        if st.plan is None:
            raise LabNotFoundError(f"lab {self.name!r} is still being created")
        return st.plan

    def desired(self) -> DesiredLab:
        """What the lab holds, as compile renders it (files, processes, rules)."""
        st = self._state()
        return current(self.plan, st.docs, st.label_overrides)

    def apply(self, *files: str | Path, manifests: Iterable[Manifest] = (),
              progress: ProgressFn | None = None) -> ChangeSummary:
        """kubectl apply: create or replace the objects given; the rest stay."""
        require_root()
        incoming = read_files(files) + as_docs(manifests)
        build(incoming)
        with state.locked(self.name):
            st = self._state(fresh=True)
            return _converge(st, merge_docs(st.docs, incoming), progress)

    def delete(self, *files: str | Path, manifests: Iterable[Manifest] = (),
               progress: ProgressFn | None = None) -> ChangeSummary:
        """kubectl delete -f: remove the objects the files name."""
        require_root()
        doomed = read_files(files) + as_docs(manifests)
        for d in doomed:
            if d.kind:
                object_key(d)
        with state.locked(self.name):
            st = self._state(fresh=True)
            kept, missing = remove_docs(st.docs, doomed)
            summary = _converge(st, kept, progress)
        summary.warnings += [f"{m} not found" for m in missing]
        return summary

    def label(self, pod: str, changes: dict[str, str | None]) -> PodInfo:
        """Set (value) or remove (None) labels of a running pod, like `kubectl label
        --overwrite`. Endpoints and NetworkPolicy rules follow in the same step."""
        require_root()
        for k in changes:
            if not k or len(k) > 317 or " " in k:
                raise InputError(f"{k!r} is not a valid label key")
        with state.locked(self.name):
            st = self._state(fresh=True)
            assert st.plan is not None
            key = targets.pod(st.plan, pod).key
            overrides = dict(st.label_overrides.get(key, {}))
            overrides.update(changes)
            st.label_overrides[key] = overrides
            _converge(st, st.docs)
        return self.pod(key)

    # --- reading ---------------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        """The lab's nodes; with backend bgp, with their BGP sessions as BIRD reports them."""
        infos = node_infos(self.plan)
        if self.plan.cluster.backend != "bgp":
            return infos
        sessions = self.bgp_sessions()
        return [dataclasses.replace(n, bgp=tuple((s.peer, s.state, s.info)
                                                 for s in sessions.get(n.name, ())))
                for n in infos]

    def bgp_sessions(self) -> dict[str, list[BgpSession]]:
        """Each BGP speaker's sessions (`birdc show protocols`): node -> [(peer, state,
        info)], the external router's under "external". A speaker whose BIRD does not
        answer has none. Backend bgp only ({} otherwise)."""
        from netlab.features import bgp

        plan = self.plan
        out: dict[str, list[BgpSession]] = {}
        lab_dir = str(names.lab_dir(self.name))
        for speaker in bgp.speakers(plan):
            sock = bgp.socket_path(lab_dir, speaker)
            r = procs.run_in(netns_path(bgp.netns(plan, speaker)),
                             ["birdc", "-s", sock, "show", "protocols"])
            out[speaker] = [BgpSession(speaker, *row) for row in
                            bgp.parse_protocols(r.stdout)] if r.returncode == 0 else []
        return out

    def namespaces(self) -> list[NamespaceInfo]:
        """The lab's namespaces with their labels; `default` and `kube-system` always exist."""
        return namespace_infos(self.plan)

    def pods(self, namespace: str | None = None) -> list[PodInfo]:
        """Pods of one namespace, or of all namespaces when `namespace` is None."""
        status = self._agent_status()  # before the state: see _info
        st = self._state()
        assert st.plan is not None
        out = [self._info(st, p, status) for p in st.plan.pods.values()
               if namespace is None or p.namespace == namespace]
        pending = [_pending_info(p) for p in st.plan.pending.values()
                   if namespace is None or p.namespace == namespace]
        return sorted(out + pending, key=lambda p: (p.namespace, p.name)) if pending else out

    def pod(self, ref: str) -> PodInfo:
        status = self._agent_status()  # before the state: see _info
        st = self._state()
        assert st.plan is not None
        try:
            return self._info(st, targets.pod(st.plan, ref), status)
        except PodNotFoundError:  # a Pending pod (no node accepts it)?
            name = ref.removeprefix("pod/")
            pending = st.plan.pending
            found = pending.get(name if "/" in name else f"default/{name}") or (
                next((p for p in pending.values() if p.name == name), None)
                if "/" not in name else None)
            if found is None:
                raise
            return _pending_info(found)

    def _agent_status(self) -> dict[str, Any]:
        """What the lab's agent last reported (its status file), cached until it changes."""
        path = names.lab_dir(self.name) / "agent" / "status.json"
        try:
            st = path.stat()
        except FileNotFoundError:
            return {}
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._status_cache is None or self._status_cache[0] != key:
            try:
                self._status_cache = (key, json.loads(path.read_text()))
            except (OSError, ValueError):
                return {}
        return self._status_cache[1]

    def _info(self, st: state.LabState, p: PodPlan, status: dict[str, Any]) -> PodInfo:
        """The pod as the state plans it and as the agent's `status` (read before the state)
        reports it. The converger drops a replaced pod from the state before the agent lets
        go of it, and records its successor after the agent has it, so the status is never
        behind the state about a pod it still reports; a status that is behind (the new pod
        not given yet) names the old pod's incarnation, and is then not this pod's: it is
        being created."""
        assert st.plan is not None
        pod_status = status.get("pods", {}).get(p.key, {})
        if pod_status.get("incarnation", p.spec_hash) not in ("", p.spec_hash):
            status, pod_status = {}, {}
        reported = {c["container"]: c for c in status.get("containers", [])
                    if c["owner"] == p.key}
        created = pod_status.get("created", 0.0)
        served = p.key in status.get("responder", {})
        probes = status.get("probes", {})
        # before the agent reports on a container with a readiness probe, it is not ready
        unprobed_ready = not p.readiness_probed

        def container(c: ContainerPlan, held: bool = False) -> ContainerStatus:
            r = reported.get(c.name)
            probed = probes.get(f"{p.key}/{c.name}", {})
            if not c.argv and (c.sidecar or c in p.containers):
                # no command: the built-in responder stands for its image
                v = status.get("virtual", {}).get(f"{p.key}/{c.name}", {})
                up = (served or not p.serves) and not v.get("waiting")
                reason = "" if up else ("CrashLoopBackOff" if v.get("waiting") else
                                        "PodInitializing" if held else "ContainerCreating")
                return ContainerStatus(
                    c.name, (), "running" if up else "waiting", reason,
                    restarts=v.get("restarts", 0), started_at=created,
                    message=probed.get("reason", "") if probed else "",
                    last_state=v.get("lastState") or {},
                    ready=up and probed.get("ready", unprobed_ready), sidecar=c.sidecar)
            if not c.argv:  # an init container with nothing to run: done at once
                return ContainerStatus(c.name, (), "terminated", "Completed", 0,
                                       started_at=created, finished_at=created)
            if r is None:
                return ContainerStatus(c.name, c.argv, "waiting",
                                       "PodInitializing" if held else "ContainerCreating",
                                       sidecar=c.sidecar)
            return ContainerStatus(
                c.name, c.argv, r["state"], r["reason"], r["exitCode"], r["pid"] or None,
                r["restarts"], r["startedAt"], r["finishedAt"], r["message"],
                r.get("lastState") or {},
                ready=r["state"] == "running" and probed.get("ready", unprobed_ready),
                sidecar=c.sidecar)

        inits = tuple(container(c) for c in p.init_containers)
        held = any(not (s.completed or (s.sidecar and s.state == "running")) for s in inits)
        statuses = [container(c, held) for c in p.containers]
        families = st.plan.cluster.families
        node = st.plan.node(p.node)
        ips, host_ips = p.ips(families), tuple(node.address(f) for f in families)
        return PodInfo(p.namespace, p.name, p.node, ips[0], dict(p.labels), tuple(statuses),
                       host_ips[0], p.owner, created, p.restart_policy,
                       init_containers=inits, pod_ips=ips, host_ips=host_ips)

    def services(self, namespace: str | None = None) -> list[ServiceInfo]:
        """Services of one namespace, or of all when `namespace` is None."""
        plan = self.plan
        return [service_info(s, plan) for s in plan.services.values()
                if namespace is None or s.namespace == namespace]

    def service(self, ref: str) -> ServiceInfo:
        plan = self.plan
        return service_info(targets.service(plan, ref), plan)

    def why_unanswered(self, dst: str) -> str | None:
        """For a person: why nothing can answer at `dst`, when the lab knows (a Service
        without endpoints and why it has none)."""
        t = targets.parse(dst, self.plan)
        return self.service(t.name).why_no_endpoints() if t.kind == "service" else None

    def jobs(self, namespace: str | None = None) -> list[JobInfo]:
        """Jobs of one namespace, or of all when `namespace` is None: their completions,
        active/succeeded/failed pods and conditions (netlab.jobs)."""
        return job_infos(self.plan, namespace)

    def workloads(self, kind: str, namespace: str | None = None) -> list[WorkloadInfo]:
        """Deployments, ReplicaSets (a Deployment's among them), ReplicationControllers,
        StatefulSets or DaemonSets (`kind`) of one namespace, or of all when `namespace` is
        None, with the pods each has now and how many of them are ready."""
        return workload_infos(self.plan, self._documents(), self.pods(), kind,
                              namespace)

    def ingresses(self, namespace: str | None = None) -> list[IngressInfo]:
        """Ingress objects with their rules, backends, the controller's address, and
        problems that keep some of them from being served."""
        st = self._state()
        plan = self.plan
        return ingress_infos(plan, manifests(st.docs, plan.cluster, st.label_overrides),
                             namespace)

    def ingress_classes(self) -> list[IngressClassInfo]:
        """IngressClass objects (cluster-scoped): controller, parameters, default, and
        whether the lab's ingress-nginx serves the class."""
        st = self._state()
        plan = self.plan
        return ingress_class_infos(plan, manifests(st.docs, plan.cluster, st.label_overrides))

    def policies(self) -> list[NetworkPolicy]:
        return sorted(self._documents().network_policies.values(),
                      key=lambda p: (p.namespace, p.name))

    def cluster_policies(self) -> list[Any]:
        """The lab's ClusterNetworkPolicies (and v1alpha1 Admin/BaselineAdminNetworkPolicies),
        by kind and name."""
        found = self._documents().cluster_network_policies
        return [found[k] for k in sorted(found)]

    def cluster_policy_infos(self) -> list[Any]:
        """The lab's cluster-wide policies as `get clusternetworkpolicies` shows them."""
        from netlab.views import cluster_policy_infos

        st = self._state()
        return cluster_policy_infos(self.cluster_policies(), st.docs, st.created)

    def engine(self) -> PolicyEngine:
        """The policy engine over this lab: what Kubernetes semantics allow (no kernel)."""
        return engine_for(self.plan, self.policies())

    def expectations(self) -> list[Any]:
        """The Expectation documents applied to this lab."""
        return sorted(self._documents().expectations.values(), key=lambda e: e.name)

    def logs(self, pod: str, container: str | None = None, previous: bool = False) -> str:
        """What a container wrote (stdout and stderr); `previous`: its previous run's, kept
        when the agent restarted it (kubectl logs --previous)."""
        p = targets.pod(self.plan, pod)
        names_ = [c.name for c in p.containers]
        if container is None:
            if len(names_) > 1:
                raise InputError(f"pod {p.key} has {len(names_)} containers "
                                 f"({', '.join(names_)}): choose one with -c")
            container = names_[0]
        inits = [c.name for c in p.init_containers]
        if container not in names_ + inits:
            raise InputError(f"pod {p.key} has no container {container!r} "
                             f"(containers: {', '.join(names_)}"
                             f"{'; init containers: ' + ', '.join(inits) if inits else ''})")
        d = names.pod_dir(self.name, p.namespace, p.name)
        log = d / (f"{container}.previous.log" if previous else f"{container}.log")
        if previous and not log.exists():
            raise InputError(f'previous terminated container "{container}" in pod "{p.name}" '
                             "not found")
        return log.read_text(errors="replace") if log.exists() else ""

    # --- traffic -----------------------------------------------------------------------------

    def address_of(self, ref: str, family: str | None = None) -> str:
        """An IP address, a pod's address, or a node's underlay address (`node/NAME`); in
        `family` ("IPv6": its IPv6 address, in a dual-stack lab)."""
        plan = self.plan
        return targets.address(plan, targets.parse(ref, plan), family)

    def _netns(self, ref: str) -> Path:
        plan = self.plan
        return netns_path(targets.netns(plan, targets.parse(ref, plan)))

    def dns(self, name: str, src: str | None = None, qtype: str | None = None,
            timeout: float = 2.0, server: str | None = None) -> DnsAnswer:
        """Ask the cluster DNS from inside a pod (default: the first pod of `default`), with
        the pod's own resolv.conf: search list, ndots, TCP on truncation. `qtype` (None: A,
        or AAAA in a lab whose primary family is IPv6); `server` asks that address instead
        of the pod's nameserver (e.g. the kube-dns IPv6 ClusterIP)."""
        require_root()
        plan = self.plan
        qtype = qtype or ("AAAA" if plan.cluster.primary == "IPv6" else "A")
        if src is None:
            pods = sorted(plan.pods.values(), key=lambda p: (p.namespace != "default", p.key))
            if not pods:
                raise InputError("the lab has no pods to ask from: give --from")
            pod = pods[0]
        else:
            pod = targets.pod(plan, src)
        conf = (names.pod_dir(self.name, pod.namespace, pod.name) / "resolv.conf").read_text()
        return dns_client.lookup(netns_path(pod.netns), conf, name, qtype.upper(), timeout,
                                 server)

    def destination(self, src: str, dst: str, port: int | None = None,
                    protocol: str | None = None, family: str | None = None
                    ) -> tuple[str, int, str]:
        """(address, port, protocol) that traffic from `src` to `dst` goes to; a DNS name is
        resolved by the cluster DNS from inside `src` (AAAA for IPv6); `family` (None: the
        lab's primary family) picks the address of a pod, Service, node or host."""
        return self._destination(self.plan, src, dst, port, protocol, family)

    def _destination(self, plan: Plan, src: str, dst: str, port: int | None,
                     protocol: str | None, family: str | None) -> tuple[str, int, str]:
        targets.check_protocol(protocol)
        s, d = targets.parse(src, plan), targets.parse(dst, plan)
        if d.kind == "dns":
            if s.kind != "pod":
                raise InputError(f"{dst!r} is not a pod; a DNS name can only be resolved "
                                 "from a pod (the cluster DNS serves pods)")
            answer = self.dns(dst, src, "AAAA" if family == "IPv6" else
                              "A" if family == "IPv4" else None)
            if not answer.addresses:
                raise InputError(f"{dst!r} does not resolve from {src}: {answer.rcode} "
                                 f"(tried {', '.join(answer.tried)})")
            d = targets.Target("address", answer.addresses[0], dst)
        return targets.destination(plan, d, s.outside, port, protocol, family)

    def probe(self, src: str, dst: str, port: int | None = None, protocol: str | None = None,
              timeout: float = 2.0, family: str | None = None) -> ProbeResult:
        """Real traffic from `src` (pod, node/NAME, external, internet) to `dst` (pod,
        svc/[NS/]NAME, node/NAME, internet, external, an IP or a DNS name); what came back.
        `family` "IPv6": to the IPv6 address of `dst` (dual-stack labs)."""
        return self.probe_many([(src, dst, port, protocol, family)], timeout)[0]

    def probe_many(self, probes: Sequence[tuple], timeout: float = 2.0,
                   answer_wait: float | None = None) -> list[ProbeResult]:
        """Many probes at once, each (src, dst[, port[, protocol[, family]]]); all of them in
        flight together, so the whole batch takes about as long as its slowest probe.
        `answer_wait`: how long a connected TCP probe waits for its answer (probe.run_many)."""
        require_root()
        plan = self.plan  # one state for the whole batch (check asks thousands)
        netns: dict[str, Path] = {}
        jobs = []
        for args in probes:
            src, dst = args[0], args[1]
            port = args[2] if len(args) > 2 else None
            proto = args[3] if len(args) > 3 else None
            family = args[4] if len(args) > 4 else None
            address, port_, proto_ = self._destination(plan, src, dst, port, proto, family)
            if src not in netns:
                netns[src] = netns_path(targets.netns(plan, targets.parse(src, plan)))
            jobs.append((src, dst, netns[src], address, port_, proto_))
        done = iter(probe_mod.run_many([j for j in jobs if j[5] != "icmp"], timeout,
                                       self._dropped_reader(), answer_wait))
        return [self._ping_probe(j, timeout) if j[5] == "icmp" else next(done) for j in jobs]

    def _dropped_reader(self) -> probe_mod.DroppedReader:
        """What the lab's NetworkPolicy rules dropped lately, on every node and in every
        family: (source address, protocol, source port) (features/netpol's `dropped` set)."""
        from netlab.features.netpol import DROPPED, TABLE
        from netlab.kernel import Kernel

        plan = self.plan
        where = [(n.netns, "ip6" if f == "IPv6" else "ip") for n in plan.nodes
                 for f in plan.cluster.families]
        protocols = {6: "tcp", 17: "udp", 132: "sctp"}

        def read() -> set[tuple[str, str, int]]:
            found = set()
            with ThreadPoolExecutor(max_workers=min(8, len(where) or 1)) as pool:  # all at once
                sets = list(pool.map(lambda w: Kernel.set_elements(w[0], w[1], TABLE, DROPPED),
                                     where))
            for elements in sets:
                for parts in elements:
                    if len(parts) == 3:
                        proto = protocols.get(parts[1], parts[1]) if isinstance(parts[1], int) \
                            else str(parts[1])
                        found.add((str(parts[0]), proto, int(parts[2])))
            return found
        return read

    def _ping_probe(self, job: tuple, timeout: float) -> ProbeResult:
        src, dst, _, address = job[:4]
        t0 = time.monotonic()
        r = self.ping(src, address, count=1, timeout=timeout)
        return ProbeResult(src, dst, address, None, "icmp", "connected" if r.ok else "timeout",
                           None, None, r.output.strip().splitlines()[-1] if r.output else "",
                           round(time.monotonic() - t0, 4))

    def http(self, url: str, src: str = "external", method: str = "GET",
             headers: dict[str, str] | None = None, timeout: float = 3.0,
             family: str | None = None, data: bytes | None = None, to: str | None = None,
             resolve: dict[str, str] | None = None, cacert: str | None = None,
             insecure: bool = False) -> HttpResult:
        """A real HTTP(S) request from `src`, like curl, with the URL's host as Host header
        (unless `headers` has one) and SNI. Where it goes, first match wins:
          - `resolve` {"HOST:PORT": ADDRESS} pins the URL's host and port to ADDRESS (curl
            --resolve);
          - `to`: that proxy ("ingress", or "gateway/[NS/]NAME"), its LoadBalancer address
            from outside the cluster, its ClusterIP from a pod;
          - an IP address in the URL (http://[2001:db8:18::c8]/ for IPv6);
          - else the Gateway with a listener on the URL's port whose hostname matches its
            host most specifically, else the ingress controller (`_http_frontend`).
        `family`: the proxy's address of that family (None: its Service's primary family).
        `data`: a body (the caller chooses the method: POST is curl's default with one).
        `cacert`/`insecure`: verify the certificate against a CA file, or (the default) only
        report its names; see netlab.http_client."""
        from urllib.parse import urlsplit

        require_root()
        plan = self.plan
        s = targets.parse(src, plan)
        u = urlsplit(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        pinned = (resolve or {}).get(f"{(u.hostname or '').lower()}:{port}")
        host = targets.parse(u.hostname or "", plan)
        if pinned:
            address = pinned
        elif host.kind == "address" and to is None:
            address = host.name
        else:
            svc = self._http_frontend(u.hostname or "", port, to)
            address = targets.destination(plan, targets.Target("service", svc.key, svc.key),
                                          s.kind in ("host", "node"), None, None, family)[0]
        return http_client.request(netns_path(targets.netns(plan, s)), url, address, method,
                                   headers, timeout, data=data, cacert=cacert,
                                   insecure=insecure)

    def _http_frontend(self, hostname: str, port: int, to: str | None) -> ServicePlan:
        """The Service of the proxy a request for http(s)://HOSTNAME:PORT/ goes to: `to`
        when given ("ingress", or "gateway/[NS/]NAME"); else the Gateway with a listener on
        PORT whose hostname matches HOSTNAME most specifically (exact, then the longest
        wildcard, then a listener for any host), else the ingress controller. InputError
        when there is none, saying why."""
        from netlab.features import gateway as gateway_mod
        from netlab.features import ingress as ingress_mod
        from netlab.gateway.controller import host_matches, specificity

        plan = self.plan
        m = self._documents()
        if to is not None and to != "ingress":
            ref = to.removeprefix("gateway/").removeprefix("gateways/")
            if ref == to:
                raise InputError(f"--to {to!r}: use `ingress` or `gateway/[NAMESPACE/]NAME`")
            key = ref if "/" in ref else f"default/{ref}"
            gw = m.gateways.get(key)
            if gw is None:
                listed = ", ".join(sorted(m.gateways)) or "none"
                raise InputError(f"--to {to!r}: no Gateway {key} (Gateways: {listed})")
            result = gateway_mod.reconciled(plan, m).gateways[key]
            svc = plan.services.get(gateway_mod.service_key(gw))
            if not result.served or svc is None:
                why = result.why or "it has no HTTP or HTTPS listener netlab serves"
                raise InputError(f"Gateway {key} has no data plane: {why}")
            return svc
        if to is None:
            candidates = []
            for gw in gateway_mod.served(m):
                svc = plan.services.get(gateway_mod.service_key(gw))
                hits = [specificity(li.hostname) for li in gw.listeners
                        if li.port == port and host_matches(li.hostname, hostname)]
                if svc is not None and hits:
                    candidates.append((max(hits), gw.key, svc))
            if candidates:  # the most specific listener; Gateways in name order on a tie
                return sorted(candidates, key=lambda c: (-c[0][0], -c[0][1], c[1]))[0][2]
        svc = plan.services.get(f"{ingress_mod.NAMESPACE}/{ingress_mod.SERVICE}")
        if svc is None:
            from netlab.views import no_controller_message

            raise InputError(no_controller_message(manifests(self._state().docs, plan.cluster),
                                                   plan.cluster, hostname)
                             + ("" if not m.gateways or to is not None else
                                f"; and no Gateway has a listener on port {port} for "
                                f"{hostname!r} (send it to one with --to gateway/NS/NAME)"))
        return svc

    def http_hints(self, url: str, to: str | None = None) -> list[str]:
        """What may keep a request for `url` from being answered as hoped: the Gateway API
        controller's conditions for the Gateway it goes to and the HTTPRoutes attached to it
        for the URL's host; or, through the ingress controller, the Ingresses' problems."""
        from urllib.parse import urlsplit

        from netlab.features import gateway as gateway_mod
        from netlab.views.gateways import gateway_hints

        u = urlsplit(url)
        host = u.hostname or ""
        try:
            svc = self._http_frontend(host, u.port or (443 if u.scheme == "https" else 80), to)
        except InputError as e:
            return [str(e)]
        for gw in gateway_mod.served(self._documents()):
            if gateway_mod.service_key(gw) == svc.key:
                return gateway_hints(self.gateway_api(), gw.key, host)
        return [f"Ingress problem: {p}" for i in self.ingresses(None) for p in i.problems]

    def gateway_api(self) -> Any:
        """netlab's Gateway API controller over the lab's objects
        (netlab.gateway.controller.Reconciled): the status of every GatewayClass, Gateway
        and HTTPRoute it serves, each Gateway's data plane, and why others are not served."""
        from netlab.features import gateway as gateway_mod

        return gateway_mod.reconciled(self.plan, self._documents())

    def gateway_api_objects(self, kind: str, namespace: str | None = None) -> list[Any]:
        """GatewayClasses (the built-in `netlab` among them), Gateways, HTTPRoutes or
        ReferenceGrants (`kind`) of one namespace, or of all when `namespace` is None, as
        `get` shows them: the document with the status the controller writes, and its
        problems (netlab.views.gateways)."""
        from netlab.views.gateways import gateway_api_infos

        st = self._state()
        return gateway_api_infos(kind, self._documents(), st.docs, self.gateway_api(),
                                 st.created, namespace)

    def gateway_api_status(self) -> dict[str, dict]:
        """Each Gateway API object's `.status` as the API's JSON, by "Kind/ns/name"
        ("GatewayClass/name"), as a controller writes it."""
        return {k.replace(" ", "/", 1): v for k, v in self.gateway_api().to_status().items()}

    def ping(self, src: str, dst: str, count: int = 3, timeout: float = 1.0,
             family: str | None = None) -> PingResult:
        """Real ICMP echo (ICMPv6 to an IPv6 address) from `src` (pod or node/NAME) to `dst`
        (pod, node/NAME or IP); `family` "IPv6": to its IPv6 address (dual-stack labs)."""
        ip = self.address_of(dst, family)
        r = self.exec(src, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", str(timeout), ip],
                      timeout=count * (timeout + 0.5) + 5)
        m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", r.stdout)
        tx, rx = (int(m.group(1)), int(m.group(2))) if m else (count, 0)
        return PingResult(src, dst, ip, tx, rx, r.stdout + r.stderr, r.returncode)

    def trace(self, src: str, dst: str, port: int | None = None, protocol: str | None = None,
              timeout: float = 1.0, pcap_dir: str | Path | None = None,
              family: str | None = None) -> TraceResult:
        """One packet from SRC to DST, captured on every interface it crosses: the hops in
        order with what changed at each, whether it arrived and the reply came back, and
        where and why it died if it did. `family` "IPv6" (or an IPv6 literal DST): over
        IPv6, marked by its flow label (dual-stack labs). See netlab.trace."""
        require_root()
        address, port_, proto = self.destination(src, dst, port, protocol, family)
        return trace_mod.run(self.plan, src, dst, self._netns(src), address, port_, proto,
                             timeout, pcap_dir)

    def capture(self, *targets_: str, bpf: str | None = None) -> Capture:
        """Capture points for `with lab.capture(...) as cap:` (then `cap.packets`, a list
        of (label, scapy packet)). Targets: `underlay` (every node's port on the underlay
        switch), `node/NAME[:IFACE]` (default eth0), `POD[:IFACE]` (default eth0)."""
        plan = self.plan
        points = []
        for target in targets_:
            if target == "underlay":
                points += [CapturePoint(netns_path(names.fabric_netns(self.name)), n.fabric_port,
                                        interface_label("underlay", n.name))
                           for n in plan.nodes]
                continue
            ref, _, iface = target.partition(":")
            t = targets.parse(ref)
            label = ref if t.kind == "node" else targets.pod(plan, t.name).key
            points.append(CapturePoint(netns_path(targets.netns(plan, t)), iface or "eth0",
                                       interface_label(label, iface or "eth0")))
        return Capture(points, bpf)

    # --- commands inside the lab ------------------------------------------------------------

    def exec_argv(self, target: str, argv: Sequence[str], container: str | None = None
                  ) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that run `argv` inside `target` (a pod, node/NAME,
        external, internet or fabric), for callers with their own process handling (an
        interactive shell). In a pod with a sandbox, the command joins it: the pod's root
        filesystem, /tmp, PID namespace and `container`'s mounts (default: the first one
        running)."""
        plan = self.plan
        t = targets.parse(target)
        extra = {k: os.environ[k] for k in ("TERM",) if k in os.environ}
        if t.kind == "pod":
            entered = self._sandbox_argv(targets.pod(plan, t.name), argv, container)
            if entered is not None:
                return entered[0], {**procs.BASE_ENV, **extra, **entered[1]}
        netns = targets.netns(plan, t)
        uts: Path | None = uts_path(self.name, netns)
        binds: tuple[tuple[str, str], ...] = ()
        env: dict[str, str] = {}
        hostname = None
        if t.kind == "pod":
            p = targets.pod(plan, t.name)
            binds = pod_binds(str(names.lab_dir(self.name)), p)  # as its containers have them
            env = {"HOSTNAME": p.hostname}
            uts, hostname = None, p.hostname  # a UTS namespace of its own, named for the pod
            for c in p.containers:
                env.update(dict(c.env))
        elif t.kind in ("node", "host"):
            env = {"HOSTNAME": t.name}
            argv = self._birdc(t.name, argv)
        else:
            uts = None  # the fabric has no hostname of its own
        return procs.launcher_argv(netns_path(netns), uts, list(argv), binds,
                                   hostname=hostname), {
            **procs.BASE_ENV, **extra, **env}

    def _birdc(self, speaker: str, argv: Sequence[str]) -> Sequence[str]:
        """`birdc ...` in a BGP speaker (a node of backend bgp, or the external router)
        talks to that speaker's BIRD: its control socket is in the lab's state, not at
        birdc's default /run/bird/bird.ctl, so `-s SOCKET` is added (unless given)."""
        from netlab.features import bgp

        if not argv or Path(argv[0]).name not in ("birdc", "birdcl") or "-s" in argv \
                or speaker not in bgp.speakers(self.plan):
            return argv
        return [argv[0], "-s", bgp.socket_path(str(names.lab_dir(self.name)), speaker),
                *argv[1:]]

    def _sandbox_argv(self, p: PodPlan, argv: Sequence[str], container: str | None
                      ) -> tuple[list[str], dict[str, str]] | None:
        """The command line entering the pod's sandbox and the container's own environment,
        or None when the pod has no sandbox running."""
        from netlab.kernel import sandbox

        names_ = [c.name for c in (*p.containers, *p.init_containers)]
        if container is not None and container not in names_:
            raise InputError(f"pod {p.key} has no container {container!r} "
                             f"(containers: {', '.join(names_)})")
        status = self._agent_status()
        sb_json = status.get("sandboxes", {}).get(p.key)
        if sb_json is None:
            return None
        sb = sandbox.Sandbox.from_json(sb_json)
        if not sb.alive():
            return None
        running = [c for c in status.get("containers", []) if c["owner"] == p.key
                   and c["state"] == "running" and (container is None or
                                                    c["container"] == container)]
        joined = procs.Started(running[0]["pid"], running[0]["starttime"]) if running else None
        env = {"HOSTNAME": p.hostname}
        chosen = running[0]["container"] if running else container
        try:  # the container's environment as the agent started it (valueFrom resolved)
            loads = json.loads((names.lab_dir(self.name) / "agent" / "workloads.json")
                               .read_text())
            env |= dict(next(map(tuple, proc["env"]) for w in loads if w["owner"] == p.key
                             for proc in w["processes"] if proc["container"] == chosen))
        except (OSError, ValueError, StopIteration):
            for c in p.containers:
                if container in (None, c.name):
                    env.update(dict(c.env))
        return sandbox.exec_argv(sb, (), list(argv), container=joined), env

    def exec(self, target: str, argv: Sequence[str], *, input: str | None = None,
             timeout: float | None = 60, container: str | None = None) -> ExecResult:
        """Run a command in a pod (`NAME`, `NS/NAME`; in `container`'s sandbox when it has
        one) or node (`node/NAME`) and capture it."""
        require_root()
        cmd, env = self.exec_argv(target, argv, container)
        r = commands.run(cmd, input=input.encode() if input is not None else None,
                         timeout=timeout, env=env)
        stderr = r.stderr.decode(errors="replace")
        if r.timed_out:
            stderr += f"timed out after {timeout}s"
        return ExecResult(r.returncode, r.stdout.decode(errors="replace"), stderr)

    # --- NetworkPolicy and expectations ------------------------------------------------------

    def cni_check(self, pod: str) -> dict[str, Any]:
        """CNI CHECK of one pod's attachment (CNI mode): every plugin of the list, in order,
        given the cached result of its ADD, verifies the pod's network is as it made it.
        Raises the plugin's error (code, message, details) if not; returns what was checked."""
        require_root()
        plan = self.plan
        p = targets.pod(plan, pod)
        if not plan.cluster.cni:
            raise InputError(f"lab {self.name} plumbs pods natively (no spec.cni in its "
                             "Cluster): there is no CNI attachment to check")
        if p.host_network:
            raise InputError(f"pod {p.key} uses hostNetwork: kubelet calls no CNI plugin "
                             "for it")
        from netlab.features.cni import attachment
        from netlab.kernel import Kernel

        a, _ = attachment(plan, p)
        c = plan.cluster
        Kernel(self.name).cni_check(c.cni_config, c.cni_bin_dirs, c.cni_timeout, a)
        from netlab.cni import parse_conflist

        return {"pod": p.key, "containerID": a.container_id, "ifname": a.ifname,
                "network": parse_conflist(c.cni_config).name,
                "plugins": [x.type for x in parse_conflist(c.cni_config).plugins]}

    def check(self, timeout: float = 1.0, external: bool | None = None) -> CheckReport:
        """Every ordered pair of pods on every declared port, probed for real and compared
        with the policy engine (see netlab.check); in both families in a dual-stack lab."""
        require_root()
        return check_mod.run(self, timeout, external)

    def explain(self, src: str, dst: str, port: int | None = None, protocol: str = "tcp",
                family: str | None = None) -> Explanation:
        """The engine's reasoning for one connection, next to a real probe of it traced by
        the kernel (see netlab.check); `family` "IPv6": over IPv6 (dual-stack labs)."""
        require_root()
        return check_mod.explain(self, src, dst, port, protocol, family)

    def settle(self, timeout: float = 30.0, progress: Any = None,
               interval: float = 0.1) -> list[str]:
        """Wait until the lab stops changing by itself (netlab.expectations.unsettled): every
        container with a readiness probe has its first result, no container is being created
        for the first time, the plan no longer grows (the next ordinal of an OrderedReady
        StatefulSet, a Job's next pods). Pods that never become ready do not hold it up.
        Returns what was still changing when `timeout` ran out (empty: settled); `progress`
        is called with that list while waiting. Settled means so twice in a row."""
        from netlab.expectations import unsettled

        deadline = time.monotonic() + max(timeout, 0.0)
        calm = 0
        while True:
            st = self._state()
            plan = self.plan
            m = manifests(st.docs, plan.cluster, st.label_overrides)
            busy = unsettled(plan, m, self.pods(), self._agent_status(), st.readiness)
            calm = 0 if busy else calm + 1
            if calm >= 2 or time.monotonic() >= deadline:
                return busy
            if progress is not None and busy:
                progress(busy)
            time.sleep(interval)

    def test(self, expectations: list[Any] | None = None) -> list[Outcome]:
        """Run expectations (default: the lab's own) with real traffic; one Outcome per check,
        with evidence and, on failure, a hint."""
        require_root()
        from netlab.expectations import run_check

        chosen = self.expectations() if expectations is None else expectations
        return [run_check(self, e.name, c) for e in chosen for c in e.checks]


def plan_up(docs: list[RawDoc], files: Sequence[Any] = (), name: str | None = None
            ) -> tuple[str, DesiredLab]:
    """What `up` would build from these documents, and the lab's name (`up --dry-run`)."""
    lab_name = names.check_lab_name(name) if name else _default_name(docs, files)
    return lab_name, compile_lab(lab_name, docs)


def _create(st: state.LabState, desired: DesiredLab, docs: list[RawDoc],
            progress: ProgressFn | None = None) -> ChangeSummary:
    """Bring a lab up from nothing; on any failure (or Ctrl-C) remove all of it."""
    port = LabPort(st.lab)
    try:
        return Converger(port, st, progress, save=state.save,
                         recompile=lambda found: compile_lab(st.lab, docs, cni_addresses=found)
                         ).converge(None, desired, docs)
    except BaseException:
        port.close()
        destroy_lab(st.lab, st.recorded())
        raise
    finally:
        port.close()


def _converge(st: state.LabState, docs: list[RawDoc], progress: ProgressFn | None = None
              ) -> ChangeSummary:
    """A running lab made what `docs` say (with its `netlab label` changes)."""
    port = LabPort(st.lab)
    try:
        return converge_docs(port, st, docs, progress, save=state.save)
    finally:
        port.close()


def down(name: str) -> bool:
    """Remove lab `name` completely, from its state if any and from its names regardless.
    Returns False if there was nothing of it."""
    require_root()
    names.check_lab_name(name)
    if not names.lab_dir(name).is_dir() and not lab_netns(name):
        return False
    destroy_lab(name, state.recorded(name))
    return True


def graph_dot(plan: Plan, policies: Sequence[NetworkPolicy] = (),
              cluster_policies: Sequence[Any] = ()) -> str:
    """The lab as a Graphviz DOT document (netlab.graph), with the edges NetworkPolicies
    allow and ClusterNetworkPolicies decide."""
    from netlab.graph import render_dot

    return render_dot(plan, policies, cluster_policies=cluster_policies)


def draw_graph(dot: str, fmt: str) -> bytes:
    """A DOT document drawn by Graphviz (svg, png)."""
    from netlab.graph import draw

    return draw(dot, fmt)


def lab_names() -> list[str]:
    """Every lab on this machine (with namespaces or state), by name."""
    return all_labs()


def down_all() -> list[str]:
    labs = all_labs()
    for lab in labs:
        down(lab)
    return labs


def _pending_info(p: Any) -> PodInfo:
    """A pod no node accepts (plan.PendingPod): no node, no address, containers waiting."""
    return PodInfo(p.namespace, p.name, "", "", dict(p.labels),
                   tuple(ContainerStatus(c, (), "waiting", "") for c in p.containers), "",
                   p.owner, 0.0, p.restart_policy, pending_reason=p.reason)
