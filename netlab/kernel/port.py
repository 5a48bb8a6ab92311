"""The kernel port: everything the converger asks of the machine, as one interface. The
Linux side (`netlab.kernel.Kernel`) speaks netlink, nft, processes and files; the fake
(`netlab.kernel.fake.FakeKernel`) holds the same things in memory, so convergence, rollback
and partial updates are tested without root.

Paths are relative to the lab's state directory; namespaces are named as the plan names
them. A method that cannot do what it is asked raises `KernelError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from netlab.intents import (
    Address,
    Certificate,
    CniAttachment,
    NetworkIntent,
    ReadyWhen,
    Workload,
)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Started:
    """A process: with its start time, its pid names it for its lifetime."""

    pid: int
    starttime: int


class KernelPort(Protocol):
    lab: str

    # --- network ------------------------------------------------------------------------
    def create(self, intents: Sequence[NetworkIntent], progress: Progress | None = None,
               namespaces_made: Callable[[], None] | None = None) -> None:
        """Namespaces, links, addresses, routes, neighbours, FDB entries, in order (the
        namespaces first); `namespaces_made` is called once they exist."""

    def delete_links(self, netns: str, links: Sequence[tuple[str, int]]) -> None:
        """Links by (name, index); a veth takes its peer with it. Gone already is fine."""

    def remove_netns(self, netns: Sequence[str]) -> None: ...

    def delete_addresses(self, netns: str, addresses: Sequence[Address]) -> None: ...

    def nft(self, netns: str, script: str) -> None:
        """One `nft -f` transaction: all of it applies, or none."""

    def iptables_restore(self, netns: str, family: str, text: str) -> None:
        """One iptables-restore (ip6tables-restore for IPv6) transaction in a namespace, with
        kube-proxy's flags (--noflush: the chains the text does not name stay)."""

    def forget_udp_flows(self, netns: str, replies_from: Sequence[tuple[str, int]]) -> None: ...

    def announce(self, netns: str, dev: str, ips: Sequence[str]) -> None:
        """Gratuitous ARP (IPv6: unsolicited Neighbour Advertisement) for addresses just
        taken over."""

    # --- CNI mode ----------------------------------------------------------------------
    def cni_add(self, config: str, bin_dirs: str, timeout: float,
                attachments: Sequence[CniAttachment]) -> dict[str, tuple[str, ...]]:
        """ADD each pod with the network configuration list `config` (JSON), its plugins
        run in its node's namespace; pod key -> the addresses the result gave its interface.
        A failing pod's plugins are DELeted again; the error names plugin and pod."""

    def cni_del(self, config: str, bin_dirs: str, timeout: float,
                attachments: Sequence[CniAttachment]) -> None:
        """DEL each pod (plugins in reverse order, with the cached result)."""

    def cni_check(self, config: str, bin_dirs: str, timeout: float,
                  attachment: CniAttachment) -> None:
        """CHECK one pod's attachment; raises what the plugins report."""

    # --- files --------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        """The absolute path of a lab-relative one (for command lines)."""

    def read_file(self, rel: str) -> bytes | None: ...

    def write_file(self, rel: str, data: bytes) -> None:
        """Atomically (a reader sees the old or the new content)."""

    def rename(self, src: str, dst: str) -> None: ...

    def remove_tree(self, rel: str) -> None: ...

    def make_directory(self, rel: str) -> None: ...

    def make_certificate(self, cert: Certificate) -> None:
        """A self-signed certificate, unless it exists."""

    # --- workloads (the lab's agent) -----------------------------------------------------
    def prepare(self) -> None:
        """A new lab is about to be built (the Linux side starts its agent meanwhile)."""

    def workloads(self, desired: dict[str, Workload]) -> dict[tuple[str, str], Started]:
        """Hand the lab's agent every workload (containers, restart policies, responder
        ports): it starts, restarts and stops processes to match, and serves the responder.
        Returns the processes running, by (owner, container)."""

    def release(self, owners: Sequence[str]) -> None:
        """The agent stops supervising these pods and serving them (before they go)."""

    def prepare_pods(self, desired: dict[str, Workload]) -> None:
        """These pods' namespaces exist: their sandboxes may be made, and their built-in
        responder's sockets opened, now, in the background, while the rest of the lab is
        built; `workloads` then finds them ready. Best effort: what is not made here is made
        when `workloads` starts the pod."""

    # --- processes ----------------------------------------------------------------------
    def stop(self, processes: Sequence[Started], netns: Sequence[str] = ()) -> None:
        """Kill these processes (if they are still the same) and every process inside
        these namespaces; return when they are gone."""

    def alive(self, s: Started) -> bool: ...

    def ready(self, when: ReadyWhen) -> bool:
        """Whether a process just started is ready (see ReadyWhen)."""

    def server_pid(self, netns: str, pidfile: str) -> int | None:
        """The pid in `pidfile`, if that process runs inside `netns`."""

    def check_config(self, netns: str, argv: Sequence[str]) -> str | None:
        """Run a configuration check in `netns`: None if it passed, else its message."""

    def reload(self, pid: int) -> None:
        """SIGHUP a server; return once it runs with the new configuration."""

    def close(self) -> None: ...
