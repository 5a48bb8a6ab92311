"""Workloads: each container with a command runs as a real process in its pod."""

from __future__ import annotations

from netlab.intents import Intent, Process
from netlab.plan import PodPlan

RESPONDER = "netlab-responder"  # the container name the responder's process is recorded under


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
