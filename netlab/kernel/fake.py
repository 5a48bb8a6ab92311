"""An in-memory kernel port: namespaces, links, addresses, routes, neighbours, FDB entries,
nftables (netlab.nft.fake), the lab's files and processes, held as data and refused where
Linux refuses (a namespace that exists, a link in a missing namespace, an address on a
missing link, a duplicate address). `fail` makes the Nth call of an operation raise, so every
step of a convergence can be made to fail in a test and its rollback checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from netlab.errors import KernelError
from netlab.intents import (
    Address,
    Certificate,
    Fdb,
    Link,
    Neighbour,
    Netns,
    NetworkIntent,
    Process,
    ReadyWhen,
    Route,
    Workload,
)
from netlab.kernel.port import Progress, Started
from netlab.nft.fake import FakeNft


@dataclass
class _Netns:
    hostname: str | None
    links: dict[int, Link] = field(default_factory=dict)
    peers: dict[int, tuple[str, int]] = field(default_factory=dict)  # veth -> (netns, index)
    addresses: set[tuple[int, str]] = field(default_factory=set)
    routes: set[tuple[str, int, str | None]] = field(default_factory=set)
    neighbours: set[tuple[int, str, str]] = field(default_factory=set)
    fdb: set[tuple[int, str, str]] = field(default_factory=set)
    nft: FakeNft = field(default_factory=FakeNft)

    def forget_link(self, index: int) -> None:
        self.links.pop(index, None)
        self.peers.pop(index, None)
        self.addresses = {a for a in self.addresses if a[0] != index}
        self.routes = {r for r in self.routes if r[1] != index}
        self.neighbours = {n for n in self.neighbours if n[0] != index}
        self.fdb = {f for f in self.fdb if f[0] != index}


class FakeKernel:
    def __init__(self, lab: str, fail: dict[str, int] | None = None) -> None:
        self.lab = lab
        self.netns: dict[str, _Netns] = {}
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = set()
        self.processes: dict[int, Process] = {}
        self.loads: dict[str, Workload] = {}  # what the agent was given
        self.not_ready: set[tuple[str, str]] = set()  # (pod, container) that never get ready
        self.reloads: list[int] = []
        self.announced: list[tuple[str, str]] = []
        self.forgotten: list[tuple[str, tuple[str, int]]] = []
        self.calls: dict[str, int] = {}
        self.prepared: list[str] = []  # pods whose sandboxes were asked for ahead
        self.cni_attached: dict[str, tuple[str, ...]] = {}  # CNI mode: container id -> IPs
        self.iptables: dict[tuple[str, str], list[str]] = {}  # (netns, family) -> restores
        self.fail = dict(fail or {})  # operation -> the call number (1-based) that fails
        self._pid = 1000

    def _call(self, op: str, what: str = "") -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        if self.fail.get(op) == self.calls[op]:
            raise KernelError(f"injected failure: {op} #{self.calls[op]} {what}".rstrip())

    def _ns(self, name: str, what: str) -> _Netns:
        if name not in self.netns:
            raise KernelError(f"{what}: namespace {name} does not exist")
        return self.netns[name]

    # --- network ------------------------------------------------------------------------

    def create(self, intents: Sequence[NetworkIntent], progress: Progress | None = None,
               namespaces_made: Callable[[], None] | None = None) -> None:
        hook = namespaces_made
        for intent in intents:
            if hook is not None and not isinstance(intent, Netns):
                hook, _ = None, hook()
            self._call("create", intent.text())
            self._create(intent)
            if progress:
                progress(1)
        if hook is not None:
            hook()

    def _create(self, i: NetworkIntent) -> None:
        if isinstance(i, Netns):
            if i.name in self.netns:
                raise KernelError(f"{i.text()}: exists")
            self.netns[i.name] = _Netns(i.hostname)
            self.netns[i.name].links[1] = Link(i.name, "lo", 1, "loopback", up=False)
            return
        ns = self._ns(i.netns, i.text())
        if isinstance(i, Link):
            if not i.kind:
                if i.index not in ns.links:
                    raise KernelError(f"{i.text()}: no link with index {i.index}")
                return
            if i.index in ns.links:
                raise KernelError(f"{i.text()}: index {i.index} is taken")
            if i.master is not None and i.master not in ns.links:
                raise KernelError(f"{i.text()}: no master {i.master}")
            ns.links[i.index] = i
            if i.peer is not None:
                peer_ns = self._ns(i.peer.netns, i.text())
                if i.peer.index in peer_ns.links:
                    raise KernelError(f"{i.text()}: peer index {i.peer.index} is taken")
                peer_ns.links[i.peer.index] = Link(i.peer.netns, i.peer.name, i.peer.index,
                                                    "veth", mac=i.peer.mac)
                ns.peers[i.index] = (i.peer.netns, i.peer.index)
                peer_ns.peers[i.peer.index] = (i.netns, i.index)
            return
        index = i.oif if isinstance(i, Route) else i.index
        if index not in ns.links:
            raise KernelError(f"{i.text()}: no link with index {index}")
        if isinstance(i, Address):
            if (i.index, i.cidr) in ns.addresses:
                raise KernelError(f"{i.text()}: File exists")
            ns.addresses.add((i.index, i.cidr))
        elif isinstance(i, Route):
            ns.routes.add((i.dst, i.oif, i.gateway))
        elif isinstance(i, Neighbour):
            ns.neighbours.add((i.index, i.ip, i.mac))
        elif isinstance(i, Fdb):
            ns.fdb.add((i.index, i.mac, i.dst))

    def delete_links(self, netns: str, links: Sequence[tuple[str, int]]) -> None:
        self._call("delete_links", netns)
        ns = self.netns.get(netns)
        if ns is None:
            return
        for _, index in links:
            peer = ns.peers.get(index)
            ns.forget_link(index)
            if peer and peer[0] in self.netns:
                self.netns[peer[0]].forget_link(peer[1])

    def remove_netns(self, netns: Sequence[str]) -> None:
        for name in netns:
            self._call("remove_netns", name)
            ns = self.netns.pop(name, None)
            if ns is None:
                continue
            for other, index in ns.peers.values():  # a veth dies with its namespace
                if other in self.netns:
                    self.netns[other].forget_link(index)

    def delete_addresses(self, netns: str, addresses: Sequence[Address]) -> None:
        if not addresses:
            return
        self._call("delete_addresses", netns)
        ns = self._ns(netns, "delete address")
        for a in addresses:
            if (a.index, a.cidr) not in ns.addresses:
                raise KernelError(f"{a.text()}: Cannot assign requested address")
        ns.addresses -= {(a.index, a.cidr) for a in addresses}

    def nft(self, netns: str, script: str) -> None:
        self._call("nft", netns)
        self._ns(netns, "nft").nft.apply(script)

    def forget_udp_flows(self, netns: str, replies_from: Sequence[tuple[str, int]]) -> None:
        self._call("forget_udp_flows", netns)
        self.forgotten += [(netns, f) for f in replies_from]

    def iptables_restore(self, netns: str, family: str, text: str) -> None:
        self._call("iptables_restore", netns)
        self.iptables.setdefault((netns, family), []).append(text)

    def announce(self, netns: str, dev: str, ips: Sequence[str]) -> None:
        if ips:
            self._call("announce", netns)
            self.announced += [(netns, ip) for ip in ips]

    # --- CNI mode: an IPAM like host-local's (the next free address of each range) -------

    def cni_add(self, config: str, bin_dirs: str, timeout: float,
                attachments: Sequence[Any]) -> dict[str, tuple[str, ...]]:
        import ipaddress
        import json

        out = {}
        for a in attachments:
            self._call("cni_add", a.pod)
            if a.netns not in self.netns:
                raise KernelError(f"CNI ADD {a.pod}: no namespace {a.netns}")
            ips = []
            for (rng,) in json.loads(a.capability_args)["ipRanges"]:
                net = ipaddress.ip_network(rng["subnet"])
                taken = {ip for ips_ in self.cni_attached.values() for ip in ips_}
                ips.append(next(str(h) for h in list(net.hosts())[1:] if str(h) not in taken))
            self.cni_attached[a.container_id] = tuple(ips)
            out[a.pod] = tuple(ips)
        return out

    def cni_del(self, config: str, bin_dirs: str, timeout: float,
                attachments: Sequence[Any]) -> None:
        for a in attachments:
            self._call("cni_del", a.pod)
            self.cni_attached.pop(a.container_id, None)

    def cni_check(self, config: str, bin_dirs: str, timeout: float, attachment: Any) -> None:
        if attachment.container_id not in self.cni_attached:
            raise KernelError(f"CNI CHECK {attachment.pod}: not attached")

    # --- files --------------------------------------------------------------------------

    def path(self, rel: str) -> str:
        return f"/fake/{self.lab}/{rel}"

    def read_file(self, rel: str) -> bytes | None:
        return self.files.get(rel)

    def write_file(self, rel: str, data: bytes) -> None:
        self._call("write_file", rel)
        self.files[rel] = data

    def rename(self, src: str, dst: str) -> None:
        self._call("rename", src)
        self.files[dst] = self.files.pop(src)

    def remove_tree(self, rel: str) -> None:
        self._call("remove_tree", rel)
        for path in [p for p in self.files if p == rel or p.startswith(rel + "/")]:
            del self.files[path]
        self.dirs = {d for d in self.dirs if not (d == rel or d.startswith(rel + "/"))}

    def make_directory(self, rel: str) -> None:
        self.dirs.add(rel)

    def make_certificate(self, cert: Certificate) -> None:
        if cert.cert not in self.files:
            self._call("make_certificate", cert.cert)
            self.files[cert.cert] = f"CERT {','.join(cert.hosts)}".encode()
            self.files[cert.key] = b"KEY"

    # --- processes ----------------------------------------------------------------------

    def prepare(self) -> None:
        pass

    def prepare_pods(self, desired: dict[str, Workload]) -> None:
        self._call("prepare_pods")
        self.prepared += sorted(desired)

    def workloads(self, desired: dict[str, Workload]) -> dict[tuple[str, str], Started]:
        """As the agent does it: only the difference (netlab.runtime.workloads)."""
        from netlab.runtime.workloads import changes

        self._call("workloads")
        diff = changes(self.loads, desired)
        for serve in diff.serve:
            self._ns(serve.netns, f"serve {serve.pod}")
        for p in diff.start:
            self._ns(p.netns, f"run {p.container}")
        for owner, container in diff.stop:
            self._kill(owner, container)
        for p in diff.start:
            self._pid += 1
            self.processes[self._pid] = p
        self.loads = dict(desired)
        return {(p.pod, p.container): Started(pid, 1) for pid, p in self.processes.items()}

    def release(self, owners: Sequence[str]) -> None:
        self._call("release")
        for owner in owners:
            self.loads.pop(owner, None)
            for pid in [pid for pid, p in self.processes.items() if p.pod == owner]:
                del self.processes[pid]

    def _kill(self, owner: str, container: str) -> None:
        for pid in [pid for pid, p in self.processes.items()
                    if (p.pod, p.container) == (owner, container)]:
            del self.processes[pid]

    def stop(self, processes: Sequence[Started], netns: Sequence[str] = ()) -> None:
        self._call("stop")
        inside = set(netns)
        for s in processes:
            self.processes.pop(s.pid, None)
        for pid, p in list(self.processes.items()):
            if p.netns in inside:
                del self.processes[pid]

    def alive(self, s: Started) -> bool:
        return s.pid in self.processes

    def ready(self, when: ReadyWhen) -> bool:
        return (when.pod, when.container) not in self.not_ready

    def server_pid(self, netns: str, pidfile: str) -> int | None:
        return next((pid for pid, p in self.processes.items() if p.netns == netns), None)

    def check_config(self, netns: str, argv: Sequence[str]) -> str | None:
        self._call("check_config", netns)
        return None

    def reload(self, pid: int) -> None:
        self._call("reload", str(pid))
        self.reloads.append(pid)

    def close(self) -> None:
        pass

    # --- for tests ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the fake holds, comparable between runs (pids left out)."""
        return {
            "netns": {name: {"hostname": ns.hostname,
                             "links": sorted(l_.text() for l_ in ns.links.values()),
                             "addresses": sorted(ns.addresses), "routes": sorted(
                                 ns.routes, key=str), "neighbours": sorted(ns.neighbours),
                             "fdb": sorted(ns.fdb), "nft": ns.nft.dump()}
                      for name, ns in sorted(self.netns.items())},
            "files": dict(sorted(self.files.items())),
            "processes": sorted((p.pod, p.container, p.argv) for p in self.processes.values()),
            "served": sorted((k, w.serve.ports) for k, w in self.loads.items() if w.serve),
        }
