"""The Python API. The CLI is a thin face over it; tests (ours and other people's) use it
directly.

    from netlab import Lab

    with Lab.up("scenarios/quickstart.yaml", name="demo") as lab:   # torn down on exit
        a, b = lab.pod("pod-a"), lab.pod("pod-b")
        assert lab.ping("pod-a", "pod-b").ok
        print(lab.exec("pod-a", ["hostname"]).stdout)               # pod-a
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from netlab import dns_client, http_client, names, state
from netlab import probe as probe_mod
from netlab import trace as trace_mod
from netlab.capture import Capture, CapturePoint
from netlab.check import CheckProbe, CheckReport, observed
from netlab.compile import (
    DesiredLab,
    compile_lab,
    manifests,
    merge_docs,
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
from netlab.expectations import Outcome
from netlab.http_client import HttpResult
from netlab.kernel import (
    Kernel,
    NftTrace,
    all_labs,
    destroy_lab,
    lab_netns,
    netns_path,
    procs,
    uts_path,
)
from netlab.loader import RawDoc, as_docs, build, object_key, read_files
from netlab.model import NetworkPolicy
from netlab.plan import NodePlan, Plan, PodPlan
from netlab.policy.engine import PolicyEngine, engine_for
from netlab.probe import ProbeResult
from netlab.trace import TraceResult
from netlab.views import (
    ContainerStatus,
    ExecResult,
    Explanation,
    IngressInfo,
    LabStatus,
    NodeInfo,
    PingResult,
    PodInfo,
    ServiceInfo,
    service_info,
)

Manifest = str | dict | Path


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
            out.append(LabStatus(lab, phase, plan.cluster.backend if plan else None,
                                 len(plan.nodes) if plan else 0,
                                 len(plan.pods) if plan else 0, netns))
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

    # --- reading ---------------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        plan = self.plan
        counts: dict[str, int] = {}
        for p in plan.pods.values():
            counts[p.node] = counts.get(p.node, 0) + 1
        vxlan = plan.cluster.backend == "vxlan"
        return [NodeInfo(n.name, n.underlay_ip, n.pod_cidr, n.gateway, plan.cluster.backend,
                         n.vtep_mac if vxlan else None, counts.get(n.name, 0))
                for n in plan.nodes]

    def namespaces(self) -> list[Any]:
        """The lab's namespaces (views.NamespaceInfo) with their labels; `default` and
        `kube-system` always exist."""
        from netlab.views import NamespaceInfo

        plan = self.plan
        known = dict(plan.namespaces)
        for key in [*plan.pods, *plan.services]:  # a state written before namespaces were kept
            ns = key.split("/")[0]
            known.setdefault(ns, {"kubernetes.io/metadata.name": ns})
        return [NamespaceInfo(n, dict(labels)) for n, labels in sorted(known.items())]

    def pods(self, namespace: str | None = None) -> list[PodInfo]:
        """Pods of one namespace, or of all namespaces when `namespace` is None."""
        st = self._state()
        assert st.plan is not None
        return [self._info(st, p) for p in st.plan.pods.values()
                if namespace is None or p.namespace == namespace]

    def pod(self, ref: str) -> PodInfo:
        st = self._state()
        return self._info(st, self._resolve(st, ref))

    def _resolve(self, st: state.LabState, ref: str) -> PodPlan:
        assert st.plan is not None
        pods = st.plan.pods
        if "/" in ref:
            if ref in pods:
                return pods[ref]
        else:
            if f"default/{ref}" in pods:
                return pods[f"default/{ref}"]
            matches = [p for p in pods.values() if p.name == ref]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise PodNotFoundError(f"pod name {ref!r} exists in several namespaces "
                                       f"({', '.join(p.namespace for p in matches)}): write "
                                       "NAMESPACE/NAME")
        near = sorted(k for k in pods if ref.split("/")[-1] in k)[:5]
        hint = f" (did you mean {', '.join(near)}?)" if near else \
            " (`netlab get pods -A` lists them)"
        raise PodNotFoundError(f"lab {self.name}: no pod {ref!r}{hint}")

    def _info(self, st: state.LabState, p: PodPlan) -> PodInfo:
        assert st.plan is not None
        records = {r.container: r for r in st.processes.get(p.key, [])}
        d = names.pod_dir(self.name, p.namespace, p.name)
        statuses = []
        for c in p.containers:
            r = records.get(c.name)
            if not c.argv:
                statuses.append(ContainerStatus(c.name, (), "idle"))
            elif r and procs.alive(r.pid, r.starttime):
                statuses.append(ContainerStatus(c.name, c.argv, "running", pid=r.pid))
            else:
                try:
                    code: int | None = int((d / f"{c.name}.exit").read_text())
                except (FileNotFoundError, ValueError):
                    code = None
                statuses.append(ContainerStatus(c.name, c.argv, "exited", code))
        return PodInfo(p.namespace, p.name, p.node, p.ip, dict(p.labels), tuple(statuses),
                       st.plan.node(p.node).underlay_ip, p.owner)

    def services(self, namespace: str | None = None) -> list[ServiceInfo]:
        """Services of one namespace, or of all when `namespace` is None."""
        return [service_info(s) for s in self.plan.services.values()
                if namespace is None or s.namespace == namespace]

    def service(self, ref: str) -> ServiceInfo:
        ns, _, name = ref.rpartition("/")
        services = self.plan.services
        key = f"{ns or 'default'}/{name}"
        if key not in services:
            matches = [k for k in services if k.endswith(f"/{name}")] if not ns else []
            if len(matches) != 1:
                raise InputError(f"no Service {ref!r} (`netlab get svc -A` lists them)")
            key = matches[0]
        return service_info(services[key])

    def dns(self, name: str, src: str | None = None, qtype: str = "A", timeout: float = 2.0
            ) -> DnsAnswer:
        """Ask the cluster DNS from inside a pod (default: the first pod of `default`), with
        the pod's own resolv.conf: search list, ndots, TCP on truncation."""
        require_root()
        st = self._state()
        assert st.plan is not None
        if src is None:
            pods = sorted(st.plan.pods.values(), key=lambda p: (p.namespace != "default", p.key))
            if not pods:
                raise InputError("the lab has no pods to ask from: give --from")
            pod = pods[0]
        else:
            pod = self._resolve(st, src)
        conf = (names.pod_dir(self.name, pod.namespace, pod.name) / "resolv.conf").read_text()
        return dns_client.lookup(netns_path(pod.netns), conf, name, qtype.upper(), timeout)

    def probe(self, src: str, dst: str, port: int | None = None, protocol: str | None = None,
              timeout: float = 2.0) -> ProbeResult:
        """Real traffic from `src` (pod, node/NAME, external, internet) to `dst` (pod,
        svc/[NS/]NAME, node/NAME, internet, external, or an IP); what came back."""
        require_root()
        netns, address, port_, proto = self._probe_target(src, dst, port, protocol)
        if proto == "icmp":
            t0 = time.monotonic()
            r = self.ping(src, address, count=1, timeout=timeout)
            return ProbeResult(src, dst, address, None, "icmp",
                               "connected" if r.ok else "timeout",
                               None, None, r.output.strip().splitlines()[-1] if r.output else "",
                               round(time.monotonic() - t0, 4))
        return probe_mod.run_many([(src, dst, netns, address, port_, proto)], timeout)[0]

    def probe_many(self, probes: Sequence[tuple], timeout: float = 2.0) -> list[ProbeResult]:
        """Many probes at once, each (src, dst[, port[, protocol]]); all of them in flight
        together, so the whole batch takes about as long as its slowest probe."""
        require_root()
        jobs, icmp = [], []
        for n, args in enumerate(probes):
            src, dst = args[0], args[1]
            port = args[2] if len(args) > 2 else None
            proto = args[3] if len(args) > 3 else None
            netns, address, port_, proto_ = self._probe_target(src, dst, port, proto)
            if proto_ == "icmp":
                icmp.append(n)
            jobs.append((src, dst, netns, address, port_, proto_))
        tcp_udp = [j for n, j in enumerate(jobs) if n not in icmp]
        done = iter(probe_mod.run_many(tcp_udp, timeout))
        return [self.probe(*probes[n][:2], None, "icmp", timeout) if n in icmp else next(done)
                for n in range(len(jobs))]

    def _probe_target(self, src: str, dst: str, port: int | None, protocol: str | None
                      ) -> tuple[Path, str, int, str]:
        st = self._state()
        plan = st.plan
        assert plan is not None
        if protocol is not None and protocol.lower() not in probe_mod.PROTOCOLS:
            raise InputError(f"protocol {protocol!r} is not one of "
                             f"{', '.join(probe_mod.PROTOCOLS)}")
        proto = protocol.lower() if protocol else None
        netns = self._target(src)[0]
        outside = src in names.HOSTS
        if dst.startswith("svc/"):
            svc = self.service(dst[4:])
            address = (svc.external_ip if outside and svc.external_ip else svc.cluster_ip)
            if address is None:
                raise InputError(f"Service {svc.key} has no virtual IP ({svc.type}"
                                 f"{', headless' if svc.type != 'ExternalName' else ''}): "
                                 "probe its pods instead")
            chosen = next((p for p in svc.ports if port is None or p.port == port), None)
            if chosen is None:
                raise InputError(f"Service {svc.key} has no port {port} (ports: "
                                 f"{', '.join(str(p.port) for p in svc.ports)})")
            return netns, address, chosen.port, proto or chosen.protocol.lower()
        if dst in ("internet", "external"):
            address = plan.internet_ip if dst == "internet" else plan.external_ip
            return netns, address, port or 80, proto or "tcp"
        if dst.startswith("node/"):
            address = self.address_of(dst)
            if port is None and proto != "icmp":
                raise InputError("a node has no default port: give --port (a NodePort)")
            return netns, address, port or 0, proto or "tcp"
        try:
            address = str(ipaddress.IPv4Address(dst))
            if port is None and proto != "icmp":
                raise InputError(f"give --port for {dst}")
            return netns, address, port or 0, proto or "tcp"
        except ValueError:
            pass
        if "/" not in dst and dst not in {p.name for p in plan.pods.values()}:
            # a DNS name, resolved by the cluster DNS from inside the source pod
            if src in names.HOSTS or src.startswith("node/"):
                raise InputError(f"{dst!r} is not a pod; a DNS name can only be resolved "
                                 "from a pod (the cluster DNS serves pods)")
            answer = self.dns(dst, src)
            if not answer.addresses:
                raise InputError(f"{dst!r} does not resolve from {src}: {answer.rcode} "
                                 f"(tried {', '.join(answer.tried)})")
            address = answer.addresses[0]
            svc = next((s for s in plan.services.values() if s.cluster_ip == address), None)
            owner = next((p for p in plan.pods.values() if p.ip == address), None)
            if port is None and svc is not None:
                first = svc.ports[0]
                return netns, address, first.port, proto or first.protocol.lower()
            if port is None and owner is not None and owner.serves:
                return netns, address, owner.serves[0][1], proto or owner.serves[0][0].lower()
            if port is None and proto != "icmp":
                raise InputError(f"give --port for {dst} ({address})")
            return netns, address, port or 0, proto or "tcp"
        pod = self._resolve(st, dst)
        if port is None and proto != "icmp":
            if not pod.serves:
                raise InputError(f"pod {pod.key} declares no port: give --port (its responder "
                                 "answers only on declared ports and Service targetPorts)")
            proto_, port = pod.serves[0][0].lower(), pod.serves[0][1]
            proto = proto or proto_
        return netns, pod.ip, port or 0, proto or "tcp"

    def label(self, pod: str, changes: dict[str, str | None]) -> PodInfo:
        """Set (value) or remove (None) labels of a running pod, like `kubectl label
        --overwrite`. Endpoints and NetworkPolicy rules follow in the same step."""
        require_root()
        for k in changes:
            if not k or len(k) > 317 or " " in k:
                raise InputError(f"{k!r} is not a valid label key")
        with state.locked(self.name):
            st = self._state(fresh=True)
            key = self._resolve(st, pod).key
            overrides = dict(st.label_overrides.get(key, {}))
            overrides.update(changes)
            st.label_overrides[key] = overrides
            _converge(st, st.docs)
        return self.pod(key)

    # --- expectations -------------------------------------------------------------------------

    def expectations(self) -> list[Any]:
        """The Expectation documents applied to this lab."""
        return sorted(build(self._state().docs).expectations.values(), key=lambda e: e.name)

    def test(self, expectations: list[Any] | None = None) -> list[Outcome]:
        """Run expectations (default: the lab's own) with real traffic; one Outcome per check,
        with evidence and, on failure, a hint."""
        require_root()
        from netlab.expectations import run_check

        chosen = self.expectations() if expectations is None else expectations
        return [run_check(self, e.name, c) for e in chosen for c in e.checks]

    # --- Ingress ------------------------------------------------------------------------------

    def ingresses(self, namespace: str | None = None) -> list[IngressInfo]:
        """Ingress objects with their rules, backends, the controller's address, and
        problems that keep some of them from being served."""
        from netlab.features import ingress as ingress_mod

        st = self._state()
        plan = st.plan
        assert plan is not None
        m = manifests(st.docs, plan.cluster, st.label_overrides)
        cfg = ingress_mod.render(plan, m, Path("/"))
        controller = plan.services.get(f"{ingress_mod.NAMESPACE}/{ingress_mod.SERVICE}")
        out = []
        for ing in sorted(m.ingresses.values(), key=lambda i: (i.namespace, i.name)):
            if namespace is not None and ing.namespace != namespace:
                continue
            key = f"{ing.namespace}/{ing.name}"
            served = ing.class_name in (None, plan.cluster.ingress_class)
            rules = [(r.host or "*", r.path, r.path_type,
                      _backend_text(ing, r, plan)) for r in cfg.routes if r.ingress == key]
            if ing.default_backend is not None:
                b = ing.default_backend
                rules.append(("*", "(default)", "-", f"{b.service}:{b.port_number or b.port_name}"
                              if b.service else b.resource or ""))
            hosts = sorted({r.host for r in ing.rules if r.host}) or ["*"]
            tls_hosts = sorted({h for t in ing.tls for h in t.hosts})
            out.append(IngressInfo(
                ing.namespace, ing.name, ing.class_name, hosts,
                controller.lb_ip if (served and controller) else None,
                [80, 443] if tls_hosts else [80], rules, tls_hosts,
                [w for w in cfg.warnings if w.startswith(f"Ingress {key}:")]))
        return out

    def http(self, url: str, src: str = "external", method: str = "GET",
             headers: dict[str, str] | None = None, timeout: float = 3.0) -> HttpResult:
        """A real HTTP(S) request from `src` to the ingress controller (its LoadBalancer
        address from outside the cluster, its ClusterIP from a pod), with the URL's host as
        Host header and SNI. An IP address in the URL is used as the destination."""
        from urllib.parse import urlsplit

        from netlab.features import ingress as ingress_mod

        require_root()
        st = self._state()
        plan = st.plan
        assert plan is not None
        netns = self._target(src)[0]
        host = urlsplit(url).hostname or ""
        try:
            address = str(ipaddress.IPv4Address(host))
        except ValueError:
            svc = plan.services.get(f"{ingress_mod.NAMESPACE}/{ingress_mod.SERVICE}")
            if svc is None:
                raise InputError("the lab has no ingress controller: it starts with the first "
                                 f"Ingress of class {plan.cluster.ingress_class!r}") from None
            outside = src in names.HOSTS or src.startswith("node/")
            address = svc.lb_ip if outside and svc.lb_ip else svc.cluster_ip
        return http_client.request(netns, url, address, method, headers, timeout)

    # --- the packet walk -----------------------------------------------------------------------

    def trace(self, src: str, dst: str, port: int | None = None, protocol: str | None = None,
              timeout: float = 1.0, pcap_dir: str | Path | None = None) -> TraceResult:
        """One packet from SRC to DST, captured on every interface it crosses: the hops in
        order with what changed at each, whether it arrived and the reply came back, and
        where and why it died if it did. See netlab.trace."""
        require_root()
        t0 = time.monotonic()
        st = self._state()
        plan = st.plan
        assert plan is not None
        netns, address, port_, proto = self._probe_target(src, dst, port, protocol)
        src_ip, src_label = self._trace_source(plan, src, st)
        points, labels = self._trace_points(plan, st, src)
        dst_labels = self._trace_destinations(plan, dst, address, port_, labels)
        captured, lines, ip_id, cap = trace_mod.walk(
            points, [n.netns for n in plan.nodes], netns, src_ip, address,
            port_ if proto != "icmp" else None, proto, {src_label}, timeout)
        result = trace_mod.TraceResult(src, dst, address, port_ if proto != "icmp" else None,
                                       proto, ip_id)
        node_of = {n.netns: n.name for n in plan.nodes}
        trace_mod.analyse(result, captured, lines, node_of, src_label, dst_labels)
        if pcap_dir is not None:
            walked = {f"{h.netns}:{h.iface}" for h in result.hops}
            result.pcaps = [str(p) for p in cap.write_pcaps(Path(pcap_dir),
                                                            lambda c: c.label in walked)]
        result.seconds = round(time.monotonic() - t0, 3)
        return result

    def _trace_source(self, plan: Plan, src: str, st: state.LabState) -> tuple[str, str]:
        if src in names.HOSTS:
            ip = plan.external_ip if src == "external" else plan.underlay_gateway
            return ip, f"host/{src}:eth0"
        if src.startswith("node/"):
            node = _find_node(plan, src[5:])
            return node.underlay_ip, f"node/{node.name}:eth0"
        pod = self._resolve(st, src)
        return pod.ip, f"pod/{pod.key}:eth0"

    def _trace_points(self, plan: Plan, st: state.LabState, src: str
                      ) -> tuple[list[CapturePoint], dict[str, str]]:
        """Every interface of every node (one socket per node), the underlay switch ports,
        the outside hosts, and the eth0 of every pod (a socket each)."""
        points: list[CapturePoint] = []
        by_ip: dict[str, str] = {}
        ports = [(n.fabric_port, f"underlay:{n.name}") for n in plan.nodes]
        ports += [(names.host_port(h), f"underlay:{h}") for h in names.HOSTS]
        points.append(CapturePoint(netns_path(names.fabric_netns(self.name)), "*", "underlay",
                                   tuple(ports)))
        for n in plan.nodes:
            points.append(CapturePoint(netns_path(n.netns), "*", f"node/{n.name}"))
            by_ip[n.underlay_ip] = f"node/{n.name}:eth0"
        for host in names.HOSTS:
            points.append(CapturePoint(netns_path(names.host_netns(self.name, host)), "eth0",
                                       f"host/{host}:eth0"))
        by_ip[plan.external_ip] = "host/external:eth0"
        by_ip[plan.internet_ip] = "host/internet:eth0"
        for p in plan.pods.values():
            points.append(CapturePoint(netns_path(p.netns), "eth0", f"pod/{p.key}:eth0"))
            by_ip[p.ip] = f"pod/{p.key}:eth0"
        return points, by_ip

    def _trace_destinations(self, plan: Plan, dst: str, address: str, port: int,
                            by_ip: dict[str, str]) -> set[str]:
        """Where the packet counts as delivered: the pod or host it is for, or any endpoint
        of the Service it is for (ClusterIP, LoadBalancer address or NodePort)."""
        for svc in plan.services.values():
            for p in svc.ports:
                if ((address in (svc.cluster_ip, svc.lb_ip) and p.port == port)
                        or (p.node_port == port and address in
                            {n.underlay_ip for n in plan.nodes})):
                    return {by_ip[ep.ip] for ep in p.endpoints if ep.ip in by_ip}
        return {by_ip[address]} if address in by_ip else set()

    # --- NetworkPolicy -----------------------------------------------------------------------

    def policies(self) -> list[NetworkPolicy]:
        return sorted(build(self._state().docs).network_policies.values(),
                      key=lambda p: (p.namespace, p.name))

    def engine(self) -> PolicyEngine:
        """The policy engine over this lab: what Kubernetes semantics allow (no kernel)."""
        return engine_for(self.plan, self.policies())

    def check(self, timeout: float = 1.0, external: bool | None = None) -> CheckReport:
        """Probe every ordered pair of pods on every port and protocol the destination
        declares (and from `external` when a policy has an ipBlock, or when asked) and
        compare each result with the engine's decision."""
        require_root()
        t0 = time.monotonic()
        plan, policies = self.plan, self.policies()
        engine = engine_for(plan, policies)
        if external is None:
            external = any(peer.ip_block for p in policies for r in p.ingress for peer in r.peers)
        pods = sorted(plan.pods.values(), key=lambda p: p.key)
        sources: list[tuple[str, str]] = [(p.key, p.ip) for p in pods]
        if external:
            sources.append(("external", plan.external_ip))
        jobs = []
        for src_name, src_ip in sources:
            for dst in pods:
                if dst.key == src_name:
                    continue  # a pod's traffic to itself never meets the network
                for proto, port in dst.container_ports:
                    if proto == "SCTP" and not _sctp_available():
                        continue
                    jobs.append((src_name, src_ip, dst, port, proto))

        asks = [(s, d.key, port, proto.lower()) for s, _, d, port, proto in jobs]
        results = self.probe_many(asks, timeout)
        # A result that contradicts the engine is asked again, with more patience, before it
        # counts: a loaded machine can delay an answer past the timeout.
        expected = [engine.decide(engine.pods.get(s, ip), engine.pods[d.key], port,
                                  proto).allowed for s, ip, d, port, proto in jobs]
        again = [n for n, (r, e) in enumerate(zip(results, expected, strict=True))
                 if (observed(r.result) == "allowed") != e]
        if again:
            retried = self.probe_many([asks[n] for n in again], timeout * 3)
            for n, r in zip(again, retried, strict=True):
                results[n] = r
        probes = []
        for (src_name, src_ip, dst, port, proto), r in zip(jobs, results, strict=True):
            decision = engine.decide(engine.pods.get(src_name, src_ip), engine.pods[dst.key],
                                     port, proto)
            probes.append(CheckProbe(src_name, dst.key, port, proto,
                                     "allowed" if decision.allowed else "denied",
                                     observed(r.result), r.result, r.answered_by, r.detail))
        return CheckReport(probes, time.monotonic() - t0)

    def explain(self, src: str, dst: str, port: int | None = None, protocol: str = "tcp"
                ) -> Explanation:
        """The engine's reasoning for one connection, next to a real probe of it. For a
        Service, policy applies after DNAT: each endpoint (pod, target port) is reasoned
        about, since the kernel picks one of them."""
        plan = self.plan
        engine = engine_for(plan, self.policies())
        st = self._state()
        src_end = engine.pods[self._resolve(st, src).key] if src not in names.HOSTS \
            else (plan.external_ip if src == "external" else plan.internet_ip)
        _, address, port_, proto = self._probe_target(src, dst, port, protocol)
        targets: list[tuple[str, Any, int | None]] = []
        if dst.startswith("svc/"):
            svc = self.service(dst[4:])
            sp = next(p for p in svc.ports if p.port == port_)
            targets = [(f"{ep.pod} port {ep.port}", engine.pods[ep.pod], ep.port)
                       for ep in sp.endpoints]
        else:
            targets = [(dst, engine.resolve(address), port_)]
        reasoning: list[str] = []
        decisions = []
        for label, end, p in targets:
            d = engine.decide(src_end, end, p, proto.upper())
            decisions.append(d)
            if len(targets) > 1 or dst.startswith("svc/"):
                reasoning.append(f"to endpoint {label}:")
            reasoning += d.explain(src, label.split(" ")[0], p, proto)
        if not targets:
            reasoning.append(f"{dst} has no endpoints: the kernel rejects the connection")
        # the probe again, with the kernel tracing it on every node (nft monitor trace)
        src_ip = src_end if isinstance(src_end, str) else src_end.ip
        nodes = {n.netns for n in plan.nodes}
        with NftTrace({n: f"ip saddr {src_ip}" for n in nodes}) as trace:
            r = self.probe(src, dst, port, protocol)
        verdicts = _policy_verdicts(trace.lines, plan)
        return Explanation(src, dst, port_, proto, decisions, reasoning, r, verdicts)

    def logs(self, pod: str, container: str | None = None) -> str:
        st = self._state()
        p = self._resolve(st, pod)
        names_ = [c.name for c in p.containers]
        if container is None:
            if len(names_) > 1:
                raise InputError(f"pod {p.key} has {len(names_)} containers "
                                 f"({', '.join(names_)}): choose one with -c")
            container = names_[0]
        if container not in names_:
            raise InputError(f"pod {p.key} has no container {container!r} "
                             f"(containers: {', '.join(names_)})")
        log = names.pod_dir(self.name, p.namespace, p.name) / f"{container}.log"
        return log.read_text(errors="replace") if log.exists() else ""

    # --- doing things inside the lab ----------------------------------------------------------

    def _target(self, ref: str) -> tuple[Path, Path | None, tuple[tuple[str, str], ...],
                                         dict[str, str]]:
        """Namespaces, bind mounts and environment for running something in a pod, a node
        (`node/NAME`) or the fabric (`fabric`)."""
        st = self._state()
        assert st.plan is not None
        if ref.startswith("node/"):
            node = _find_node(st.plan, ref[5:])
            return netns_path(node.netns), uts_path(self.name, node.netns), (), {
                "HOSTNAME": node.name}
        if ref == "fabric":
            return netns_path(names.fabric_netns(self.name)), None, (), {}
        if ref in names.HOSTS:
            netns = names.host_netns(self.name, ref)
            return netns_path(netns), uts_path(self.name, netns), (), {"HOSTNAME": ref}
        p = self._resolve(st, ref)
        d = names.pod_dir(self.name, p.namespace, p.name)
        binds = ((str(d / "resolv.conf"), "/etc/resolv.conf"), (str(d / "hosts"), "/etc/hosts"))
        env = {"HOSTNAME": p.hostname}
        for c in p.containers:
            env.update(dict(c.env))
        return netns_path(p.netns), uts_path(self.name, p.netns), binds, env

    def exec_argv(self, target: str, argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that run `argv` inside `target` (for callers
        that need their own process handling, like an interactive shell)."""
        netns, uts, binds, env = self._target(target)
        extra = {k: os.environ[k] for k in ("TERM",) if k in os.environ}
        return procs.launcher_argv(netns, uts, list(argv), binds), {
            **procs.BASE_ENV, **extra, **env}

    def exec(self, target: str, argv: Sequence[str], *, input: str | None = None,
             timeout: float | None = 60) -> ExecResult:
        """Run a command in a pod (`NAME`, `NS/NAME`) or node (`node/NAME`) and capture it."""
        require_root()
        cmd, env = self.exec_argv(target, argv)
        try:
            r = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            return ExecResult(124, _text(e.stdout), _text(e.stderr) + f"timed out after {timeout}s")
        return ExecResult(r.returncode, r.stdout, r.stderr)

    def capture(self, *targets: str, bpf: str | None = None) -> Capture:
        """Capture points for `with lab.capture(...) as cap:` (then `cap.packets`, a list
        of (label, scapy packet)). Targets: `underlay` (every node's port on the underlay
        switch), `node/NAME[:IFACE]` (default eth0), `POD[:IFACE]` (default eth0)."""
        st = self._state()
        assert st.plan is not None
        points = []
        for target in targets:
            if target == "underlay":
                points += [CapturePoint(netns_path(names.fabric_netns(self.name)), n.fabric_port,
                                        f"underlay:{n.name}") for n in st.plan.nodes]
                continue
            ref, _, iface = target.partition(":")
            if ref.startswith("node/"):
                node = _find_node(st.plan, ref[5:])
                points.append(CapturePoint(netns_path(node.netns), iface or "eth0",
                                           f"{ref}:{iface or 'eth0'}"))
            else:
                pod = self._resolve(st, ref)
                points.append(CapturePoint(netns_path(pod.netns), iface or "eth0",
                                           f"{pod.key}:{iface or 'eth0'}"))
        return Capture(points, bpf)

    def address_of(self, ref: str) -> str:
        """An IP address, a pod's address, or a node's underlay address (`node/NAME`)."""
        try:
            return str(ipaddress.IPv4Address(ref))
        except ValueError:
            pass
        st = self._state()
        assert st.plan is not None
        if ref.startswith("node/"):
            return _find_node(st.plan, ref[5:]).underlay_ip
        return self._resolve(st, ref).ip

    def ping(self, src: str, dst: str, count: int = 3, timeout: float = 1.0) -> PingResult:
        """Real ICMP echo from `src` (pod or node/NAME) to `dst` (pod, node/NAME or IP)."""
        ip = self.address_of(dst)
        r = self.exec(src, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", str(timeout), ip],
                      timeout=count * (timeout + 0.5) + 5)
        m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", r.stdout)
        tx, rx = (int(m.group(1)), int(m.group(2))) if m else (count, 0)
        return PingResult(src, dst, ip, tx, rx, r.stdout + r.stderr, r.returncode)


def _policy_verdicts(lines: list[tuple[str, str]], plan: Plan) -> list[str]:
    """The verdicts netlab-policy and kube-proxy rules gave the traced packets, per node:
    `node-1: ip netlab-policy ingress-x/a rule drop ... (verdict drop)`."""
    node_of = {n.netns: n.name for n in plan.nodes}
    out = []
    for netns, line in lines:
        if " rule " not in line or "(verdict" not in line:
            continue
        if "netlab-policy" not in line and "dnat" not in line:
            continue
        text = line.split(" ", 3)[3]  # drop "trace id XXXX": one line per distinct verdict
        entry = f"{node_of.get(netns, netns)}: {text}"
        if entry not in out:
            out.append(entry)
    return out


def _sctp_available() -> bool:
    import socket as _socket

    try:
        _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM, _socket.IPPROTO_SCTP).close()
        return True
    except OSError:
        return False


def _backend_text(ing: Any, route: Any, plan: Plan) -> str:
    if route.upstream is None:
        return "(503: see problems)"
    for r in ing.rules:
        for p in r.paths:
            if (r.host, (p.path or "/").rstrip("/") or "/") == (route.host, route.path):
                b = p.backend
                return f"{b.service}:{b.port_number or b.port_name}"
    return route.upstream


def _text(b: bytes | str | None) -> str:
    if b is None:
        return ""
    return b if isinstance(b, str) else b.decode(errors="replace")


def _find_node(plan: Plan, name: str) -> NodePlan:
    for n in plan.nodes:
        if n.name == name:
            return n
    raise InputError(f"no node {name!r} (nodes: {', '.join(n.name for n in plan.nodes)})")


def plan_up(docs: list[RawDoc], files: Sequence[Any] = (), name: str | None = None
            ) -> tuple[str, DesiredLab]:
    """What `up` would build from these documents, and the lab's name (`up --dry-run`)."""
    lab_name = names.check_lab_name(name) if name else _default_name(docs, files)
    return lab_name, compile_lab(lab_name, docs)


def _create(st: state.LabState, desired: DesiredLab, docs: list[RawDoc],
            progress: ProgressFn | None = None) -> ChangeSummary:
    """Bring a lab up from nothing; on any failure (or Ctrl-C) remove all of it."""
    port = Kernel(st.lab)
    try:
        return Converger(port, st, progress, save=state.save).converge(None, desired, docs)
    except BaseException:
        port.close()
        destroy_lab(st.lab, st.recorded())
        raise
    finally:
        port.close()


def _converge(st: state.LabState, docs: list[RawDoc], progress: ProgressFn | None = None
              ) -> ChangeSummary:
    """A running lab made what `docs` say (with its `netlab label` changes)."""
    port = Kernel(st.lab)
    try:
        return converge_docs(port, st, docs, progress, save=state.save)
    finally:
        port.close()


def down(name: str) -> bool:
    """Remove lab `name` completely, from its state if any and from its names regardless.
    Returns False if there was nothing of it."""
    require_root()
    names.check_lab_name(name)
    if name not in all_labs():
        return False
    recorded = []
    with contextlib.suppress(LabNotFoundError):
        recorded = state.load(name).recorded()
    destroy_lab(name, recorded)
    return True


def down_all() -> list[str]:
    labs = all_labs()
    for lab in labs:
        down(lab)
    return labs
