"""A picture of a lab for a workshop's projector: nodes with their bridge and VXLAN device
(or host-gw routes), pods grouped by node and namespace with addresses and labels, Services
with their endpoints, NetworkPolicies as the edges they allow, and ClusterNetworkPolicies as
the edges their Admin tier denies and the edges a cluster tier decided. Pure: DOT text from the
plan; Graphviz (`dot`) draws it."""

from __future__ import annotations

from collections.abc import Iterable

from netlab.errors import KernelError
from netlab.kernel import commands
from netlab.model import NetworkPolicy
from netlab.plan import Plan
from netlab.policy.cluster import ClusterNetworkPolicy, cluster_engine_for
from netlab.policy.engine import engine_for


def _id(*parts: str) -> str:
    return "n_" + "_".join(p.replace("-", "_").replace(".", "_").replace("/", "_")
                           for p in parts)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _both(v4: str | None, v6: str | None, sep: str = ",") -> str:
    """An address (or range) and, in a dual-stack lab, its IPv6 twin."""
    return sep.join(a for a in (v4, v6) if a)


def render_dot(plan: Plan, policies: Iterable[NetworkPolicy] = (), max_edges: int = 200,
               cluster_policies: Iterable[ClusterNetworkPolicy] = ()) -> str:
    c = plan.cluster
    lines = ["digraph netlab {", "  graph [rankdir=TB, compound=true, fontname=Helvetica, "
             "fontsize=11, labelloc=t, label=" + _q(f"lab {plan.lab}: {len(plan.nodes)} nodes, "
                                                     f"{c.backend}, pods "
                                                     f"{_both(c.pod_cidr, c.pod_cidr6)}, "
                                                     "services "
                                                     f"{_both(c.service_cidr, c.service_cidr6)}"
                                                     ) + "];",
             "  node [fontname=Helvetica, fontsize=10];", "  edge [fontname=Helvetica, "
             "fontsize=9];"]
    underlay = _both(c.underlay_cidr if c.ipv4 else "", c.underlay_cidr6 if c.ipv6 else "")
    internet = " / ".join(a for a in (_both(plan.underlay_gateway, plan.underlay_gateway6),
                                      _both(plan.internet_ip, plan.internet_ip6)) if a)
    lines += ["  subgraph cluster_underlay {", f"    label={_q('underlay ' + underlay)};",
              "    style=rounded; color=gray;",
              f"    {_id('underlay')} [shape=box, label=\"bridge underlay\"];",
              f"    {_id('external')} [shape=component, "
              f"label={_q('external ' + _both(plan.external_ip, plan.external_ip6))}];",
              f"    {_id('internet')} [shape=component, label="
              f"{_q('internet ' + internet)}];",
              "  }",
              f"  {_id('external')} -> {_id('underlay')} [dir=none];",
              f"  {_id('internet')} -> {_id('underlay')} [dir=none];"]
    plugins = ""
    if c.cni:  # the pods' side is the plugins' (a bridge, ptp veths, ...): named as such
        from netlab.cni import parse_conflist

        conflist = parse_conflist(c.cni_config)
        plugins = f"CNI {conflist.name}: {' -> '.join(p.type for p in conflist.plugins)}"
    for n in plan.nodes:
        title = (f"{n.name}  eth0 {_both(n.underlay_ip, n.underlay_ip6)}  "
                 f"podCIDR {_both(n.pod_cidr, n.pod_cidr6)}")
        lines += [f"  subgraph cluster_{_id(n.name)} {{",
                  f"    label={_q(title)};",
                  "    style=rounded; color=steelblue;",
                  f"    {_id(n.name, 'eth0')} [shape=box, label="
                  f"{_q('eth0 ' + _both(n.underlay_ip, n.underlay_ip6, chr(10)))}];",
                  f"    {_id(n.name, 'cni0')} [shape=box, label="
                  f"{_q(plugins or 'cni0 ' + _both(n.gateway, n.gateway6, chr(10)))}];"]
        if c.backend == "vxlan":
            vteps = [f"{dev} {ip}{chr(10)}{mac}" for dev, ip, mac in (
                ("flannel.1", n.vtep_ip, n.vtep_mac), ("flannel-v6.1", n.vtep_ip6, n.vtep_mac6))
                if ip]
            lines.append(f"    {_id(n.name, 'vtep')} [shape=box, label="
                         f"{_q(chr(10).join(vteps))}];")
        pods = [p for p in plan.pods.values() if p.node == n.name]
        for ns in sorted({p.namespace for p in pods}):
            lines += [f"    subgraph cluster_{_id(n.name, ns)} {{",
                      f"      label={_q('namespace ' + ns)}; style=dashed; color=gray;"]
            for p in sorted((p for p in pods if p.namespace == ns), key=lambda p: p.name):
                labels = ",".join(f"{k}={v}" for k, v in p.labels.items()
                                  if k != "pod-template-hash")
                text = f"{p.name}\n{_both(p.ip, p.ip6, chr(10))}" + (f"\n{labels}" if labels
                                                                      else "")
                lines.append(f"      {_id('pod', p.key)} [shape=ellipse, label={_q(text)}];")
            lines.append("    }")
        lines.append("  }")
        lines.append(f"  {_id(n.name, 'eth0')} -> {_id('underlay')} [dir=none];")
        for p in pods:
            if p.host_network:  # in the node's namespace: on eth0 itself
                lines.append(f"  {_id('pod', p.key)} -> {_id(n.name, 'eth0')} "
                             "[dir=none, label=\"hostNetwork\"];")
                continue
            lines.append(f"  {_id('pod', p.key)} -> {_id(n.name, 'cni0')} "
                         f"[dir=none, label={_q(p.veth)}];")
    if c.backend == "vxlan":
        for i, a in enumerate(plan.nodes):
            for b in plan.nodes[i + 1:]:
                lines.append(f"  {_id(a.name, 'vtep')} -> {_id(b.name, 'vtep')} [dir=both, "
                             "style=dashed, color=darkorange, label=\"VXLAN VNI 1 / UDP 8472\"];")
    elif c.backend == "bgp":  # the sessions (Calico's full mesh, or to the reflector)
        from netlab.features import bgp

        drawn: set[frozenset[str]] = set()
        for a in plan.nodes:
            for _, address, asn, _rr in bgp.peers(plan, a):
                other = next((n.name for n in plan.nodes if address in
                              (n.underlay_ip, n.underlay_ip6)), None)
                pair = frozenset((a.name, other or "external"))
                if pair in drawn:
                    continue
                drawn.add(pair)
                end = _id(other, "eth0") if other else _id("external")
                label = (f"iBGP AS {asn}" if asn == c.bgp_as else
                         f"eBGP AS {c.bgp_as} - AS {asn}")
                if c.bgp_route_reflector in pair:
                    label += " (route reflector)"
                lines.append(f"  {_id(a.name, 'eth0')} -> {end} [dir=both, style=dashed, "
                             f"color=purple, label={_q(label)}];")
    else:
        for a in plan.nodes:
            for b in plan.nodes:
                if a.name != b.name:
                    route = _q("\n".join(f"{b.of('pod_cidr', f)} via {b.address(f)}"
                                          for f in c.families))
                    lines.append(f"  {_id(a.name, 'eth0')} -> {_id(b.name, 'eth0')} [style="
                                 f"dashed, color=darkorange, label={route}];")
    for s in sorted(plan.services.values(), key=lambda s: s.key):
        addr = _both(s.cluster_ip, s.cluster_ip6) or (
            "headless" if s.type != "ExternalName" else s.external_name)
        ports = ",".join(f"{p.port}{':' + str(p.node_port) if p.node_port else ''}/{p.protocol}"
                         for p in s.ports)
        extra = f"\nLB {','.join(s.lb_ips)}" if s.lb_ips else ""
        text = _q(f"svc {s.key}\n{s.type} {addr}\n{ports}{extra}")
        lines.append(f"  {_id('svc', s.key)} [shape=hexagon, style=filled, "
                     f"fillcolor=lightyellow, label={text}];")
        for ep in sorted({ep.pod for p in s.ports for ep in (*p.endpoints, *p.endpoints6)
                          if ep.pod}):
            lines.append(f"  {_id('svc', s.key)} -> {_id('pod', ep)} [style=dotted, "
                         "color=gray40];")
        hosts = {a: h for h in ("internet", "external") for a in (
            plan.internet(f) if h == "internet" else plan.external(f) for f in c.families)}
        for host in sorted({hosts[ep.ip] for p in s.ports for ep in (*p.endpoints, *p.endpoints6)
                            if ep.pod is None and ep.ip in hosts}):  # no selector: outside
            lines.append(f"  {_id('svc', s.key)} -> {_id(host)} [style=dotted, "
                         "color=gray40];")
    lines += _policy_edges(plan, list(policies), list(cluster_policies), max_edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(dot: str, fmt: str) -> bytes:
    r = commands.run(["dot", f"-T{fmt}"], input=dot.encode())
    if r.returncode == 127:
        raise KernelError("Graphviz is not installed (the `dot` command): run "
                          "scripts/setup.sh, or use -o dot")
    if r.returncode != 0:
        raise KernelError(f"dot failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def _policy_edges(plan: Plan, policies: list[NetworkPolicy],
                  cluster_policies: list[ClusterNetworkPolicy], max_edges: int) -> list[str]:
    """Pod-to-pod edges where policy has a say: a NetworkPolicy isolates the destination
    for ingress, or a ClusterNetworkPolicy selects the destination (ingress) or the source
    (egress). Green: allowed, on the ports the destination declares (labelled with the
    cluster policy that accepted it, when one did); red dashed: denied by an Admin tier
    rule (the guardrails a workshop wants to see). Other denials are the absence of an
    edge. At most `max_edges` edges, in pod order."""
    if not policies and not cluster_policies:
        return []
    c = plan.cluster
    np_engine = engine_for(plan, policies)
    engine = cluster_engine_for(plan, policies, cluster_policies) if cluster_policies \
        else np_engine
    refs = np_engine.pods
    out: list[str] = []
    pods = sorted(plan.pods.values(), key=lambda p: p.key)
    for dst in pods:
        ref = refs.get(dst.key)
        if ref is None:  # hostNetwork: no policy applies
            continue
        dst_governed = bool(np_engine.selecting(ref, "Ingress")) or (
            bool(cluster_policies) and any(engine.selecting(ref, tier, "ingress")
                                           for tier in ("Admin", "Baseline")))
        for src in pods:
            if src.key == dst.key or src.key not in refs:
                continue
            governed = dst_governed or (bool(cluster_policies) and any(
                engine.selecting(refs[src.key], tier, "egress")
                for tier in ("Admin", "Baseline")))
            if not governed:
                continue
            allowed: list[str] = []
            by: set[str] = set()
            denied: set[str] = set()
            for proto, port in dst.container_ports:
                d = engine.decide(refs[src.key], ref, port, proto, c.primary)
                verdicts = (d.egress, d.ingress) if cluster_policies else ()
                if d.allowed:
                    allowed.append(f"{port}/{proto}")
                    by |= {f"{v.tier} {v.rule.policy.name}" for v in verdicts
                           if v.rule is not None and v.tier in ("Admin", "Baseline")}
                else:
                    denied |= {v.rule.policy.name for v in verdicts
                               if not v.allowed and v.tier == "Admin" and v.rule is not None}
            if len(out) >= max_edges:
                return out
            if allowed:
                label = "allowed " + ",".join(allowed) + (f" ({', '.join(sorted(by))})"
                                                         if by else "")
                out.append(f"  {_id('pod', src.key)} -> {_id('pod', dst.key)} "
                           f"[color=forestgreen, penwidth=1.5, label={_q(label)}];")
            elif denied:
                out.append(f"  {_id('pod', src.key)} -> {_id('pod', dst.key)} "
                           f"[color=red3, style=dashed, label="
                           f"{_q('Admin deny: ' + ', '.join(sorted(denied)))}];")
    return out
