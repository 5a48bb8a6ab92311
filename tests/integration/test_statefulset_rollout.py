"""A StatefulSet's RollingUpdate on a real lab: after a template change the pods are
replaced one at a time from the highest ordinal down, each only once the one before is
Running and Ready (the agent's readiness probe); the pods not yet updated keep running their
old template (same process, same address), `web-N.nginx` keeps resolving, and a partition
stops the update at its ordinal. Each pod serves its revision over HTTP, so what runs is
read with real traffic from a client pod.

(Named apart from tests/unit/test_statefulset_update.py: test modules have distinct
basenames, tests/unit/test_layers.py.)"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from manifests import cluster, pod

from netlab import state
from netlab.plan import REVISION_LABEL

# the server starts 2 s after the container: an updated pod is visibly not ready for a while
STS = """---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 3
STRATEGY  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {netlab.dev/responder: "off"}  # the pod's own server answers on 80
    spec:
      containers:
      - name: web
        command: [sh, -c, 'mkdir -p /tmp/www && echo $REV > /tmp/www/rev && sleep 2 &&
                  cd /tmp/www && exec python3 -m http.server 80']
        env: [{name: REV, value: "REVISION"}]
        readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}
"""
SVC = """---
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
"""
NAMES = ("web-0", "web-1", "web-2")


def sts(revision: str, strategy: str = "") -> str:
    return STS.replace("REVISION", revision).replace("STRATEGY", strategy)


@dataclass(frozen=True)
class Seen:
    """One pod in one look at the lab."""

    revision: str
    ready: bool
    ip: str
    pid: int | None
    created: float


def look(lab) -> dict[str, Seen]:
    return {p.name: Seen(p.labels.get(REVISION_LABEL, ""), p.ready == "1/1", p.ip,
                         p.containers[0].pid, p.created)
            for p in lab.pods() if p.name in NAMES}


def served(lab, name: str) -> str:
    """What `name`.nginx answers on /rev, asked from the client pod (DNS, then HTTP)."""
    r = lab.exec("client", ["python3", "-c", "import urllib.request as u; print(u.urlopen("
                            f"'http://{name}.nginx/rev', timeout=2).read().decode().strip())"],
                 timeout=10)
    return r.stdout.strip() if r.returncode == 0 else f"error: {r.stderr.strip()[-200:]}"


def wait_for(what: str, predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_rolling_update_highest_ordinal_first_each_after_ready(netlab_lab):
    lab = netlab_lab(yaml=cluster() + pod("client") + sts("v1") + SVC,
                     name=f"nlstsu-roll-{os.getpid()}")
    start = wait_for("3 ready pods", lambda: (s := look(lab)) and len(s) == 3 and
                     all(x.ready for x in s.values()) and s)
    old = start["web-0"].revision
    assert {x.revision for x in start.values()} == {old}
    for name in NAMES:
        assert wait_for(f"{name} serving", lambda n=name: served(lab, n) == "v1")

    lab.apply(manifests=[sts("v2")])
    new = lab.plan.statefulsets["default/web"].update
    assert new != old
    # apply has replaced web-2 only; it is not ready for 2 s, so web-1 still runs v1
    first = look(lab)
    assert [first[n].revision for n in NAMES] == [old, old, new], first
    assert served(lab, "web-1") == "v1" and served(lab, "web-0") == "v1"

    timeline: list[tuple[float, dict[str, Seen]]] = []
    deadline = time.monotonic() + 60
    while True:
        answer = lab.dns("web-0.nginx", "client")  # asked before looking: see below
        now = look(lab)
        timeline.append((time.monotonic(), now))
        if len(now) == 3 and all(x.revision == new and x.ready for x in now.values()):
            break
        assert time.monotonic() < deadline, timeline[-1]
        # an updated pod not ready yet: every lower ordinal still runs the old template
        for i, name in enumerate(NAMES):
            x = now.get(name)
            if x is not None and x.revision == new and not x.ready:
                assert all(now[n].revision == old for n in NAMES[:i] if n in now), now
        # web-0 untouched until its turn: same process, same address, and its DNS name
        # resolved to it (it was the same ready pod when asked, since it still is now)
        w0 = now.get("web-0")
        if w0 is not None and w0.revision == old:
            assert (w0.pid, w0.ip) == (start["web-0"].pid, start["web-0"].ip), w0
            assert answer.addresses == [w0.ip], answer
        time.sleep(0.05)
    changes: list[tuple[float, dict[str, tuple[str, bool]]]] = []
    for t, seen in timeline:
        brief = {n: ("new" if x.revision == new else "old", x.ready) for n, x in seen.items()}
        if not changes or changes[-1][1] != brief:
            changes.append((round(t - timeline[0][0], 2), brief))
    print("rollout:", *changes, sep="\n  ")

    # each pod replaced after the one above it: the agent was given web-1 (new) only after
    # web-2 (new) served (its server starts 2 s after the container)
    end = timeline[-1][1]
    assert end["web-2"].created < end["web-1"].created < end["web-0"].created, end
    assert end["web-1"].created - end["web-2"].created >= 2.0, end
    assert end["web-0"].created - end["web-1"].created >= 2.0, end
    for name in NAMES:  # (the last one's DNS name follows its readiness: polled)
        assert end[name].pid != start[name].pid
        assert wait_for(f"{name}.nginx", lambda n=name: lab.dns(f"{n}.nginx", "client")
                        .addresses == [end[n].ip], timeout=10)
        assert wait_for(f"{name} serving v2", lambda n=name: served(lab, n) == "v2", 10)
    record = lab.plan.statefulsets["default/web"]
    assert record.current == record.update == new and list(record.templates) == [new]

    # a partition: only web-2 (ordinal >= 2) takes v3; web-0 and web-1 keep v2
    partitioned = "  updateStrategy:\n    rollingUpdate: {partition: 2}\n"
    lab.apply(manifests=[sts("v3", partitioned)])
    assert wait_for("web-2 on v3", lambda: served(lab, "web-2") == "v3")
    # once the lab has converged on web-2 (new) being ready, the update would have gone on
    # to web-1 in that same converge: it must not have
    wait_for("the agent to report web-2 ready", lambda: state.load(lab.name).readiness.get(
        "default/web-2", (False, ""))[0])
    now = look(lab)
    assert [now[n].revision for n in NAMES] == [new, new, lab.plan.statefulsets[
        "default/web"].update], now
    assert (now["web-0"].pid, now["web-1"].pid) == (end["web-0"].pid, end["web-1"].pid)
    assert served(lab, "web-1") == "v2" and served(lab, "web-0") == "v2"
