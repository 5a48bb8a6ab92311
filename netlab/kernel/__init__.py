"""The gateway to the kernel: the only code that creates or removes namespaces, links,
addresses, routes, rulesets and processes, opens sockets inside namespaces or runs programs.

  port.py      the interface the converger talks to (pure)
  linux.py     its Linux side (netlink, nft, processes, files), lab discovery and teardown
  fake.py      an in-memory side for tests without root
  rtnl.py, ns.py, procs.py, sockets.py, commands.py   the primitives linux.py is made of

Importing this package loads nothing: names are taken from linux.py when first used, so
pure modules may import `netlab.kernel.port` without pulling in netlink libraries.
"""

from __future__ import annotations

from typing import Any

_LINUX = ("Kernel", "NftTrace", "all_labs", "destroy_lab", "lab_mounts", "lab_netns",
          "lab_pids", "make_lab_dir", "netns_path", "raise_fd_limit", "uts_path")
_SUBMODULES = ("cni", "commands", "fake", "linux", "ns", "port", "procs", "rtnl", "sandbox",
               "sockets")


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LINUX:
        return getattr(importlib.import_module("netlab.kernel.linux"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"netlab.kernel.{name}")
    raise AttributeError(f"module 'netlab.kernel' has no attribute {name!r}")


__all__ = [*_LINUX, *_SUBMODULES]
