"""Pod sandboxes on the real kernel (netlab.kernel.sandbox): the pod's root is an overlay
whose writes never reach the host, it sees only its own processes, volumes are shared
within a pod only, configMap files are read-only, each container is exactly one process,
and removing a sandbox (or destroying the lab after a crash) leaves no mount and no process.

Each test makes its own network namespace (nlsbx-<random>, deleted by the fixture) and a
throw-away lab dir /run/netlab/nlsbx-<random> (removed by the fixture); nothing is changed
in the host's namespaces."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from netlab import names
from netlab.features.volumes import PodVolume, container_mounts, pod_volumes
from netlab.kernel import ns, procs
from netlab.kernel import sandbox as sbx
from netlab.kernel.port import Started
from netlab.loader import build, read_text
from netlab.model import VolumeMount

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def mountinfo(tag: str) -> list[str]:
    """The host's mounts that mention this test's lab or netns (the namespace file, an
    overlay's upperdir, a bind from the lab dir), without mount ids (they are reused). Other
    labs may come and go on the machine meanwhile."""
    with open("/proc/self/mountinfo") as f:
        return sorted(" ".join(line.split()[2:]) for line in f if tag in line)


def sandbox_mounts_anywhere(lab: str) -> list[str]:
    """Mounts of the lab's pod dirs in any mount namespace of the machine (the sandbox's own
    are only in its namespaces)."""
    found = []
    for e in os.scandir("/proc"):
        if e.name.isdigit():
            try:
                text = Path(f"/proc/{e.name}/mountinfo").read_text()
            except OSError:
                continue
            found += [f"{e.name}: {line}" for line in text.splitlines() if f"{lab}/pods" in line]
    return found


def pids_in(pid_ns: int, zombies: bool = True) -> list[int]:
    out = []
    for e in os.scandir("/proc"):
        if e.name.isdigit():
            try:
                if os.stat(f"/proc/{e.name}/ns/pid").st_ino == pid_ns and (
                        zombies or procs.starttime(int(e.name)) is not None):
                    out.append(int(e.name))
            except OSError:
                continue
    return out


class Pods:
    """Sandboxes and container processes of one test, all removed at the end."""

    def __init__(self, lab: str, netns: Path) -> None:
        self.lab, self.netns = lab, netns
        self.sandboxes: list[sbx.Sandbox] = []
        self.children: list[subprocess.Popen] = []

    def sandbox(self, name: str, volumes=()) -> sbx.Sandbox:
        d = names.STATE_ROOT / self.lab / "pods" / f"default.{name}"
        d.mkdir(parents=True)
        (d / "resolv.conf").write_text(f"# {name}\nnameserver 10.96.0.10\n")
        (d / "hosts").write_text(f"127.0.0.1\tlocalhost\n10.244.1.9\t{name}\n")
        s = sbx.create_sandbox(self.lab, d, self.netns, None, name,
                               ((str(d / "resolv.conf"), "/etc/resolv.conf"),
                                (str(d / "hosts"), "/etc/hosts")), volumes)
        self.sandboxes.append(s)
        return s

    def start(self, s: sbx.Sandbox, script: str, mounts=(), workdir=None) -> subprocess.Popen:
        argv = sbx.container_argv(s, mounts, ["/bin/sh", "-c", script], workdir)
        p = sbx.start_container(s, argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.children.append(p)
        return p

    def run(self, s: sbx.Sandbox, script: str, mounts=(), workdir=None) -> tuple[int, str]:
        p = self.start(s, script, mounts, workdir)
        out = p.communicate(timeout=30)[0].decode()
        return p.returncode, out

    def close(self) -> None:
        for s in self.sandboxes:
            sbx.remove_sandbox(s)
        for p in self.children:
            if p.poll() is None:
                p.kill()  # only our own children, by pid
            p.wait(timeout=10)
        sbx.reap()  # the pauses, now that their namespaces' processes are reaped


@pytest.fixture
def pods():
    tag = secrets.token_hex(3)
    netns_name = f"nlsbx-{tag}"
    lab = f"nlsbx-{tag}"
    ns.ensure_state_tmpfs(names.STATE_ROOT)
    subprocess.run(["ip", "netns", "add", netns_name], check=True)
    p = Pods(lab, names.NETNS_DIR / netns_name)
    try:
        yield p
    finally:
        try:
            p.close()
        finally:
            subprocess.run(["ip", "netns", "del", netns_name], check=False)
            shutil.rmtree(names.STATE_ROOT / lab, ignore_errors=True)


def test_root_is_an_overlay_whose_writes_stay_in_the_pod(pods):
    before = mountinfo(pods.lab)
    assert before  # the netns file at least: the filter sees this test's mounts
    s = pods.sandbox("web")
    name = f"nlsbx-{secrets.token_hex(4)}.txt"
    rc, out = pods.run(s, f"""set -e
        echo written > /opt/{name}; cat /opt/{name}
        echo tmp > /tmp/{name}
        stat -f -c %T /tmp; stat -f -c %T /; ls /sys/class/net
        cat /etc/hostname /etc/resolv.conf; hostname; grep web /etc/hosts""")
    assert rc == 0, out
    assert out.split("\n")[:5] == ["written", "tmpfs", "overlayfs", "lo", "web"]
    assert "# web\nnameserver 10.96.0.10\nweb\n10.244.1.9\tweb\n" in out
    assert not Path(f"/opt/{name}").exists()  # not on the host
    assert not Path(f"/tmp/{name}").exists()
    assert (s.root / "upper" / "opt" / name).read_text() == "written\n"
    assert mountinfo(pods.lab) == before  # no mount of the sandbox is visible on the host


def test_a_pod_sees_only_its_own_processes_one_per_container(pods):
    s = pods.sandbox("web")
    a = pods.start(s, "exec sleep 60")
    time.sleep(0.2)
    rc, out = pods.run(s, "ps -e -o pid=,comm=; echo; cat /proc/[0-9]*/comm")
    assert rc == 0, out
    listed, _, comms = out.partition("\n\n")
    assert [line.split()[1] for line in listed.splitlines()] == ["pause", "sleep", "sh", "ps"]
    assert listed.split()[0] == "1"  # the pause is the namespace's init
    assert sorted(comms.split()) == ["pause", "sh", "sleep"]  # sh expanded the glob
    # From the host: the pause and the one container process, nothing else
    assert sorted(sbx.pids(s)) == sorted([s.pid, a.pid])
    for pid, comm, argv in ((s.pid, "pause", "pause\0"),
                            (a.pid, "sleep", "sleep\x0060\0")):
        assert Path(f"/proc/{pid}/comm").read_text().strip() == comm
        assert Path(f"/proc/{pid}/cmdline").read_text() == argv
    status = dict(line.split(":\t", 1) for line in
                  Path(f"/proc/{a.pid}/status").read_text().splitlines() if ":\t" in line)
    assert int(status["PPid"]) == os.getpid()  # the caller's own child: no wrapper left
    assert os.stat(f"/proc/{a.pid}/ns/net").st_ino == os.stat(pods.netns).st_ino
    for kind in ("pid", "ipc", "uts"):
        assert os.stat(f"/proc/{a.pid}/ns/{kind}").st_ino == \
            os.stat(f"/proc/{s.pid}/ns/{kind}").st_ino
    assert os.stat(f"/proc/{a.pid}/ns/mnt").st_ino != os.stat(f"/proc/{s.pid}/ns/mnt").st_ino
    # the pause ignores SIGCHLD, so the kernel reaps the orphans it inherits
    sigign = int(status_of(s.pid)["SigIgn"], 16)
    assert sigign & (1 << (signal.SIGCHLD - 1))
    rc, _ = pods.run(s, "sleep 0.3 & exit 0")
    assert rc == 0
    time.sleep(0.8)
    states = [Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
              for p in pids_in(s.pid_ns) if p != s.pid and p != a.pid]
    assert "Z" not in states


def status_of(pid: int) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in
                Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)


def test_empty_dirs_are_shared_by_a_pods_containers_only(pods):
    vols = [PodVolume("data", "dir"), PodVolume("cache", "memory", 1 << 20)]
    one = pods.sandbox("one", vols)
    two = pods.sandbox("two", [PodVolume("data", "dir")])
    a_mounts = [VolumeMount("data", "/data"), VolumeMount("cache", "/cache")]
    b_mounts = [VolumeMount("data", "/shared"), VolumeMount("cache", "/mem", read_only=True)]
    rc, out = pods.run(one, "echo from-a > /data/a.txt && echo mem > /cache/m.txt && "
                            "stat -f -c %T /cache && grep ' /cache ' /proc/self/mountinfo",
                       a_mounts)
    assert rc == 0, out
    assert out.startswith("tmpfs\n") and "size=1024k" in out
    rc, out = pods.run(one, "cat /shared/a.txt /mem/m.txt; echo x > /mem/y || echo ro; "
                            "ls -A /run/.netlab/volumes | wc -l; ls -A /data | wc -l",
                       b_mounts)
    assert rc == 0, out
    lines = out.splitlines()
    assert lines[:2] == ["from-a", "mem"] and lines[-3] == "ro"
    # the staging dir of the pod's volumes is unmounted, and /data (a mount point another
    # container made in the pod's shared root) is an empty directory here
    assert lines[-2:] == ["0", "0"]
    rc, out = pods.run(two, "ls -A /data; echo end", [VolumeMount("data", "/data")])
    assert (rc, out) == (0, "end\n")
    # the emptyDir is the pod's dir on the host; the Memory one is not on the host at all
    assert (Path(one.pod_dir) / "volumes" / "data" / "a.txt").read_text() == "from-a\n"
    assert list((Path(one.pod_dir) / "volumes" / "cache").iterdir()) == []


CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata: {name: app}
data: {mode: fast, app.conf: "listen 8080\\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  volumes:
  - name: cfg
    configMap: {name: app, defaultMode: 0440, items: [{key: app.conf, path: conf/app.conf}]}
  - name: sec
    secret: {secretName: creds}
  containers:
  - name: c
    command: [sleep, "1"]
    volumeMounts:
    - {name: cfg, mountPath: /etc/app}
    - {name: sec, mountPath: /etc/password, subPath: password}
"""


def test_configmap_and_secret_files_are_there_read_only(pods):
    m = build(read_text(CONFIG, "t.yaml"))
    pod = m.pods["default/web"]
    vols, warnings = pod_volumes(pod, m)
    assert warnings == []
    s = pods.sandbox("web", vols)
    mounts = container_mounts(pod.spec, pod.spec.containers[0])
    rc, out = pods.run(s, "cat /etc/app/conf/app.conf /etc/password; echo; "
                          "stat -c %a /etc/app/conf/app.conf; "
                          "{ echo x > /etc/app/new; } 2>/dev/null || echo ro1; "
                          "{ echo x >> /etc/app/conf/app.conf; } 2>/dev/null || echo ro2; "
                          "{ echo x > /etc/password; } 2>/dev/null || echo ro3", mounts,
                       workdir="/etc/app")
    assert rc == 0, out
    assert out.splitlines() == ["listen 8080", "hunter2", "440", "ro1", "ro2", "ro3"]


def test_exec_joins_a_running_container(pods):
    s = pods.sandbox("web", [PodVolume("data", "dir")])
    mounts = [VolumeMount("data", "/data")]
    c = pods.start(s, "echo hi > /data/x; mkdir -p /only-c; exec sleep 60", mounts)
    time.sleep(0.3)
    started = Started(c.pid, procs.starttime(c.pid) or 0)
    r = subprocess.run(sbx.exec_argv(s, mounts, ["sh", "-c", "cat /data/x; ps -e -o comm= | "
                                                              "sort | tr '\\n' ' '; exit 3"],
                                     container=started), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 3, r.stderr
    first, names = r.stdout.split("\n", 1)
    seen = names.split()
    # the pause, the container's sleep, the exec'd shell and its pipeline; `tr` may still be
    # the shell it was forked as when ps looks (seen on a loaded CI machine)
    assert first == "hi" and seen.count("sleep") == 1 and {"pause", "ps", "sort"} <= set(seen), \
        seen
    assert set(seen) <= {"pause", "ps", "sh", "sleep", "sort", "tr"}, seen
    r = subprocess.run(sbx.exec_argv(s, mounts, ["cat", "/data/x"]), capture_output=True,
                       text=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, "hi\n")


def test_remove_sandbox_leaves_no_mount_and_no_process(pods):
    before = mountinfo(pods.lab)
    s = pods.sandbox("web", [PodVolume("data", "dir"), PodVolume("m", "memory")])
    c = pods.start(s, "exec sleep 60", [VolumeMount("data", "/data"), VolumeMount("m", "/m")])
    time.sleep(0.2)
    assert len(pids_in(s.pid_ns)) == 2
    assert sandbox_mounts_anywhere(pods.lab)  # the overlay, in the pod's namespaces
    sbx.remove_sandbox(s)
    assert c.wait(timeout=10) == -signal.SIGKILL  # the kernel killed it with the pause
    deadline = time.monotonic() + 5  # the pause ends once its namespace's last one is reaped
    while pids_in(s.pid_ns) and time.monotonic() < deadline:
        sbx.reap()
        time.sleep(0.01)
    assert pids_in(s.pid_ns) == []
    assert sandbox_mounts_anywhere(pods.lab) == []
    assert not s.root.exists() and not (Path(s.pod_dir) / "volumes").exists()
    assert mountinfo(pods.lab) == before
    sbx.remove_sandbox(s)  # twice is fine
    with pytest.raises(Exception, match="gone"):
        sbx.container_argv(s, [], ["true"])


def test_destroy_lab_after_a_crash_removes_the_sandbox(pods):
    from netlab.kernel.linux import destroy_lab

    before = mountinfo(pods.lab)
    s = pods.sandbox("web", [PodVolume("m", "memory")])
    c = pods.start(s, "exec sleep 60", [VolumeMount("m", "/m")])
    time.sleep(0.2)
    # as after a crash: only the recorded pause, nothing unmounted or removed by netlab
    destroy_lab(pods.lab, [Started(s.pid, s.starttime)])
    assert c.wait(timeout=10) == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while pids_in(s.pid_ns, zombies=False) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids_in(s.pid_ns, zombies=False) == []
    assert not (names.STATE_ROOT / pods.lab).exists()
    assert mountinfo(pods.lab) == before
    assert sandbox_mounts_anywhere(pods.lab) == []
    pods.sandboxes.remove(s)
    sbx.remove_sandbox(s)  # reaps the pause (our child); nothing else to do


def test_dev_proc_and_sys_are_the_pods_own(pods):
    s = pods.sandbox("web")
    rc, out = pods.run(s, """
        echo x > /dev/null && head -c 3 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c
        stat -c '%F %a %t:%T' /dev/null /dev/tty
        readlink /dev/ptmx /dev/fd /dev/stdout
        stat -f -c %T /dev /dev/pts /dev/shm /proc /sys
        { echo 1 > /proc/sys/net/ipv4/ip_forward; } 2>/dev/null || echo ro-proc-sys
        { echo x > /sys/kernel/uevent_helper; } 2>/dev/null || echo ro-sys
        touch /dev/new && echo dev-writable
        grep -c . /proc/self/mountinfo >/dev/null && echo ok""")
    assert rc == 0, out
    assert out.splitlines() == [
        "3", "4", "character special file 666 1:3", "character special file 666 5:0",
        "pts/ptmx", "/proc/self/fd", "/proc/self/fd/1",
        "tmpfs", "devpts", "tmpfs", "proc", "sysfs", "ro-proc-sys", "ro-sys",
        "dev-writable", "ok"]


def test_a_sandbox_that_cannot_be_set_up_says_why_and_leaves_nothing(pods):
    d = names.STATE_ROOT / pods.lab / "pods" / "default.bad"
    d.mkdir(parents=True)
    with pytest.raises(Exception, match="does-not-exist"):
        sbx.create_sandbox(pods.lab, d, names.NETNS_DIR / "nlsbx-does-not-exist", None, "bad")
    assert sorted(p.name for p in d.iterdir()) == []
    assert sandbox_mounts_anywhere(pods.lab) == []


def test_a_mount_that_fails_names_its_target_and_the_kernels_reason(pods):
    d = names.STATE_ROOT / pods.lab / "pods" / "default.badbind"
    d.mkdir(parents=True)
    with pytest.raises(Exception, match=r"mount \S*/merged/etc/nlsbx-x: No such file"):
        sbx.create_sandbox(pods.lab, d, pods.netns, None, "badbind",
                           (("/nonexistent/nlsbx-source", "/etc/nlsbx-x"),))
    assert sorted(p.name for p in d.iterdir()) == []
    assert sandbox_mounts_anywhere(pods.lab) == []
    assert pods.sandbox("good").alive()  # the helper goes on making sandboxes


def test_a_namespace_made_after_the_helper_started_is_found(pods):
    """The helper works in a template mount namespace without the host's namespace files
    (/run/netns/*), and opens a request's paths through the host's root: a network
    namespace bound after it started is entered all the same."""
    first = pods.sandbox("early")  # the helper is running from here on (idle exit: 5 s)
    late = f"nlsbx-late-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", late], check=True)
    try:
        pods.netns = names.NETNS_DIR / late
        s = pods.sandbox("late")
        assert os.stat(f"/proc/{s.pid}/ns/net").st_ino == os.stat(names.NETNS_DIR / late).st_ino
        assert os.stat(f"/proc/{first.pid}/ns/net").st_ino != \
            os.stat(names.NETNS_DIR / late).st_ino
        # the pause's mount table: its own few mounts, no copy of the host's namespace files
        table = Path(f"/proc/{s.pid}/mountinfo").read_text()
        assert "/run/netns" not in table and len(table.splitlines()) < 40, table
    finally:
        sbx.remove_sandbox(pods.sandboxes.pop())
        subprocess.run(["ip", "netns", "del", late], check=False)


def test_a_sole_container_without_volumes_stays_in_the_pods_mount_namespace(pods):
    s = pods.sandbox("solo")
    argv = sbx.container_argv(s, (), ["sleep", "60"], alone=True)
    assert "unshare" not in argv  # one exec less per container start
    p = sbx.start_container(s, argv)
    pods.children.append(p)
    time.sleep(0.2)
    assert os.stat(f"/proc/{p.pid}/ns/mnt").st_ino == os.stat(f"/proc/{s.pid}/ns/mnt").st_ino
    assert os.stat(f"/proc/{p.pid}/ns/pid").st_ino == s.pid_ns
    assert Path(f"/proc/{p.pid}/cmdline").read_text() == "sleep\x0060\0"
    # not alone, or with volumes: a mount namespace of its own, as before
    assert "unshare" in sbx.container_argv(s, (), ["sleep", "60"])


def test_start_container_leaves_the_caller_in_its_own_namespaces(pods):
    """The launcher threads enter a pod's namespaces only for the moment they fork: the
    caller, and the next container started (another pod's), are where they belong."""
    kinds = ("mnt", "net", "uts", "ipc", "pid", "pid_for_children")

    def namespaces(pid: int | str) -> dict[str, int]:
        return {k: os.stat(f"/proc/{pid}/ns/{k}").st_ino for k in kinds}

    before = namespaces("self")
    a, b = pods.sandbox("a"), pods.sandbox("b")
    children = []
    for s in (a, b, a, b):
        p = sbx.start_container(s, sbx.container_argv(s, (), ["sleep", "60"], alone=True))
        pods.children.append(p)
        children.append((s, p))
    assert namespaces("self") == before
    for s, p in children:
        pause = namespaces(s.pid)
        child = namespaces(p.pid)
        assert {k: child[k] for k in ("mnt", "net", "uts", "ipc")} == \
            {k: pause[k] for k in ("mnt", "net", "uts", "ipc")}
        assert child["pid"] == s.pid_ns and child["pid"] != before["pid"]
        assert os.readlink(f"/proc/{p.pid}/root") == "/"  # the pod's root, seen from it
        assert Path(f"/proc/{p.pid}/root/etc/hostname").read_text() == \
            f"{Path(s.pod_dir).name.removeprefix('default.')}\n"
