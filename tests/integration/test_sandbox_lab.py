"""Pods run in sandboxes, end to end through a lab and its agent: a pod's writes stay in the
lab (the host's /opt is untouched, and the write is gone after down), its two containers
share an emptyDir that another pod does not see, `ps` in a pod shows only the pod's
processes, a configMap volume is read-only and env valueFrom is resolved."""

from __future__ import annotations

import uuid
from pathlib import Path

from manifests import wait_until

LAB = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
spec: {nodes: 1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  volumes: [{name: shared, emptyDir: {}}, {name: cfg, configMap: {name: cfg}}]
  containers:
  - name: w
    image: busybox
    command: [sh, -c, "echo from-w > /data/note; echo x > MARKER; sleep 3600"]
    volumeMounts: [{name: shared, mountPath: /data}]
  - name: r
    image: busybox
    command: [sleep, "3600"]
    env: [{name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}]
    volumeMounts: [{name: shared, mountPath: /data}, {name: cfg, mountPath: /cfg}]
---
apiVersion: v1
kind: Pod
metadata: {name: other}
spec:
  containers: [{name: o, image: busybox, command: [sleep, "3600"]}]
"""


def test_pods_are_sandboxed(netlab_lab, tmp_path):
    marker = f"/opt/netlab-sandbox-test-{uuid.uuid4().hex[:8]}"
    lab = netlab_lab(yaml=LAB.replace("MARKER", marker))

    assert wait_until(lambda: lab.exec("writer", ["cat", "/data/note"], container="r")
                      .stdout.strip() == "from-w", timeout=5)
    # the write to /opt is in the pod, not on the host
    assert lab.exec("writer", ["cat", marker], container="w").stdout.strip() == "x"
    assert not Path(marker).exists()
    # the other pod sees neither the emptyDir nor the write
    assert lab.exec("other", ["ls", "/data"]).returncode != 0
    assert lab.exec("other", ["cat", marker]).returncode != 0
    # only the pod's own processes: the pause, its two containers, and ps itself
    ps = lab.exec("writer", ["ps", "-eo", "pid,args"], container="r").stdout.splitlines()[1:]
    commands = sorted(line.split(None, 1)[1] for line in ps)
    # the pause, container w (its sh and that sh's sleep), container r, and ps itself
    assert commands == sorted(["pause", f"sh -c echo from-w > /data/note; echo x > "
                               f"{marker}; sleep 3600", "sleep 3600", "sleep 3600",
                               "ps -eo pid,args"]), commands
    # configMap files are read-only; env valueFrom is resolved
    r = lab.exec("writer", ["sh", "-c", "cat /cfg/greeting; echo; echo $GREETING; touch /cfg/x"],
                 container="r")
    assert r.stdout.split() == ["hello", "hello"] and "Read-only" in r.stderr
    lab.down()
    assert not Path(marker).exists()
