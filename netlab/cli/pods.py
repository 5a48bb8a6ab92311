"""Inside pods: exec, logs, label."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Annotated

import typer

from netlab import lab as api
from netlab.cli.common import (
    LOOK,
    POLICY,
    TRAFFIC,
    LabOpt,
    app,
    open_lab,
    out,
    output_option,
    prog,
)
from netlab.cli.printers import DOCUMENT, parse_output, print_document
from netlab.errors import InputError


@app.command(name="exec", rich_help_panel=TRAFFIC)
def exec_(target: Annotated[str, typer.Argument(help="Pod (NAME or NAMESPACE/NAME) or node/NAME.")],
          command: Annotated[list[str], typer.Argument(help="Command and arguments, after --.")],
          container: Annotated[str | None, typer.Option(
              "--container", "-c", help="The pod's container whose mounts to join (default: "
              "the first running).")] = None,
          lab: LabOpt = None) -> None:
    """Run a command inside a pod: its network namespace, hostname and, when it has
    containers with commands, its sandbox (root filesystem, /tmp, processes, volumes).

    Example: sudo netlab exec pod-a -- ip addr     (or: -- sh for a shell)
    """
    api.require_root()
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise InputError("no command given: write it after --, e.g. "
                         f"`{prog()} exec {target} -- ip addr`")
    argv, env = open_lab(lab).exec_argv(target, command, container)
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)


@app.command(name="cni-check", rich_help_panel=LOOK)
def cni_check(pod: Annotated[str, typer.Argument(help="Pod (NAME or NAMESPACE/NAME).")],
              output: Annotated[str, output_option(DOCUMENT)] = "table",
              lab: LabOpt = None) -> None:
    """CNI CHECK a pod (CNI mode): each plugin of the network, in order, verifies the pod's
    interface, addresses, routes (and its own host-side state) against the result of its
    ADD, as a runtime's periodic CHECK does. Exit 1 with the plugin's error if one fails.

    Example: sudo netlab cni-check web-0
    """
    r = open_lab(lab).cni_check(pod)
    if not print_document(parse_output(output, DOCUMENT), r):
        out.print(f"{r['pod']}: CNI CHECK passed ({r['network']}: "
                  f"{' -> '.join(r['plugins'])}, {r['ifname']})", highlight=False)


@app.command(rich_help_panel=LOOK)
def logs(pod: Annotated[str, typer.Argument(help="Pod (NAME or NAMESPACE/NAME).")],
         container: Annotated[str | None, typer.Option("--container", "-c")] = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new "
                                              "output.")] = False,
         previous: Annotated[bool, typer.Option("--previous", "-p", help="The previous run's "
                                                "output (of a container that restarted).")
                             ] = False,
         lab: LabOpt = None) -> None:
    """Print what a pod's container wrote to stdout and stderr."""
    lab_ = open_lab(lab)
    text = lab_.logs(pod, container, previous)
    sys.stdout.write(text)
    sys.stdout.flush()
    seen = len(text)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --follow, exit 0
        while follow:
            time.sleep(0.5)
            text = lab_.logs(pod, container, previous)
            sys.stdout.write(text[seen:])
            sys.stdout.flush()
            seen = len(text)


@app.command(rich_help_panel=POLICY)
def label(pod: Annotated[str, typer.Argument(help="Pod ([NS/]NAME).")],
          changes: Annotated[list[str], typer.Argument(help="key=value to set, key- to remove.")],
          lab: LabOpt = None) -> None:
    """Change a running pod's labels (like kubectl label --overwrite); Services and
    NetworkPolicies follow at once."""
    sets: dict[str, str | None] = {}
    for c in changes:
        if c.endswith("-") and "=" not in c:
            sets[c[:-1]] = None
        elif "=" in c:
            k, _, v = c.partition("=")
            sets[k] = v
        else:
            raise InputError(f"{c!r}: write key=value to set a label, key- to remove one")
    info = open_lab(lab).label(pod, sets)
    out.print(f"pod {info.key} labelled: " + (",".join(
        f"{k}={v}" for k, v in info.labels.items()) or "<none>"), highlight=False)
