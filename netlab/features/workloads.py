"""Workloads: each container with a command runs as a real process in its pod."""

from __future__ import annotations

from netlab.intents import Intent, Process
from netlab.plan import PodPlan


def render_pod(pod: PodPlan) -> list[Intent]:
    return [Process(pod.key, c.name, pod.netns, c.argv, c.env)
            for c in pod.containers if c.argv]
