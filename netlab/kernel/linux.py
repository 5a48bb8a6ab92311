"""The gateway to the kernel: the only code that creates or removes namespaces, links,
addresses, routes and processes. Features hand it intents; it never decides what to build.

Every object it makes is in a namespace named `netlab.<lab>.*` or under the lab's state
directory, so `destroy_lab` can find all of it from the names alone (after a crash too).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from netlab import names
from netlab.errors import InputError, KernelError, NetlabError
from netlab.intents import (
    Address,
    Certificate,
    CniAttachment,
    Intent,
    Link,
    Netns,
    Process,
    ReadyWhen,
    Workload,
)

# rtnl (pyroute2: ~0.1 s to import) is imported where it is used: the lab's agent, whose
# start `up` waits for, converges rules and files but makes no links.
from netlab.kernel import ns, procs  # submodules
from netlab.kernel.port import Started
from netlab.kernel.sockets import knock

Progress = Callable[[int], None]


def netns_path(name: str) -> Path:
    return names.NETNS_DIR / name


def uts_path(lab: str, netns: str) -> Path:
    return names.lab_dir(lab) / "uts" / netns


def raise_fd_limit(want: int = 1 << 16) -> int:
    """Open-file limit up to `want` (root may raise the hard limit too): a namespace batch
    holds a netlink socket per namespace, a probe batch a socket per probe."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, want)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
        return target
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Kernel:
    """The Linux side of the kernel port (netlab.kernel.port) for one lab: netlink, nft,
    processes and the lab's files. Not thread-safe; one per operation."""

    MAX_OPEN_SOCKETS = 256

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self._socks: OrderedDict[str, socket.socket] = OrderedDict()
        self._woken: dict[str, float] = {}  # unix socket -> when _wake last connected to it
        raise_fd_limit()
        ns.ensure_shared_dir(names.NETNS_DIR)
        make_lab_dir(lab)
        (names.lab_dir(lab) / "uts").mkdir(exist_ok=True, mode=0o700)
        self.root = names.lab_dir(lab)

    # --- CNI mode ----------------------------------------------------------------------

    def _cni(self, config: str, bin_dirs: str, timeout: float, node_netns: str
             ) -> tuple[Any, Any]:
        """The runtime of one node (its cache and host-local's dataDir in the lab's state,
        never the host's /var/lib/cni) and the list with that dataDir."""
        from netlab.cni import conflist_with_data_dir, parse_conflist
        from netlab.kernel.cni import CniRuntime

        home = cni_dir(self.lab) / node_netns
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        (cni_dir(self.lab) / "path").write_text(bin_dirs)  # for `down` after a crash
        conflist, _ = conflist_with_data_dir(parse_conflist(config), str(home / "host-local"))
        return CniRuntime(bin_dirs.split(":"), netns_path(node_netns), home, timeout), conflist

    def _by_node(self, attachments: Sequence[CniAttachment], each: Callable[[str, list], Any]
                 ) -> list[Any]:
        """`each(node_netns, its attachments)` for every node at once (a node's own calls one
        after the other, as one kubelet makes them)."""
        nodes: dict[str, list[CniAttachment]] = {}
        for a in attachments:
            nodes.setdefault(a.node_netns, []).append(a)
        with ThreadPoolExecutor(max_workers=min(8, len(nodes) or 1)) as pool:
            return list(pool.map(lambda kv: each(*kv), nodes.items()))

    def cni_add(self, config: str, bin_dirs: str, timeout: float,
                attachments: Sequence[CniAttachment]) -> dict[str, tuple[str, ...]]:
        checked: set[str] = set()

        def node(node_netns: str, mine: list[CniAttachment]) -> dict[str, tuple[str, ...]]:
            runtime, conflist = self._cni(config, bin_dirs, timeout, node_netns)
            if node_netns not in checked:  # the plugins can speak the list's version
                problems = runtime.version_problems(conflist)
                if problems:
                    raise InputError("the CNI network cannot run: " + "; ".join(problems))
                checked.add(node_netns)
            out = {}
            for a in mine:
                path = str(netns_path(a.netns))
                result = runtime.add(conflist, a.container_id, path, a.ifname, a.cni_args,
                                     json.loads(a.capability_args))
                out[a.pod] = result.pod_ips(a.ifname, path)
            return out

        found: dict[str, tuple[str, ...]] = {}
        for part in self._by_node(attachments, node):
            found |= part
        return found

    def cni_del(self, config: str, bin_dirs: str, timeout: float,
                attachments: Sequence[CniAttachment]) -> None:
        def node(node_netns: str, mine: list[CniAttachment]) -> None:
            runtime, conflist = self._cni(config, bin_dirs, timeout, node_netns)
            for a in mine:
                runtime.delete(conflist, a.container_id, str(netns_path(a.netns)), a.ifname,
                               a.cni_args, json.loads(a.capability_args))
        self._by_node(attachments, node)

    def cni_check(self, config: str, bin_dirs: str, timeout: float,
                  attachment: CniAttachment) -> None:
        runtime, conflist = self._cni(config, bin_dirs, timeout, attachment.node_netns)
        runtime.check(conflist, attachment.container_id, str(netns_path(attachment.netns)),
                      attachment.ifname, attachment.cni_args,
                      json.loads(attachment.capability_args))

    # --- sockets -----------------------------------------------------------------------

    def _remember(self, netns: str, sock: socket.socket) -> None:
        self._socks[netns] = sock
        while len(self._socks) > self.MAX_OPEN_SOCKETS:
            _, old = self._socks.popitem(last=False)
            old.close()

    def _socket(self, netns: str) -> socket.socket:
        from netlab.kernel import rtnl
        if netns in self._socks:
            self._socks.move_to_end(netns)
            return self._socks[netns]
        with ns.entered(str(netns_path(netns))):
            sock = rtnl.open_socket()
        self._remember(netns, sock)
        return sock

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()

    # --- applying intents ---------------------------------------------------------------

    def create(self, intents: Sequence[Intent], progress: Progress | None = None,
               namespaces_made: Callable[[], None] | None = None) -> None:
        """Apply network intents in order. Consecutive netlink intents for one namespace go
        to the kernel as one batch; namespaces are created one by one, and
        `namespaces_made` is called once they are (before the first batch)."""
        batch: list[Intent] = []
        hook = namespaces_made

        def flush() -> None:
            if batch:
                self._send(batch)
                if progress:
                    progress(len(batch))
                batch.clear()

        # Namespaces come first and their batches after (compile.order): keep the socket
        # opened in each new namespace until its batch is sent, instead of evicting it and
        # entering the namespace again to open another (an LRU over 256 sockets evicts every
        # one of them once a call makes more namespaces than that).
        made = sum(1 for i in intents if isinstance(i, Netns))
        cap = self.MAX_OPEN_SOCKETS
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.MAX_OPEN_SOCKETS = max(cap, min(made + len(self._socks), soft // 2))
        try:
            with open("/proc/thread-self/ns/net") as net, open("/proc/thread-self/ns/uts") as uts:
                home = (net.fileno(), uts.fileno())
                for intent in intents:
                    if hook is not None and not isinstance(intent, Netns):
                        hook, _ = None, hook()
                    if isinstance(intent, Netns):
                        flush()
                        self.create_netns(intent, home)
                        if progress:
                            progress(1)
                    elif isinstance(intent, Process):
                        raise KernelError(f"{intent.text()}: processes are started with spawn()")
                    else:
                        if batch and batch[-1].netns != intent.netns:
                            flush()
                        batch.append(intent)
            flush()
            if hook is not None:
                hook()
        finally:
            self.MAX_OPEN_SOCKETS = cap
            while len(self._socks) > self.MAX_OPEN_SOCKETS:
                self._socks.popitem(last=False)[1].close()

    def create_netns(self, intent: Netns, home: tuple[int, int] | None = None) -> None:
        """`home`: fds of this thread's network and UTS namespaces (see ns.create)."""
        from netlab.kernel import rtnl
        path = netns_path(intent.name)
        uts = uts_path(self.lab, intent.name) if intent.hostname else None
        try:
            sock = ns.create(path, uts, intent.hostname, intent.sysctls, rtnl.open_socket, home)
        except FileExistsError as e:
            raise KernelError(f"{intent.text()}: {path} already exists (a lab of that name is "
                              "up, or left over: run `netlab down` for it)") from e
        except OSError as e:
            with contextlib.suppress(OSError):
                ns.remove_bound(path)
                if uts:
                    ns.remove_bound(uts)
            raise KernelError(f"{intent.text()}: {e}") from e
        self._remember(intent.name, sock)

    def _send(self, batch: list[Intent]) -> None:
        from netlab.kernel import rtnl
        netns = batch[0].netns
        peer_fds: dict[str, int] = {}
        try:
            for intent in batch:
                if isinstance(intent, Link) and intent.peer and intent.peer.netns not in peer_fds:
                    peer_fds[intent.peer.netns] = os.open(netns_path(intent.peer.netns),
                                                          os.O_RDONLY | os.O_CLOEXEC)
            rtnl.send_batch(self._socket(netns), rtnl.encode(batch, peer_fds))
        except FileNotFoundError as e:
            raise KernelError(f"namespace missing while configuring {netns}: {e}") from e
        finally:
            for fd in peer_fds.values():
                os.close(fd)

    def delete_links(self, netns: str, indices: Sequence[tuple[str, int]]) -> None:
        """Remove links by (name, index); a veth takes its peer with it."""
        from pyroute2.netlink.rtnl import RTM_DELLINK
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

        from netlab.kernel import rtnl

        msgs = []
        for name, index in indices:
            m = ifinfmsg()
            m["index"] = index
            m["header"]["type"] = RTM_DELLINK
            m["header"]["flags"] = rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK
            m.encode()
            msgs.append((bytes(m.data), Link(netns, name, index, "", up=False)))
        with contextlib.suppress(KernelError):  # already gone is fine
            rtnl.send_batch(self._socket(netns), msgs)

    def delete_addresses(self, netns: str, addresses: Sequence[Address]) -> None:
        from pyroute2.netlink.rtnl import RTM_DELADDR

        from netlab.kernel import rtnl

        msgs = []
        for a in addresses:
            m, _ = rtnl._address(a)
            m["header"]["type"] = RTM_DELADDR
            m["header"]["flags"] = rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK
            m.encode()
            msgs.append((bytes(m.data), a))
        if msgs:
            rtnl.send_batch(self._socket(netns), msgs)

    def announce(self, netns: str, dev: str, ips: Sequence[str]) -> None:
        """Gratuitous ARP (a request and a reply, as MetalLB's L2 mode sends), for an IPv6
        address an unsolicited Neighbour Advertisement, for addresses a node has just taken
        over: hosts that cached another node's MAC for them update it at
        once instead of sending to the old node until their ARP entry expires."""
        if not ips:
            return
        from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
        from scapy.layers.l2 import ARP, Ether

        with ns.entered(str(netns_path(netns))):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        with s:
            s.bind((dev, 0))
            mac = ":".join(f"{b:02x}" for b in s.getsockname()[4])
            for ip in ips:
                if ":" in ip:  # IPv6: an unsolicited Neighbour Advertisement to all nodes,
                    # override flag set (MetalLB's speaker sends the same)
                    s.send(bytes(Ether(src=mac, dst="33:33:00:00:00:01")
                                 / IPv6(src=ip, dst="ff02::1", hlim=255)
                                 / ICMPv6ND_NA(tgt=ip, R=0, S=0, O=1)
                                 / ICMPv6NDOptDstLLAddr(lladdr=mac)))
                    continue
                for op in ("who-has", "is-at"):
                    s.send(bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
                                 / ARP(op=op, hwsrc=mac, psrc=ip, hwdst="ff:ff:ff:ff:ff:ff",
                                       pdst=ip)))

    def forget_udp_flows(self, netns: str, replies_from: Sequence[tuple[str, int]]) -> None:
        """Delete the UDP conntrack entries whose replies come from these (address, port):
        flows DNATed to an endpoint that is gone (`conntrack -D`, as kube-proxy runs it)."""
        if not replies_from:
            return
        with ns.entered(str(netns_path(netns))):
            for ip, port in replies_from:
                # exit 1 with "0 flow entries have been deleted" is the usual, fine answer
                subprocess.run(["conntrack", "-D", "-p", "udp", "--reply-src", ip,
                                "--reply-port-src", str(port)], capture_output=True, check=False)

    def nft(self, netns: str, script: str) -> None:
        """Load an nftables script into a namespace: one `nft -f` run, one transaction
        (all of it applies, or none of it)."""
        Kernel.nft_in(netns, script)

    def iptables_restore(self, netns: str, family: str, text: str) -> None:
        from netlab.features.kubeproxy_iptables import RESTORE_FLAGS

        tool = "ip6tables-restore" if family == "IPv6" else "iptables-restore"
        with ns.entered(str(netns_path(netns))):  # -w: iptables' lock (a file, no state)
            r = subprocess.run([tool, "-w", *RESTORE_FLAGS], input=text, capture_output=True,
                               text=True, check=False)
        if r.returncode != 0:
            raise KernelError(f"{tool} in {netns}: {r.stderr.strip()}")

    @staticmethod
    def set_elements(netns: str, family: str, table: str, name: str) -> list[list[Any]]:
        """The elements of an nft set in a namespace, each as the list of its (concatenated)
        parts; [] if the set is not there."""
        with ns.entered(str(netns_path(netns))):
            r = subprocess.run(["nft", "-j", "list", "set", family, table, name],
                               capture_output=True, text=True, check=False)
        if r.returncode != 0:
            return []
        out = []
        for obj in json.loads(r.stdout).get("nftables", []):
            for e in (obj.get("set") or {}).get("elem", []):
                val = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
                out.append(val["concat"] if isinstance(val, dict) and "concat" in val
                           else [val])
        return out

    @staticmethod
    def nft_in(netns: str, script: str) -> None:
        with ns.entered(str(netns_path(netns))):
            r = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True,
                               check=False)
        if r.returncode != 0:
            raise KernelError(f"nft in {netns}: {r.stderr.strip()}")

    def remove_netns(self, names_: Sequence[str]) -> None:
        for name in names_:
            sock = self._socks.pop(name, None)
            if sock:
                sock.close()
            ns.remove_bound(netns_path(name))
            ns.remove_bound(uts_path(self.lab, name))

    # --- the lab's files ------------------------------------------------------------------

    def path(self, rel: str) -> str:
        return str(self.root / rel)

    def read_file(self, rel: str) -> bytes | None:
        try:
            return (self.root / rel).read_bytes()
        except FileNotFoundError:
            return None

    def write_file(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def rename(self, src: str, dst: str) -> None:
        os.replace(self.root / src, self.root / dst)

    def remove_tree(self, rel: str) -> None:
        path = self.root / rel
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def make_directory(self, rel: str) -> None:
        (self.root / rel).mkdir(parents=True, exist_ok=True)

    def make_certificate(self, cert: Certificate) -> None:
        if not (self.root / cert.cert).exists():
            (self.root / cert.cert).parent.mkdir(parents=True, exist_ok=True)
            procs.self_signed_certificate(self.root / cert.cert, self.root / cert.key,
                                          cert.hosts)

    # --- processes ------------------------------------------------------------------------

    def prepare(self) -> None:
        pass  # netlab.runtime.client.LabPort starts the lab's agent here

    def prepare_pods(self, desired: dict[str, Workload]) -> None:
        pass  # the lab's agent prepares pods (netlab.runtime.client.LabPort)

    def stop(self, processes: Sequence[Started], netns: Sequence[str] = ()) -> None:
        inodes = {i for i in (ns.inode(netns_path(n)) for n in netns) if i}
        procs.kill_verified(list(processes), inodes)

    def alive(self, s: Started) -> bool:
        return procs.alive(s.pid, s.starttime)

    def ready(self, when: ReadyWhen) -> bool:
        text = (self.read_file(when.log) or b"").decode(errors="replace")
        if when.lines == 0:
            if not text:
                return False
        elif text.count("listening on ") + text.count("cannot listen on ") < when.lines:
            return False
        if not when.routes or not (set(when.routes) - self.route_prefixes(when.netns)):
            return True
        self._wake(when.wake)
        return False

    def _wake(self, paths: Sequence[str], every: float = 0.02) -> None:
        """Connect to these unix sockets (lab-relative) and hang up, each at most once per
        `every` seconds: a daemon's loop wakes for the connection (ReadyWhen.wake)."""
        now = time.monotonic()
        for path in paths:
            if now - self._woken.get(path, 0.0) < every:
                continue
            self._woken[path] = now
            knock(self.root / path)

    def route_prefixes(self, netns: str) -> set[str]:
        """The destinations of a namespace's main routing table, both families, as
        prefixes ("10.244.1.0/24"), dumped over its netlink socket."""
        from netlab.kernel import rtnl

        return rtnl.route_destinations(self._socket(netns))

    def server_pid(self, netns: str, pidfile: str) -> int | None:
        try:
            pid = int((self.read_file(pidfile) or b"").decode().strip())
        except ValueError:
            return None
        inode = ns.inode(netns_path(netns))
        return pid if inode and pid in procs.pids_in_netns({inode}) else None

    def check_config(self, netns: str, argv: Sequence[str]) -> str | None:
        r = procs.run_in(netns_path(netns), list(argv))
        return None if r.returncode == 0 else (r.stderr.strip() or f"exit {r.returncode}")

    def reload(self, pid: int) -> None:
        procs.reload(pid)


class NftTrace:
    """`meta nftrace` for matching packets in some namespaces, and what `nft monitor trace`
    printed meanwhile: `with NftTrace({netns: match}) as t: ...send...`, then `t.lines`
    (netns, line). The trace table is removed afterwards; the monitors are our own
    children, stopped by pid."""

    TABLE = "netlab-trace"

    def __init__(self, matches: dict[str, str], family: str = "ip") -> None:
        self.matches = matches
        self.family = family  # the trace table's: ip, or ip6 to trace IPv6 packets
        self.lines: list[tuple[str, str]] = []
        self._monitors: list[tuple[str, subprocess.Popen]] = []

    def __enter__(self) -> NftTrace:
        import time

        for netns in self.matches:
            with ns.entered(str(netns_path(netns))):
                mon = subprocess.Popen(["nft", "monitor", "trace"], stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, text=True)
            self._monitors.append((netns, mon))
        time.sleep(0.15)  # let the monitors subscribe before anything is traced
        for netns, match in self.matches.items():
            t = f"{self.family} {self.TABLE}"
            script = (f"add table {t}\n"
                      f"add chain {t} pre {{ type filter hook prerouting priority "
                      f"-400 ; }}\n"
                      f"add rule {t} pre {match} meta nftrace set 1\n"
                      f"add chain {t} out {{ type filter hook output priority "
                      f"-400 ; }}\n"
                      f"add rule {t} out {match} meta nftrace set 1\n")
            Kernel.nft_in(netns, script)
        return self

    def __exit__(self, *exc: object) -> None:
        import time

        time.sleep(0.1)
        for netns in self.matches:
            with contextlib.suppress(KernelError):
                Kernel.nft_in(netns, f"delete table {self.family} {self.TABLE}\n")
        for netns, mon in self._monitors:
            mon.terminate()
            out, _ = mon.communicate(timeout=5)
            self.lines += [(netns, line) for line in out.splitlines() if line.startswith("trace")]


# --- finding and destroying what a lab owns ----------------------------------------------


def make_lab_dir(lab: str) -> Path:
    """The lab's state dir (/run/netlab/LAB), a tmpfs of its own inside netlab's (see
    ns.ensure_lab_tmpfs); made before the lab's first file."""
    ns.ensure_state_tmpfs(names.STATE_ROOT)
    ns.ensure_lab_tmpfs(names.lab_dir(lab))
    return names.lab_dir(lab)


def lab_netns(lab: str) -> list[str]:
    prefix = names.lab_prefix(lab)
    if not names.NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in names.NETNS_DIR.iterdir() if p.name.startswith(prefix))


def all_labs() -> list[str]:
    """Every lab with a namespace or a state directory on this machine."""
    found: set[str] = set()
    if names.NETNS_DIR.is_dir():
        for p in names.NETNS_DIR.iterdir():
            lab = names.lab_of_netns(p.name)
            if lab:
                found.add(lab)
    if names.STATE_ROOT.is_dir():
        found.update(p.name for p in names.STATE_ROOT.iterdir()
                     if p.is_dir() and names.is_dns1123_label(p.name))
    return sorted(found)


def lab_mounts(lab: str) -> list[str]:
    """Mount points of this lab (namespace files), from /proc/self/mountinfo."""
    prefixes = (str(names.NETNS_DIR / names.lab_prefix(lab)), str(names.lab_dir(lab)) + "/")
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefixes):
                out.append(point)
    return out


def lab_pids(lab: str) -> list[int]:
    """Every process inside the lab's namespaces, and its agent."""
    inodes = {i for i in (ns.inode(netns_path(n)) for n in lab_netns(lab)) if i}
    return sorted({*(procs.pids_in_netns(inodes) if inodes else []), *lab_agents(lab)})


def lab_agents(lab: str) -> list[int]:
    """Agent processes of this lab (`python -m netlab.runtime.agent LAB`), found by their
    command line: for reporting leftovers, never for killing (kills go by recorded pid)."""
    want = [b"-m", b"netlab.runtime.agent", lab.encode()]
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")[:-1]
            except OSError:
                continue
            if argv[-3:] == want:
                found.append(int(entry.name))
    return found


def cni_dir(lab: str) -> Path:
    """CNI mode's state: per node namespace, libcni's cache and host-local's dataDir."""
    return names.lab_dir(lab) / "cni"


def _cni_teardown(lab: str) -> None:
    """DEL every attachment a CNI-mode lab's caches hold, with the config each record
    keeps, in its node's namespace (still there): what `down` does, also after a crash.
    Failures are left: the namespaces and their devices go next anyway."""
    from netlab.kernel.cni import CniRuntime

    root = cni_dir(lab)
    try:
        bin_dirs = (root / "path").read_text().split(":")
    except OSError:
        return
    def node(home: Path) -> None:
        if netns_path(home.name).exists():
            with contextlib.suppress(NetlabError):
                CniRuntime(bin_dirs, netns_path(home.name), home).delete_from_cache()

    homes = sorted(p for p in root.iterdir() if p.is_dir())
    with ThreadPoolExecutor(max_workers=min(8, len(homes) or 1)) as pool:  # nodes at once
        list(pool.map(node, homes))


def destroy_lab(lab: str, recorded: Sequence[procs.Started] = ()) -> None:
    """Remove everything of `lab`: processes (recorded pids, then every process inside its
    namespaces), namespaces, UTS namespace files, state. Safe to run at any time, twice."""
    netns_names = lab_netns(lab)
    inodes = set()
    for name in netns_names:
        with contextlib.suppress(FileNotFoundError):
            inodes.add(os.stat(f"{names.NETNS_DIR}/{name}").st_ino)
    # the agent first, so it restarts nothing while the lab's processes are stopped
    agent = None
    with contextlib.suppress(OSError, ValueError):
        pid, start = (int(x) for x in (names.lab_dir(lab) / names.AGENT_PID_FILE).read_text()
                      .split())
        agent = procs.Started(pid, start)
        procs.kill_verified([agent], set())
    _wait_gone(_kill_lab_processes(list(recorded), inodes), inodes)
    if agent is not None:  # it runs in the host's namespaces: not among those waited for
        deadline = time.monotonic() + 5.0
        while procs.alive(agent.pid, agent.starttime) and time.monotonic() < deadline:
            time.sleep(0.002)
    if cni_dir(lab).exists():
        # CNI mode: the pods' namespaces go first (their veths with them), then DEL runs with
        # an empty CNI_NETNS, as containerd passes it for a sandbox already gone: the plugins
        # only release what they hold in the node (leases, rules): measured 4x faster
        for name in netns_names:
            if ".pod." in name:
                ns.remove_bound(netns_path(name))
        _cni_teardown(lab)
    lab_dir = names.lab_dir(lab)
    own_mount = os.path.ismount(lab_dir)
    if not own_mount:  # a lab dir made before it was a tmpfs of its own: its mounts one by one
        for point in sorted(lab_mounts(lab), reverse=True):
            if not point.startswith(f"{names.NETNS_DIR}/"):
                ns.umount(point)
    # Node namespaces hold the pod veths' host ends; removing pods first keeps each
    # namespace's teardown small. Order does not matter for correctness.
    # (Unmounting while the processes die, or from several threads, measured slower.)
    for name in sorted(netns_names, key=lambda n: ".pod." not in n):
        ns.remove_bound(f"{names.NETNS_DIR}/{name}")
    if own_mount:  # the state, pods' files and UTS namespace files in one lazy unmount
        ns.detach_tree(lab_dir)
        with contextlib.suppress(OSError):
            lab_dir.rmdir()
    # Otherwise `rm` deletes the state dir (much faster than Python's rmtree over a few
    # thousand entries), after the unmounts: every umount bumps the kernel's mount seqlock,
    # which sends rm's concurrent path lookups into retries.
    if lab_dir.exists():
        with contextlib.suppress(OSError):
            subprocess.run(["rm", "-rf", "--one-file-system", "--", str(names.lab_dir(lab))],
                           stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           close_fds=True, check=False)
    if names.lab_dir(lab).exists():  # no rm, or something was mounted or made meanwhile
        for point in sorted(lab_mounts(lab), reverse=True):
            ns.umount(point)
        shutil.rmtree(names.lab_dir(lab), ignore_errors=True)


def _kill_lab_processes(recorded: list[procs.Started], inodes: set[int]) -> list[int]:
    """SIGKILL every process inside the lab's network namespaces (one scan of /proc) and
    the recorded process groups that are still the same processes (a recorded pid found
    in the scan is the lab's, verified by its namespace, and killed with it: its group's
    other members are in the namespace too). The pids found, to wait for."""
    found = procs.pids_in_netns(inodes) if inodes else []
    seen = set(found)
    for s in recorded:
        if s.pid not in seen and s.starttime != 0 and _starttime(s.pid) == s.starttime:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(s.pid, signal.SIGKILL)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found


def _wait_gone(pids: list[int], inodes: set[int], timeout: float = 5.0) -> None:
    """Wait until the killed processes have left the lab's namespaces (polling just
    them), then scan /proc again (procs.kill_verified) for any started meanwhile. The
    namespace files are still mounted, so their inodes cannot be reused by another lab's
    namespaces while they identify the lab's processes."""
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        time.sleep(0.002)
        pids = [pid for pid in pids if procs.netns_of(pid) in inodes]
    procs.kill_verified([], inodes, max(0.1, deadline - time.monotonic()))


def _starttime(pid: int) -> int | None:
    """procs.starttime, read with one os.read (destroy_lab checks hundreds of them)."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        stat = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    fields = stat[stat.rindex(b")") + 2:].split()
    return None if fields[0] == b"Z" else int(fields[19])
