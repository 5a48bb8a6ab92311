"""The converger's side of the lab's agent: the kernel port on Linux (`LabPort`), whose
workloads go to the agent, started when needed and restarted when it died."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from netlab import names
from netlab.errors import KernelError
from netlab.intents import Workload
from netlab.kernel import Kernel, procs
from netlab.kernel.port import Started
from netlab.runtime.agent import agent_dir, prepared_ahead, socket_path, workload_to_json

START_TIMEOUT = 15.0
PID_FILE = names.AGENT_PID_FILE


def agent_process(lab: str) -> Started | None:
    """The lab's agent, if it runs (verified by its start time)."""
    try:
        pid, start = (int(x) for x in (names.lab_dir(lab) / PID_FILE).read_text().split())
    except (OSError, ValueError):
        return None
    return Started(pid, start) if procs.alive(pid, start) else None


def request(lab: str, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    with s:
        s.connect(str(socket_path(lab)))
        s.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                raise KernelError(f"the agent of lab {lab} closed the connection")
            data += chunk
    reply = json.loads(data)
    if not reply.get("ok"):
        raise KernelError(f"the agent of lab {lab}: {reply.get('error')}")
    return reply


def start_agent(lab: str) -> Started:
    """Start the lab's agent without waiting for it (a new lab starts it early, so that it
    is ready by the time it is given the workloads)."""
    d = names.lab_dir(lab)
    started = procs.daemon([sys.executable, "-m", "netlab.runtime.agent", lab],
                           d / "agent.log")
    (d / PID_FILE).write_text(f"{started.pid} {started.starttime}\n")
    return started


def _answers(lab: str, agent: Started) -> bool:
    """Wait until `agent` answers on the lab's socket (True), or dies or lets START_TIMEOUT
    pass (False); a new agent needs a moment to listen."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            request(lab, {"op": "ping"}, timeout=2)
            return True
        except (OSError, KernelError, ValueError):
            if not procs.alive(agent.pid, agent.starttime) or time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def ensure_agent(lab: str) -> Started:
    """The lab's agent, started if it is not running (after a crash, kill -9, OOM)."""
    running = agent_process(lab)
    if running is not None:
        if _answers(lab, running):
            return running
        procs.kill_verified([running], set())  # dead, or alive but deaf: replace it
    started = start_agent(lab)
    if _answers(lab, started):
        return started
    log = names.lab_dir(lab) / "agent.log"
    if not procs.alive(started.pid, started.starttime):
        tail = log.read_text(errors="replace")[-2000:]
        raise KernelError(f"the agent of lab {lab} did not start:\n{tail}")
    raise KernelError(f"the agent of lab {lab} did not answer within {START_TIMEOUT:g}s "
                      f"(see {log})")


class LabPort(Kernel):
    """The Linux kernel port with the lab's agent running the workloads."""

    def prepare(self) -> None:
        """A new lab: its agent starts now, while the network is being built."""
        if agent_process(self.lab) is None:
            start_agent(self.lab)

    def workloads(self, desired: dict[str, Workload]) -> dict[tuple[str, str], Started]:
        ensure_agent(self.lab)
        reply = request(self.lab, {"op": "workloads", "workloads": [
            workload_to_json(w) for w in desired.values()]})
        return {(o, c): Started(pid, start) for o, c, pid, start in reply["running"]}

    def prepare_pods(self, desired: dict[str, Workload]) -> None:
        wanted = [workload_to_json(w) for w in desired.values() if prepared_ahead(w)]
        if wanted:
            ensure_agent(self.lab)
            request(self.lab, {"op": "prepare", "workloads": wanted})

    def release(self, owners: Sequence[str]) -> None:
        if not owners:
            return
        if agent_process(self.lab) is not None:
            request(self.lab, {"op": "release", "owners": list(owners)})
            return
        # no agent: take them out of what it will take back when it starts again
        path = agent_dir(self.lab) / "workloads.json"
        with contextlib.suppress(OSError, ValueError):
            kept = [w for w in json.loads(path.read_text()) if w["owner"] not in set(owners)]
            path.write_text(json.dumps(kept))
