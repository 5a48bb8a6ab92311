"""Kernel intents: what the lab wants the kernel to hold, as plain data.

Features render these from the Plan (pure); the kernel gateway is the only code that
turns them into netlink messages and processes. `text()` is an `ip`-like line used by
golden-file tests and `netlab up --dry-run`.
"""

from __future__ import annotations

from dataclasses import dataclass


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

    def text(self) -> str:
        return f"[{_short(self.netns)}] addr add {self.cidr} dev {self.dev}"


@dataclass(frozen=True)
class Route:
    netns: str
    dst: str  # "default" or a CIDR
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
    """A container's process, started in its pod's namespaces."""

    pod: str  # namespace/name
    container: str
    netns: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    builtin: bool = False  # argv are the arguments of netlab's responder, not a command

    def text(self) -> str:
        what = "responder " if self.builtin else ""
        return f"[{_short(self.netns)}] run {self.container}: {what}{' '.join(self.argv)}"


Intent = Netns | Link | Address | Route | Neighbour | Fdb | Process


def render_text(intents: list[Intent]) -> str:
    return "\n".join(i.text() for i in intents) + "\n"
