"""Pod sandboxes: a pod's own root filesystem, /proc, /tmp and PID namespace, and the exec
chains that put a container's command into it as exactly one process.

A sandbox is held by one tiny *pause* process (coreutils `sleep infinity`), PID 1 of the
pod's PID namespace, inside the pod's network, UTS, IPC and mount namespaces. Its mount
namespace is the pod's template:

  /            overlayfs: lower = the host's root filesystem (read-only underneath), upper and
               work dirs in the lab's state (<pod_dir>/rootfs/{upper,work}, on netlab's tmpfs:
               overlayfs refuses an upper dir on the filesystem it overlays); the host's other
               disk filesystems are bound read-only at their places (overlayfs does not cross
               mount points)
  /proc        proc of the pod's PID namespace (/proc/sys, sysrq-trigger, irq, bus read-only,
               as Docker does: kernel.* sysctls are not per namespace)
  /sys         sysfs of the pod's network namespace, read-only
  /dev         a tmpfs with null zero full random urandom tty, its own devpts and /dev/shm
  /tmp, /run   tmpfs of their own
  /etc/...     the pod's resolv.conf and hosts bound from the pod dir; /etc/hostname written
  /run/.netlab/volumes   the pod's volumes (<pod_dir>/volumes bound; Memory emptyDirs and
               hostPaths mounted on it here), where a container's mounts are bound from

The mount namespace is made with `unshare --propagation private` (recursive private), so no
mount made inside ever reaches the host or another pod, and nothing the host mounts later
reaches the pod. Then pivot_root(".", ".") into the overlay and a lazy unmount of the old root
(the runc sequence): unlike chroot, the host's mount tree is gone from the namespace, not just
out of reach (a root process can escape a chroot with a second chroot; nor do the pod's mounts
keep copies of /run/netns/* pinning other labs' network namespaces). No mount of a sandbox
exists in the host's mount namespace: they all die with the sandbox's namespaces, so
`destroy_lab` after a crash only has to kill the lab's processes (the pause is in the pod's
network namespace) and delete the lab dir.

Each container gets a mount namespace of its own, copied from the pause's, with its
volumeMounts bound from /run/.netlab/volumes and that staging dir unmounted (volume mounts are
per container in Kubernetes). Namespaces are entered through /proc/<pause pid>/ns/*, after
checking the pid still has the recorded start time; nothing is bind-mounted to keep them.

PID namespaces: a process never changes its own (pid_namespaces(7)); setns(CLONE_NEWPID) only
places the caller's *future children*. So an exec chain cannot move a process into the pod's
PID namespace; instead the caller's thread sets its pid_namespace_for_children for the moment
it forks (`pid_namespace`, used by `popen`), and the child, already in the pod's PID namespace,
execs nsenter -> unshare -> sh -> the command: one process per container, the caller's child
(so the caller can wait for its exit code). The pause is started the same way in a new PID
namespace. Its SIGCHLD is ignored (ignored signals survive execve), so the kernel reaps the
orphans reparented to it as Kubernetes' pause does (wait(2): SIG_IGN on SIGCHLD => no zombies).
Killing the pause SIGKILLs every process of the namespace (the kernel does, when a PID
namespace's init dies).

Not a security boundary: the pod's processes are root with every capability, in the host's
user namespace.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from netlab.errors import KernelError
from netlab.kernel import ns, procs

STAGING = "/run/.netlab/volumes"  # inside the pause's mount namespace only
CLONE_NEWPID = 0x20000000
CLONE_NEWIPC = 0x08000000
BASE_ENV = procs.BASE_ENV

# Filesystems of the host that are "disk" (their content is the machine's files) and so are
# bound read-only into the sandbox at their mount points; pseudo and tmpfs mounts are not.
DISK_FS = ("ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "exfat", "f2fs", "zfs", "9p",
           "virtiofs", "nfs", "nfs4", "cifs", "fuseblk")
SKIP_TREES = ("/proc", "/sys", "/dev", "/run", "/tmp")

# Runs as PID 1 of the new PID namespace, in the pod's network and UTS namespaces and a new
# (private) mount and IPC namespace. Arguments: ROOTFS HOSTNAME SET_HOSTNAME then
#   S path | B src dst | M name size | H name  ... and ends by exec'ing the pause.
PAUSE_SETUP = r'''set -eu
r=$1 h=$2 sethost=$3; shift 3
m=$r/merged
[ "$sethost" = 1 ] && printf '%s' "$h" > /proc/sys/kernel/hostname
mount -t overlay overlay -o "lowerdir=/,upperdir=$r/upper,workdir=$r/work" "$m"
[ -n "$h" ] && printf '%s\n' "$h" > "$m/etc/hostname"
for d in proc sys dev tmp run; do [ -d "$m/$d" ] || mkdir -p "$m/$d"; done
mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
for p in sys sysrq-trigger irq bus; do
  if [ -e "$m/proc/$p" ]; then mount --bind "$m/proc/$p" "$m/proc/$p"
    mount -o remount,bind,ro "$m/proc/$p"; fi
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$m/sys"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$m/tmp"
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs "$m/run"
mount -t tmpfs -o nosuid,mode=755,size=4m tmpfs "$m/dev"
(cd "$m/dev"
 mknod -m 666 null c 1 3; mknod -m 666 zero c 1 5; mknod -m 666 full c 1 7
 mknod -m 666 random c 1 8; mknod -m 666 urandom c 1 9; mknod -m 666 tty c 5 0
 mkdir pts shm
 mount -t devpts -o newinstance,ptmxmode=0666,mode=620,nosuid,noexec devpts pts
 ln -s pts/ptmx ptmx
 mount -t tmpfs -o nosuid,nodev,mode=1777 shm shm
 ln -s /proc/self/fd fd; ln -s /proc/self/fd/0 stdin; ln -s /proc/self/fd/1 stdout
 ln -s /proc/self/fd/2 stderr)
mkdir -p "$m/run/.netlab/volumes"
mount --bind "$r/../volumes" "$m/run/.netlab/volumes"
while [ $# -gt 0 ]; do
  case $1 in
  S) mount --bind "$2" "$m$2"; mount -o remount,bind,ro "$m$2"; shift 2;;
  B) [ -e "$m$3" ] || { mkdir -p "$m${3%/*}"; : > "$m$3"; }
     mount --bind "$2" "$m$3"; shift 3;;
  M) mount -t tmpfs -o "nosuid,nodev,mode=1777$3" tmpfs "$m/run/.netlab/volumes/$2"; shift 3;;
  H) mount -o remount,bind,ro "$m/run/.netlab/volumes/$2"; shift 2;;
  *) echo "netlab-pause: bad argument $1" >&2; exit 2;;
  esac
done
cd "$m"
pivot_root . .
umount -l .
cd /
echo ready
exec env --ignore-signal=CHLD sleep infinity </dev/null >/dev/null 2>&1'''

# Runs in a copy of the pause's mount namespace. Arguments: WORKDIR then
#   SRC DST RO ... -- ARGV...
CONTAINER_SETUP = r'''w=$1; shift
while [ "$1" != -- ]; do
  s=$1 d=$2 o=$3; shift 3
  [ -e "$s" ] || mkdir -p "$s" || exit 126
  if [ -d "$s" ]; then mkdir -p "$d" || exit 126
  else p=${d%/*}; mkdir -p "${p:-/}" && { [ -e "$d" ] || : > "$d"; } || exit 126; fi
  mount --bind "$s" "$d" || exit 126
  if [ "$o" = 1 ]; then mount -o remount,bind,ro "$d" || exit 126; fi
done; shift
umount -l /run/.netlab/volumes || exit 126
if [ -n "$w" ]; then cd "$w" || exit 126; fi
exec "$@"'''


class MountLike(Protocol):
    """What a container's volumeMount needs to be (netlab.model.VolumeMount is one)."""

    name: str
    mount_path: str
    read_only: bool
    sub_path: str


class VolumeLike(Protocol):
    """A volume ready to be set up (netlab.features.volumes.PodVolume is one): kind is
    "dir" (emptyDir), "memory" (a tmpfs, size_bytes or unlimited), "files" (files: relative
    path -> (content, mode), read-only) or "host" (host_path bound read-only)."""

    name: str
    kind: str
    size_bytes: int | None
    files: dict[str, tuple[bytes, int]]
    host_path: str | None


@dataclass(frozen=True)
class Sandbox:
    """A running pod sandbox: its pause process (pid + start time name it for its life), the
    inode of its PID namespace, and its directory."""

    pod_dir: str
    pid: int
    starttime: int
    pid_ns: int
    volumes: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        return Path(self.pod_dir) / "rootfs"

    def to_json(self) -> dict:
        return {"pod_dir": self.pod_dir, "pid": self.pid, "starttime": self.starttime,
                "pid_ns": self.pid_ns, "volumes": list(self.volumes)}

    @classmethod
    def from_json(cls, d: dict) -> Sandbox:
        return cls(d["pod_dir"], d["pid"], d["starttime"], d["pid_ns"], tuple(d["volumes"]))

    def alive(self) -> bool:
        return procs.alive(self.pid, self.starttime)

    def pause(self) -> int:
        """The pause's pid, checked to still be the pause (else KernelError)."""
        if not self.alive():
            raise KernelError(f"the sandbox of {self.pod_dir} is gone (its pause process "
                              f"{self.pid} has exited)")
        return self.pid


_children: dict[int, subprocess.Popen] = {}


def reap() -> None:
    """Collect the exit status of pause processes started here that have exited."""
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]


def host_disk_mounts() -> list[str]:
    """Mount points of the host's other disk filesystems, to be bound read-only into a
    sandbox (overlayfs shows only the root filesystem's own files)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = _unescape(fields[4])
            fstype = fields[fields.index("-") + 1]
            if point == "/" or fstype not in DISK_FS:
                continue
            if any(point == t or point.startswith(t + "/") for t in SKIP_TREES):
                continue
            out.append(point)
    return out


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def _mounts_under(prefix: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [_unescape(line.split()[4]) for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def _on_same_fs_as_root(path: Path) -> bool:
    return os.stat(path).st_dev == os.stat("/").st_dev


@contextlib.contextmanager
def pid_namespace(sandbox: Sandbox | None) -> Iterator[None]:
    """Children forked by this thread inside the body are in the sandbox's PID namespace
    (None: in a new PID namespace, whose first child is its init)."""
    with open("/proc/thread-self/ns/pid") as here:
        if sandbox is None:
            ns.unshare(CLONE_NEWPID)
        else:
            with open(f"/proc/{sandbox.pause()}/ns/pid") as there:
                if os.fstat(there.fileno()).st_ino != sandbox.pid_ns:
                    raise KernelError(f"pid {sandbox.pid} is not the pause of {sandbox.pod_dir}")
                ns.setns(there.fileno(), CLONE_NEWPID)
        try:
            yield
        finally:
            ns.setns(here.fileno(), CLONE_NEWPID)


def _prepare_volumes(vol_dir: Path, volumes: Sequence[VolumeLike]) -> list[str]:
    """Directories and files of the volumes on the host side; the pause's setup arguments
    for those mounted inside its namespace (tmpfs, hostPath)."""
    args: list[str] = []
    for v in volumes:
        d = vol_dir / v.name
        if v.kind == "host" and v.host_path and os.path.exists(v.host_path) \
                and not os.path.isdir(v.host_path):
            d.touch()
        else:
            d.mkdir(mode=0o777 if v.kind in ("dir", "memory") else 0o755)
        if v.kind == "dir":
            d.chmod(0o777)  # emptyDir: world-writable, as the kubelet makes it
        elif v.kind == "memory":
            args += ["M", v.name, f",size={v.size_bytes}" if v.size_bytes else ""]
        elif v.kind == "files":
            for rel, (data, mode) in sorted(v.files.items()):
                path = d / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                path.chmod(mode)
        elif v.kind == "host":
            # Bound onto the staging dir inside the pause's namespace only, never in the
            # host's (a host mount would outlive a crashed lab). Missing: an empty dir.
            if v.host_path and os.path.exists(v.host_path):
                args += ["B", v.host_path, f"{STAGING}/{v.name}", "H", v.name]
        else:
            raise KernelError(f"volume {v.name}: unknown kind {v.kind!r}")
    return args


def create_sandbox(lab: str, pod_dir: Path, netns: Path, uts: Path | None, hostname: str,
                   binds: tuple[tuple[str, str], ...] = (),
                   volumes: Sequence[VolumeLike] = (), timeout: float = 10.0) -> Sandbox:
    """Start the pod's pause process with its root filesystem, /proc, /sys, /dev, /tmp, the
    pod's files (`binds`: host file -> path in the pod) and its volumes. `lab` only checks
    that `pod_dir` is the lab's."""
    reap()
    pod_dir = Path(pod_dir)
    if lab not in pod_dir.parts:
        raise KernelError(f"{pod_dir} is not a directory of lab {lab}")
    root = pod_dir / "rootfs"
    vol_dir = pod_dir / "volumes"
    for d in (root, vol_dir):
        if d.exists():
            raise KernelError(f"{d} exists: the pod's sandbox is already there (or left over)")
    for d in (root / "upper", root / "work", root / "merged"):
        d.mkdir(parents=True, mode=0o755)
    if _on_same_fs_as_root(root):
        shutil.rmtree(root)
        raise KernelError(f"{root} is on the root filesystem: overlayfs cannot take its upper "
                          "layer there (netlab's state dir is a tmpfs normally)")
    vol_dir.mkdir(mode=0o755)
    try:
        args = _prepare_volumes(vol_dir, volumes)
        for point in host_disk_mounts():
            args += ["S", point]
        for src, dst in binds:
            args += ["B", src, dst]
    except (OSError, KernelError):
        _remove_dirs(root, vol_dir)
        raise
    cmd = ["nsenter", f"--net={netns}"]
    if uts is not None:
        cmd.append(f"--uts={uts}")
    cmd += ["--", "unshare", "--mount", "--ipc", "--propagation", "private"]
    if uts is None:
        cmd.append("--uts")
    cmd += ["--", "/bin/sh", "-c", PAUSE_SETUP, "netlab-pause", str(root), hostname,
            "1" if uts is None else "0", *args]
    try:
        with pid_namespace(None):
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=dict(BASE_ENV),
                                    start_new_session=True, close_fds=True)
    except OSError as e:
        _remove_dirs(root, vol_dir)
        raise KernelError(f"cannot start the sandbox of {pod_dir}: {e}") from e
    _children[proc.pid] = proc
    assert proc.stdout is not None and proc.stderr is not None
    ready = select.select([proc.stdout], [], [], timeout)[0]
    line = proc.stdout.readline() if ready else b""
    start = procs.starttime(proc.pid) or 0
    if line != b"ready\n":
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        err = proc.stderr.read().decode(errors="replace").strip() if ready else "timed out"
        proc.wait()
        _children.pop(proc.pid, None)
        _remove_dirs(root, vol_dir)
        raise KernelError(f"cannot set up the sandbox of {pod_dir}: {err or 'failed'}")
    proc.stdout.close()
    proc.stderr.close()
    pid_ns = os.stat(f"/proc/{proc.pid}/ns/pid").st_ino
    return Sandbox(str(pod_dir), proc.pid, start, pid_ns, tuple(v.name for v in volumes))


def _mount_args(sandbox: Sandbox, mounts: Sequence[MountLike]) -> list[str]:
    args: list[str] = []
    # Parents before children (/data before /data/logs), as container runtimes sort them.
    for m in sorted(mounts, key=lambda m: m.mount_path.rstrip("/").count("/")):
        if m.name not in sandbox.volumes:
            raise KernelError(f"volume {m.name!r} is not one of the pod's")
        src = f"{STAGING}/{m.name}" + (f"/{m.sub_path}" if m.sub_path else "")
        args += [src, m.mount_path, "1" if m.read_only else "0"]
    return args


def container_argv(sandbox: Sandbox, mounts: Sequence[MountLike], argv: Sequence[str],
                   workdir: str | None = None) -> list[str]:
    """The command line that becomes the container's one process, in the pod's network,
    UTS, IPC and a mount namespace of its own (the pod's plus `mounts`). Run it as a child
    forked inside `pid_namespace(sandbox)` (see `popen`), so that it is in the pod's PID
    namespace: nsenter, unshare and sh each exec the next, the last one `argv`."""
    return ["nsenter", f"--target={sandbox.pause()}", "--net", "--uts", "--ipc", "--mount",
            "--", "unshare", "--mount", "--propagation", "unchanged", "--",
            "/bin/sh", "-c", CONTAINER_SETUP, "netlab-container", workdir or "",
            *_mount_args(sandbox, mounts), "--", *argv]


def exec_argv(sandbox: Sandbox, mounts: Sequence[MountLike], argv: Sequence[str],
              container: procs.Started | None = None, workdir: str | None = None
              ) -> list[str]:
    """A command in a running pod, for `netlab exec`: a plain child of the caller (nsenter
    forks into the pod's PID namespace and waits, passing on the exit status). With
    `container` (alive), in that container's own mount namespace; else in a new one with the
    same `mounts`."""
    pid = sandbox.pause()
    if container is not None and procs.alive(container.pid, container.starttime):
        return ["nsenter", f"--target={pid}", "--net", "--uts", "--ipc", "--pid",
                f"--mount=/proc/{container.pid}/ns/mnt", *([f"--wd={workdir}"] if workdir
                                                           else []), "--", *argv]
    return ["nsenter", f"--target={pid}", "--net", "--uts", "--ipc", "--pid", "--mount",
            "--", "unshare", "--mount", "--propagation", "unchanged", "--",
            "/bin/sh", "-c", CONTAINER_SETUP, "netlab-exec", workdir or "",
            *_mount_args(sandbox, mounts), "--", *argv]


def popen(sandbox: Sandbox, argv: Sequence[str], env: dict[str, str] | None = None,
          **kwargs) -> subprocess.Popen:
    """Start `argv` (from container_argv) as a child in the sandbox's PID namespace."""
    with pid_namespace(sandbox):
        return subprocess.Popen(list(argv), env={**BASE_ENV, **(env or {})}, **kwargs)


def pids(sandbox: Sandbox) -> list[int]:
    """Host pids of the live (not zombie) processes in the sandbox's PID namespace."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry.name}/ns/pid").st_ino == sandbox.pid_ns \
                    and procs.starttime(int(entry.name)) is not None:
                found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def remove_sandbox(sandbox: Sandbox, timeout: float = 5.0) -> None:
    """Kill the pause (the kernel kills the rest of its PID namespace; its mounts go with its
    mount namespaces), wait until they are gone, unmount anything left under the pod's
    sandbox dirs in this namespace and delete them. Safe to call twice.

    The caller reaps its container processes (they are its children). The kernel lets the
    pause finish exiting only once every process of its PID namespace is reaped
    (zap_pid_ns_processes), so it is reaped later by `reap` (called here and by
    create_sandbox) if a container was still unreaped."""
    if sandbox.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(sandbox.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while True:
        reap()
        if not _present(sandbox.pid, sandbox.starttime):
            break  # reaped: every process of its namespace was reaped before it
        if not [p for p in pids(sandbox) if not _exiting(p)] or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    _remove_dirs(sandbox.root, Path(sandbox.pod_dir) / "volumes")


def _stat(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2:].split()


def _present(pid: int, start: int) -> bool:
    """The process exists, zombie or not (not yet reaped)."""
    fields = _stat(pid)
    return fields is not None and int(fields[19]) == start


def _exiting(pid: int) -> bool:
    """A zombie, or past the point of no return in do_exit (PF_EXITING)."""
    fields = _stat(pid)
    return fields is None or fields[0] in "ZX" or bool(int(fields[6]) & 0x4)


def _remove_dirs(*dirs: Path) -> None:
    for d in dirs:
        for point in sorted(_mounts_under(str(d)), reverse=True):
            ns.umount(point)
        shutil.rmtree(d, ignore_errors=True)
