"""Workloads: each container with a command runs as a real process in its pod."""

from __future__ import annotations

import sys
from pathlib import Path

from netlab.intents import Intent, Process, ReadyWhen
from netlab.plan import PodPlan

RESPONDER = "netlab-responder"  # the container name the responder's process is recorded under
RESPONDER_SCRIPT = Path(__file__).resolve().parent.parent / "responder.py"


def render_pod(pod: PodPlan) -> list[Intent]:
    out: list[Intent] = [Process(pod.key, c.name, pod.netns, c.argv, c.env)
                         for c in pod.containers if c.argv]
    return out + render_responder(pod)


def render_responder(pod: PodPlan) -> list[Intent]:
    """The built-in responder, on every port the pod declares or a Service targets."""
    if not pod.serves:
        return []
    ports = tuple(f"{proto.lower()}:{port}" for proto, port in pod.serves)
    return [Process(pod.key, RESPONDER, pod.netns,
                    ("--name", pod.key, "--hostname", pod.hostname, *ports), builtin=True)]


def resolve_responder(p: Process) -> tuple[Process, ReadyWhen]:
    """The responder script, stdlib-only, run isolated from the user's site-packages; ready
    once it logged a line for every port it was given."""
    argv = (sys.executable, "-I", "-S", str(RESPONDER_SCRIPT), *p.argv)
    ports = sum(a.split(":")[0] in ("tcp", "udp", "sctp") for a in p.argv)
    return (Process(p.pod, p.container, p.netns, argv, p.env, False, p.binds, p.workdir),
            ReadyWhen(p.pod, p.container, f"{p.workdir}/{p.container}.log", ports))
