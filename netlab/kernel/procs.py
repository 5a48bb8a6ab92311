"""Processes in pods: started through nsenter/unshare (util-linux), found and stopped
only by pid, and only pids that are verifiably the lab's (inside one of its network
namespaces, or recorded at start with their start time)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from netlab.kernel.port import Started

__all__ = ["Started"]  # re-exported: callers name it through procs

# Runs inside the pod's network namespace (and UTS namespace: a node's or host's bound one,
# or a new one whose hostname it sets, for a pod: a pod's UTS namespace belongs to its
# sandbox, so a pod without one gets a fresh namespace with its name per command), in a
# mount namespace of its own whose mounts follow the host's (slave), so the pod sees its
# own /etc/resolv.conf and /etc/hosts while the host's /etc stays untouched, and a /sys of
# its own network namespace (as `ip netns exec` does: /sys/class/net lists the pod's
# interfaces, not the host's). /proc/sys/kernel/hostname is the caller's UTS namespace's.
# Arguments: EXITFILE HOSTNAME SRC DST ... -- ARGV...
LAUNCHER = r'''x="$1" h="$2"; shift 2
if [ -n "$h" ]; then echo "$h" > /proc/sys/kernel/hostname || exit 126; fi
umount -l /sys 2>/dev/null && mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
while [ "$1" != "--" ]; do
  if [ -e "$2" ]; then mount --bind "$1" "$2" || exit 126; fi; shift 2
done; shift
[ -z "$x" ] && exec "$@"
"$@"; rc=$?; echo "$rc" > "$x"; exit "$rc"'''

BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root"}


def launcher_argv(netns: Path, uts: Path | None, argv: tuple[str, ...] | list[str],
                  binds: tuple[tuple[str, str], ...] = (), exit_file: str = "",
                  hostname: str | None = None) -> list[str]:
    """`argv` in the namespace `netns`, with the UTS namespace bound at `uts`, else (with
    `hostname`) a new one named so, else the caller's."""
    cmd = ["nsenter", f"--net={netns}"]
    if uts is not None:
        cmd.append(f"--uts={uts}")
    new_uts = uts is None and bool(hostname)
    cmd += ["--", "unshare", "--mount", *(["--uts"] if new_uts else []), "--propagation",
            "slave", "--", "/bin/sh", "-c", LAUNCHER, "netlab-launch", exit_file,
            hostname if new_uts and hostname else ""]
    for src, dst in binds:
        cmd += [src, dst]
    return [*cmd, "--", *argv]


def start(netns: Path, uts: Path | None, argv: tuple[str, ...] | list[str],
          env: dict[str, str], binds: tuple[tuple[str, str], ...], log: Path,
          hostname: str | None = None) -> subprocess.Popen:
    """A container's process, a child of the caller: nsenter, unshare and the launcher each
    exec the next, so one process remains (the command), and the caller waits for its exit
    code. Its output goes to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            launcher_argv(netns, uts, argv, binds, hostname=hostname), stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT, env={**BASE_ENV, **env}, start_new_session=True,
            close_fds=True)


def wait(child: subprocess.Popen, timeout: float) -> int | None:
    """A child's exit status once it has ended (within `timeout`), else None."""
    try:
        return child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def daemon(argv: list[str], log: Path) -> Started:
    """A long-lived helper process of netlab's own (the lab's agent), in a session of its
    own so it outlives the command that started it; its output goes to `log`."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True, cwd="/")
    _children[proc.pid] = proc
    return Started(proc.pid, starttime(proc.pid) or 0)


_children: dict[int, subprocess.Popen] = {}


def starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: with the pid, it names one process for its lifetime."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int, start: int) -> bool:
    return start != 0 and starttime(pid) == start


def netns_of(pid: int | str) -> int | None:
    """The inode of a process's network namespace; None once it has exited (a zombie has
    left its namespaces) or if it cannot be read."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def pids_in_netns(inodes: set[int]) -> list[int]:
    """Every process whose network namespace is one of `inodes`."""
    return [int(e.name) for e in os.scandir("/proc")
            if e.name.isdigit() and netns_of(e.name) in inodes]


def kill_verified(recorded: list[Started], netns_inodes: set[int], timeout: float = 5.0) -> None:
    """SIGKILL the recorded process groups that are still the same processes, then every
    process left inside the lab's namespaces; wait until they are gone."""
    for s in recorded:
        if alive(s.pid, s.starttime):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(s.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while True:
        left = pids_in_netns(netns_inodes) if netns_inodes else []
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)


def _reap() -> None:
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]


def run_in(netns: Path, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess:
    """A short command inside a network namespace (no pod files), its output captured."""
    return subprocess.run(["nsenter", f"--net={netns}", "--", *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)


def self_signed_certificate(cert: Path, key: Path, hosts: tuple[str, ...]) -> None:
    """A self-signed certificate for `hosts` (subjectAltName), with openssl."""
    san = ",".join(f"DNS:{h}" for h in hosts)
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "365",
                        "-subj", f"/CN={hosts[0]}", "-addext", f"subjectAltName={san}"],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        from netlab.errors import KernelError

        raise KernelError(f"openssl could not make a certificate for {san}: {r.stderr.strip()}")


def _child_pids(pid: int) -> set[int]:
    try:
        return {int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except (FileNotFoundError, ValueError):
        return set()


def reload(pid: int, timeout: float = 3.0) -> None:
    """SIGHUP a master process (nginx: check the new configuration, start new workers with
    it, let the old ones finish their requests) and return once a new worker exists and the
    old ones are gone (or `timeout` passed), so that a request made after the caller returns
    meets the new configuration: an old worker keeps accepting on the shared listening
    socket until it has handled its QUIT, which comes after the new worker starts."""
    old = _child_pids(pid)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _child_pids(pid)
        if children - old and not children & old:
            break
        time.sleep(0.01)
