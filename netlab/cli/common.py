"""What every command shares: the Typer app, the consoles, the common options, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from netlab import lab as api
from netlab.cli.printers import ALL, err, out, output_help
from netlab.errors import NetlabError

__all__ = ["app", "err", "out"]


_prog = "netlab"


class _Commands(TyperGroup):
    """Every command's NetlabError becomes a one-line message and its exit code (2 for bad
    input), never a traceback: the commands themselves just call the API."""

    def invoke(self, ctx: typer.Context) -> Any:
        global _prog
        _prog = ctx.find_root().info_name or _prog
        try:
            return super().invoke(ctx)
        except NetlabError as e:
            fail(e)


app = typer.Typer(
    cls=_Commands, name="netlab", no_args_is_help=True, rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Kubernetes networking on a real Linux kernel.\n\n"
         "Turns Kubernetes manifests into network namespaces, veths, bridges and a VXLAN "
         "overlay on this machine, then lets you poke the result with real packets.\n\n"
         "[bold]Start here:[/bold]\n\n"
         "  sudo netlab up -f scenarios/quickstart.yaml\n\n"
         "  sudo netlab get pods -o wide\n\n"
         "  sudo netlab ping pod-a pod-b\n\n"
         "  sudo netlab down\n\n"
         "Also installed as [bold]kube-netlab[/bold], for machines where ipspace's netlab "
         "owns the name.")

LAB, LOOK, TRAFFIC, POLICY = "Labs", "Looking", "Traffic", "NetworkPolicy"

# No short flag: -l is kubectl's label selector (netlab get -l app=web).
LabOpt = Annotated[str | None, typer.Option("--lab", help="Lab to act on (needed only when "
                                            "more than one lab is up).", show_default=False)]
FilesOpt = Annotated[list[Path], typer.Option("--file", "-f", help="Manifest file (multi-document "
                                              "YAML) or a directory of *.yaml; repeatable.")]


def output_option(allowed: Sequence[str] = ALL) -> Any:
    return typer.Option("--output", "-o", help=output_help(allowed), metavar="FORMAT",
                        show_default=False)


def prog() -> str:
    """The name this command was run as (netlab, kube-netlab, python -m netlab), for messages."""
    return _prog


def fail(e: NetlabError) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(str(e))}", highlight=False, soft_wrap=True)
    raise typer.Exit(e.exit_code)


def warn(warnings: list[str]) -> None:
    for w in warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w)}", highlight=False, soft_wrap=True)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar per stage on a terminal; nothing when piped or asked for JSON."""
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description:>6}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)
        yield update


def open_lab(lab: str | None) -> api.Lab:
    return api.Lab.open(lab)


class Proto(StrEnum):
    tcp = "tcp"
    udp = "udp"
    sctp = "sctp"
    icmp = "icmp"
