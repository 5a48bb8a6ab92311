"""Workloads: each container with a command runs as a real process in its pod, and every
pod that declares a port (or is a Service's target) is answered by netlab's built-in
responder, served by the lab's agent."""

from __future__ import annotations

from pathlib import Path

from netlab.intents import Process, Serve
from netlab.plan import PodPlan

RESPONDER = "netlab-responder"  # how the built-in responder is named in listings
RESPONDER_SCRIPT = Path(__file__).resolve().parent.parent / "responder.py"


def render_pod(pod: PodPlan) -> list[Process]:
    """The processes of the pod's containers that have a command: its init containers
    first, in order (the agent runs each to completion before the next starts; sidecars
    start in their turn and keep running), then its containers. An init container without
    a command has nothing to run (no image entrypoint) and counts as completed."""
    return [*(Process(pod.key, c.name, pod.netns, c.argv, c.env,
                      init="sidecar" if c.sidecar else "init")
              for c in pod.init_containers if c.argv),
            *(Process(pod.key, c.name, pod.netns, c.argv, c.env) for c in pod.containers
              if c.argv)]


def render_serve(pod: PodPlan) -> Serve | None:
    """The built-in responder, on every port the pod declares or a Service targets (in both
    families for a dual-stack pod: "tcp:80" and "tcp6:80")."""
    if not pod.serves:
        return None
    families = ("", "6") if pod.ip6 else ("",)
    return Serve(pod.key, pod.hostname, pod.netns,
                 tuple(f"{proto.lower()}{v}:{port}" for v in families
                       for proto, port in pod.serves))
