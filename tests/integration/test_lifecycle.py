"""Lab life cycle: the root namespace is never touched, failures roll back, a SIGKILLed
`up` is still removed completely by `down`, two labs live side by side, and a running lab
changes by its difference only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from manifests import cluster, pod, wait_until

from netlab import KernelError, Lab, down, names
from netlab.kernel import Kernel, lab_netns
from netlab.pytest_plugin import leftovers

NETLAB = [sys.executable, "-m", "netlab"]


def root_snapshot() -> dict[str, str]:
    """Everything of the root namespace a lab could plausibly change."""
    def run(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout

    snap = {
        "links": run("ip", "-d", "link", "show"),
        "addrs": run("ip", "addr", "show"),
        "routes": run("ip", "route", "show", "table", "all"),
        "rules": run("ip", "rule", "show"),
        "nft": run("nft", "list", "ruleset"),
        "bridge-fdb-count": str(len(run("bridge", "fdb", "show").splitlines())),
    }
    for key in ("net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter",
                "net/ipv6/conf/all/disable_ipv6", "net/ipv4/conf/all/forwarding"):
        p = Path("/proc/sys") / key
        snap[key] = p.read_text() if p.exists() else "-"
    for f in ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname"):
        snap[f] = Path(f).read_text() if Path(f).exists() else "-"
    snap["hostname"] = os.uname().nodename
    return snap


def test_root_namespace_is_never_changed(netlab_lab):
    before = root_snapshot()
    lab = netlab_lab(yaml=cluster("vxlan") + pod("a", "node-1") + pod("b", "node-2"))
    assert lab.ping("a", "b", count=1).ok
    assert root_snapshot() == before  # while the lab runs
    lab.down()
    assert root_snapshot() == before  # and after


def test_failure_during_up_rolls_back(netlab_lab_name, monkeypatch):
    real_send = Kernel._send

    def failing_send(self, batch):
        if ".pod." in batch[0].netns:  # the nodes are built; fail on the first pod
            raise KernelError(f"injected failure in {batch[0].netns}")
        return real_send(self, batch)

    monkeypatch.setattr(Kernel, "_send", failing_send)
    with pytest.raises(KernelError, match="injected failure"):
        Lab.up(manifests=[cluster() + pod("a", "node-1", "sleep 3600") + pod("b", "node-2")],
               name=netlab_lab_name)
    assert leftovers(netlab_lab_name) == []


def _many_pods(n: int) -> str:
    return cluster("vxlan", nodes=4) + "".join(pod(f"p{i}") for i in range(n))


def test_down_after_sigkilled_up(netlab_lab_name, tmp_path):
    scenario = tmp_path / "many.yaml"
    scenario.write_text(_many_pods(300))
    proc = subprocess.Popen([*NETLAB, "up", "-f", str(scenario), "--name", netlab_lab_name],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        # kill once pods exist and some have processes, but before `up` finishes
        while time.monotonic() < deadline:
            made = lab_netns(netlab_lab_name)
            if sum(".pod." in n for n in made) >= 20:
                break
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert lab_netns(netlab_lab_name), "up finished before it could be killed"
    r = subprocess.run([*NETLAB, "down", netlab_lab_name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert leftovers(netlab_lab_name) == []


def test_down_kills_every_process_it_started(netlab_lab):
    lab = netlab_lab(yaml=cluster() + pod("a", command="sleep 3600 & sleep 3600"))
    pids = [c.pid for c in lab.pod("a").containers]
    assert pids and all(pids)
    lab.down()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert leftovers(lab.name) == []


def test_two_labs_side_by_side(netlab_lab):
    text = cluster() + pod("a", "node-1") + pod("b", "node-2")
    one, two = netlab_lab(yaml=text), netlab_lab(yaml=text)
    assert one.name != two.name
    assert one.pod("a").ip == two.pod("a").ip  # same addresses, separate namespaces
    assert one.ping("a", "b", count=1).ok and two.ping("a", "b", count=1).ok
    one.down()
    assert two.ping("a", "b", count=1).ok
    with pytest.raises(Exception, match="no lab named"):
        Lab.open(one.name)


def test_apply_changes_only_the_difference(netlab_lab, tmp_path):
    deployment = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx, command: [sleep, "3600"]}]}
"""
    lab = netlab_lab(yaml=cluster() + pod("a", "node-1", labels="{v: one}")
                     + deployment.replace("REPLICAS", "2"))
    before = {p.key: p for p in lab.pods("default")}
    a_pid = before["default/a"].containers[0].pid

    changed = tmp_path / "changed.yaml"
    changed.write_text(pod("a", "node-1", labels="{v: two}") + deployment.replace("REPLICAS", "3")
                       + pod("c", "node-2"))
    s = lab.apply(changed)
    assert sorted(s.relabelled) == ["default/a"] and len(s.created) == 2 and not s.deleted
    after = {p.key: p for p in lab.pods("default")}
    assert after["default/a"].labels == {"v": "two"}
    assert after["default/a"].containers[0].pid == a_pid  # not restarted
    for key, p in before.items():
        assert after[key].ip == p.ip
    assert lab.ping("c", "a", count=1).ok

    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(deployment.replace("REPLICAS", "1"))
    s = lab.apply(smaller)
    assert len(s.deleted) == 2 and not s.created
    web = [p for p in lab.pods() if p.labels.get("app") == "web"]
    assert len(web) == 1
    assert len([n for n in lab_netns(lab.name) if ".pod.default." in n]) == 3

    s = lab.delete(changed)
    assert sorted(s.deleted) == ["default/a", "default/c", web[0].key]
    assert lab.pods("default") == []
    assert [n for n in lab_netns(lab.name) if ".pod.default." in n] == []
    # the nodes are still there and new pods still work
    lab.apply(manifests=[pod("x", "node-1") + pod("y", "node-2")])
    assert lab.ping("x", "y", count=1).ok


def test_changed_pod_spec_recreates_the_pod(netlab_lab):
    lab = netlab_lab(yaml=cluster() + pod("a", "node-1", "echo one; sleep 3600"))
    lab.apply(manifests=[pod("a", "node-1", "echo two; sleep 3600")])
    assert wait_until(lambda: lab.logs("a")) == "two\n"
    assert lab.exec("a", ["hostname"]).stdout == "a\n"


def test_recreated_pod_is_answered_at_once(netlab_lab):
    """A pod re-created with its address keeps its MAC, so the ARP entries other pods and its
    node still hold for it are right (with a fresh random MAC they would point into the void
    for up to ~45 s, until the kernel re-validates them); cni0 keeps its MAC as ports come and
    go (a bridge left alone takes its lowest port's MAC)."""
    def mac(target: str, dev: str) -> str:
        return lab.exec(target, ["cat", f"/sys/class/net/{dev}/address"]).stdout.strip()

    lab = netlab_lab(yaml=cluster() + pod("a", "node-1") + pod("x", "node-1")
                     + pod("b", "node-2"))
    bridge = mac("node/node-1", "cni0")
    assert bridge == names.bridge_mac(lab.name, "node-1")
    x = lab.pod("x")
    assert mac("x", "eth0") == names.pod_mac(x.ip)
    assert lab.ping("a", "x", count=1).ok and lab.ping("b", "x", count=1).ok
    lab.apply(manifests=[pod("x", "node-1", "echo again; sleep 3600")])
    assert lab.pod("x").ip == x.ip and lab.pod("x").containers[0].pid != x.containers[0].pid
    # one echo each, no time to re-learn: the cached entries must already be right
    assert lab.ping("a", "x", count=1, timeout=1).ok
    assert lab.ping("b", "x", count=1, timeout=1).ok
    lab.delete(manifests=[pod("a", "node-1")])
    assert mac("node/node-1", "cni0") == bridge


def test_cli_round_trip(netlab_lab_name, tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(cluster() + pod("a", "node-1", "echo Hello from a; sleep 3600")
                        + pod("b", "node-2"))
    run = lambda *args: subprocess.run([*NETLAB, *args], capture_output=True, text=True)  # noqa: E731
    try:
        r = run("up", "-f", str(scenario), "--name", netlab_lab_name)
        assert r.returncode == 0, r.stderr
        assert f"lab {netlab_lab_name} is up: 2 nodes (vxlan), 3 pods" in r.stdout  # + DNS
        r = run("get", "pods", "-o", "json", "--lab", netlab_lab_name)
        items = json.loads(r.stdout)["items"]
        assert [i["metadata"]["name"] for i in items] == ["a", "b"]
        assert items[0]["spec"]["nodeName"] == "node-1"
        assert items[0]["status"]["podIP"].startswith("10.244.0.")
        assert items[0]["metadata"]["namespace"] == "default"
        r = run("ping", "a", "b", "-c", "1", "--lab", netlab_lab_name)
        assert r.returncode == 0 and "1 received" in r.stdout
        r = run("exec", "a", "--lab", netlab_lab_name, "--", "hostname")
        assert r.stdout == "a\n"
        r = wait_until(lambda: run("logs", "a", "--lab", netlab_lab_name).stdout)
        assert r == "Hello from a\n"
        r = run("get", "nodes", "--lab", netlab_lab_name)
        assert "node-1" in r.stdout and "10.244.0.0/24" in r.stdout
        r = run("status", "-o", "json")
        assert netlab_lab_name in [s["name"] for s in json.loads(r.stdout)["items"]]
        r = run("up", "-f", str(scenario), "--name", netlab_lab_name)
        assert r.returncode == 1 and "already up" in r.stderr
        r = run("exec", "nope", "--lab", netlab_lab_name, "--", "true")
        assert r.returncode == 1 and "no pod 'nope'" in r.stderr
    finally:
        r = run("down", netlab_lab_name)
    assert r.returncode == 0 and f"lab {netlab_lab_name} removed" in r.stdout
    assert leftovers(netlab_lab_name) == []


def test_commands_say_they_need_root(tmp_path):
    if subprocess.run(["which", "setpriv"], capture_output=True).returncode != 0:
        pytest.skip("setpriv (util-linux) is not installed")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*nobody, sys.executable, "-c", "import netlab"],
                      capture_output=True).returncode != 0:
        pytest.skip("this Python environment is not readable by an unprivileged user")
    readable = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's tmp_path is root-only
    scenario = readable / "s.yaml"
    scenario.write_text(cluster() + pod("a"))
    readable.chmod(0o755)
    r = subprocess.run([*nobody, *NETLAB, "up", "-f", str(scenario)], capture_output=True,
                       text=True, env={**os.environ, "HOME": "/tmp"})
    assert r.returncode == 1, r.stderr
    shutil.rmtree(readable)
    assert "needs root" in r.stderr and "Traceback" not in r.stderr


def test_down_all_removes_every_lab(netlab_lab):
    a = netlab_lab(yaml=cluster() + pod("a"))
    b = netlab_lab(yaml=cluster() + pod("a"))
    for lab in (a, b):
        assert down(lab.name)
    assert leftovers(a.name) == [] and leftovers(b.name) == []
    assert not names.lab_dir(a.name).exists()
