"""`netlab graph`: a Graphviz picture of a lab, or of what manifests would build."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from netlab.cli.common import LOOK, LabOpt, app, open_lab, out


class GraphFormat(StrEnum):
    svg = "svg"
    png = "png"
    dot = "dot"


@app.command(rich_help_panel=LOOK)
def graph(output: Annotated[GraphFormat, typer.Option("--output", "-o")] = GraphFormat.svg,
          files: Annotated[list[Path] | None, typer.Option("--file", "-f", help="Draw what "
                                                           "these manifests would build (no "
                                                           "lab, no root needed).")] = None,
          out_file: Annotated[Path | None, typer.Option("--out", help="Write here (default: "
                                                        "stdout for dot, lab.svg/png)")] = None,
          lab: LabOpt = None) -> None:
    """A picture of the lab: nodes, bridges, VXLAN tunnels or routes, pods by node and
    namespace, Services and their endpoints, NetworkPolicy allowed edges, ClusterNetworkPolicy
    edges (green: allowed, naming the cluster policy that accepted; red dashed: denied by an
    Admin tier rule) (Graphviz)."""
    from netlab.lab import draw_graph, graph_dot, plan_up
    from netlab.loader import read_files

    if files:
        _, desired = plan_up(read_files(files), files)
        plan, policies = desired.plan, desired.policies
        cluster_policies = list(desired.manifests.cluster_network_policies.values())
    else:
        lab_ = open_lab(lab)
        plan, policies, cluster_policies = lab_.plan, lab_.policies(), lab_.cluster_policies()
    dot = graph_dot(plan, policies, cluster_policies)
    if output == GraphFormat.dot:
        if out_file:
            out_file.write_text(dot)
        else:
            sys.stdout.write(dot)
        return
    data = draw_graph(dot, output.value)
    target = out_file or Path(f"{plan.lab}.{output.value}")
    target.write_bytes(data)
    out.print(f"wrote {target}", highlight=False)
