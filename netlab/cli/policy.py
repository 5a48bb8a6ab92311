"""NetworkPolicy, kernel against semantics: check and explain."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from netlab.cli.common import POLICY, LabOpt, Proto, app, err, open_lab, out, output_option
from netlab.cli.printers import DOCUMENT, parse_output, print_document


@app.command(rich_help_panel=POLICY)
def check(output: Annotated[str, output_option(DOCUMENT)] = "table",
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
    fmt = parse_output(output, DOCUMENT)
    lab_ = open_lab(lab)
    with err.status("probing...") if err.is_terminal and not fmt.machine else \
            contextlib.nullcontext():
        report = lab_.check(timeout=timeout, external=external)
    if fmt.machine:
        print_document(fmt, report.to_json())
        raise typer.Exit(0 if report.ok else 1)
    for (port, proto, family), cells in report.tables().items():
        srcs = list(dict.fromkeys(s for s, _ in cells))
        dsts = sorted({d for _, d in cells})
        title = f"{proto}/{port} {family}" if family else f"{proto}/{port}"
        t = Table(title=title, box=None, header_style="bold",
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
        fam = f" {p.family}" if p.family else ""
        out.print(f"[bold red]mismatch[/bold red] {p.src} -> {p.dst} {p.protocol}/{p.port}{fam}: "
                  f"Kubernetes says {p.expected}, the kernel {p.observed} ({p.result})",
                  highlight=False)
    verdict = "[green]kernel matches NetworkPolicy semantics[/green]" if report.ok else \
        f"[bold red]{len(report.mismatches)} mismatches[/bold red]"
    families = f" ({' and '.join(report.families)})" if report.families else ""
    out.print(f"{summary['probes']} probes{families}: {summary['allowed']} allowed, "
              f"{summary['denied']} denied, in {summary['seconds']:.2f}s: {verdict}",
              highlight=False)
    raise typer.Exit(0 if report.ok else 1)


@app.command(rich_help_panel=POLICY)
def explain(src: Annotated[str, typer.Argument(help="Pod ([NS/]NAME), external or internet.")],
            dst: Annotated[str, typer.Argument(help="Pod, svc/[NS/]NAME or an IP.")],
            port: Annotated[int | None, typer.Option("--port", "-p", min=1, max=65535)] = None,
            proto: Annotated[Proto, typer.Option("--proto")] = Proto.tcp,
            ipv6: Annotated[bool, typer.Option(
                "-6", "--ipv6", help="Over IPv6, to DST's IPv6 address (dual-stack labs).")
            ] = False,
            output: Annotated[str, output_option(DOCUMENT)] = "table", lab: LabOpt = None) -> None:
    """Why is SRC allowed (or not) to reach DST? The policy engine's reasoning in plain
    words, next to what a real probe did. In a dual-stack lab it says which family (IPv4,
    or IPv6 with -6)."""
    fmt = parse_output(output, DOCUMENT)
    e = open_lab(lab).explain(src, dst, port, proto.value, "IPv6" if ipv6 else None)
    if fmt.machine:
        print_document(fmt, {"src": e.src, "dst": e.dst, "port": e.port, "protocol": e.protocol,
                     **({"family": e.family} if e.family else {}),
                     "expected": e.expected,
                     "reasoning": e.reasoning, "probe": e.probe.to_json(),
                     "kernel_verdicts": e.kernel_verdicts,
                     "agrees": e.agrees})
    else:
        fam = f" {e.family}" if e.family else ""
        out.print(f"[bold]{src} -> {dst} {e.protocol.upper()}/{e.port}{fam}[/bold]",
                  highlight=False)
        for line in e.reasoning:
            out.print(f"  {escape(line)}", highlight=False)
        p = e.probe
        seen = f" (answered by {p.answered_by}, client seen as {p.client_ip})" \
            if p.connected else f" ({p.detail})"
        out.print(f"  kernel: probe {p.result}{escape(seen)}", highlight=False)
        for v in e.kernel_verdicts:
            out.print(f"    nft trace {escape(v)}", highlight=False, soft_wrap=True)
        out.print("  [green]the kernel agrees[/green]" if e.agrees else
                  "  [bold red]the kernel disagrees with the policy semantics[/bold red]")
    raise typer.Exit(0 if e.agrees else 1)
