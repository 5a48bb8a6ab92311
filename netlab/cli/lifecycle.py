"""Making, changing and removing labs: up, apply, delete, down, status, test."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from netlab import lab as api
from netlab.cli.common import LAB, FilesOpt, LabOpt, app, open_lab, out, output_option, prog
from netlab.cli.common import progress_bar as _progress
from netlab.cli.common import warn as _warn
from netlab.cli.printers import DOCUMENT, Column, Listing, parse_output, print_document, show
from netlab.cli.resources import pods_listing
from netlab.errors import InputError


def _summary(s: Any) -> str:  # the API's ChangeSummary
    parts = [f"{len(s.created)} created", f"{len(s.deleted)} deleted"]
    if s.relabelled:
        parts.append(f"{len(s.relabelled)} relabelled")
    parts.append(f"{len(s.unchanged)} unchanged")
    return "pods: " + ", ".join(parts)


@app.command(rich_help_panel=LAB)
def up(files: Annotated[list[Path] | None, typer.Option(
           "--file", "-f", help="Manifest file (multi-document YAML) or a directory of *.yaml; "
           "repeatable.")] = None,
       paths: Annotated[list[Path] | None, typer.Argument(
           help="Files may also be given without -f.", show_default=False)] = None,
       name: Annotated[str | None, typer.Option("--name", "--lab", "-n", help="Lab name (default: "
                                                "the Cluster's metadata.name, else the first "
                                                "file's name).")] = None,
       dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the kernel "
                                             "objects that would be made; needs no root.")] = False,
       output: Annotated[str, output_option(DOCUMENT)] = "table") -> None:
    """Build a lab from Kubernetes manifests: nodes, pod network, overlay, workloads.

    Example: sudo netlab up -f scenarios/quickstart.yaml
    """
    fmt = parse_output(output, DOCUMENT)
    files = [*(files or []), *(paths or [])]
    if not files:
        raise InputError(f"no manifests given: {prog()} up -f FILE (or a directory)")
    if dry_run:  # exactly what `up` would build: the same compile, without the kernel
        from netlab.loader import read_files

        _, desired = api.plan_up(read_files(files), files, name)
        _warn(desired.warnings)
        if not print_document(fmt, desired.to_json()):
            sys.stdout.write(desired.text())
        return
    t0 = time.monotonic()
    with _progress(not fmt.machine) as progress:
        lab = api.Lab.up(*files, name=name, progress=progress)
    _warn(lab.warnings)
    elapsed = time.monotonic() - t0
    if print_document(fmt, {"lab": lab.name, "seconds": round(elapsed, 3),
                            "items": [p.to_k8s() for p in lab.pods()]}):
        return
    nodes = lab.nodes()
    out.print(f"lab [bold]{lab.name}[/bold] is up: {len(nodes)} nodes "
              f"({nodes[0].backend}), {sum(n.pods for n in nodes)} pods in {elapsed:.2f}s",
              highlight=False)
    show(parse_output("wide"), [pods_listing(lab.pods(), all_namespaces=True)])


@app.command(rich_help_panel=LAB)
def apply(files: FilesOpt, lab: LabOpt = None) -> None:
    """Change a running lab to match the files: create, replace or remove what differs.

    Objects in the files replace those with the same kind/namespace/name; others stay
    (like kubectl apply). A changed Deployment replica count adds or removes pods.
    """
    with _progress(True) as progress:
        s = open_lab(lab).apply(*files, progress=progress)
    _warn(s.warnings)
    out.print(_summary(s), highlight=False)


@app.command(rich_help_panel=LAB)
def delete(files: FilesOpt, lab: LabOpt = None) -> None:
    """Remove from a running lab the objects the files name (like kubectl delete -f)."""
    s = open_lab(lab).delete(*files)
    _warn(s.warnings)
    out.print(_summary(s), highlight=False)


@app.command(rich_help_panel=LAB)
def down(name: Annotated[str | None, typer.Argument(help="Lab to remove.")] = None,
         lab: LabOpt = None,
         all_: Annotated[bool, typer.Option("--all", help="Remove every lab.")] = False) -> None:
    """Remove a lab: its processes, namespaces, devices and state. Works after a crash."""
    api.require_root()
    if all_:
        removed = api.down_all()
        listing = f": {', '.join(removed)}" if removed else ""
        out.print(f"removed {len(removed)} lab(s){listing}", highlight=False)
        return
    target = name or lab
    if target is None:
        labs = api.lab_names()
        if len(labs) != 1:
            raise api.LabNotFoundError("no lab is up" if not labs else
                                       f"{len(labs)} labs are up ({', '.join(labs)}): name "
                                       "one, or use --all")
        target = labs[0]
    if api.down(target):
        out.print(f"lab {target} removed", highlight=False)
    else:
        out.print(f"no lab {target!r}: nothing to remove", highlight=False)


STATUS_FORMATS = ("table", "json", "yaml", "name", "jsonpath")


@app.command(rich_help_panel=LAB)
def status(output: Annotated[str, output_option(STATUS_FORMATS)] = "table") -> None:
    """List the labs on this machine (-o name: lab/NAME, one a line)."""
    fmt = parse_output(output, STATUS_FORMATS)
    labs = api.Lab.list()
    columns = [Column("NAME", lambda s: s.name), Column("STATE", lambda s: s.phase),
               Column("BACKEND", lambda s: s.backend or "-"),
               Column("NODES", lambda s: str(s.nodes)), Column("PODS", lambda s: str(s.pods)),
               Column("NETNS", lambda s: str(s.namespaces)),
               Column("AGENT", lambda s: s.agent)]
    show(fmt, [Listing("lab", labs, columns, lambda s: s.name, lambda s: s.to_json(),
                       empty="no labs are up", api_version="netlab.dev/v1alpha1")])


@app.command(name="test", rich_help_panel=LAB)
def test_(files: Annotated[list[Path], typer.Argument(help="Scenario files or directories "
                                                      "(with Expectation documents).")],
          lab: Annotated[str | None, typer.Option("--lab", help="Run the files' "
                                                  "expectations against this running lab "
                                                  "instead of bringing one up.")] = None,
          keep: Annotated[bool, typer.Option("--keep", help="Leave the lab up.")] = False,
          junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")
                           ] = None,
          settle_timeout: Annotated[float, typer.Option(
              "--settle-timeout", metavar="SECONDS", min=0,
              help="Before the checks, wait at most this long for the lab to settle: "
                   "readiness probes' first results, containers created, OrderedReady "
                   "StatefulSets' next pods (pods that never get ready do not hold it up). "
                   "0: do not wait.")] = 30.0,
          output: Annotated[str, output_option(DOCUMENT)] = "table") -> None:
    """Bring up a lab from the files, let it settle, run every Expectation check with real
    traffic, print pass/fail with the evidence and a hint, tear the lab down. Exit 1 on any
    failure.

    Example: sudo netlab test scenarios/clusterip-service --junit report.xml
    """
    from netlab.expectations import junit as junit_xml
    from netlab.loader import build, read_files

    fmt = parse_output(output, DOCUMENT)
    t0 = time.monotonic()
    m = build(read_files(files))
    expectations = sorted(m.expectations.values(), key=lambda e: e.name)
    if not expectations:
        raise InputError(f"no Expectation documents in {', '.join(map(str, files))}: "
                         "add one (kind: Expectation, apiVersion: netlab.dev/v1alpha1)")
    if lab:
        lab_ = api.Lab.open(lab)
    else:
        import os as _os

        name = f"test-{_os.getpid()}"
        with _progress(not fmt.machine) as progress:
            lab_ = api.Lab.up(*files, name=name, progress=progress)
        _warn(lab_.warnings)
    try:
        settle_seconds, still = _settle(lab_, settle_timeout, not fmt.machine)
        outcomes = lab_.test(expectations)
    finally:
        if not lab and not keep:
            lab_.down()
    seconds = time.monotonic() - t0
    suite = ",".join(Path(f).stem for f in files)
    if junit:
        junit.write_text(junit_xml(outcomes, suite, seconds))
    failed = [o for o in outcomes if not o.passed]
    if not print_document(fmt, {"passed": not failed, "seconds": round(seconds, 3),
                                "settleSeconds": round(settle_seconds, 3),
                                "settled": not still, "unsettled": still,
                                "lab": lab_.name, "kept": bool(keep and not lab),
                                "checks": [o.to_json() for o in outcomes]}):
        for o in outcomes:
            mark = "[green]PASS[/green]" if o.passed else "[bold red]FAIL[/bold red]"
            out.print(f"{mark} {escape(o.expectation)}: {escape(o.title)}", highlight=False)
            out.print(f"     [dim]{escape(o.evidence)}[/dim]", highlight=False)
            if not o.passed and o.hint:
                out.print(f"     [yellow]hint:[/yellow] {escape(o.hint)}", highlight=False,
                          soft_wrap=True)
        out.print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed in "
                  f"{seconds:.1f}s" + (f" (lab {lab_.name} kept)" if keep and not lab
                                       else ""), highlight=False)
    raise typer.Exit(1 if failed else 0)


def _settle(lab: api.Lab, timeout: float, show: bool) -> tuple[float, list[str]]:
    """Lab.settle with its progress on a terminal; a warning if it did not settle."""
    if timeout <= 0:
        return 0.0, []
    t0 = time.monotonic()
    if show and out.is_terminal:
        with out.status("settling") as spinner:
            def progress(busy: list[str]) -> None:
                more = f" (+{len(busy) - 1} more)" if len(busy) > 1 else ""
                spinner.update(f"settling ({time.monotonic() - t0:.0f}s/{timeout:g}s): "
                               f"{escape(busy[0])}{more}")
            still = lab.settle(timeout, progress)
    else:
        still = lab.settle(timeout)
    if still and show:
        _warn([f"the lab did not settle within {timeout:g}s (--settle-timeout); testing "
               f"anyway. Still changing: {'; '.join(still)}"])
    return time.monotonic() - t0, still
