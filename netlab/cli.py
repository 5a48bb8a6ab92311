"""The `netlab` command: a thin face over netlab.Lab. Parse, call the API, format."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from netlab import lab as api
from netlab.errors import InputError, NetlabError


class _Commands(TyperGroup):
    """Every command's NetlabError becomes a one-line message and its exit code (2 for bad
    input), never a traceback: the commands themselves just call the API."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NetlabError as e:
            _fail(e)


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
         "  sudo netlab down")
# kubectl never truncates columns; neither do we when piped (rich would assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 250)
err = Console(stderr=True)

LabOpt = Annotated[str | None, typer.Option("--lab", "-l", help="Lab to act on (needed only "
                                            "when more than one lab is up).", show_default=False)]
FilesOpt = Annotated[list[Path], typer.Option("--file", "-f", help="Manifest file (multi-document "
                                              "YAML) or a directory of *.yaml; repeatable.")]


class Output(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"


OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table, wide or json.")]


def _fail(e: NetlabError) -> None:
    err.print(f"[bold red]error:[/bold red] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(e.exit_code)


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        err.print(f"[yellow]warning:[/yellow] {w}", highlight=False, soft_wrap=True)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
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


def _open(lab: str | None) -> api.Lab:
    return api.Lab.open(lab)


def _summary(s: Any) -> str:
    parts = [f"{len(s.created)} created", f"{len(s.deleted)} deleted"]
    if s.relabelled:
        parts.append(f"{len(s.relabelled)} relabelled")
    parts.append(f"{len(s.unchanged)} unchanged")
    return "pods: " + ", ".join(parts)


@app.command()
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
       output: OutputOpt = Output.table) -> None:
    """Build a lab from Kubernetes manifests: nodes, pod network, overlay, workloads.

    Example: sudo netlab up -f scenarios/quickstart.yaml
    """
    files = [*(files or []), *(paths or [])]
    if not files:
        raise InputError("no manifests given: netlab up -f FILE (or a directory)")
    if dry_run:
        from netlab.intents import render_text
        from netlab.loader import build, read_files
        from netlab.orchestrator import full_plan, render_all

        m = build(read_files(files))
        _warn(m.warnings)
        from netlab.model import Cluster

        plan = full_plan(name or "dry-run", m, m.cluster or Cluster())
        sys.stdout.write(render_text(render_all(plan)))
        from netlab.orchestrator import node_tables

        for node in plan.nodes:
            sys.stdout.write(f"# nft -f - in node {node.name}\n")
            tables = node_tables(plan, list(m.network_policies.values()), node)
            sys.stdout.write("".join(t.full() for t in tables))
        return
    t0 = time.monotonic()
    with _progress(output != Output.json) as progress:
        lab = api.Lab.up(*files, name=name, progress=progress)
    _warn(lab.warnings)
    elapsed = time.monotonic() - t0
    if output == Output.json:
        _print_json({"lab": lab.name, "seconds": round(elapsed, 3),
                     "items": [p.to_k8s() for p in lab.pods()]})
        return
    nodes = lab.nodes()
    out.print(f"lab [bold]{lab.name}[/bold] is up: {len(nodes)} nodes "
              f"({nodes[0].backend}), {sum(n.pods for n in nodes)} pods in {elapsed:.2f}s",
              highlight=False)
    _pods_table(lab.pods(), all_namespaces=True, wide=True)


@app.command()
def apply(files: FilesOpt, lab: LabOpt = None) -> None:
    """Change a running lab to match the files: create, replace or remove what differs.

    Objects in the files replace those with the same kind/namespace/name; others stay
    (like kubectl apply). A changed Deployment replica count adds or removes pods.
    """
    with _progress(True) as progress:
        s = _open(lab).apply(*files, progress=progress)
    _warn(s.warnings)
    out.print(_summary(s), highlight=False)


@app.command()
def delete(files: FilesOpt, lab: LabOpt = None) -> None:
    """Remove from a running lab the objects the files name (like kubectl delete -f)."""
    s = _open(lab).delete(*files)
    _warn(s.warnings)
    out.print(_summary(s), highlight=False)


@app.command()
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
        from netlab.kernel import all_labs

        labs = all_labs()
        if len(labs) != 1:
            raise api.LabNotFoundError("no lab is up" if not labs else
                                       f"{len(labs)} labs are up ({', '.join(labs)}): name "
                                       "one, or use --all")
        target = labs[0]
    if api.down(target):
        out.print(f"lab {target} removed", highlight=False)
    else:
        out.print(f"no lab {target!r}: nothing to remove", highlight=False)


@app.command()
def status(output: OutputOpt = Output.table) -> None:
    """List the labs on this machine."""
    labs = api.Lab.list()
    if output == Output.json:
        _print_json({"items": [s.to_json() for s in labs]})
        return
    if not labs:
        out.print("no labs are up")
        return
    t = Table(box=None, header_style="bold")
    for col in ("NAME", "STATE", "BACKEND", "NODES", "PODS", "NETNS"):
        t.add_column(col)
    for s in labs:
        t.add_row(s.name, s.phase, s.backend or "-", str(s.nodes), str(s.pods),
                  str(s.namespaces))
    out.print(t)


class Resource(StrEnum):
    pods = "pods"
    pod = "pod"
    po = "po"
    nodes = "nodes"
    node = "node"
    no = "no"
    services = "services"
    service = "service"
    svc = "svc"
    endpoints = "endpoints"
    ep = "ep"
    ingress = "ingress"
    ingresses = "ingresses"
    ing = "ing"


KINDS = {"pods": "pods", "pod": "pods", "po": "pods", "nodes": "nodes", "node": "nodes",
         "no": "nodes", "services": "services", "service": "services", "svc": "services",
         "endpoints": "endpoints", "ep": "endpoints", "ingress": "ingress",
         "ingresses": "ingress", "ing": "ingress"}


@app.command()
def get(resource: Annotated[Resource, typer.Argument(help="pods or nodes.")],
        namespace: Annotated[str | None, typer.Option("--namespace", "-n",
                                                      help="Namespace (default: default).")] = None,
        all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
        output: OutputOpt = Output.table, lab: LabOpt = None) -> None:
    """Show pods, nodes, services or endpoints, like kubectl get (-o wide, -o json)."""
    lab_ = _open(lab)
    kind = KINDS[resource.value]
    if kind == "ingress":
        items = lab_.ingresses(None if all_namespaces else (namespace or "default"))
        if output == Output.json:
            _print_json({"apiVersion": "v1", "kind": "List",
                         "items": [i.to_k8s() for i in items]})
            return
        if not items:
            out.print("no ingresses")
            return
        t = Table(box=None, header_style="bold")
        cols = ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS"]
        if output == Output.wide:
            cols.append("RULES")
        for c in (["NAMESPACE"] if all_namespaces else []) + cols:
            t.add_column(c)
        for i in items:
            row = ([i.namespace] if all_namespaces else []) + [
                i.name, i.class_name or "<none>", ",".join(i.hosts), i.address or "",
                ",".join(map(str, i.ports))]
            if output == Output.wide:
                row.append("\n".join(f"{h}{p or ''} ({pt}) -> {b}"
                                     for h, p, pt, b in i.rules))
            t.add_row(*row)
        out.print(t)
        for i in items:
            for problem in i.problems:
                err.print(f"[yellow]problem:[/yellow] {problem}", highlight=False,
                          soft_wrap=True)
        return
    if kind in ("services", "endpoints"):
        svcs = lab_.services(None if all_namespaces else (namespace or "default"))
        if output == Output.json:
            items = [s.to_k8s() if kind == "services" else s.endpoints_k8s() for s in svcs]
            _print_json({"apiVersion": "v1", "kind": "List", "items": items})
        else:
            _services_table(svcs, kind, all_namespaces, output == Output.wide)
        return
    if kind == "pods":
        pods = lab_.pods(None if all_namespaces else (namespace or "default"))
        if output == Output.json:
            _print_json({"apiVersion": "v1", "kind": "List",
                         "items": [p.to_k8s() for p in pods]})
        else:
            _pods_table(pods, all_namespaces, output == Output.wide)
    else:
        nodes = lab_.nodes()
        if output == Output.json:
            _print_json({"apiVersion": "v1", "kind": "List",
                         "items": [n.to_k8s() for n in nodes]})
            return
        t = Table(box=None, header_style="bold")
        cols = ["NAME", "STATUS", "INTERNAL-IP", "POD-CIDR", "PODS"]
        if output == Output.wide:
            cols += ["BACKEND", "VTEP-MAC"]
        for c in cols:
            t.add_column(c)
        for n in nodes:
            row = [n.name, "Ready", n.internal_ip, n.pod_cidr, str(n.pods)]
            if output == Output.wide:
                row += [n.backend, n.vtep_mac or "-"]
            t.add_row(*row)
        out.print(t)


def _ports(s: api.ServiceInfo) -> str:
    out = []
    for p in s.ports:
        out.append(f"{p.port}:{p.node_port}/{p.protocol}" if p.node_port
                   else f"{p.port}/{p.protocol}")
    return ",".join(out) or "<none>"


def _services_table(svcs: list[api.ServiceInfo], kind: str, all_namespaces: bool,
                    wide: bool) -> None:
    if not svcs:
        out.print("no services")
        return
    t = Table(box=None, header_style="bold")
    if kind == "services":
        cols = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "ENDPOINTS"]
        if wide:
            cols += ["SELECTOR", "ANNOUNCED-BY"]
    else:
        cols = ["NAME", "ENDPOINTS"]
    for c in (["NAMESPACE"] if all_namespaces else []) + cols:
        t.add_column(c)
    hints = []
    for s in svcs:
        eps = s.endpoints
        shown = ",".join(eps[:3]) + (f" + {len(eps) - 3} more" if len(eps) > 3 else "") \
            if eps else "<none>"
        row = [s.namespace] if all_namespaces else []
        if kind == "services":
            external = s.external_ip or (s.external_name if s.type == "ExternalName" else None)
            if s.type == "LoadBalancer" and not external:
                external = "<pending>"
            row += [s.name, s.type, s.cluster_ip or "None", external or "<none>", _ports(s),
                    shown if s.type != "ExternalName" else "-"]
            if wide:
                row += [",".join(f"{k}={v}" for k, v in (s.selector or {}).items()) or "<none>",
                        s.announced_by or "-"]
        else:
            row += [s.name, shown]
        t.add_row(*row)
        hint = s.why_no_endpoints()
        if hint:
            hints.append(hint)
    out.print(t)
    for h in hints:
        err.print(f"[yellow]note:[/yellow] {h}", highlight=False, soft_wrap=True)


def _pods_table(pods: list[api.PodInfo], all_namespaces: bool, wide: bool) -> None:
    if not pods:
        out.print("no pods")
        return
    t = Table(box=None, header_style="bold")
    cols = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "READY", "STATUS", "IP", "NODE"]
    if wide:
        cols.append("LABELS")
    for c in cols:
        t.add_column(c)
    for p in pods:
        row = ([p.namespace] if all_namespaces else []) + [p.name, p.ready, p.status, p.ip, p.node]
        if wide:
            row.append(",".join(f"{k}={v}" for k, v in p.labels.items()) or "<none>")
        t.add_row(*row)
    out.print(t)


@app.command(name="exec")
def exec_(target: Annotated[str, typer.Argument(help="Pod (NAME or NAMESPACE/NAME) or node/NAME.")],
          command: Annotated[list[str], typer.Argument(help="Command and arguments, after --.")],
          lab: LabOpt = None) -> None:
    """Run a command inside a pod's namespaces (network, hostname, /etc/resolv.conf).

    Example: sudo netlab exec pod-a -- ip addr     (or: -- sh for a shell)
    """
    api.require_root()
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise InputError("no command given: write it after --, e.g. "
                         f"`netlab exec {target} -- ip addr`")
    argv, env = _open(lab).exec_argv(target, command)
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)


@app.command()
def ping(src: Annotated[str, typer.Argument(help="Pod (NAME or NAMESPACE/NAME) or node/NAME.")],
         dst: Annotated[str, typer.Argument(help="Pod, node/NAME or an IP address.")],
         count: Annotated[int, typer.Option("--count", "-c", min=1, max=1000)] = 3,
         lab: LabOpt = None) -> None:
    """Ping from a pod to a pod or address with real ICMP; exit 1 if any reply is missing."""
    r = _open(lab).ping(src, dst, count)
    sys.stdout.write(r.output)
    raise typer.Exit(0 if r.ok else 1)


class Proto(StrEnum):
    tcp = "tcp"
    udp = "udp"
    sctp = "sctp"
    icmp = "icmp"


@app.command()
def probe(src: Annotated[str, typer.Argument(help="Pod ([NS/]NAME), node/NAME, external or "
                                             "internet.")],
          dst: Annotated[str, typer.Argument(help="Pod, svc/[NS/]NAME, node/NAME (with a "
                                             "NodePort), internet, external, or an IP.")],
          port: Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535,
                                                   help="Default: the Service's first port, "
                                                   "the pod's first port, 80 for internet.")
                          ] = None,
          proto: Annotated[Proto | None, typer.Option("--proto", help="tcp, udp, sctp or "
                                                      "icmp (default: the port's).")] = None,
          timeout: Annotated[float, typer.Option("--timeout", min=0.1)] = 2.0,
          output: OutputOpt = Output.table, lab: LabOpt = None) -> None:
    """Send real traffic from SRC to DST and say what came back: which pod answered and
    which client address it saw. Exit 0 when connected, 1 when not.

    Examples: netlab probe pod-a svc/web;  netlab probe external node/node-1 --port 30080
    """
    lab_ = _open(lab)
    if dst.startswith(("http://", "https://")):
        h = lab_.http(dst, src, timeout=timeout)
        if output == Output.json:
            _print_json(h.to_json())
        else:
            out.print(f"{src} -> {dst}: " + (f"{h.status} {h.reason}, answered by "
                                             f"{h.answered_by}" if h.status else
                                             f"no answer ({h.error})"), highlight=False)
        raise typer.Exit(0 if h.ok else 1)
    r = lab_.probe(src, dst, port, proto.value if proto else None, timeout)
    if output == Output.json:
        _print_json(r.to_json())
    else:
        where = f"{r.address}:{r.port}/{r.protocol}" if r.port else \
            f"{r.address}/{r.protocol}"
        if r.connected:
            who = f" answered by {r.answered_by}" if r.answered_by else ""
            seen = f", which saw the client as {r.client_ip}" if r.client_ip else ""
            out.print(f"{src} -> {dst} ({where}): [green]connected[/green]{who}{seen} "
                      f"in {r.seconds * 1000:.1f} ms", highlight=False)
        else:
            out.print(f"{src} -> {dst} ({where}): [red]{r.result}[/red]: {r.detail}",
                      highlight=False)
            if dst.startswith("svc/"):
                hint = lab_.service(dst[4:]).why_no_endpoints()
                if hint:
                    err.print(f"[yellow]hint:[/yellow] {hint}", highlight=False,
                              soft_wrap=True)
    raise typer.Exit(0 if r.connected else 1)


@app.command(name="test")
def test_(files: Annotated[list[Path], typer.Argument(help="Scenario files or directories "
                                                      "(with Expectation documents).")],
          lab: Annotated[str | None, typer.Option("--lab", "-l", help="Run the files' "
                                                  "expectations against this running lab "
                                                  "instead of bringing one up.")] = None,
          keep: Annotated[bool, typer.Option("--keep", help="Leave the lab up.")] = False,
          junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")
                           ] = None,
          output: OutputOpt = Output.table) -> None:
    """Bring up a lab from the files, run every Expectation check with real traffic, print
    pass/fail with the evidence and a hint, tear the lab down. Exit 1 on any failure.

    Example: sudo netlab test scenarios/clusterip-service --junit report.xml
    """
    from netlab.expectations import junit as junit_xml
    from netlab.loader import build, read_files

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
        with _progress(output != Output.json) as progress:
            lab_ = api.Lab.up(*files, name=name, progress=progress)
        _warn(lab_.warnings)
    try:
        outcomes = lab_.test(expectations)
    finally:
        if not lab and not keep:
            lab_.down()
    seconds = time.monotonic() - t0
    suite = ",".join(Path(f).stem for f in files)
    if junit:
        junit.write_text(junit_xml(outcomes, suite, seconds))
    failed = [o for o in outcomes if not o.passed]
    if output == Output.json:
        _print_json({"passed": not failed, "seconds": round(seconds, 3),
                     "lab": lab_.name, "kept": bool(keep and not lab),
                     "checks": [o.to_json() for o in outcomes]})
    else:
        for o in outcomes:
            mark = "[green]PASS[/green]" if o.passed else "[bold red]FAIL[/bold red]"
            out.print(f"{mark} {o.expectation}: {o.title}", highlight=False)
            out.print(f"     [dim]{o.evidence}[/dim]", highlight=False)
            if not o.passed and o.hint:
                out.print(f"     [yellow]hint:[/yellow] {o.hint}", highlight=False,
                          soft_wrap=True)
        out.print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed in "
                  f"{seconds:.1f}s" + (f" (lab {lab_.name} kept)" if keep and not lab
                                       else ""), highlight=False)
    raise typer.Exit(1 if failed else 0)


class GraphFormat(StrEnum):
    svg = "svg"
    png = "png"
    dot = "dot"


@app.command()
def graph(output: Annotated[GraphFormat, typer.Option("--output", "-o")] = GraphFormat.svg,
          files: Annotated[list[Path] | None, typer.Option("--file", "-f", help="Draw what "
                                                           "these manifests would build (no "
                                                           "lab, no root needed).")] = None,
          out_file: Annotated[Path | None, typer.Option("--out", help="Write here (default: "
                                                        "stdout for dot, lab.svg/png)")] = None,
          lab: LabOpt = None) -> None:
    """A picture of the lab: nodes, bridges, VXLAN tunnels or routes, pods by node and
    namespace, Services and their endpoints, NetworkPolicy allowed edges (Graphviz)."""
    from netlab.graph import draw, render_dot

    if files:
        from netlab.loader import build, read_files
        from netlab.model import Cluster
        from netlab.orchestrator import add_cluster_addons, full_plan

        m = build(read_files(files))
        cluster = m.cluster or Cluster()
        add_cluster_addons(m, cluster)
        plan = full_plan("graph", m, cluster)
        policies = list(m.network_policies.values())
    else:
        lab_ = _open(lab)
        plan, policies = lab_.plan, lab_.policies()
    dot = render_dot(plan, policies)
    if output == GraphFormat.dot:
        if out_file:
            out_file.write_text(dot)
        else:
            sys.stdout.write(dot)
        return
    data = draw(dot, output.value)
    target = out_file or Path(f"{plan.lab}.{output.value}")
    target.write_bytes(data)
    out.print(f"wrote {target}", highlight=False)


@app.command()
def check(output: OutputOpt = Output.table,
          timeout: Annotated[float, typer.Option("--timeout", min=0.1,
                                                 help="Seconds a probe waits.")] = 1.0,
          external: Annotated[bool | None, typer.Option(
              "--external/--no-external", help="Also probe from the external host "
              "(default: when a policy has an ipBlock).")] = None,
          lab: LabOpt = None) -> None:
    """Compare NetworkPolicy semantics with the kernel: probe every pod pair on every
    declared port and protocol with real traffic, and check each result against the
    policy engine. Prints a truth table per port/protocol; exit 1 on any mismatch.

    In the tables: [green]Y[/green] allowed, [dim].[/dim] denied, [bold red]![/bold red] the kernel
    disagrees with Kubernetes semantics (see -o json, or netlab explain SRC DST).
    """
    lab_ = _open(lab)
    with err.status("probing...") if err.is_terminal and output != Output.json else \
            contextlib.nullcontext():
        report = lab_.check(timeout=timeout, external=external)
    if output == Output.json:
        _print_json(report.to_json())
        raise typer.Exit(0 if report.ok else 1)
    for (port, proto), cells in report.tables().items():
        srcs = list(dict.fromkeys(s for s, _ in cells))
        dsts = sorted({d for _, d in cells})
        t = Table(title=f"{proto}/{port}", box=None, header_style="bold",
                  title_justify="left")
        t.add_column("from \\ to")
        for d in dsts:
            t.add_column(d, justify="center")
        for s in srcs:
            row = [s]
            for d in dsts:
                p = cells.get((s, d))
                if p is None:
                    row.append("")
                elif not p.match:
                    row.append("[bold red]![/bold red]")
                else:
                    row.append("[green]Y[/green]" if p.observed == "allowed" else
                               "[dim].[/dim]")
            t.add_row(*row)
        out.print(t)
        out.print()
    summary = report.to_json()["summary"]
    for p in report.mismatches:
        out.print(f"[bold red]mismatch[/bold red] {p.src} -> {p.dst} {p.protocol}/{p.port}: "
                  f"Kubernetes says {p.expected}, the kernel {p.observed} ({p.result})",
                  highlight=False)
    verdict = "[green]kernel matches NetworkPolicy semantics[/green]" if report.ok else \
        f"[bold red]{len(report.mismatches)} mismatches[/bold red]"
    out.print(f"{summary['probes']} probes: {summary['allowed']} allowed, "
              f"{summary['denied']} denied, in {summary['seconds']:.2f}s: {verdict}",
              highlight=False)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def explain(src: Annotated[str, typer.Argument(help="Pod ([NS/]NAME), external or internet.")],
            dst: Annotated[str, typer.Argument(help="Pod, svc/[NS/]NAME or an IP.")],
            port: Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535)] = None,
            proto: Annotated[Proto, typer.Option("--proto")] = Proto.tcp,
            output: OutputOpt = Output.table, lab: LabOpt = None) -> None:
    """Why is SRC allowed (or not) to reach DST? The policy engine's reasoning in plain
    words, next to what a real probe did."""
    e = _open(lab).explain(src, dst, port, proto.value)
    if output == Output.json:
        _print_json({"src": e.src, "dst": e.dst, "port": e.port, "protocol": e.protocol,
                     "expected": e.expected,
                     "reasoning": e.reasoning, "probe": e.probe.to_json(),
                     "kernel_verdicts": e.kernel_verdicts,
                     "agrees": e.agrees})
    else:
        out.print(f"[bold]{src} -> {dst} {e.protocol.upper()}/{e.port}[/bold]",
                  highlight=False)
        for line in e.reasoning:
            out.print(f"  {line}", highlight=False)
        p = e.probe
        seen = f" (answered by {p.answered_by}, client seen as {p.client_ip})" \
            if p.connected else f" ({p.detail})"
        out.print(f"  kernel: probe {p.result}{seen}", highlight=False)
        for v in e.kernel_verdicts:
            out.print(f"    nft trace {v}", highlight=False, soft_wrap=True)
        out.print("  [green]the kernel agrees[/green]" if e.agrees else
                  "  [bold red]the kernel disagrees with the policy semantics[/bold red]")
    raise typer.Exit(0 if e.agrees else 1)


@app.command()
def dns(name: Annotated[str, typer.Argument(help="A name, as a pod would use it: web, "
                                            "web.default, web.default.svc.cluster.local, ...")],
        src: Annotated[str | None, typer.Option("--from", help="Pod to ask from (default: the "
                                                "first pod of namespace default).")] = None,
        qtype: Annotated[str, typer.Option("--type", "-t", help="A, SRV, PTR, TXT, CNAME, "
                                           "ANY...")] = "A",
        output: OutputOpt = Output.table, lab: LabOpt = None) -> None:
    """Ask the cluster DNS from inside a pod, with the pod's resolv.conf (search list,
    ndots), and print the answer. Exit 1 unless the name resolves.

    Examples: netlab dns web;  netlab dns _http._tcp.web --type SRV;  netlab dns 10.96.0.10
    """
    import ipaddress as _ip

    with contextlib.suppress(ValueError):
        name, qtype = _ip.IPv4Address(name).reverse_pointer, "PTR"
    a = _open(lab).dns(name, src, qtype)
    if output == Output.json:
        _print_json(a.to_json())
    else:
        via = " over TCP (UDP answer truncated)" if a.tcp else ""
        out.print(f"{a.query} {a.type}: {a.rcode} from {a.server}{via} in "
                  f"{a.seconds * 1000:.1f} ms", highlight=False)
        for r in a.answers:
            out.print(f"  {r.name}\t{r.ttl}\t{r.type}\t{r.data}", highlight=False)
        for r in a.additional:
            out.print(f"  (additional) {r.name}\t{r.type}\t{r.data}", highlight=False)
        if len(a.tried) > 1:
            out.print(f"  [dim]search list tried: {', '.join(a.tried)}[/dim]",
                      highlight=False)
    raise typer.Exit(0 if a.rcode == "NOERROR" and a.answers else 1)


@app.command()
def http(url: Annotated[str, typer.Argument(help="http[s]://HOST/PATH: HOST goes in the Host "
                                            "header and SNI; an IP address is connected to.")],
         src: Annotated[str, typer.Option("--from", help="external (default), internet, a "
                                          "pod or node/NAME.")] = "external",
         method: Annotated[str, typer.Option("--method", "-X")] = "GET",
         header: Annotated[list[str] | None, typer.Option("--header", "-H",
                                                          help="'Name: value'")] = None,
         output: OutputOpt = Output.table, lab: LabOpt = None) -> None:
    """A real HTTP(S) request through the lab's ingress controller, like curl: status,
    the pod that answered, the headers it received, the certificate's names.

    Example: netlab http http://foo.bar.com/testpath
    """
    headers = {}
    for h in header or []:
        k, _, v = h.partition(":")
        headers[k.strip()] = v.strip()
    r = _open(lab).http(url, src, method.upper(), headers)
    if output == Output.json:
        _print_json(r.to_json())
    elif r.status is None:
        out.print(f"{url}: [red]no answer[/red] ({r.error})", highlight=False)
    else:
        color = "green" if r.ok else "red"
        out.print(f"{url} via {r.address}: [{color}]{r.status} {r.reason}[/{color}]"
                  + (f", answered by {r.answered_by}" if r.answered_by else "")
                  + f" in {r.seconds * 1000:.1f} ms", highlight=False)
        if r.certificate_names:
            out.print(f"  certificate for: {', '.join(r.certificate_names)}",
                      highlight=False)
        for k in ("x-forwarded-for", "x-real-ip", "host"):
            if k in r.seen_headers:
                out.print(f"  the pod saw {k}: {r.seen_headers[k]}", highlight=False)
        if not r.answered_by:
            out.print("  " + r.body.strip()[:200], highlight=False)
    raise typer.Exit(0 if r.ok else 1)


@app.command()
def trace(src: Annotated[str, typer.Argument(help="Pod ([NS/]NAME), node/NAME, external or "
                                             "internet.")],
          dst: Annotated[str, typer.Argument(help="Pod, svc/[NS/]NAME, node/NAME, internet, "
                                             "an IP or a DNS name.")],
          port: Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535)] = None,
          proto: Annotated[Proto | None, typer.Option("--proto")] = None,
          pcap: Annotated[Path | None, typer.Option("--pcap", help="Write one pcap per "
                                                    "interface the packet crossed here.")
                          ] = None,
          timeout: Annotated[float, typer.Option("--timeout", min=0.1)] = 1.0,
          output: OutputOpt = Output.table, lab: LabOpt = None) -> None:
    """Follow one packet from SRC to DST across every interface it crosses: ARP, bridges,
    routing, VXLAN encapsulation, Service DNAT, masquerade; where it died and why.

    Example: netlab trace client svc/web
    """
    r = _open(lab).trace(src, dst, port, proto.value if proto else None, timeout, pcap)
    if output == Output.json:
        _print_json(r.to_json())
        raise typer.Exit(0 if r.delivered else 1)
    where = f"{r.address}:{r.port}/{r.protocol}" if r.port else f"{r.address}/{r.protocol}"
    out.print(f"[bold]trace {src} -> {dst} ({where}), IP id {r.ip_id}[/bold]",
              highlight=False)
    t = Table(box=None, header_style="bold")
    for c in ("#", "ms", "NAMESPACE", "IFACE", "", "PACKET", "CHANGED"):
        t.add_column(c, no_wrap=c != "PACKET" and c != "CHANGED")
    styles = {"request": "", "reply": "green", "arp": "dim", "icmp-error": "red"}
    for h in r.hops:
        arrow = "->" if h.direction == "out" else "<-"
        style = styles.get(h.kind, "")
        t.add_row(str(h.index), f"{h.ms:.3f}", h.netns, h.iface, arrow,
                  f"[{style}]{h.summary}[/{style}]" if style else h.summary,
                  "; ".join(h.changes))
    out.print(t)
    for v in r.kernel_verdicts:
        out.print(f"  nft: {v}", highlight=False, soft_wrap=True)
    color = "green" if r.delivered and r.reply else "red"
    out.print(f"[{color}]{r.verdict}[/{color}]", highlight=False, soft_wrap=True)
    for pth in r.pcaps:
        out.print(f"  wrote {pth}", highlight=False)
    raise typer.Exit(0 if r.delivered else 1)


@app.command()
def capture(target: Annotated[str, typer.Argument(help="POD[:IFACE], node/NAME[:IFACE] (eth0, "
                                                  "cni0, flannel.1, ...) or underlay.")],
            bpf: Annotated[str | None, typer.Option("--filter", help="A BPF filter, like "
                                                    "tcpdump's (e.g. 'udp port 8472').")
                           ] = None,
            write: Annotated[Path | None, typer.Option("-w", "--write", help="Write a pcap "
                                                       "instead of printing.")] = None,
            count: Annotated[int | None, typer.Option("--count", "-c", min=1)] = None,
            seconds: Annotated[float | None, typer.Option("--seconds", min=0.1,
                                                          help="Stop after this long.")] = None,
            lab: LabOpt = None) -> None:
    """Capture live on a pod's or node's interface, or on the underlay switch: one line per
    packet (or a pcap with -w) until --count, --seconds or Ctrl-C."""
    lab_ = _open(lab)
    seen: list = []
    done = threading.Event()

    def show(c) -> None:
        if count and len(seen) >= count:
            return
        seen.append(c)
        if write is None:
            arrow = "->" if c.outgoing else "<-"
            sys.stdout.write(f"{time.strftime('%H:%M:%S', time.localtime(c.time))}."
                             f"{int(c.time % 1 * 1e6):06d} {c.label} {arrow} "
                             f"{c.packet.summary()}\n")
            sys.stdout.flush()
        if count and len(seen) >= count:
            done.set()

    cap = lab_.capture(target, bpf=bpf)
    cap.on_packet = show
    t0 = time.monotonic()
    with cap:
        try:
            while not done.is_set() and (seconds is None or
                                         time.monotonic() - t0 < seconds):
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
    if write is not None:
        from scapy.utils import wrpcap

        wrpcap(str(write), [c.packet for c in seen[:count] if c])
        err.print(f"wrote {min(len(seen), count or len(seen))} packets to {write}")


@app.command()
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
    info = _open(lab).label(pod, sets)
    out.print(f"pod {info.key} labelled: " + (",".join(
        f"{k}={v}" for k, v in info.labels.items()) or "<none>"), highlight=False)


@app.command()
def logs(pod: Annotated[str, typer.Argument(help="Pod (NAME or NAMESPACE/NAME).")],
         container: Annotated[str | None, typer.Option("--container", "-c")] = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new "
                                              "output.")] = False,
         lab: LabOpt = None) -> None:
    """Print what a pod's container wrote to stdout and stderr."""
    lab_ = _open(lab)
    text = lab_.logs(pod, container)
    sys.stdout.write(text)
    sys.stdout.flush()
    seen = len(text)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --follow, exit 0
        while follow:
            time.sleep(0.5)
            text = lab_.logs(pod, container)
            sys.stdout.write(text[seen:])
            sys.stdout.flush()
            seen = len(text)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        # `up` has already removed what it made (rollback runs on any exception)
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
