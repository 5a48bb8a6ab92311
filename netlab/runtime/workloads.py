"""What changes when the agent is given new workloads (pure; the agent and the in-memory
kernel share it): a process whose definition changed is restarted, one that is no longer
wanted is stopped, a new one is started; the responder's ports are re-served when they
change (a change of only their fixed replies, a health check's answer, is served in place,
without closing a socket). A restart policy change restarts nothing (it applies to the next
exit)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from netlab.intents import Process, Serve, Workload


@dataclass
class Changes:
    stop: list[tuple[str, str]] = field(default_factory=list)  # (owner, container)
    start: list[Process] = field(default_factory=list)
    unserve: list[str] = field(default_factory=list)  # owners
    serve: list[Serve] = field(default_factory=list)


def changes(have: dict[str, Workload], want: dict[str, Workload]) -> Changes:
    out = Changes()
    for owner in sorted(set(have) | set(want)):
        old, new = have.get(owner), want.get(owner)
        before = {p.container: p for p in old.processes} if old else {}
        after = {p.container: p for p in new.processes} if new else {}
        for name in sorted(set(before) | set(after)):
            if before.get(name) == after.get(name):
                continue
            if name in before:
                out.stop.append((owner, name))
            if name in after:
                out.start.append(after[name])
        old_serve, new_serve = old.serve if old else None, new.serve if new else None
        if old_serve != new_serve:
            if old_serve is not None and new_serve is not None and \
                    replace(old_serve, replies=new_serve.replies) == new_serve:
                out.serve.append(new_serve)  # only the fixed replies: updated in place
                continue
            if old_serve is not None:
                out.unserve.append(owner)
            if new_serve is not None:
                out.serve.append(new_serve)
    return out
