"""The lab's agent: one process per lab, its kubelet. It runs every container of the lab and
serves netlab's built-in responder for every pod from this one process (sockets opened in
each pod's network namespace), so a serving pod costs sockets, not an interpreter.

    python -m netlab.runtime.agent LAB          (started by `netlab up`; outlives it)

It is told what to run over a Unix socket (`agent.sock` in the lab's state directory) by
the converger, keeps that in `agent/workloads.json`, and reports every container's state in
`agent/status.json`. Containers are its children, so it sees their exit codes; it restarts
them as their pod's restartPolicy says, with kubelet's back-off (10 s doubling to 5 min,
reset after 10 min of running; the Cluster's restartBackOff may shorten it). A container's
previous log is kept as `<name>.previous.log` when it restarts.

If the agent dies, the network and the containers keep working; the next `netlab` command
that changes the lab starts it again, and it adopts the running containers from its status
file (by pid and start time) instead of starting them twice. It cannot learn the exit code
of an adopted container (it is not their parent): such an exit is reported as Unknown.
`netlab down` never needs it: it stops it like any other process of the lab.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab import names
from netlab.errors import KernelError
from netlab.features.volumes import PodVolume
from netlab.intents import Probes, Process, SandboxSpec, Serve, Workload
from netlab.jobs import PodOutcome
from netlab.jsonable import plain
from netlab.kernel import Kernel, netns_path, procs, raise_fd_limit, sandbox, uts_path
from netlab.kernel.port import Started
from netlab.model import Probe, VolumeMount
from netlab.runtime.probes import ContainerProbes, ProbeRunner, Target
from netlab.runtime.responder_hub import ResponderHub
from netlab.runtime.workloads import changes

RESET_AFTER = 600.0  # kubelet forgets a container's back-off after 10 minutes of running
TICK = 0.05


def agent_dir(lab: str) -> Path:
    return names.lab_dir(lab) / "agent"


def socket_path(lab: str) -> Path:
    return names.lab_dir(lab) / "agent.sock"


# --- what the agent is told, as JSON ------------------------------------------------------


def workload_to_json(w: Workload) -> dict[str, Any]:
    sandbox = None
    if w.sandbox is not None:
        sandbox = {"hostname": w.sandbox.hostname, "binds": list(w.sandbox.binds),
                   "volumes": [{"name": v.name, "kind": v.kind, "size_bytes": v.size_bytes,
                                "host_path": v.host_path,
                                "files": {path: [base64.b64encode(data).decode(), mode]
                                          for path, (data, mode) in v.files.items()}}
                               for v in w.sandbox.volumes]}
    return {"owner": w.owner, "restartPolicy": w.restart_policy,
            "processes": plain(w.processes),
            "serve": plain(w.serve), "backoff": list(w.backoff),
            "containers": list(w.containers), "probes": plain(w.probes),
            "podIP": w.pod_ip, "netns": w.netns, "sandbox": sandbox,
            "incarnation": w.incarnation}


def _hostname(w: Workload) -> str | None:
    """The pod's hostname (commands outside its sandbox get a UTS namespace with it)."""
    if w.sandbox is not None:
        return w.sandbox.hostname
    if w.serve is not None:
        return w.serve.hostname
    return next((v for p in w.processes for k, v in p.env if k == "HOSTNAME"), None)


def workload_from_json(d: dict[str, Any]) -> Workload:
    def proc(p: dict[str, Any]) -> Process:
        return Process(p["pod"], p["container"], p["netns"], tuple(p["argv"]),
                       tuple(map(tuple, p["env"])), tuple(map(tuple, p["binds"])), p["workdir"],
                       p.get("sandboxed", False),
                       tuple(VolumeMount(**m) for m in p.get("mounts", ())), p.get("init", ""))

    def probe(p: dict[str, Any] | None) -> Probe | None:
        if p is None:
            return None
        return Probe(**{**p, "command": tuple(p["command"]),
                        "http_headers": tuple(map(tuple, p["http_headers"]))})

    def probes(p: dict[str, Any]) -> Probes:
        return Probes(p["container"], probe(p["readiness"]), probe(p["liveness"]),
                      probe(p["startup"]), tuple(map(tuple, p["ports"])))

    s = d.get("serve")
    serve = Serve(s["pod"], s["hostname"], s["netns"], tuple(s["ports"]),
                  tuple(map(tuple, s.get("replies", ())))) if s else None
    sb = d.get("sandbox")
    sandbox = None
    if sb is not None:
        sandbox = SandboxSpec(sb["hostname"], tuple(map(tuple, sb["binds"])), tuple(
            PodVolume(v["name"], v["kind"], v["size_bytes"],
                      {path: (base64.b64decode(data), mode)
                       for path, (data, mode) in v["files"].items()}, v["host_path"])
            for v in sb["volumes"]))
    return Workload(d["owner"], tuple(proc(p) for p in d["processes"]), d["restartPolicy"],
                    serve, tuple(d.get("backoff", (10.0, 300.0))),
                    tuple(d.get("containers", ())), tuple(probes(p) for p in d.get("probes", ())),
                    d.get("podIP", ""), d.get("netns", ""), sandbox, d.get("incarnation", ""))


def prepared_ahead(w: Workload) -> bool:
    """What `prepare` does something for: a sandbox to make, or sockets to open."""
    return _sandboxed(w) or _serves_ahead(w)


def _sandboxed(w: Workload) -> bool:
    return w.sandbox is not None and any(p.sandboxed for p in w.processes)


def _serves_ahead(w: Workload) -> bool:
    """A pod whose responder's sockets `prepare` may open before `apply`: nothing holds it
    back (init containers) and it answers as itself (no fixed replies; not a host, whose
    responder has another name, nor a node)."""
    return (w.serve is not None and not w.serve.replies and "/" in w.owner
            and not w.owner.startswith(("host/", "node/"))
            and not any(p.init for p in w.processes))


def container_policy(p: Process, pod_policy: str) -> str:
    """The restart policy a container runs under: a sidecar always restarts; an init
    container is restarted when it fails unless the pod's policy is Never, and never once
    it has completed; the others follow the pod's (KEP-753, pod lifecycle docs)."""
    if p.init == "sidecar":
        return "Always"
    if p.init == "init":
        return "Never" if pod_policy == "Never" else "OnFailure"
    return pod_policy


# --- one container ----------------------------------------------------------------------


@dataclass
class Container:
    """A container as kubelet tracks it: its current state and its last termination."""

    process: Process
    policy: str
    backoff_limits: tuple[float, float] = (10.0, 300.0)  # first and longest back-off
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"  # for waiting and terminated states
    message: str = ""
    pid: int = 0
    starttime: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int | None = None
    restarts: int = 0
    backoff: float = 0.0  # the current back-off (0: none yet)
    next_start: float = 0.0  # monotonic time of the next start, while backing off
    last: dict[str, Any] = field(default_factory=dict)  # lastState.terminated
    popen: Any = field(default=None, repr=False)  # the subprocess, while it is our child

    @property
    def key(self) -> tuple[str, str]:
        return (self.process.pod, self.process.container)

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.process.pod, "container": self.process.container,
                "state": self.state, "reason": self.reason, "message": self.message,
                "pid": self.pid, "starttime": self.starttime, "startedAt": self.started_at,
                "finishedAt": self.finished_at, "exitCode": self.exit_code,
                "restarts": self.restarts, "restartPolicy": self.policy,
                "lastState": self.last, "argv": list(self.process.argv),
                "init": self.process.init,
                "backoff": self.backoff,
                "nextStartAt": time.time() + (self.next_start - time.monotonic())
                if self.next_start else 0.0}


class Agent:
    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.dir = agent_dir(lab)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.loads: dict[str, Workload] = {}
        self.containers: dict[tuple[str, str], Container] = {}
        self.hub = ResponderHub()
        self.served: dict[str, list[str]] = {}  # owner -> the responder's log lines
        self.created: dict[str, float] = {}  # owner -> when the agent was first given it
        self.stop = threading.Event()
        self._status_dirty = True
        # probes: per (owner, container), what they say, and those running now
        self.probes: dict[tuple[str, str], ContainerProbes] = {}
        self.runner = ProbeRunner(workers=8)
        self.inflight: list[tuple[tuple[str, str], str, int, Future]] = []
        self.pod_ready: dict[str, tuple[bool, str]] = {}  # owner -> (ready, why not)
        self.pod_outcomes: dict[str, PodOutcome] = {}  # owner -> its phase (not Always)
        self.readiness_changed = threading.Event()
        self.sandboxes: dict[str, sandbox.Sandbox] = {}  # owner -> its pod's sandbox
        self.disk_mounts: list[str] | None = None  # read once for a batch of new sandboxes
        # sandboxes being made ahead (`prepare`), by owner
        self.preparing: dict[str, Future] = {}
        self.preparing_lock = threading.Lock()
        self.preparer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox")
        # responder sockets being opened ahead (`prepare`): apply waits for them first
        self.serving_ahead: list[Future] = []
        # pods whose built-in responder waits for their init containers to complete
        self.serve_after_init: dict[str, Serve] = {}
        # containers without a command (the responder stands for them) that a probe
        # restarted: their restarts, last state and back-off
        self.virtual: dict[tuple[str, str], dict[str, Any]] = {}

    def log(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    # --- workloads ------------------------------------------------------------------------

    def apply(self, desired: dict[str, Workload]) -> None:
        """Make the running workloads `desired` (what changed only)."""
        with self.lock:
            diff = changes(self.loads, desired)
            self.loads = dict(desired)  # probes of what starts below are looked up here
            for owner, container in diff.stop:
                self._stop(self.containers.pop((owner, container), None))
            for owner in diff.unserve:
                self._unserve(owner)
            self._collect_served_ahead()
            serving = [s for s in diff.serve if not self._initializing(desired[s.pod])]
            for serve in diff.serve:
                if serve in serving:
                    self._serve(serve)
                else:  # its containers run once the init containers have completed
                    self.serve_after_init[serve.pod] = serve
            by_pod: dict[str, list[Container]] = {}
            for p in diff.start:
                c = Container(p, container_policy(p, desired[p.pod].restart_policy),
                              desired[p.pod].backoff)
                self.containers[c.key] = c
                by_pod.setdefault(p.pod, []).append(c)
            self.disk_mounts = sandbox.host_disk_mounts() if by_pod else None
            try:
                self._start_pods(list(by_pod.values()))
            finally:
                self.disk_mounts = None
            for owner in set(self.hub.pods()) - set(self.served):  # opened ahead, not wanted
                self.hub.remove(owner)
            for owner in diff.unserve:
                self._virtual_exited(owner)
            for serve in serving:  # a container without a command runs from now on
                self._virtual_started(desired[serve.pod])
            for owner in desired:
                self.created.setdefault(owner, time.time())
            for owner in set(self.created) - set(desired):
                del self.created[owner]
            for owner, w in desired.items():  # a new restart policy applies from now on
                for p in w.processes:
                    if (c := self.containers.get((owner, p.container))) is not None:
                        c.policy = container_policy(p, w.restart_policy)
                        c.backoff_limits = w.backoff
            for key in [k for k in self.probes if k[0] not in desired]:
                del self.probes[key]
            for key in [k for k in self.virtual if k[0] not in desired]:
                del self.virtual[key]
            for owner in [o for o in self.serve_after_init if o not in desired]:
                del self.serve_after_init[owner]
            self._collect_prepared()
            self._drop_sandboxes()
            self._save_workloads()
            self._status_dirty = True

    def release(self, owners: list[str]) -> None:
        """Let go of these pods: their containers stopped (not restarted), sockets closed,
        their sandboxes removed (also one still being made ahead: waited for first)."""
        with self.lock:
            for owner in owners:
                self._prepared(owner)
                self.loads.pop(owner, None)
                self.created.pop(owner, None)
                self.serve_after_init.pop(owner, None)
                self._unserve(owner)
                for key in [k for k in self.containers if k[0] == owner]:
                    self._stop(self.containers.pop(key))
                for key in [k for k in self.probes if k[0] == owner]:
                    del self.probes[key]
                for key in [k for k in self.virtual if k[0] == owner]:
                    del self.virtual[key]
                self.pod_ready.pop(owner, None)
                self.pod_outcomes.pop(owner, None)
            self._drop_sandboxes()
            self._save_workloads()
            self._status_dirty = True

    def _serve(self, serve: Serve) -> None:
        """The responder listens for this pod (a host answers by its own name); its lines go
        where its log always was (readiness and `logs` read it)."""
        d = self._workdir(serve.pod)
        self.served[serve.pod] = lines = self.hub.add(
            serve.pod, serve.hostname, netns_path(serve.netns), serve.ports,
            name=serve.pod.removeprefix("host/"),
            replies={spec: text.encode() for spec, text in serve.replies},
            log=self._request_log(serve.pod, d))
        with contextlib.suppress(OSError):
            d.mkdir(parents=True, exist_ok=True)
            (d / "netlab-responder.log").write_text("".join(f"{x}\n" for x in lines))

    def _request_log(self, owner: str, d: Path) -> Path | None:
        """Where the responder logs each HTTP request it answers (`netlab logs POD`, as the
        Gateway API conformance suite reads its echo server's): the log of the pod's first
        container without a command, the one the responder stands for; None for a host, a
        node, or a pod whose containers all have commands."""
        w = self.loads.get(owner)
        if w is None or "/" not in owner or owner.startswith(("host/", "node/")):
            return None
        commands = {p.container for p in w.processes}
        name = next((c for c in w.containers if c not in commands), None)
        return d / f"{name}.log" if name else None

    def _unserve(self, owner: str) -> None:
        self.hub.remove(owner)
        self.served.pop(owner, None)

    def _workdir(self, owner: str) -> Path:
        if owner.startswith("host/"):
            return names.lab_dir(self.lab) / "hosts" / owner.split("/", 1)[1]
        if owner.startswith("node/"):  # a node's kube-proxy (its health check server)
            return names.lab_dir(self.lab) / "nodes" / owner.split("/", 1)[1]
        ns, _, name = owner.partition("/")
        return names.pod_dir(self.lab, ns, name)

    def _save_workloads(self) -> None:
        tmp = self.dir / "workloads.json.tmp"
        tmp.write_text(json.dumps([workload_to_json(w) for w in self.loads.values()]))
        os.replace(tmp, self.dir / "workloads.json")

    # --- sandboxes ------------------------------------------------------------------------

    def _sandbox(self, owner: str) -> sandbox.Sandbox:
        """The pod's sandbox, made when its first container starts (again, if its pause
        died: the pod's processes died with it), unless it was prepared ahead."""
        self._prepared(owner)
        sb = self.sandboxes.get(owner)
        if sb is not None and sb.alive():
            return sb
        if sb is not None:
            sandbox.remove_sandbox(sb)
        self.sandboxes[owner] = sb = self._make_sandbox(owner, self.loads[owner],
                                                        self.disk_mounts)
        self._status_dirty = True
        return sb

    def _make_sandbox(self, owner: str, w: Workload, disk_mounts: list[str] | None
                      ) -> sandbox.Sandbox:
        if w.sandbox is None:
            raise KernelError(f"pod {owner} has no sandbox specification")
        uts = uts_path(self.lab, w.netns)
        ns, _, name = owner.partition("/")
        return sandbox.create_sandbox(self.lab, names.pod_dir(self.lab, ns, name),
                                      netns_path(w.netns), uts if uts.exists() else None,
                                      w.sandbox.hostname, w.sandbox.binds, w.sandbox.volumes,
                                      disk_mounts=disk_mounts)

    def prepare(self, desired: dict[str, Workload]) -> None:
        """Make these pods' sandboxes, and open their built-in responder's sockets, in the
        background (their namespaces exist; the CLI is still building their interfaces):
        `apply` then finds them made, and only names what serves them."""
        sandboxed = {o: w for o, w in desired.items() if _sandboxed(w)}
        disk = sandbox.host_disk_mounts() if sandboxed else None
        served = [w.serve for w in desired.values() if _serves_ahead(w)]
        with self.preparing_lock:
            for owner, w in sandboxed.items():
                if owner not in self.preparing and owner not in self.sandboxes:
                    self.preparing[owner] = self.preparer.submit(
                        self._make_sandbox, owner, w, disk)
            if served:
                self.serving_ahead.append(self.preparer.submit(self._serve_ahead, served))

    def _serve_ahead(self, serves: list[Serve]) -> None:
        for serve in serves:
            if serve.pod not in self.served:
                self.hub.add(serve.pod, serve.hostname, netns_path(serve.netns), serve.ports)

    def _collect_served_ahead(self) -> None:
        """Wait for the sockets being opened ahead (a failure is met again by `_serve`)."""
        with self.preparing_lock:
            futures, self.serving_ahead = self.serving_ahead, []
        for f in futures:
            try:
                f.result()
            except (OSError, RuntimeError) as e:
                self.log(f"responder sockets opened ahead: {e}")

    def _prepared(self, owner: str) -> None:
        """A sandbox made ahead for `owner` joins the others (an error making it is logged:
        making it again, now, reports it where it belongs)."""
        with self.preparing_lock:
            future = self.preparing.pop(owner, None)
        if future is None:
            return
        try:
            sb = future.result()
        except (OSError, KernelError) as e:
            self.log(f"{owner}: sandbox made ahead failed: {e}")
            return
        old = self.sandboxes.get(owner)
        if old is not None and old is not sb:
            sandbox.remove_sandbox(old)
        self.sandboxes[owner] = sb
        self._status_dirty = True

    def _collect_prepared(self) -> None:
        """Every sandbox made ahead joins the others (those the workloads do not use are
        then removed by _drop_sandboxes)."""
        with self.preparing_lock:
            owners = list(self.preparing)
        for owner in owners:
            self._prepared(owner)

    def _drop_sandboxes(self) -> None:
        """Sandboxes of pods that run no sandboxed container any more go."""
        using = {c.process.pod for c in self.containers.values() if c.process.sandboxed}
        for owner in [o for o in self.sandboxes if o not in using]:
            sandbox.remove_sandbox(self.sandboxes.pop(owner))
            self._status_dirty = True

    # --- containers -----------------------------------------------------------------------

    def _start(self, c: Container) -> None:
        p = c.process
        d = names.lab_dir(self.lab) / p.workdir
        log = d / f"{p.container}.log"
        try:
            d.mkdir(parents=True, exist_ok=True)
            if c.restarts and log.exists():
                os.replace(log, d / f"{p.container}.previous.log")
            uts = uts_path(self.lab, p.netns)
            if p.sandboxed:
                sb = self._sandbox(p.pod)
                with open(log, "ab") as out, open(os.devnull) as null:
                    alone = sum(q.sandboxed for q in self.loads[p.pod].processes) == 1
                    c.popen = sandbox.start_container(
                        sb, sandbox.container_argv(sb, p.mounts, p.argv, alone=alone),
                        dict(p.env),
                        stdin=null, stdout=out, stderr=out, start_new_session=True,
                        close_fds=True)
            else:
                c.popen = procs.start(netns_path(p.netns), uts if uts.exists() else None,
                                      p.argv, dict(p.env), p.binds, log,
                                      hostname=_hostname(self.loads[p.pod]))
        except (OSError, KernelError) as e:
            c.state, c.reason, c.message = "waiting", "CreateContainerError", str(e)
            c.popen = None
            self._schedule_restart(c, failed=True)
            return
        c.pid, c.starttime = c.popen.pid, procs.starttime(c.popen.pid) or 0
        c.state, c.reason, c.message = "running", "", ""
        c.started_at, c.exit_code = time.time(), None
        self._probes_started(c.process.pod, c.process.container)
        self._status_dirty = True

    def _start_pods(self, pods: list[list[Container]]) -> None:
        """Start the pods' containers, several pods at once (a sandbox costs a few dozen
        short-lived processes to set up: with 400 pods, the cores are the limit); a pod's
        own containers start in order, in its one sandbox."""
        def start(containers: list[Container]) -> None:
            for c in containers:
                if self._gated(c):
                    c.state, c.reason = "waiting", "PodInitializing"
                else:
                    self._start(c)
        if len(pods) <= 1:
            for containers in pods:
                start(containers)
            return
        # each thread starts its pods' containers itself (sandbox.start_container)
        with ThreadPoolExecutor(max_workers=min(16, len(pods)),
                                initializer=sandbox.launcher_thread) as pool:
            list(pool.map(start, pods))

    def _kill(self, c: Container) -> None:
        """SIGKILL a running container (verified by pid and start time) and reap it."""
        procs.kill_verified([Started(c.pid, c.starttime)], set())
        if c.popen is not None:
            procs.wait(c.popen, 5)

    def _stop(self, c: Container | None) -> None:
        if c is None or c.state != "running":
            return
        self._kill(c)
        c.state, c.popen = "terminated", None

    def _exited(self, c: Container, code: int | None, why: str = "") -> None:
        """A container ended: record it, then restart it as its pod's policy says."""
        if (cp := self.probes.get(c.key)) is not None:
            cp.exited()
        c.finished_at = time.time()
        c.exit_code = code
        reason = "Unknown" if code is None else "Completed" if code == 0 else "Error"
        c.state, c.reason, c.popen = "terminated", reason, None
        c.message = why or ("" if code is not None else
                            "the agent restarted while the container ran: its exit code is "
                            "unknown")
        c.last = {"terminated": {"exitCode": code, "reason": reason,
                                 "startedAt": c.started_at, "finishedAt": c.finished_at}}
        self.log(f"{c.process.pod}/{c.process.container} exited: {reason}"
                 f"{f' ({code})' if code is not None else ''}")
        restart = c.policy == "Always" or (c.policy == "OnFailure" and code != 0)
        if restart:
            self._schedule_restart(c, failed=False)
        elif not c.process.init:
            self._end_sidecars(c.process.pod)
        self._status_dirty = True

    def _schedule_restart(self, c: Container, failed: bool) -> None:
        """kubelet's back-off: the first restart waits `initial`, each next one twice as
        long up to `max`; a container that ran for 10 minutes starts over."""
        initial, most = c.backoff_limits
        ran = c.finished_at - c.started_at if c.started_at else 0.0
        if c.backoff == 0.0 or ran >= RESET_AFTER:
            c.backoff = initial
        else:
            c.backoff = min(c.backoff * 2, most)
        c.next_start = time.monotonic() + c.backoff
        if not failed:
            c.state, c.reason = "waiting", "CrashLoopBackOff"
            c.message = (f"back-off {c.backoff:g}s restarting failed container="
                         f"{c.process.container} pod={c.process.pod}")

    def supervise(self) -> None:
        """Reap exits, start containers whose back-off is over, write the status."""
        with self.lock:
            now = time.monotonic()
            for c in list(self.containers.values()):
                if c.state == "running":
                    if c.popen is not None:
                        code = c.popen.poll()
                        if code is not None:  # killed by a signal: 128 + signal, as kubelet
                            self._exited(c, 128 - code if code < 0 else code)
                    elif not procs.alive(c.pid, c.starttime):  # adopted, not our child
                        self._exited(c, None)
                elif c.state == "waiting" and c.next_start and now >= c.next_start:
                    c.restarts += 1
                    c.next_start = 0.0
                    self._start(c)
            self._after_init()
            self._run_probes(now)
            self._restart_virtual(now)
            self._update_readiness()
            if self._status_dirty:
                self._write_status()

    def _write_status(self) -> None:
        data = {"agent": {"pid": os.getpid(), "starttime": procs.starttime(os.getpid()) or 0},
                "containers": [c.to_json() for c in self.containers.values()],
                "pods": {k: {"created": t, "ready": self.pod_ready.get(k, (True, ""))[0],
                             "notReadyReason": self.pod_ready.get(k, (True, ""))[1],
                             "incarnation": w.incarnation if (w := self.loads.get(k)) else ""}
                         for k, t in self.created.items()},
                "probes": {f"{k[0]}/{k[1]}": {"started": cp.started, "ready": cp.ready,
                                               "reason": cp.reason, "awaiting": cp.awaiting}
                           for k, cp in self.probes.items()},
                "sandboxes": {k: sb.to_json() for k, sb in self.sandboxes.items()},
                "virtual": {f"{k[0]}/{k[1]}": {"restarts": v["restarts"],
                                               "waiting": v.get("waiting", False),
                                               "lastState": v["last"],
                                               "backoff": v["backoff"]}
                            for k, v in self.virtual.items()},
                "responder": self.served}
        tmp = self.dir / "status.json.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.dir / "status.json")
        self._status_dirty = False

    def running(self) -> dict[str, Any]:
        with self.lock:
            return {"running": [[c.process.pod, c.process.container, c.pid, c.starttime]
                                for c in self.containers.values() if c.state == "running"],
                    "responder": self.served}

    # --- init containers and sidecars -----------------------------------------------------

    def _initializing(self, w: Workload, before: str | None = None) -> str | None:
        """The first init container of the pod (before container `before`, if given) that
        holds back what follows it: one that has not completed, or a sidecar that has not
        started yet; None when there is none."""
        for p in w.processes:
            if p.container == before:
                return None
            c = self.containers.get((w.owner, p.container))
            if p.init == "init" and (c is None or c.state != "terminated" or c.exit_code != 0):
                return p.container
            if p.init == "sidecar" and (c is None or not c.started_at):
                return p.container
        return None

    def _gated(self, c: Container) -> bool:
        w = self.loads.get(c.process.pod)
        return w is not None and self._initializing(w, c.process.container) is not None

    def _after_init(self) -> None:
        """Start the containers an init container's completion released (in order: the
        next init container, or sidecars and the containers), and serve a pod's ports once
        all its init containers have completed."""
        for c in list(self.containers.values()):
            if c.state == "waiting" and c.reason == "PodInitializing" and not self._gated(c):
                self._start(c)
        for owner, serve in list(self.serve_after_init.items()):
            w = self.loads.get(owner)
            if w is not None and self._initializing(w) is None:
                del self.serve_after_init[owner]
                self._serve(serve)
                self._virtual_started(w)

    def _end_sidecars(self, owner: str) -> None:
        """The pod's containers have all ended for good (restartPolicy Never/OnFailure):
        its sidecars are stopped too, not restarted (so a Job's pod completes)."""
        w = self.loads.get(owner)
        if w is None:
            return
        sidecars = {p.container for p in w.processes if p.init == "sidecar"}
        commands = {p.container: p for p in w.processes if not p.init}
        if any(name not in commands for name in w.containers if name not in sidecars):
            return  # a container without a command: the responder serves it, it never ends
        for name in commands:
            c = self.containers.get((owner, name))
            if c is None or c.state != "terminated" or c.next_start:
                return  # still running, or restarting
        for p in w.processes:
            c = self.containers.get((owner, p.container))
            if p.init == "sidecar" and c is not None:
                c.policy, c.next_start = "Never", 0.0
                if c.state == "running":
                    self._kill(c)
                    self._exited(c, 137, "stopped: the pod's containers have completed")
                elif c.state == "waiting":
                    c.state, c.reason = "terminated", "Completed"

    # --- probes and readiness -------------------------------------------------------------

    def _probes_started(self, owner: str, container: str) -> None:
        """A container (re)started: its probes start over."""
        w = self.loads.get(owner)
        spec = next((p for p in w.probes if p.container == container), None) if w else None
        if spec is None:
            return
        now = time.monotonic()
        if (cp := self.probes.get((owner, container))) is not None:
            cp.restart(now)
        else:
            self.probes[(owner, container)] = ContainerProbes(
                now, readiness=spec.readiness, liveness=spec.liveness, startup=spec.startup)

    def _virtual_started(self, w: Workload) -> None:
        """The containers without a command (the responder stands for their image) start
        when the pod is served."""
        commands = {p.container for p in w.processes}
        for name in w.containers:
            if name not in commands:
                self._probes_started(w.owner, name)

    def _virtual_exited(self, owner: str) -> None:
        for (o, _), cp in self.probes.items():
            if o == owner:
                cp.exited()

    def _target(self, owner: str, container: str) -> Target:
        w = self.loads[owner]
        spec = next(p for p in w.probes if p.container == container)
        proc = next((p for p in w.processes if p.container == container), None)
        netns = netns_path(w.netns)
        uts = uts_path(self.lab, w.netns)
        binds = proc.binds if proc else ()
        hostname = _hostname(w)

        def exec_argv(command: Sequence[str]) -> list[str]:
            return procs.launcher_argv(netns, uts if uts.exists() else None, list(command),
                                       binds, hostname=hostname)
        return Target(netns, w.pod_ip, dict(spec.ports), exec_argv)

    def _run_probes(self, now: float) -> None:
        """Start the probes that are due; act on the results of those that finished."""
        for key, cp in self.probes.items():
            if key[0] not in self.loads:
                continue
            for worker in cp.due(now):
                worker.begin(now)
                future = self.runner.submit(worker.probe, self._target(*key))
                self.inflight.append((key, worker.probe_type, cp.generation, future))
        waiting = []
        for key, kind, generation, future in self.inflight:
            if not future.done():
                waiting.append((key, kind, generation, future))
                continue
            cp = self.probes.get(key)
            if cp is None:
                continue
            ok, message = future.result()
            t = cp.record(time.monotonic(), kind, ok, message, generation)
            if t is not None:
                self._status_dirty = True
                self.log(f"{key[0]}/{key[1]}: {t.action}: {t.reason}")
                if t.action == "restart":
                    self._probe_restart(key, t.reason)
        self.inflight = waiting

    def _probe_restart(self, key: tuple[str, str], reason: str) -> None:
        """A liveness (or startup) probe failed: kubelet kills the container, and its pod's
        restartPolicy decides whether it starts again."""
        c = self.containers.get(key)
        if c is not None and c.state == "running":
            self._kill(c)
            self._exited(c, 137, why=reason)
            return
        w = self.loads.get(key[0])
        if c is None and w is not None and w.serve is not None:  # the responder "container"
            # it stops answering (its sockets close), and starts again after kubelet's
            # back-off, counted like any container's restart
            self._unserve(w.owner)
            self._virtual_exited(w.owner)
            v = self.virtual.setdefault(key, {"restarts": 0, "backoff": 0.0, "last": {}})
            now = time.time()
            v["last"] = {"terminated": {"exitCode": 137, "reason": "Error", "message": reason,
                                        "startedAt": v.get("startedAt", 0.0),
                                        "finishedAt": now}}
            initial, most = w.backoff
            v["backoff"] = initial if not v["backoff"] else min(v["backoff"] * 2, most)
            v["next"] = time.monotonic() + v["backoff"]
            v["waiting"] = True
            if w.restart_policy == "Never":
                v["next"] = 0.0  # it stays down
            self._status_dirty = True

    def _restart_virtual(self, now: float) -> None:
        """Responder "containers" whose back-off is over answer again."""
        for key, v in self.virtual.items():
            w = self.loads.get(key[0])
            if not v.get("waiting") or not v.get("next") or now < v["next"] or w is None \
                    or w.serve is None:
                continue
            v["waiting"], v["next"] = False, 0.0
            v["restarts"] += 1
            v["startedAt"] = time.time()
            self._serve(w.serve)
            self._probes_started(*key)
            self._status_dirty = True

    def _container_ready(self, w: Workload, name: str) -> tuple[bool, str]:
        cp = self.probes.get((w.owner, name))
        c = self.containers.get((w.owner, name))
        if any(p.container == name for p in w.processes):
            if c is None or c.state != "running":
                state = c.reason if c is not None else "ContainerCreating"
                return False, f"container {name} is not running ({state})"
        elif w.owner not in self.served:
            return False, f"container {name} is not running (ContainerCreating)"
        if cp is not None and not cp.ready:
            return False, f"container {name}: {cp.reason}"
        return True, ""

    def _update_readiness(self) -> None:
        """Each pod's readiness (all its containers ready); a change wakes the endpoints
        sync, which rewrites Service rules, DNS and Ingress upstreams."""
        now: dict[str, tuple[bool, str]] = {}
        for owner, w in self.loads.items():
            if owner.startswith("host/") or not w.containers:
                continue
            if (init := self._initializing(w)) is not None:
                now[owner] = (False, f"initializing: init container {init} has not "
                                     f"{'started' if init in w.containers else 'completed'}")
                continue
            states = [self._container_ready(w, name) for name in w.containers]
            bad = [why for ok, why in states if not ok]
            now[owner] = (not bad, "; ".join(bad))
        if now != self.pod_ready:
            self.pod_ready = now
            self._status_dirty = True
            self.readiness_changed.set()
        outcomes = {o: out for o, w in self.loads.items() if (out := self._outcome(w))}
        if outcomes != self.pod_outcomes:  # a Job's pod ended or restarted: its Job goes on
            self.pod_outcomes = outcomes
            self.readiness_changed.set()

    def _outcome(self, w: Workload) -> PodOutcome | None:
        """The phase of a pod that runs to completion (restartPolicy OnFailure or Never) and
        its containers' restarts, for the Job controller's counting (netlab.jobs): Succeeded
        once every container exited 0; Failed once every container ended and one failed,
        or (Never) an init container failed; else Running. None for other pods."""
        if w.restart_policy == "Always" or w.owner.startswith("host/") or not w.processes:
            return None
        cs = [(p, self.containers.get((w.owner, p.container))) for p in w.processes]
        restarts = sum(c.restarts for _, c in cs if c is not None)
        started = self.created.get(w.owner, 0.0)
        main = [c for p, c in cs if not p.init]
        ended = [c for c in main if c is not None and c.state == "terminated"]
        responder = set(w.containers) - {p.container for p in w.processes}  # never ends
        if w.restart_policy == "Never" and any(
                p.init == "init" and c is not None and c.state == "terminated"
                and c.exit_code != 0 for p, c in cs):
            phase = "Failed"
        elif main and not responder and len(ended) == len(main):
            phase = "Succeeded" if all(c.exit_code == 0 for c in ended) else "Failed"
        else:
            return PodOutcome("Running", restarts, started)
        finished = max((c.finished_at for _, c in cs if c is not None), default=0.0)
        return PodOutcome(phase, restarts, started, finished)

    def sync_endpoints(self) -> None:
        """Keep the lab's endpoints on the pods that are ready: under the lab's lock, the
        readiness goes into the lab's state and the lab converges (only rules, the DNS zone
        and nginx's upstreams change)."""
        while not self.stop.is_set():
            if not self.readiness_changed.wait(0.5):
                continue
            self.readiness_changed.clear()
            try:
                self._sync_endpoints_once()
            except Exception as e:  # the next change tries again
                self.log(f"endpoints sync failed: {type(e).__name__}: {e}")
                time.sleep(0.5)
                self.readiness_changed.set()

    def _sync_endpoints_once(self) -> None:
        from netlab import state
        from netlab.converge import converge_docs

        with self.lock:
            ready = dict(self.pod_ready)
            outcomes = dict(self.pod_outcomes)
        with state.locked(self.lab):
            st = state.load(self.lab)
            if st.plan is None or st.phase != "ready":
                self.readiness_changed.set()  # the lab is being built: later
                time.sleep(0.05)
                return
            want = {k: v for k, v in ready.items() if k in st.plan.pods}
            ended = {k: v for k, v in outcomes.items() if k in st.plan.pods}  # Jobs go on
            if want == {k: v for k, v in st.readiness.items() if k in st.plan.pods} \
                    and ended == st.pod_outcomes:
                return
            st.readiness = want
            st.pod_outcomes = ended
            t0 = time.monotonic()
            port = AgentPort(self)
            try:
                converge_docs(port, st, st.docs, save=state.save)
            finally:
                port.close()
            self.log(f"endpoints follow readiness ({sum(not r for r, _ in want.values())} "
                     f"pods not ready) in {(time.monotonic() - t0) * 1000:.0f} ms")

    # --- recovery -------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: take the workloads back, adopt the containers still running
        (same pid and start time), start those that are not, serve the responder."""
        try:
            loads = [workload_from_json(d) for d in
                     json.loads((self.dir / "workloads.json").read_text())]
        except (OSError, ValueError, KeyError):
            return
        try:
            old = {(d["owner"], d["container"]): d for d in
                   json.loads((self.dir / "status.json").read_text())["containers"]}
            saved = json.loads((self.dir / "status.json").read_text())
            self.created = {k: v["created"] for k, v in saved.get("pods", {}).items()}
            self.sandboxes = {k: sb for k, d in saved.get("sandboxes", {}).items()
                              if (sb := sandbox.Sandbox.from_json(d)).alive()}
        except (OSError, ValueError, KeyError):
            old = {}
        now = time.time()
        known: dict[tuple[str, str], Container] = {}
        for w in loads:
            for p in w.processes:
                was = old.get((w.owner, p.container))
                if was is None or was.get("argv") != list(p.argv):
                    continue  # never started: apply() starts it
                c = Container(p, container_policy(p, w.restart_policy), w.backoff,
                              was["state"], was["reason"],
                              was.get("message", ""), was["pid"], was["starttime"],
                              was.get("startedAt", 0.0), was.get("finishedAt", 0.0),
                              was.get("exitCode"), was.get("restarts", 0),
                              was.get("backoff", 0.0), 0.0, was.get("lastState", {}))
                if c.state == "running" and not procs.alive(c.pid, c.starttime):
                    self._exited(c, None)  # it ended while there was no agent
                elif c.state == "waiting" and was.get("nextStartAt"):
                    c.next_start = time.monotonic() + max(0.0, was["nextStartAt"] - now)
                known[c.key] = c
        adopted = sum(c.state == "running" for c in known.values())
        with self.lock:
            self.containers = dict(known)
            # what is known counts as there already: apply() starts only the rest
            self.loads = {w.owner: Workload(w.owner, tuple(
                p for p in w.processes if (w.owner, p.container) in known), w.restart_policy,
                None, w.backoff) for w in loads}
        self.apply({w.owner: w for w in loads})
        self.log(f"recovered: {adopted} running containers adopted, {len(known) - adopted} "
                 f"others resumed, {len(self.served)} pods served")

    # --- control socket -------------------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "workloads":
            self.apply({d["owner"]: workload_from_json(d) for d in request["workloads"]})
            self.supervise()
            return {"ok": True, **self.running()}
        if op == "release":
            self.release(list(request["owners"]))
            self.supervise()
            return {"ok": True}
        if op == "prepare":
            self.prepare({d["owner"]: workload_from_json(d) for d in request["workloads"]})
            return {"ok": True}
        if op == "status":
            return {"ok": True, **self.running()}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def serve_control(self, server: socket.socket) -> None:
        server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(1 << 20)
                if not chunk:
                    return
                data += chunk
            try:
                reply = self.handle(json.loads(data))
            except Exception as e:  # a bad request must not take the agent down
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            conn.sendall(json.dumps(reply).encode() + b"\n")

    def run(self) -> None:
        path = socket_path(self.lab)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        os.chmod(path, 0o600)
        server.listen(64)
        threads = [threading.Thread(target=self.hub.serve, args=(self.stop,), daemon=True),
                   threading.Thread(target=self.serve_control, args=(server,), daemon=True),
                   threading.Thread(target=self.sync_endpoints, daemon=True)]
        for t in threads:
            t.start()
        self.recover()
        self.log(f"agent of lab {self.lab} running (pid {os.getpid()})")
        try:
            while not self.stop.is_set():
                try:
                    self.supervise()
                except Exception as e:  # one bad container must not end the lab's agent
                    self.log(f"supervision failed: {type(e).__name__}: {e}")
                    self.stop.wait(1.0)
                self.stop.wait(TICK)
        finally:
            server.close()
            self.hub.close()
            self.runner.close()


class AgentPort(Kernel):
    """The kernel port the agent converges through itself: workloads go straight to it."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent.lab)
        self.agent = agent

    def workloads(self, desired: dict[str, Workload]) -> dict[tuple[str, str], Started]:
        self.agent.apply(desired)
        self.agent.supervise()  # its status written before the lab's state is (as `handle`)
        with self.agent.lock:
            return {c.key: Started(c.pid, c.starttime) for c in self.agent.containers.values()
                    if c.state == "running"}

    def release(self, owners: Sequence[str]) -> None:
        self.agent.release(list(owners))
        self.agent.supervise()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m netlab.runtime.agent LAB")
    names.check_lab_name(args[0])
    raise_fd_limit()
    agent = Agent(args[0])
    # SIGTERM ends the agent, not the containers: they belong to the lab (`down` stops them)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    agent.run()


if __name__ == "__main__":
    main()
