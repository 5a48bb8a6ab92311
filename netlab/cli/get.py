"""`netlab get`: kubectl get for the lab's pods, services, endpoints, ingresses, nodes,
namespaces, Jobs and the other workload kinds (deployments, replicasets, replicationcontrollers,
statefulsets, daemonsets)."""

from __future__ import annotations

from typing import Annotated

import typer

from netlab.cli import selectors
from netlab.cli.common import LOOK, LabOpt, app, err, open_lab, output_option
from netlab.cli.printers import parse_output, show
from netlab.cli.resources import TYPES_HELP, listing, parse_args
from netlab.errors import InputError


@app.command(rich_help_panel=LOOK)
def get(args: Annotated[list[str] | None, typer.Argument(
            metavar="TYPE[,TYPE...] [NAME...] | TYPE/NAME...", show_default=False,
            help=f"What to show: {TYPES_HELP}.")] = None,
        namespace: Annotated[str | None, typer.Option("--namespace", "-n", show_default=False,
                                                      help="Namespace (default: default).")
                             ] = None,
        all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A",
                                                     help="Every namespace.")] = False,
        selector: Annotated[str | None, typer.Option(
            "--selector", "-l", show_default=False,
            help="Label selector: app=web, app!=web, 'tier in (a,b)', 'tier notin (c)', app, "
                 "'!app'; commas mean AND. Pods, nodes, namespaces and workloads have labels; "
                 "netlab keeps none for services, endpoints and ingresses, so only !key and "
                 "notin/!= match those.")] = None,
        output: Annotated[str, output_option()] = "table",
        show_labels: Annotated[bool, typer.Option("--show-labels",
                                                  help="Add a LABELS column.")] = False,
        no_headers: Annotated[bool, typer.Option("--no-headers",
                                                 help="Tables without the header line.")
                              ] = False,
        lab: LabOpt = None) -> None:
    """Show pods, services, endpoints, ingresses, jobs, deployments, replicasets, statefulsets,
    daemonsets, nodes or namespaces, like kubectl get.

    Examples: netlab get pods -o wide;  netlab get po,svc -A;  netlab get pod/pod-a -o yaml;
    netlab get deploy,sts -o wide;
    netlab get pods -l app=web -o name;  netlab get pods -o jsonpath='{.items[*].status.podIP}'
    """
    wanted = parse_args(args or [])
    fmt = parse_output(output)
    sel = selectors.parse(selector or "")
    named = any(names for _, names in wanted)
    if named and selector:
        raise InputError("give NAMEs or a selector (-l), not both")
    if named and all_namespaces:
        raise InputError("a resource cannot be retrieved by name across all namespaces: "
                         "drop -A, or give -n NAMESPACE")
    ns = namespace or "default"
    lab_ = open_lab(lab)
    listings, missing = [], []
    for k, names in wanted:
        items = k.read(lab_, None if all_namespaces or not k.namespaced else ns)
        if names:
            by_name = {o.name: o for o in items}
            missing += [f'{k.not_found_name} "{n}" not found' for n in names if n not in by_name]
            items = [by_name[n] for n in dict.fromkeys(names) if n in by_name]
        else:
            items = [o for o in items if sel.matches(k.document(o)["metadata"].get("labels"))]
        listings.append(listing(k, items, all_namespaces, show_labels=show_labels,
                                namespace=ns))
    # One object asked for by name: -o json/yaml print it, not a List (as kubectl does).
    single = len(wanted) == 1 and len(wanted[0][1]) == 1
    if not missing or any(li.items for li in listings):  # what was found, then the errors
        show(fmt, listings, single=single, headers=not no_headers)
    for m in missing:
        err.print(f"Error from server (NotFound): {m}", highlight=False, soft_wrap=True)
    if missing:
        raise typer.Exit(1)
