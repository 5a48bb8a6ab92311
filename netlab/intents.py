"""Kernel intents: what the lab wants the kernel to hold, as plain data.

Features render these from the Plan (pure); the kernel gateway is the only code that
turns them into netlink messages and processes. `text()` is an `ip`-like line used by
golden-file tests and `netlab up --dry-run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netlab.model import Probe, VolumeMount


def _short(netns: str) -> str:
    # netlab.<lab>.node.node-1 -> node.node-1 (the lab prefix is the same everywhere)
    return netns.split(".", 2)[2] if netns.count(".") >= 2 else netns


@dataclass(frozen=True)
class Netns:
    """A network namespace; with `hostname`, also a UTS namespace bound beside it."""

    name: str
    hostname: str | None = None
    sysctls: tuple[tuple[str, str], ...] = ()

    @property
    def netns(self) -> str:
        return self.name

    def text(self) -> str:
        extra = f" hostname {self.hostname}" if self.hostname else ""
        sysctls = "".join(f" sysctl {k}={v}" for k, v in self.sysctls)
        return f"netns add {_short(self.name)}{extra}{sysctls}"


@dataclass(frozen=True)
class Peer:
    netns: str
    name: str
    index: int
    mac: str | None = None


@dataclass(frozen=True)
class Vxlan:
    vni: int
    local: str
    port: int
    underlay_index: int
    learning: bool = False


@dataclass(frozen=True)
class Link:
    netns: str
    name: str
    index: int
    kind: str  # bridge | veth | vxlan | (existing: "" = set an existing link)
    mtu: int | None = None
    master: int | None = None
    mac: str | None = None
    up: bool = True
    peer: Peer | None = None
    vxlan: Vxlan | None = None
    hairpin: bool = False

    def text(self) -> str:
        words = [f"[{_short(self.netns)}]",
                 "link add" if self.kind else "link set", self.name, f"index {self.index}"]
        if self.kind:
            words.append(f"type {self.kind}")
        if self.vxlan:
            v = self.vxlan
            words.append(f"id {v.vni} local {v.local} dstport {v.port} dev-index "
                         f"{v.underlay_index} {'learning' if v.learning else 'nolearning'}")
        if self.peer:
            words.append(f"peer {self.peer.name} index {self.peer.index} netns "
                         f"{_short(self.peer.netns)}")
            if self.peer.mac:
                words.append(f"address {self.peer.mac}")
        if self.mac:
            words.append(f"address {self.mac}")
        if self.mtu:
            words.append(f"mtu {self.mtu}")
        if self.master:
            words.append(f"master-index {self.master}")
        if self.hairpin:
            words.append("hairpin on")
        if self.up:
            words.append("up")
        return " ".join(words)


@dataclass(frozen=True)
class Address:
    netns: str
    dev: str
    index: int
    cidr: str  # address/prefixlen
    # preferred_lft 0: the address answers but is never picked as a source (RFC 6724 rule
    # 3), as keepalived adds an IPv6 VIP; a LoadBalancer address on a node's eth0 must not
    # become the source of the node's own (or its masqueraded pods') traffic
    deprecated: bool = False

    def text(self) -> str:
        return (f"[{_short(self.netns)}] addr add {self.cidr} dev {self.dev}"
                + (" preferred_lft 0" if self.deprecated else ""))


@dataclass(frozen=True)
class Route:
    netns: str
    dst: str  # "default" (IPv4), "::/0" (the IPv6 default) or a CIDR
    dev: str
    oif: int
    gateway: str | None = None
    onlink: bool = False

    def text(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        return (f"[{_short(self.netns)}] route add {self.dst}{via} dev {self.dev}"
                f"{' onlink' if self.onlink else ''}")


@dataclass(frozen=True)
class Neighbour:
    netns: str
    dev: str
    index: int
    ip: str
    mac: str

    def text(self) -> str:
        return (f"[{_short(self.netns)}] neigh add {self.ip} lladdr {self.mac} dev {self.dev} "
                "nud permanent")


@dataclass(frozen=True)
class Fdb:
    """A bridge forwarding entry on a VXLAN device: inner MAC -> outer (remote VTEP) IP."""

    netns: str
    dev: str
    index: int
    mac: str
    dst: str

    def text(self) -> str:
        return (f"[{_short(self.netns)}] fdb append {self.mac} dev {self.dev} dst {self.dst} "
                "self permanent")


@dataclass(frozen=True)
class Process:
    """A container's process, started in its pod's namespaces. As features render it, `argv`
    may be a netlab placeholder (`netlab-dns`, `netlab-nginx`); compile resolves it into the
    exact command line, environment, bind mounts and log directory, which the agent starts."""

    pod: str  # namespace/name, or host/NAME
    container: str
    netns: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    binds: tuple[tuple[str, str], ...] = ()  # (file, where the process sees it)
    workdir: str = ""  # lab-relative directory of its .log and .exit files
    sandboxed: bool = False  # in its pod's sandbox (own root, /tmp, PID namespace, volumes)
    mounts: tuple[VolumeMount, ...] = ()  # its volumeMounts, in the sandbox
    # "init": an init container, run to completion before what follows it starts;
    # "sidecar": an init container with restartPolicy Always; "": a container
    init: str = ""

    def text(self) -> str:
        return f"[{_short(self.netns)}] run {self.container}: {' '.join(self.argv)}"


@dataclass(frozen=True)
class Serve:
    """netlab's built-in responder for a pod (or an outside host): the lab's agent listens on
    these ports ("tcp:80", "udp:53") inside its network namespace; one process serves all."""

    pod: str  # namespace/name, host/NAME, or node/NAME (a node's kube-proxy health checks)
    hostname: str
    netns: str
    ports: tuple[str, ...]  # "proto:port", or "proto:port@address" bound to one address
    # (port spec, HTTP response): a port answered with this fixed response instead of the
    # responder's (kube-proxy's health check server); changing only these updates the
    # listening sockets in place
    replies: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        what = "health checks" if self.replies else "responder"
        return f"[{_short(self.netns)}] serve {' '.join(self.ports)} ({what}, in the agent)"


@dataclass(frozen=True)
class SandboxSpec:
    """A pod's sandbox (netlab.kernel.sandbox): its hostname, the pod files bound over /etc,
    and its volumes with their contents (netlab.features.volumes.PodVolume)."""

    hostname: str
    binds: tuple[tuple[str, str], ...] = ()
    volumes: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Probes:
    """A container's probes (netlab.model.Probe) and its named ports, for the agent."""

    container: str
    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None
    ports: tuple[tuple[str, int], ...] = ()  # (name, containerPort)


@dataclass(frozen=True)
class Workload:
    """What the agent runs for one pod (or host): its containers' processes, its restart
    policy (Always, OnFailure, Never), and the built-in responder's ports."""

    owner: str
    processes: tuple[Process, ...] = ()
    restart_policy: str = "Always"
    serve: Serve | None = None
    backoff: tuple[float, float] = (10.0, 300.0)  # restart back-off: first, longest (s)
    containers: tuple[str, ...] = ()  # every container, with a command or not (readiness)
    probes: tuple[Probes, ...] = ()
    pod_ip: str = ""
    netns: str = ""
    sandbox: SandboxSpec | None = None  # for its sandboxed processes
    # which pod of that name (its spec hash): the agent reports it with the pod's status, so
    # a reader never takes the containers of a pod being replaced for its successor's
    incarnation: str = ""


@dataclass(frozen=True)
class Reload:
    """A running server re-reads its file when it changes: the new content is checked first
    by `check` (run in `netns`, `{}` standing for the new file's path), then the process whose
    pid is in `pidfile` (lab-relative; verified to live in `netns`) gets SIGHUP."""

    netns: str
    check: tuple[str, ...]
    pidfile: str


@dataclass(frozen=True)
class File:
    """A file in the lab's state directory (path relative to it): pod files, the DNS zone,
    nginx's configuration and certificates."""

    path: str
    data: bytes
    reload: Reload | None = None

    def text(self) -> str:
        how = " (checked, then the server reloads)" if self.reload else ""
        return f"file {self.path}: {len(self.data)} bytes{how}"


@dataclass(frozen=True)
class Directory:
    path: str  # relative to the lab's state directory

    def text(self) -> str:
        return f"mkdir {self.path}"


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate and key for `hosts`, made once (kept while the lab lives)."""

    cert: str  # lab-relative paths
    key: str
    hosts: tuple[str, ...]

    def text(self) -> str:
        return f"certificate {self.cert} (self-signed for {', '.join(self.hosts)})"


@dataclass(frozen=True)
class ReadyWhen:
    """When a process just started counts as ready: its log (lab-relative) shows `lines`
    "listening on"/"cannot listen on" lines, or, with lines=0, the file is not empty; and
    `netns`'s main routing table holds every prefix of `routes` (a routing daemon's:
    backend bgp's BIRD is ready once it brought the other nodes' pod blocks). While they are
    awaited, the unix sockets `wake` (lab-relative: daemons' control sockets) are connected
    to now and then, which wakes a daemon sitting on work it scheduled itself (BIRD before
    2.14 can leave its BGP UPDATEs pending until its next timer: see features/bgp.py)."""

    pod: str
    container: str
    log: str
    lines: int
    netns: str = ""
    routes: tuple[str, ...] = ()
    wake: tuple[str, ...] = ()


@dataclass(frozen=True)
class Announced:
    """A LoadBalancer address a node holds and answers ARP for; taking it over is announced
    with gratuitous ARP on `dev`."""

    address: Address
    dev: str


@dataclass(frozen=True)
class ForgetUdpFlows:
    """UDP conntrack entries to delete in a node: flows whose replies come from (ip, port),
    an endpoint no rule sends anything to any more."""

    netns: str
    replies_from: tuple[tuple[str, int], ...]


Intent = Netns | Link | Address | Route | Neighbour | Fdb | Process
NetworkIntent = Netns | Link | Address | Route | Neighbour | Fdb


def render_text(intents: list[Intent]) -> str:
    return "\n".join(i.text() for i in intents) + "\n"


@dataclass(frozen=True)
class CniAttachment:
    """One pod attached to the network by the CNI plugins (CNI mode), as the runtime calls
    them: in its node's namespace, for the pod's namespace and interface, with kubelet's
    CNI_ARGS and the capability arguments (runtimeConfig) as JSON text."""

    pod: str  # namespace/name
    node_netns: str
    netns: str
    container_id: str
    ifname: str
    cni_args: tuple[tuple[str, str], ...]
    capability_args: str  # JSON: ipRanges, portMappings, bandwidth, dns

    def text(self) -> str:
        return (f"[{_short(self.node_netns)}] CNI ADD {self.pod} ({self.ifname} in "
                f"{_short(self.netns)}) {self.capability_args}")
