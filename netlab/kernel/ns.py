"""Namespace primitives on libc (Python 3.11 has no os.setns/os.unshare).

setns/unshare here act on the calling *thread* only; every function that enters a
namespace returns to the one it came from before it returns, also on error.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None
          ) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       flags, data.encode() if data else None),
           f"mount {source} on {target}")


def umount(target: str) -> None:
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # not a mount point / gone: nothing to do
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def ensure_shared_dir(path: Path) -> None:
    """Make `path` a shared mount point, as `ip netns add` does for /run/netns, so that
    unmounting a namespace file here also unmounts it in mount namespaces made later
    (a pod's mount namespace would otherwise pin every lab's network namespaces)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o755)
    try:
        mount("", str(path), "none", MS_SHARED | MS_REC)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        mount(str(path), str(path), "none", MS_BIND | MS_REC)
        mount("", str(path), "none", MS_SHARED | MS_REC)


def ensure_state_tmpfs(path: Path) -> None:
    """Lab state lives on a tmpfs, like the rest of /run on most systems: it disappears
    with the namespaces it describes at reboot, and a pod's files cost no disk writes
    (on a machine whose /run is on disk, that is most of the cost of a pod)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not os.path.ismount(path):
        mount("netlab", str(path), "tmpfs", 0, "mode=0700")
    mount("", str(path), "none", MS_SHARED | MS_REC)


def ensure_lab_tmpfs(path: Path) -> None:
    """A lab's state dir is a tmpfs of its own, so `down` detaches it, with every UTS
    namespace file bound in it, in one lazy unmount: one mount teardown instead of an
    unmount per UTS file and an unlink per file (about 5,000 for 400 sandboxed pods).
    A dir that already holds files (a lab made before this layout) is left as it is."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.path.ismount(path) or next(os.scandir(path), None) is not None:
        return
    mount("netlab", str(path), "tmpfs", 0, "mode=0700")


def detach_tree(path: Path) -> None:
    """Lazily unmount the mount at `path` and every mount under it (MNT_DETACH detaches the
    whole subtree; the memory is freed once no process uses it)."""
    for _ in range(8):  # a mount stacked on it by a racing `up` comes off too
        if not os.path.ismount(path):
            return
        umount(str(path))


@contextlib.contextmanager
def entered(netns_path: str) -> Iterator[None]:
    """Run the body with this thread in the network namespace at `netns_path`."""
    with open("/proc/thread-self/ns/net") as here, open(netns_path) as there:
        setns(there.fileno(), CLONE_NEWNET)
        try:
            yield
        finally:
            setns(here.fileno(), CLONE_NEWNET)


def write_sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # no buffered text file: 3 syscalls
    except FileNotFoundError:
        if "ipv6" not in key:  # kernel without IPv6: nothing to turn off
            raise
        return
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def create(netns_path: Path, uts_path: Path | None = None, hostname: str | None = None,
           sysctls: tuple[tuple[str, str], ...] = (), on_inside=None,
           home: tuple[int, int] | None = None):
    """Create a network namespace bound at `netns_path` (like `ip netns add`), optionally
    a UTS namespace with `hostname` bound at `uts_path`; write `sysctls` inside it and
    call `on_inside()` there (e.g. to open a netlink socket in it). Returns its result.
    `home`: fds of the calling thread's own network and UTS namespaces, to return to (a
    caller making many namespaces opens them once); opened here if not given."""
    if home is None:
        with open("/proc/thread-self/ns/net") as net_here, \
                open("/proc/thread-self/ns/uts") as uts_here:
            return create(netns_path, uts_path, hostname, sysctls, on_inside,
                          (net_here.fileno(), uts_here.fileno()))
    flags = CLONE_NEWNET | (CLONE_NEWUTS if hostname else 0)
    netns_path.touch(mode=0o444, exist_ok=False)
    if uts_path is not None:
        uts_path.touch(mode=0o444, exist_ok=False)
    unshare(flags)
    try:
        mount("/proc/thread-self/ns/net", str(netns_path), None, MS_BIND)
        if hostname:
            sethostname(hostname)
            assert uts_path is not None
            mount("/proc/thread-self/ns/uts", str(uts_path), None, MS_BIND)
        for key, value in sysctls:
            write_sysctl(key, value)
        return on_inside() if on_inside else None
    finally:
        setns(home[0], CLONE_NEWNET)
        if hostname:
            setns(home[1], CLONE_NEWUTS)


def remove_bound(path: Path | str) -> None:
    """Unmount and remove a namespace file (the namespace dies with its last user)."""
    umount(str(path))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None
