"""Container probes (startup, liveness, readiness) as kubelet runs them.

Two halves with a small API between them, so the agent decides when and where to run:

- a pure state machine per container (`ContainerProbes`, one `ProbeWorker` per probe):
  when a probe is due, what a result means (`Transition`), and why the container is or is
  not started/ready, in words;
- executors: `run_probe(probe, target) -> (success, message)`, bounded by timeoutSeconds,
  safe to call from worker threads; `ProbeRunner` is a small pool that runs them off the
  caller's thread.

What is modelled, following kubelet's pkg/kubelet/prober (worker.doProbe, the prober, the
manager's status update) and the docs page "Configure Liveness, Readiness and Startup Probes":

- Timing. The first probe runs initialDelaySeconds after the container started (kubelet
  skips ticks while `int(seconds since start) < initialDelaySeconds`), then every
  periodSeconds on a fixed grid (a Go ticker: a probe slower than the period makes the next
  one run at once, then the grid resumes). So with initialDelay 5, period 5 and
  failureThreshold 3, a liveness probe failing from the start restarts the container at
  5 + (3-1)*5 = 15 s, not earlier. Kubelet's ticker is anchored at the worker's creation
  and jittered after a kubelet restart; here it is anchored at start + initialDelay, which
  makes the times exact (kubelet lands within one period later).
- Thresholds. Consecutive equal results are counted; the published result changes only
  after failureThreshold failures or successThreshold successes in a row (kubelet's
  lastResult/resultRun). successThreshold must be 1 for liveness and startup (the loader
  refuses others, as the API server does).
- Initial results: readiness starts as failure (a container with a readiness probe is not
  ready until it succeeds; without one it is ready once running and started), liveness as
  success, startup as unknown.
- Startup gating: while a startup probe has not succeeded, liveness and readiness do not
  run and the container is neither started nor ready. Once it succeeds the startup probe
  stops; readiness runs at once (kubelet triggers it on the status update that follows),
  liveness at its next tick.
- Liveness or startup failing failureThreshold times: `Transition(action="restart")`; the
  worker then holds (no more probes) until `restart()` reports a new container, which
  resets every worker of the container (kubelet: a new container ID). The probe's
  terminationGracePeriodSeconds, when set, is passed on as `grace_seconds`.
- A readiness failure only makes the container unready; the probe keeps running.
- A container that exited (`exited()`) is not ready and is not probed.
- Executors: tcpSocket connects (success = the connection opens); httpGet sends GET with
  Host (host:port, or the httpHeaders' Host), `User-Agent: kube-probe/<version>`,
  `Accept: */*` and the httpHeaders (which override those), success = status 200-399,
  HTTPS without certificate verification (as kubelet); exec runs the command in the
  container through the caller's argv builder, success = exit status 0, a timeout is a
  failure (kubelet >= 1.20). The host defaults to the pod IP; a named port is looked up in
  the probed container's ports only (kubelet's ResolveContainerPort).

What is not modelled:

- grpc probes (the loader refuses them: the gRPC health protocol needs HTTP/2).
- Where probes come from: kubelet connects from the node's network namespace; here the
  socket is opened inside the pod's own namespace (`netlab.kernel.sockets.inside`), so
  probes reach the pod over its own interfaces and NetworkPolicy never sees them (most
  CNIs let the node's probes through anyway). A `host` that is a name is resolved with
  the agent's resolver, as kubelet resolves it with the node's.
- httpGet redirects are not followed: a 3xx is a success (kubelet follows redirects to the
  same host and treats the final status; to another host, the 3xx is a success too).
- The probe's exact kubelet event texts, the 10 KiB output limits, probe metrics.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from netlab.model import Container, Probe

ProbeType = Literal["startup", "liveness", "readiness"]
Action = Literal["started", "ready", "unready", "restart"]
USER_AGENT = "kube-probe/1.30"  # kubelet sends kube-probe/<major>.<minor>; apps match the prefix
_INITIAL: dict[str, bool | None] = {"readiness": False, "liveness": True, "startup": None}


@dataclass(frozen=True)
class Transition:
    """A change the agent acts on: the container started, became (un)ready, or must be
    killed and restarted (`grace_seconds`: the probe's terminationGracePeriodSeconds, None
    for the pod's)."""

    probe_type: ProbeType
    action: Action
    reason: str
    grace_seconds: int | None = None


def describe(probe: Probe) -> str:
    """The probe in a few words: `tcp 9999`, `http GET :8080/healthz`, `exec [cat /x]`."""
    host = probe.host or ""
    if probe.kind == "exec":
        return f"exec [{' '.join(probe.command)}]"
    if probe.kind == "tcpSocket":
        return f"tcp {host}:{probe.port}" if host else f"tcp {probe.port}"
    if probe.kind == "httpGet":
        return f"{probe.scheme.lower()} GET {host}:{probe.port}{probe.path}"
    return f"grpc {probe.port}" + (f" service {probe.service}" if probe.service else "")


class ProbeWorker:
    """One probe of one container: its schedule and its consecutive-results counter."""

    def __init__(self, probe_type: ProbeType, probe: Probe, started_at: float) -> None:
        self.probe_type = probe_type
        self.probe = probe
        self.reset(started_at)

    def reset(self, started_at: float) -> None:
        """A new container: initial result, counters cleared, initialDelay counted anew."""
        self.started_at = started_at
        self.result: bool | None = _INITIAL[self.probe_type]
        self.on_hold = False  # liveness/startup failed: wait for the new container
        self.in_flight = False
        self.probes = 0  # probes recorded for this container
        self.message = ""  # the last probe's message
        self._last: bool | None = None
        self._run = 0
        self._anchor = started_at + self.probe.initial_delay_seconds
        self.next_at = self._anchor

    @property
    def finished(self) -> bool:
        """A startup probe stops once it has succeeded (kubelet keeps its worker idle)."""
        return self.probe_type == "startup" and self.result is True

    def due(self, now: float) -> bool:
        return (not self.on_hold and not self.in_flight and not self.finished
                and now >= self.next_at)

    def begin(self, now: float) -> None:
        """The caller started a probe: not due again until it is recorded."""
        self.in_flight = True

    def tick_at_or_after(self, t: float) -> float:
        """The first tick of this probe's grid (start + initialDelay + k*period) >= t."""
        if t <= self._anchor:
            return self._anchor
        period = self.probe.period_seconds
        k = -(-(t - self._anchor) // period)  # ceil
        return self._anchor + k * period

    def record(self, now: float, success: bool, message: str) -> Transition | None:
        """A probe's result. Returns the Transition it causes, if any."""
        self.in_flight = False
        if self.on_hold or self.finished:
            return None  # a late result for a container already condemned or started
        nxt = self.tick_at_or_after(self.next_at + 1e-9)
        self.next_at = nxt if nxt > now else now  # a missed tick fires at once, like a ticker
        self.probes += 1
        self.message = message
        if success == self._last:
            self._run += 1
        else:
            self._last, self._run = success, 1
        p = self.probe
        if self._run < (p.success_threshold if success else p.failure_threshold):
            return None  # below threshold: the published result stays
        changed = self.result != success
        self.result = success
        if not success and self.probe_type in ("liveness", "startup"):
            self.on_hold, self._run = True, 0
            return Transition(self.probe_type, "restart", self.failure_reason(),
                              p.termination_grace_period_seconds)
        if not changed:
            return None
        if self.probe_type == "startup":
            return Transition("startup", "started", f"startup probe {describe(p)} succeeded")
        if self.probe_type == "readiness":
            return (Transition("readiness", "ready", f"readiness probe {describe(p)} succeeded")
                    if success else Transition("readiness", "unready", self.failure_reason()))
        return None  # liveness back to success: nothing to do

    def failure_reason(self) -> str:
        return f"{self.probe_type} probe {describe(self.probe)} failed: {self.message}"

    @property
    def reason(self) -> str:
        """Why this probe's result is what it is, in words."""
        p, what = self.probe, f"{self.probe_type} probe {describe(self.probe)}"
        if self.probes == 0:
            if p.initial_delay_seconds:
                return f"{what} waits initialDelaySeconds ({p.initial_delay_seconds}s)"
            return f"{what} has not run yet"
        streak = ""
        if self._last != self.result and self._run:
            need = p.success_threshold if self._last else p.failure_threshold
            streak = f" ({self._run} of {need} {'successes' if self._last else 'failures'})"
        if self._last:
            return f"{what} succeeded{streak}"
        return f"{what} failed: {self.message}{streak}"


class ContainerProbes:
    """The probes of one running container and what they say: started, ready, restart.

    The agent asks `due(now)`, runs each due worker's probe (calling `begin`), and feeds
    the result to `record`; it acts on the returned Transition, calls `restart(now)` once a
    new container runs and `exited()` when the container stopped."""

    def __init__(self, started_at: float, *, readiness: Probe | None = None,
                 liveness: Probe | None = None, startup: Probe | None = None) -> None:
        self.workers: dict[ProbeType, ProbeWorker] = {
            t: ProbeWorker(t, p, started_at)
            for t, p in (("startup", startup), ("liveness", liveness), ("readiness", readiness))
            if p is not None}
        self.started_at = started_at
        self.running = True
        self.restarts = 0
        self.generation = 0  # bumped by restart(): results of older probes are dropped

    @classmethod
    def of(cls, container: Container, started_at: float) -> ContainerProbes:
        return cls(started_at, readiness=container.readiness_probe,
                   liveness=container.liveness_probe, startup=container.startup_probe)

    @property
    def started(self) -> bool:
        """ContainerStatus.started: running, and the startup probe (if any) succeeded."""
        w = self.workers.get("startup")
        return self.running and (w is None or w.result is True)

    @property
    def ready(self) -> bool:
        """ContainerStatus.ready: started, and the readiness probe (if any) succeeded."""
        w = self.workers.get("readiness")
        return self.started and (w is None or w.result is True)

    def due(self, now: float) -> list[ProbeWorker]:
        if not self.running:
            return []
        gated = not self.started
        return [w for w in self.workers.values()
                if w.due(now) and not (gated and w.probe_type != "startup")]

    def next_due(self) -> float | None:
        """When the next probe may be due (for the caller's sleep); None: nothing to run."""
        if not self.running:
            return None
        times = [w.next_at for w in self.workers.values()
                 if not (w.on_hold or w.finished or w.in_flight)
                 and (self.started or w.probe_type == "startup")]
        return min(times, default=None)

    def record(self, now: float, probe_type: ProbeType, success: bool, message: str,
               generation: int | None = None) -> Transition | None:
        """A probe's result; `generation` (from when it began) drops stale results."""
        if generation is not None and generation != self.generation:
            return None
        if not self.running:
            self.workers[probe_type].in_flight = False
            return None
        t = self.workers[probe_type].record(now, success, message)
        if t is not None and t.action == "started":
            # kubelet triggers readiness on the status update that follows; liveness waits
            # for its next tick
            if (r := self.workers.get("readiness")) is not None:
                r.next_at = max(r.next_at, now)
            if (lv := self.workers.get("liveness")) is not None:
                lv.next_at = lv.tick_at_or_after(max(now, lv.next_at))
        return t

    def restart(self, now: float) -> None:
        """A new container runs from `now`: every probe starts over."""
        self.started_at, self.running = now, True
        self.restarts += 1
        self.generation += 1
        for w in self.workers.values():
            w.reset(now)

    def exited(self) -> None:
        """The container stopped: not ready, nothing probed until `restart`."""
        self.running = False

    @property
    def awaiting(self) -> bool:
        """A running container whose startup or readiness probe has given no result yet
        (before its first result, or initialDelaySeconds): what it says will change."""
        return self.running and any(
            w.probes == 0 for t, w in self.workers.items() if t in ("startup", "readiness"))

    @property
    def reason(self) -> str:
        """Why the container is (not) started/ready, in words."""
        if not self.running:
            return "container is not running"
        for t in ("liveness", "startup"):
            w = self.workers.get(t)
            if w is not None and w.on_hold:
                return f"{w.failure_reason()}; container will be restarted"
        if not self.started:
            return self.workers["startup"].reason
        r = self.workers.get("readiness")
        if r is None:
            return "running (no readiness probe)"
        return r.reason


# --- executors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a container's probes go: its pod's network namespace (a path such as
    /run/netns/NAME), the pod IP, the container's named ports, and for exec probes a
    function that turns a command into an argv entering the container."""

    netns: str | Path
    pod_ip: str
    ports: Mapping[str, int] = field(default_factory=dict)
    exec_argv: Callable[[Sequence[str]], list[str]] | None = None

    @classmethod
    def of(cls, container: Container, netns: str | Path, pod_ip: str,
           exec_argv: Callable[[Sequence[str]], list[str]] | None = None) -> Target:
        return cls(netns, pod_ip, {p.name: p.container_port for p in container.ports if p.name},
                   exec_argv)


class _Failed(Exception):
    """A probe failed with this message."""


def run_probe(probe: Probe, target: Target) -> tuple[bool, str]:
    """Run one probe now, within its timeoutSeconds; never raises. Blocks the calling
    thread (at most about timeoutSeconds): call it from a worker thread (`ProbeRunner`)."""
    try:
        if probe.kind == "tcpSocket":
            _connect(probe, target, time.monotonic() + probe.timeout_seconds).close()
            return True, "connected"
        if probe.kind == "httpGet":
            return _http(probe, target)
        if probe.kind == "exec":
            return _exec(probe, target)
        return False, f"{probe.kind} probes are not supported"
    except _Failed as e:
        return False, str(e)
    except Exception as e:  # a probe must never take its caller down
        return False, f"probe error: {e}"


class ProbeRunner:
    """A small thread pool that runs probes off the caller's thread."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")

    def submit(self, probe: Probe, target: Target) -> Future[tuple[bool, str]]:
        return self._pool.submit(run_probe, probe, target)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def resolve_port(probe: Probe, ports: Mapping[str, int]) -> int:
    if isinstance(probe.port, int):
        return probe.port
    if probe.port in ports:
        return ports[probe.port]
    raise _Failed(f"couldn't find port {probe.port!r} in the container's ports")


def _timeout(probe: Probe) -> str:
    return f"timed out after {probe.timeout_seconds}s"


def _remaining(probe: Probe, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Failed(_timeout(probe))
    return left


def _address(host: str, port: int) -> tuple[int, tuple]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:  # a name: resolved by the agent, as kubelet resolves it on the node
            family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        except OSError as e:
            raise _Failed(f"cannot resolve {host}: {e.strerror or e}") from e
        return family, addr
    if ip.version == 6:
        return socket.AF_INET6, (str(ip), port)
    return socket.AF_INET, (str(ip), port)


def _connect(probe: Probe, target: Target, deadline: float) -> socket.socket:
    from netlab.kernel.sockets import inside  # the kernel side loads only when probing

    port = resolve_port(probe, target.ports)
    family, addr = _address(probe.host or target.pod_ip, port)
    with inside(target.netns) as open_socket:
        s = open_socket(family, socket.SOCK_STREAM)
    try:
        s.settimeout(_remaining(probe, deadline))
        s.connect(addr)
    except TimeoutError as e:
        s.close()
        raise _Failed(_timeout(probe)) from e
    except OSError as e:
        s.close()
        raise _Failed((e.strerror or str(e)).lower()) from e
    return s


def _http(probe: Probe, target: Target) -> tuple[bool, str]:
    deadline = time.monotonic() + probe.timeout_seconds
    s = _connect(probe, target, deadline)
    host = probe.host or target.pod_ip
    port = resolve_port(probe, target.ports)
    try:
        if probe.scheme == "HTTPS":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # kubelet does not verify probe certificates
            s.settimeout(_remaining(probe, deadline))
            s = ctx.wrap_socket(s, server_hostname=None if _is_ip(host) else host)
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        given = {name.lower() for name, _ in probe.http_headers}
        defaults = [("Host", hostport), ("User-Agent", USER_AGENT), ("Accept", "*/*")]
        headers = [(n, v) for n, v in defaults if n.lower() not in given]
        headers += [*probe.http_headers, ("Connection", "close")]
        path = probe.path if probe.path.startswith("/") else "/" + probe.path
        request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
        s.settimeout(_remaining(probe, deadline))
        s.sendall((request + "\r\n").encode("latin-1"))
        data = b""
        while b"\r\n" not in data and len(data) < 8192:
            s.settimeout(_remaining(probe, deadline))
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except TimeoutError as e:
        raise _Failed(_timeout(probe)) from e
    except ssl.SSLError as e:
        raise _Failed(f"TLS: {e.reason or e}") from e
    except OSError as e:
        raise _Failed((e.strerror or str(e)).lower()) from e
    finally:
        s.close()
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return False, "no HTTP response" if not line else f"malformed HTTP response {line[:60]!r}"
    status = int(parts[1])
    return 200 <= status < 400, f"HTTP {status}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _exec(probe: Probe, target: Target) -> tuple[bool, str]:
    from netlab.kernel import commands

    if target.exec_argv is None:
        return False, "exec probes need a way into the container (Target.exec_argv)"
    r = commands.run(target.exec_argv(probe.command), timeout=probe.timeout_seconds)
    if r.timed_out:
        return False, f"command timed out after {probe.timeout_seconds}s"
    out = " ".join((r.stdout + r.stderr).decode(errors="replace").split())
    out = out if len(out) <= 200 else out[:197] + "..."
    if r.returncode == 0:
        return True, out or "exit status 0"
    return False, f"exit status {r.returncode}" + (f": {out}" if out else "")
