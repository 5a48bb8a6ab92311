#!/usr/bin/env python3
"""Stress: N up/down cycles of a small lab with an agent (a served pod with a readiness
probe behind a Service, a pod with a command, a client), each checked for leftovers:
network namespaces, processes (the agent included), mounts and the state directory.

    sudo .venv/bin/python bench/agent_cycles.py [N]        (default: 50)

Prints the time of each cycle (up, first answer through the Service, down) and what was
left behind, if anything; exits 1 if anything was.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from netlab import Lab, down, names
from netlab.kernel import destroy_lab
from netlab.pytest_plugin import leftovers

NAME = "nlbenchagent"
LAB = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  restartBackOff: {initialSeconds: 0.2, maxSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: web
    image: nginx
    ports: [{containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: worker}
spec:
  containers: [{name: w, image: busybox, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: c, image: busybox, command: [sleep, infinity]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def agent_pid(lab: str) -> int:
    return int((names.lab_dir(lab) / "agent.pid").read_text().split()[0])


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cycle() -> tuple[float, float, float, list[str]]:
    t0 = time.perf_counter()
    lab = Lab.up(manifests=[LAB], name=NAME)
    t_up = time.perf_counter() - t0
    pid = agent_pid(NAME)
    deadline = time.monotonic() + 5
    while not lab.service("web").endpoints and time.monotonic() < deadline:
        time.sleep(0.01)
    answered = lab.probe("client", "svc/web").answered_by
    t_ready = time.perf_counter() - t0
    t1 = time.perf_counter()
    lab.down()
    t_down = time.perf_counter() - t1
    left = leftovers(NAME)
    if alive(pid):
        left.append(f"agent {pid} still running")
    if answered != "default/web":
        left.append(f"the Service was answered by {answered!r}, not default/web")
    return t_up, t_ready, t_down, left


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    down(NAME)  # a previous interrupted run
    totals, bad = [], 0
    print(f"{'cycle':>5}  {'up':>6}  {'ready':>6}  {'down':>6}  {'total':>6}  leftovers")
    try:
        for i in range(1, n + 1):
            t0 = time.perf_counter()
            t_up, t_ready, t_down, left = cycle()
            total = time.perf_counter() - t0
            totals.append(total)
            bad += bool(left)
            print(f"{i:>5}  {t_up:6.2f}  {t_ready:6.2f}  {t_down:6.2f}  {total:6.2f}  "
                  f"{'; '.join(left) or '-'}", flush=True)
            if left:
                destroy_lab(NAME)
    finally:
        down(NAME)
    print(f"{n} cycles: {statistics.mean(totals):.2f} s per cycle (median "
          f"{statistics.median(totals):.2f} s, max {max(totals):.2f} s); "
          f"{bad} cycles left something behind")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
